package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cespare/xxhash/v2"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/trailaudit/trail/engine/eventwire"
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
	// EventBytes are the events as a Raft entry carries them: their
	// canonical encodings (package eventwire), stored as they are. Bytes in
	// another encoding of a valid event are canonicalized, identically on
	// every replica.
	EventBytes [][]byte
	// Events is for callers that hold decoded events (tests, tools): when
	// EventBytes is nil, Apply encodes them canonically.
	Events []*trailv1.Event
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
// ErrEventIDConflict, ErrStaleDataKey, ErrUnsealed). A rejected event
// writes nothing.
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

// Apply appends a batch: entries go to their partitions' files, dedup
// records and posting lists to the current chunk, and the batch becomes
// visible to readers at once. Nothing is fsynced here: the Raft log is the
// write-ahead log, and a checkpoint (every ChunkEvents events, or before a
// command or snapshot) makes the state durable up to an applied index,
// after which Raft replays (invariant 10). A batch at or below the applied
// index is skipped with ErrAlreadyApplied. Any other error is a storage
// failure after which the engine refuses further writes: its memory may be
// ahead of its files, and only a reopen (which replays from the last
// checkpoint) is safe.
func (e *Engine) Apply(ctx context.Context, b *Batch) ([]Result, error) {
	rs, err := e.ApplyBatches(ctx, []*Batch{b})
	if err != nil {
		return nil, err
	}
	return rs[0], nil
}

// ApplyBatches applies consecutive batches (Raft entries) as Apply would
// one after the other, writing the files once for all of them: the state
// machine hands over every append entry Raft delivers at once. Receipts
// are exactly those of separate Applies. Indexes must increase; if the
// first is at or below the applied index the call is skipped with
// ErrAlreadyApplied.
func (e *Engine) ApplyBatches(ctx context.Context, bs []*Batch) ([][]Result, error) {
	if err := e.checkWritable(); err != nil {
		return nil, err
	}
	e.writeMu.Lock()
	defer e.writeMu.Unlock()
	if err := e.checkWritable(); err != nil {
		return nil, err
	}
	if len(bs) == 0 {
		return nil, nil
	}
	if bs[0].Index <= e.applied.Load() {
		return nil, ErrAlreadyApplied
	}
	for i := 1; i < len(bs); i++ {
		if bs[i].Index <= bs[i-1].Index {
			return nil, fmt.Errorf("engine: apply: index %d after %d", bs[i].Index, bs[i-1].Index)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("engine: apply %d: %w", bs[0].Index, err)
	}
	results, err := e.apply(bs)
	last := bs[len(bs)-1].Index
	if err != nil {
		return nil, e.fail(fmt.Errorf("engine: apply %d..%d: %w", bs[0].Index, last, err))
	}
	e.applied.Store(last)
	if e.cur.events >= e.opts.ChunkEvents {
		if err := e.startCheckpoint(); err != nil {
			return nil, err
		}
	}
	return results, nil
}

// batchBytes returns the encoded events of b, and for decoded events that
// cannot be encoded, why: Apply rejects those.
func batchBytes(b *Batch) ([][]byte, []error) {
	if b.EventBytes != nil {
		return b.EventBytes, nil
	}
	out := make([][]byte, len(b.Events))
	errs := make([]error, len(b.Events))
	var scratch eventwire.Event
	for i, ev := range b.Events {
		if ev == nil {
			errs[i] = fmt.Errorf("%w: event is empty", ErrInvalidEvent)
			continue
		}
		out[i], errs[i] = eventwire.Marshal(ev, &scratch)
	}
	return out, errs
}

// apply runs batches under writeMu and the current chunk's lock.
func (e *Engine) apply(bs []*Batch) ([][]Result, error) {
	a := &e.applier
	c := e.cur
	c.mu.Lock()
	defer c.mu.Unlock()
	a.reset(len(c.recs))
	out := make([][]Result, len(bs))
	for bi, b := range bs {
		raw, encErrs := batchBytes(b)
		a.index, a.batchRec = b.Index, len(c.recs)
		results := make([]Result, len(raw))
		out[bi] = results
		for i := range raw {
			if encErrs != nil && encErrs[i] != nil {
				results[i].Err = encErrs[i]
				continue
			}
			r, err := a.appendEvent(c, raw[i], b.Time.UnixNano(), out, bi, i)
			if err != nil {
				return nil, err
			}
			results[i] = r
		}
		a.endBatch(c, out, bi)
	}
	if err := a.finish(); err != nil {
		return nil, err
	}
	return out, nil
}

// applier is the scratch state of one apply; the engine keeps one and
// reuses its buffers, so that the steady state of an append allocates
// little beyond its receipt.
type applier struct {
	e      *Engine
	index  uint64 // of the batch being applied
	ev     eventwire.Event
	term   []byte // the posting term being built
	target []byte // a target term
	// Text indexing (text.go): the tenant whose text attributes textKeys
	// are, as of settings version textVersion, and scratch space.
	textTenant  string
	textVersion uint64
	textKeys    []string
	sources     [][]byte
	word        []byte
	// dirty lists the partitions and tenants the batches touched, in
	// first-touch order, so that writing them is deterministic.
	dirty   []*openPartition
	tenants []*tenantState
	// The chunk's dedup records from groupRec on were added by this apply,
	// those from batchRec on by the batch being applied; added[k] says
	// where the event of record groupRec+k stands.
	groupRec, batchRec int
	added              []addedRecord
}

// addedRecord is one event an apply appended.
type addedRecord struct {
	part          *openPartition
	batch, result int
}

func (a *applier) reset(groupRec int) {
	a.dirty, a.tenants = a.dirty[:0], a.tenants[:0]
	a.groupRec, a.added = groupRec, a.added[:0]
}

// appendEvent appends one event, result i of batch bi. A returned error is
// a storage failure; a rejected event is reported in the Result.
func (a *applier) appendEvent(c *chunk, raw []byte, t int64, out [][]Result, bi, i int) (Result, error) {
	eventBytes, err := eventwire.Canonicalize(raw, &a.ev)
	if err != nil {
		return Result{Err: err}, nil
	}
	ev := &a.ev
	if err := eventwire.Validate(ev); err != nil {
		return Result{Err: err}, nil
	}
	id := eventIdentity(ev.TenantID, ev.EventID)
	digest := xxhash.Sum64(eventBytes)
	if r, hit, err := a.lookupDuplicate(c, id, digest, out); hit || err != nil {
		if errors.Is(r.Err, ErrEventIDConflict) {
			// A retry sent in clear by a node behind the tenant's sealing
			// setting differs from the sealed original: it is to be sealed
			// and retried, not a conflict.
			if unsealed := a.e.checkUnsealed(ev); errors.Is(unsealed, ErrUnsealed) {
				return Result{Err: unsealed}, nil
			} else if unsealed != nil {
				return Result{}, unsealed
			}
		}
		return r, err
	}
	if err := a.e.checkSealing(ev); err != nil {
		if errors.Is(err, ErrStaleDataKey) || errors.Is(err, ErrUnsealed) {
			return Result{Err: err}, nil
		}
		return Result{}, err
	}
	ts := a.e.tenant(string(ev.TenantID))
	seq := max(t, ts.head.LastTime)
	op, err := a.e.partitionFor(ts, MonthOf(time.Unix(0, seq)))
	if err != nil {
		return Result{}, err
	}
	leaf := op.app.Size() // the batch's leaves are appended to app as they come
	var link *trailv1.PartitionLink
	if leaf == 0 {
		link = op.link
	}
	// Encoded straight into the batch's bytes for the entries file.
	start := len(op.entries)
	op.entries = appendEntry(op.entries, eventBytes, seq, op.month, leaf, ts.head.LastLeaf, link)
	entry := op.entries[start:]
	if len(entry) > a.e.opts.MaxEntryBytes {
		op.entries = op.entries[:start]
		return Result{Err: fmt.Errorf("%w: %d bytes encoded, limit %d", ErrEntryTooLarge, len(entry), a.e.opts.MaxEntryBytes)}, nil
	}
	leafHash := merkle.LeafHash(entry)
	op.appendLeaf(leafHash)
	if leaf == 0 {
		op.cat.FirstTime = seq
	}
	op.cat.LastTime = seq
	a.addPostings(c, ev, op, leaf)
	c.noteEvent(op.p, leaf, seq)
	c.addDedup(id, dedupRecord{Month: op.p.Month, Leaf: leaf, SeqTime: seq, Digest: digest})
	a.e.filter.add(id.bloomHash())
	ts.head = headRecord{Month: op.p.Month, LastLeaf: leafHash, LastTime: seq}
	ts.started = true
	a.touch(ts, op)
	a.added = append(a.added, addedRecord{part: op, batch: bi, result: i})
	return Result{Receipt: Receipt{
		Tenant: ts.id, EventID: string(ev.EventID), Partition: op.p.Month,
		LeafIndex: leaf, LeafHash: leafHash, SequencerTime: time.Unix(0, seq).UTC(), Index: a.index,
	}}, nil
}

// lookupDuplicate finds an earlier append of the same identity: in this
// apply, in a chunk still in memory, or in Pebble. The bloom filter answers
// for nearly every new event without any of those lookups.
func (a *applier) lookupDuplicate(c *chunk, id identity, digest uint64, out [][]Result) (Result, bool, error) {
	if !a.e.filter.mayContain(id.bloomHash()) {
		return Result{}, false, nil
	}
	rec, found, pending, err := a.e.findDedupLocked(c, id)
	if err != nil || !found {
		return Result{}, false, err
	}
	if rec.Digest != digest {
		return Result{Err: fmt.Errorf("%w: tenant %q event_id %q", ErrEventIDConflict, a.ev.TenantID, a.ev.EventID)}, true, nil
	}
	switch {
	case pending >= a.batchRec:
		// Appended earlier in this batch: endBatch copies its receipt,
		// whose tree size is known only then.
		return Result{Err: errPendingDuplicate(pending - a.groupRec)}, true, nil
	case pending >= a.groupRec:
		// Appended by an earlier batch of this apply: its receipt is
		// complete, but its partition not yet readable.
		ad := a.added[pending-a.groupRec]
		r := out[ad.batch][ad.result].Receipt
		r.Duplicate, r.Index = true, 0
		return Result{Receipt: r}, true, nil
	}
	r, err := a.e.receiptFromDedup(context.Background(), string(a.ev.TenantID), string(a.ev.EventID), rec)
	if err != nil {
		return Result{}, true, err
	}
	return Result{Receipt: r}, true, nil
}

// errPendingDuplicate marks a Result that duplicates the event of added
// record i, appended earlier in the same batch; endBatch replaces it with
// that event's receipt.
type errPendingDuplicate int

func (errPendingDuplicate) Error() string { return "duplicate within batch" }

func (a *applier) touch(ts *tenantState, op *openPartition) {
	if !op.dirty {
		op.dirty = true
		a.dirty = append(a.dirty, op)
	}
	if !ts.inBatch {
		ts.inBatch = true
		a.tenants = append(a.tenants, ts)
	}
	ts.unsaved = true
}

// endBatch fills the tree size of the batch's receipts and dedup records
// (the partition's size after the batch, whatever else is applied with
// it) and resolves its duplicates of its own events.
func (a *applier) endBatch(c *chunk, out [][]Result, bi int) {
	for k := a.batchRec - a.groupRec; k < len(a.added); k++ {
		ad := a.added[k]
		size := ad.part.app.Size()
		c.recs[a.groupRec+k].rec.TreeSize = size
		out[ad.batch][ad.result].Receipt.TreeSize = size
	}
	results := out[bi]
	for i := range results {
		var pd errPendingDuplicate
		if errors.As(results[i].Err, &pd) {
			ad := a.added[int(pd)]
			results[i] = Result{Receipt: out[ad.batch][ad.result].Receipt}
			results[i].Receipt.Duplicate = true
		}
	}
}

// finish writes the touched partitions and publishes them and the
// tenants' heads.
func (a *applier) finish() error {
	for _, op := range a.dirty {
		if err := a.e.writePartition(op); err != nil {
			return err
		}
	}
	for _, ts := range a.tenants {
		ts.inBatch = false
		ts.publish()
	}
	return nil
}

// Field numbers of Entry (proto/trail/v1/event.proto), Timestamp and
// PartitionLink, for appendEntry.
const (
	entryEvent         = 1
	entrySequencerTime = 2
	entryPartition     = 3
	entryLeafIndex     = 4
	entryPrevLeafHash  = 5
	entryPrevPartition = 6
	tsSeconds          = 1
	tsNanos            = 2
	linkPartition      = 1
	linkSize           = 2
	linkRoot           = 3
)

// appendEntry appends the deterministic encoding of the Entry sequencing
// event (already canonical) at sequencer time seq (Unix ns) as leaf of
// partition month, chained to prev. It writes exactly what
// proto.MarshalOptions{Deterministic: true} writes for that Entry (a test
// holds it to that) without building the message: every replica encodes
// every entry, and reflection-based marshalling cost more than the rest of
// an append.
func appendEntry(b, event []byte, seq int64, month string, leaf uint64, prev merkle.Hash, link *trailv1.PartitionLink) []byte {
	b = protowire.AppendTag(b, entryEvent, protowire.BytesType)
	b = protowire.AppendBytes(b, event)
	secs, nanos := seq/1e9, seq%1e9
	if nanos < 0 {
		secs, nanos = secs-1, nanos+1e9
	}
	tsLen := 0
	if secs != 0 {
		tsLen += protowire.SizeTag(tsSeconds) + protowire.SizeVarint(uint64(secs))
	}
	if nanos != 0 {
		tsLen += protowire.SizeTag(tsNanos) + protowire.SizeVarint(uint64(nanos))
	}
	b = protowire.AppendTag(b, entrySequencerTime, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(tsLen))
	if secs != 0 {
		b = protowire.AppendTag(b, tsSeconds, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(secs))
	}
	if nanos != 0 {
		b = protowire.AppendTag(b, tsNanos, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(nanos))
	}
	b = protowire.AppendTag(b, entryPartition, protowire.BytesType)
	b = protowire.AppendString(b, month)
	if leaf != 0 {
		b = protowire.AppendTag(b, entryLeafIndex, protowire.VarintType)
		b = protowire.AppendVarint(b, leaf)
	}
	b = protowire.AppendTag(b, entryPrevLeafHash, protowire.BytesType)
	b = protowire.AppendBytes(b, prev[:])
	if link != nil {
		n := protowire.SizeTag(linkPartition) + protowire.SizeBytes(len(link.Partition))
		if link.Size != 0 {
			n += protowire.SizeTag(linkSize) + protowire.SizeVarint(link.Size)
		}
		if len(link.Root) != 0 {
			n += protowire.SizeTag(linkRoot) + protowire.SizeBytes(len(link.Root))
		}
		b = protowire.AppendTag(b, entryPrevPartition, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(n))
		b = protowire.AppendTag(b, linkPartition, protowire.BytesType)
		b = protowire.AppendString(b, link.Partition)
		if link.Size != 0 {
			b = protowire.AppendTag(b, linkSize, protowire.VarintType)
			b = protowire.AppendVarint(b, link.Size)
		}
		if len(link.Root) != 0 {
			b = protowire.AppendTag(b, linkRoot, protowire.BytesType)
			b = protowire.AppendBytes(b, link.Root)
		}
	}
	return b
}
