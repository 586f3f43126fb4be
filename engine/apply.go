package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/cockroachdb/pebble/v2"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/trailaudit/trail/merkle"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// Batch is one Raft entry's worth of events, already ordered.
type Batch struct {
	// Index is the Raft index carrying the batch; it becomes the applied index.
	Index uint64
	// Time is the sequencer time the leader assigned to the batch. Apply
	// clamps it per tenant so that a tenant's sequencer time never goes back.
	Time time.Time
	// Events in log order.
	Events []*trailv1.Event
	// EventBytes, when set, holds the deterministic encoding of each of
	// Events (as the Raft entry carries it), which Apply then stores as it
	// is instead of encoding the event again. Every replica applies the
	// same entry, so every replica stores the same bytes either way.
	EventBytes [][]byte
}

// Receipt is the proof of acceptance returned for each appended event.
type Receipt struct {
	Tenant        string
	EventID       string
	Partition     Month
	LeafIndex     uint64
	LeafHash      merkle.Hash
	TreeSize      uint64 // partition size after the batch that appended it
	SequencerTime time.Time
	Duplicate     bool // true when event_id was already in the log
	// Index is the applied index (Raft index) of the batch that appended
	// the event, so a caller can wait for that index on another replica;
	// 0 for a duplicate of an event appended by an earlier batch.
	Index uint64
}

// Result is the outcome of one event of a batch: a receipt, or the reason
// the event was rejected (ErrInvalidEvent, ErrEntryTooLarge,
// ErrEventIDConflict). A rejected event writes nothing.
type Result struct {
	Receipt Receipt
	Err     error
}

// Errors of individual events.
var (
	ErrEntryTooLarge   = errors.New("entry too large")
	ErrEventIDConflict = errors.New("event_id already used for a different event")
	ErrAlreadyApplied  = errors.New("engine: command at or below the applied index")
)

// Apply appends a batch in one Pebble batch: entries, tiles, index keys,
// dedup keys, tenant heads, partition catalog and the applied index. A batch
// at or below the applied index is skipped with ErrAlreadyApplied (Raft
// replay after restart). Any other error is a storage failure: nothing of
// the batch is visible and the in-memory state is reloaded from disk.
func (e *Engine) Apply(ctx context.Context, b *Batch) ([]Result, error) {
	if err := e.checkOpen(); err != nil {
		return nil, err
	}
	e.writeMu.Lock()
	defer e.writeMu.Unlock()
	if b.Index <= e.applied.Load() {
		return nil, ErrAlreadyApplied
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("engine: apply %d: %w", b.Index, err)
	}
	a := e.newApplier(b.Index)
	defer a.wb.Close()
	if b.EventBytes != nil && len(b.EventBytes) != len(b.Events) {
		return nil, fmt.Errorf("engine: apply %d: %d encoded events for %d events: %w", b.Index, len(b.EventBytes), len(b.Events), ErrInvalidEvent)
	}
	results := make([]Result, len(b.Events))
	for i, ev := range b.Events {
		var encoded []byte
		if b.EventBytes != nil {
			encoded = b.EventBytes[i]
		}
		r, err := a.appendEvent(ev, encoded, b.Time)
		if err != nil {
			e.dropState()
			return nil, fmt.Errorf("engine: apply %d: %w", b.Index, err)
		}
		results[i] = r
	}
	if err := a.finish(results); err != nil {
		e.dropState()
		return nil, fmt.Errorf("engine: apply %d: %w", b.Index, err)
	}
	if err := e.commit(a.wb, b.Index); err != nil {
		return nil, fmt.Errorf("engine: apply %d: %w", b.Index, err)
	}
	return results, nil
}

// commit writes the applied index into wb and commits it. On failure the
// cached tenant state, which already reflects wb, is dropped.
func (e *Engine) commit(wb *pebble.Batch, index uint64) error {
	if err := wb.Set(appliedKey, encodeUint64(index), nil); err != nil {
		e.dropState()
		return err
	}
	opts := pebble.NoSync
	if e.opts.SyncWrites {
		opts = pebble.Sync
	}
	if err := wb.Commit(opts); err != nil {
		e.dropState()
		return fmt.Errorf("commit: %w", err)
	}
	e.applied.Store(index)
	return nil
}

// dropState forgets cached tenant state so that it is reloaded from what is
// committed; used after a failed write.
func (e *Engine) dropState() { clear(e.tenants) }

// applier accumulates one batch.
type applier struct {
	e     *Engine
	wb    *pebble.Batch
	index uint64
	// dirty lists the partitions this batch touched, in first-touch order, so
	// that flushing is deterministic.
	dirty    []*openPartition
	heads    map[string]*tenantState
	headList []string
	// fresh maps tenant\x00event_id to the result index of an event appended
	// earlier in this batch.
	fresh map[string]int
	// pending are results whose dedup records are written at finish, once the
	// tree sizes are known.
	pending  []pendingDedup
	postings postings
	marshal  proto.MarshalOptions
}

type pendingDedup struct {
	result int
	digest uint64
	part   *openPartition
}

func (e *Engine) newApplier(index uint64) *applier {
	return &applier{
		e:       e,
		wb:      e.db.NewBatch(),
		index:   index,
		heads:   make(map[string]*tenantState),
		fresh:   make(map[string]int),
		marshal: proto.MarshalOptions{Deterministic: true},
	}
}

// appendEvent appends one event. A returned error is a storage failure; a
// rejected event is reported in the Result.
func (a *applier) appendEvent(ev *trailv1.Event, eventBytes []byte, t time.Time) (Result, error) {
	if err := ValidateEvent(ev); err != nil {
		return Result{Err: err}, nil
	}
	if eventBytes == nil {
		var err error
		if eventBytes, err = a.marshal.Marshal(ev); err != nil {
			return Result{Err: fmt.Errorf("%w: encode: %v", ErrInvalidEvent, err)}, nil
		}
	}
	digest := xxhash.Sum64(eventBytes)
	if r, hit, err := a.lookupDuplicate(ev, digest); hit || err != nil {
		return r, err
	}
	ts, err := a.e.tenant(ev.TenantId)
	if err != nil {
		return Result{}, err
	}
	seq := max(t.UnixNano(), ts.head.LastTime)
	op, link, err := a.e.partitionFor(ts, MonthOf(time.Unix(0, seq)))
	if err != nil {
		return Result{}, err
	}
	leaf := op.app.Size()
	entryBytes, err := encodeEntry(a.marshal, eventBytes, &trailv1.Entry{
		SequencerTime: timestamppb.New(time.Unix(0, seq).UTC()),
		Partition:     op.p.Month.String(),
		LeafIndex:     leaf,
		PrevLeafHash:  ts.head.LastLeaf[:],
		PrevPartition: link,
	})
	if err != nil {
		return Result{}, fmt.Errorf("encode entry: %w", err)
	}
	if len(entryBytes) > a.e.opts.MaxEntryBytes {
		return Result{Err: fmt.Errorf("%w: %d bytes encoded, limit %d", ErrEntryTooLarge, len(entryBytes), a.e.opts.MaxEntryBytes)}, nil
	}
	leafHash := merkle.LeafHash(entryBytes)
	op.append(leafHash)
	if err := a.wb.Set(entryKey(op.p, leaf), entryBytes, nil); err != nil {
		return Result{}, err
	}
	a.postings.add(ev, op.p.Month, leaf)
	if op.cat.Size == 0 {
		op.cat.FirstTime = seq
	}
	op.cat.Size, op.cat.LastTime = op.app.Size(), seq
	ts.head = headRecord{Month: op.p.Month, LastLeaf: leafHash, LastTime: seq}
	ts.started = true
	a.touch(ts, op)
	a.fresh[ev.TenantId+"\x00"+ev.EventId] = len(a.pending)
	a.pending = append(a.pending, pendingDedup{digest: digest, part: op})
	return Result{Receipt: Receipt{
		Tenant: ev.TenantId, EventID: ev.EventId, Partition: op.p.Month,
		LeafIndex: leaf, LeafHash: leafHash, SequencerTime: time.Unix(0, seq).UTC(), Index: a.index,
	}}, nil
}

// lookupDuplicate finds an earlier append of the same event_id, in this
// batch or in the store.
func (a *applier) lookupDuplicate(ev *trailv1.Event, digest uint64) (Result, bool, error) {
	if i, ok := a.fresh[ev.TenantId+"\x00"+ev.EventId]; ok {
		p := a.pending[i]
		if p.digest != digest {
			return Result{Err: conflict(ev)}, true, nil
		}
		return Result{Receipt: Receipt{Duplicate: true, Tenant: ev.TenantId, EventID: ev.EventId}, Err: errPendingDuplicate(i)}, true, nil
	}
	rec, found, err := a.e.readDedup(a.e.db, ev.TenantId, ev.EventId)
	if err != nil || !found {
		return Result{}, false, err
	}
	if rec.Digest != digest {
		return Result{Err: conflict(ev)}, true, nil
	}
	r, err := a.e.receiptFromDedup(context.Background(), ev.TenantId, ev.EventId, rec)
	if err != nil {
		return Result{}, true, err
	}
	return Result{Receipt: r}, true, nil
}

func conflict(ev *trailv1.Event) error {
	return fmt.Errorf("%w: tenant %q event_id %q", ErrEventIDConflict, ev.TenantId, ev.EventId)
}

// errPendingDuplicate marks a Result that duplicates the i-th event appended
// earlier in the same batch; finish replaces it with that event's receipt.
type errPendingDuplicate int

func (errPendingDuplicate) Error() string { return "duplicate within batch" }

func (a *applier) touch(ts *tenantState, op *openPartition) {
	if !op.dirty {
		op.dirty = true
		a.dirty = append(a.dirty, op)
	}
	if _, ok := a.heads[ts.id]; !ok {
		a.heads[ts.id] = ts
		a.headList = append(a.headList, ts.id)
	}
}

// finish writes tiles, catalog records, heads and dedup records, and fills
// every receipt's tree size.
func (a *applier) finish(results []Result) error {
	for _, op := range a.dirty {
		if err := op.flush(a.e.db, a.wb); err != nil {
			return err
		}
	}
	if err := a.postings.write(a.wb); err != nil {
		return err
	}
	for _, id := range a.headList {
		if err := a.wb.Set(headKey(id), a.heads[id].head.marshal(), nil); err != nil {
			return err
		}
	}
	// Map pending index -> result index, then fill sizes and write dedup.
	pendingResult := make([]int, 0, len(a.pending))
	for i := range results {
		if results[i].Err == nil && !results[i].Receipt.Duplicate {
			pendingResult = append(pendingResult, i)
		}
	}
	for pi, ri := range pendingResult {
		p := a.pending[pi]
		r := &results[ri].Receipt
		r.TreeSize = p.part.cat.Size
		rec := dedupRecord{Month: r.Partition, Leaf: r.LeafIndex, TreeSize: r.TreeSize, SeqTime: r.SequencerTime.UnixNano(), Digest: p.digest}
		if err := a.wb.Set(dedupKey(r.Tenant, r.EventID), rec.marshal(), nil); err != nil {
			return err
		}
	}
	for i := range results {
		var pd errPendingDuplicate
		if errors.As(results[i].Err, &pd) {
			results[i] = Result{Receipt: results[pendingResult[int(pd)]].Receipt}
			results[i].Receipt.Duplicate = true
		}
	}
	for _, op := range a.dirty {
		op.dirty = false
	}
	return nil
}

// encodeEntry produces the deterministic encoding of entry with event as its
// field 1, without marshalling the event a second time. Go's deterministic
// marshalling writes fields in number order, so prepending field 1 yields
// exactly proto.Marshal of the whole Entry (a test holds us to it).
func encodeEntry(m proto.MarshalOptions, eventBytes []byte, entry *trailv1.Entry) ([]byte, error) {
	tail, err := m.Marshal(entry)
	if err != nil {
		return nil, err
	}
	n := protowire.SizeTag(1) + protowire.SizeBytes(len(eventBytes)) + len(tail)
	b := make([]byte, 0, n)
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	b = protowire.AppendBytes(b, eventBytes)
	return append(b, tail...), nil
}

// sortedTileIDs returns the keys of m in a fixed order.
func sortedTileIDs(m map[merkle.TileID][]byte) []merkle.TileID {
	ids := make([]merkle.TileID, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(x, y merkle.TileID) int {
		if x.Level != y.Level {
			return int(x.Level) - int(y.Level)
		}
		switch {
		case x.Index < y.Index:
			return -1
		case x.Index > y.Index:
			return 1
		}
		return 0
	})
	return ids
}
