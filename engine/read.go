package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/trailaudit/trail/engine/segment"
	"github.com/trailaudit/trail/merkle"
)

// Errors of reads.
var (
	ErrNotFound = errors.New("not found")
	// ErrCorrupt means stored data failed an integrity check; it is never
	// served as valid.
	ErrCorrupt = errors.New("stored data failed integrity check")
	// ErrBadSize is returned for a tree size beyond the partition's size.
	ErrBadSize = errors.New("tree size out of range")
)

// PartitionInfo describes a partition.
type PartitionInfo struct {
	Partition
	Size      uint64
	Root      merkle.Hash
	Sealed    bool
	Dropped   bool // every payload pruned and the segment file deleted: size and root remain, proofs do not
	Pruned    uint64
	FirstTime time.Time
	LastTime  time.Time
}

// StoredEntry is one leaf of a partition as stored: Data holds exactly the
// bytes that were hashed, or nil when retention pruned the payload.
type StoredEntry struct {
	Partition Partition
	LeafIndex uint64
	LeafHash  merkle.Hash
	Data      []byte
	Pruned    bool
}

// view is a consistent read view of one partition: its files and the size
// written when the view was taken while it is open, its segment file once
// sealed. Open partitions' files only grow, so a view never sees a byte
// change below its size.
type view struct {
	e     *Engine
	p     Partition
	cat   catalogRecord
	files *partFiles
	seg   *segmentHandle
	// tiles keeps the segment tiles this view has read: an entry read and
	// the inclusion proof that follows it share the leaf's tile.
	tiles map[merkle.TileID][]byte
}

func (e *Engine) view(p Partition) (*view, error) {
	if err := e.checkOpen(); err != nil {
		return nil, err
	}
	e.stateMu.RLock()
	if op := e.open[p]; op != nil {
		// Acquired under the lock: a seal removes the partition from the
		// map before it releases the engine's reference to the files.
		v := &view{e: e, p: p, cat: *op.pub.Load(), files: op.files.acquire()}
		e.stateMu.RUnlock()
		return v, nil
	}
	e.stateMu.RUnlock()
	cat, found, err := e.readCatalog(e.db, p)
	if err != nil || !found {
		if err == nil {
			err = fmt.Errorf("partition %s: %w", p, ErrNotFound)
		}
		return nil, fmt.Errorf("engine: %w", err)
	}
	v := &view{e: e, p: p, cat: cat}
	if !cat.Sealed {
		return nil, fmt.Errorf("engine: partition %s: catalog says open but no files are open: %w", p, ErrCorrupt)
	}
	if cat.Dropped {
		return v, nil // no file to open: tileBytes and entryBytes answer
	}
	v.seg, err = e.segments.acquire(p)
	if err != nil {
		return e.droppedMeanwhile(p, err)
	}
	return v, nil
}

func (v *view) release() {
	if v.files != nil {
		v.files.release()
	}
	if v.seg != nil {
		v.seg.release()
	}
}

func (v *view) info() PartitionInfo {
	return PartitionInfo{
		Partition: v.p, Size: v.cat.Size, Root: v.cat.Root, Sealed: v.cat.Sealed, Dropped: v.cat.Dropped, Pruned: v.cat.Pruned,
		FirstTime: time.Unix(0, v.cat.FirstTime).UTC(), LastTime: time.Unix(0, v.cat.LastTime).UTC(),
	}
}

// tileBytes reads a tile of a sealed partition's segment.
func (v *view) tileBytes(id merkle.TileID) ([]byte, error) {
	if v.cat.Dropped {
		return nil, fmt.Errorf("tile %d/%d: %w", id.Level, id.Index, ErrDropped)
	}
	b, err := v.seg.r.Tile(id)
	if errors.Is(err, segment.ErrNotFound) {
		return nil, fmt.Errorf("tile %d/%d: %w", id.Level, id.Index, ErrNotFound)
	}
	return b, err
}

// ReadNodes implements merkle.NodeReader over the partition's stored
// nodes: read one by one from an open partition's hashes file, or one
// read per distinct tile of a segment, each node taken straight from the
// encoded tile without decoding the rest.
func (v *view) ReadNodes(ctx context.Context, ids []merkle.NodeID) ([]merkle.Hash, error) {
	out := make([]merkle.Hash, len(ids))
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for i, id := range ids {
		h, err := v.node(id)
		if err != nil {
			return nil, fmt.Errorf("partition %s: %w", v.p, err)
		}
		out[i] = h
	}
	return out, nil
}

// node reads one stored node.
func (v *view) node(id merkle.NodeID) (merkle.Hash, error) {
	if id.Level >= 64 || (id.Index+1)<<id.Level > v.cat.Size || (id.Index+1)<<id.Level < id.Index+1 {
		return merkle.Hash{}, fmt.Errorf("node %s beyond size %d: %w", id, v.cat.Size, ErrNotFound)
	}
	if v.files != nil {
		return v.files.node(id)
	}
	tid, row, pos := merkle.TileForNode(id)
	b, ok := v.tiles[tid]
	if !ok {
		var err error
		if b, err = v.tileBytes(tid); err != nil {
			return merkle.Hash{}, fmt.Errorf("node %d/%d: %w", id.Level, id.Index, err)
		}
		if v.tiles == nil {
			v.tiles = make(map[merkle.TileID][]byte, 4)
		}
		v.tiles[tid] = b
	}
	h, ok, err := merkle.DecodeTileNode(b, row, pos)
	if err != nil {
		return merkle.Hash{}, fmt.Errorf("tile %d/%d: %w: %v", tid.Level, tid.Index, ErrCorrupt, err)
	}
	if !ok {
		return merkle.Hash{}, fmt.Errorf("node %d/%d missing from tile: %w", id.Level, id.Index, ErrCorrupt)
	}
	return h, nil
}

// entry reads leaf and checks its bytes against the leaf hash in the tree,
// so a corrupted value is reported rather than served.
func (v *view) entry(ctx context.Context, leaf uint64) (StoredEntry, error) {
	if leaf >= v.cat.Size {
		return StoredEntry{}, fmt.Errorf("engine: partition %s leaf %d (size %d): %w", v.p, leaf, v.cat.Size, ErrNotFound)
	}
	hs, err := v.ReadNodes(ctx, []merkle.NodeID{{Level: 0, Index: leaf}})
	if err != nil {
		return StoredEntry{}, fmt.Errorf("engine: %w", err)
	}
	se := StoredEntry{Partition: v.p, LeafIndex: leaf, LeafHash: hs[0]}
	data, pruned, err := v.entryBytes(leaf)
	if err != nil {
		return StoredEntry{}, fmt.Errorf("engine: partition %s leaf %d: %w", v.p, leaf, err)
	}
	if pruned {
		se.Pruned = true
		return se, nil
	}
	if merkle.LeafHash(data) != se.LeafHash {
		return StoredEntry{}, fmt.Errorf("engine: partition %s leaf %d: entry bytes do not match the leaf hash: %w", v.p, leaf, ErrCorrupt)
	}
	se.Data = data
	return se, nil
}

func (v *view) entryBytes(leaf uint64) (data []byte, pruned bool, err error) {
	if v.cat.Dropped {
		return nil, true, nil // a partition is dropped only once every payload is pruned
	}
	if v.seg != nil {
		data, err = v.seg.r.Entry(leaf)
		if errors.Is(err, segment.ErrPruned) {
			return nil, true, nil
		}
		return data, false, err
	}
	// An open partition keeps a pruned payload's bytes until it is sealed;
	// a prune record hides them. Few open partitions have any.
	if v.cat.Pruned > 0 {
		if pruned, err := v.e.pruneMarked(v.p, leaf); err != nil || pruned {
			return nil, pruned, err
		}
	}
	data, err = v.files.entry(leaf)
	return data, false, err
}

// pruneMarked reports whether retention removed leaf of open partition p.
func (e *Engine) pruneMarked(p Partition, leaf uint64) (bool, error) {
	_, closer, err := e.db.Get(pruneKey(p, leaf))
	if errors.Is(err, pebble.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	closer.Close()
	return true, nil
}

// PartitionInfo returns the current state of p.
func (e *Engine) PartitionInfo(ctx context.Context, p Partition) (PartitionInfo, error) {
	v, err := e.view(p)
	if err != nil {
		return PartitionInfo{}, err
	}
	defer v.release()
	return v.info(), nil
}

// Partitions lists a tenant's partitions, oldest first.
func (e *Engine) Partitions(ctx context.Context, tenant string) ([]PartitionInfo, error) {
	if err := e.checkOpen(); err != nil {
		return nil, err
	}
	prefix := tenantKey(prefixCatalog, tenant)
	it, err := e.db.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return nil, fmt.Errorf("engine: list partitions of %s: %w", tenant, err)
	}
	defer it.Close()
	byMonth := make(map[Month]catalogRecord)
	for it.First(); it.Valid(); it.Next() {
		m, err := decodeMonthKey(it.Key()[len(prefix):])
		if err != nil {
			return nil, fmt.Errorf("engine: catalog key of %s: %w", tenant, err)
		}
		cat, err := unmarshalCatalog(it.Value())
		if err != nil {
			return nil, fmt.Errorf("engine: partition %s/%s: %w", tenant, m, err)
		}
		byMonth[m] = cat
	}
	if err := it.Error(); err != nil {
		return nil, err
	}
	// Open partitions are current in memory; Pebble holds their state as
	// of the last checkpoint, or nothing yet.
	e.stateMu.RLock()
	for p, op := range e.open {
		if p.Tenant == tenant {
			byMonth[p.Month] = *op.pub.Load()
		}
	}
	e.stateMu.RUnlock()
	out := make([]PartitionInfo, 0, len(byMonth))
	for m, cat := range byMonth {
		v := view{p: Partition{Tenant: tenant, Month: m}, cat: cat}
		out = append(out, v.info())
	}
	slices.SortFunc(out, func(a, b PartitionInfo) int { return compareMonths(a.Month, b.Month) })
	return out, nil
}

// Entry returns leaf of partition p.
func (e *Engine) Entry(ctx context.Context, p Partition, leaf uint64) (StoredEntry, error) {
	v, err := e.view(p)
	if err != nil {
		return StoredEntry{}, err
	}
	defer v.release()
	return v.entry(ctx, leaf)
}

// EntryByEventID returns the entry of a tenant's event and its receipt.
func (e *Engine) EntryByEventID(ctx context.Context, tenant, eventID string) (StoredEntry, Receipt, error) {
	if err := e.checkOpen(); err != nil {
		return StoredEntry{}, Receipt{}, err
	}
	rec, found, err := e.findDedup(tenant, eventID)
	if err != nil {
		return StoredEntry{}, Receipt{}, err
	}
	if !found {
		return StoredEntry{}, Receipt{}, fmt.Errorf("engine: tenant %q event %q: %w", tenant, eventID, ErrNotFound)
	}
	v, err := e.view(Partition{Tenant: tenant, Month: rec.Month})
	if err != nil {
		return StoredEntry{}, Receipt{}, err
	}
	defer v.release()
	se, err := v.entry(ctx, rec.Leaf)
	if err != nil {
		return StoredEntry{}, Receipt{}, err
	}
	return se, receiptOf(tenant, eventID, rec, se.LeafHash), nil
}

func receiptOf(tenant, eventID string, rec dedupRecord, leafHash merkle.Hash) Receipt {
	return Receipt{
		Tenant: tenant, EventID: eventID, Partition: rec.Month, LeafIndex: rec.Leaf, LeafHash: leafHash,
		TreeSize: rec.TreeSize, SequencerTime: time.Unix(0, rec.SeqTime).UTC(),
	}
}

// findDedup returns the dedup record of a tenant's event: from a chunk
// still in memory, or from Pebble.
func (e *Engine) findDedup(tenant, eventID string) (dedupRecord, bool, error) {
	if err := e.checkOpen(); err != nil {
		return dedupRecord{}, false, err
	}
	id := eventIdentity([]byte(tenant), []byte(eventID))
	e.stateMu.RLock()
	cur, flushing := e.cur, e.flushing
	e.stateMu.RUnlock()
	for _, c := range []*chunk{cur, flushing} {
		if c == nil {
			continue
		}
		if rec, ok := c.lookup(id); ok {
			return rec, true, nil
		}
	}
	return e.readDedup(id)
}

// findDedupLocked is findDedup for the apply goroutine, which holds cur's
// lock: pending is the record's position in cur, or -1.
func (e *Engine) findDedupLocked(cur *chunk, id identity) (rec dedupRecord, found bool, pending int, err error) {
	if i, ok := cur.dedup[id]; ok {
		return cur.recs[i].rec, true, int(i), nil
	}
	if f := e.flushing; f != nil {
		if rec, ok := f.lookup(id); ok {
			return rec, true, -1, nil
		}
	}
	rec, found, err = e.readDedup(id)
	return rec, found, -1, err
}

func (e *Engine) readDedup(id identity) (dedupRecord, bool, error) {
	v, closer, err := e.db.Get(dedupKey(id))
	if errors.Is(err, pebble.ErrNotFound) {
		return dedupRecord{}, false, nil
	}
	if err != nil {
		return dedupRecord{}, false, fmt.Errorf("engine: read dedup record: %w", err)
	}
	defer closer.Close()
	rec, err := unmarshalDedup(v)
	if err != nil {
		return dedupRecord{}, false, fmt.Errorf("engine: dedup record %x: %w: %v", id, ErrCorrupt, err)
	}
	return rec, true, nil
}

// receiptFromDedup rebuilds the original receipt of a duplicate append.
func (e *Engine) receiptFromDedup(ctx context.Context, tenant, eventID string, rec dedupRecord) (Receipt, error) {
	v, err := e.view(Partition{Tenant: tenant, Month: rec.Month})
	if err != nil {
		return Receipt{}, err
	}
	defer v.release()
	if v.cat.Dropped {
		return droppedReceipt(tenant, eventID, rec), nil
	}
	hs, err := v.ReadNodes(ctx, []merkle.NodeID{{Level: 0, Index: rec.Leaf}})
	if err != nil {
		return Receipt{}, fmt.Errorf("engine: %w", err)
	}
	r := receiptOf(tenant, eventID, rec, hs[0])
	r.Duplicate = true
	return r, nil
}

// Checkpoint returns the checkpoint body of p at size (0 means the current
// size). Signing is the caller's: the engine holds no keys.
func (e *Engine) Checkpoint(ctx context.Context, p Partition, size uint64) (merkle.Checkpoint, error) {
	v, err := e.view(p)
	if err != nil {
		return merkle.Checkpoint{}, err
	}
	defer v.release()
	cp := merkle.Checkpoint{Origin: p.Origin(e.opts.LogName), Size: v.cat.Size, Root: v.cat.Root}
	if size == 0 || size == v.cat.Size {
		return cp, nil
	}
	if size > v.cat.Size {
		return merkle.Checkpoint{}, fmt.Errorf("engine: checkpoint of %s at %d: size is %d: %w", p, size, v.cat.Size, ErrBadSize)
	}
	root, err := merkle.RootAt(ctx, size, v)
	if err != nil {
		return merkle.Checkpoint{}, fmt.Errorf("engine: checkpoint of %s at %d: %w", p, size, err)
	}
	cp.Size, cp.Root = size, root
	return cp, nil
}

// InclusionProof proves leaf in p's tree of the given size (0 = current).
func (e *Engine) InclusionProof(ctx context.Context, p Partition, leaf, size uint64) ([]merkle.Hash, uint64, error) {
	v, err := e.view(p)
	if err != nil {
		return nil, 0, err
	}
	defer v.release()
	return v.inclusionProof(ctx, leaf, size)
}

func (v *view) inclusionProof(ctx context.Context, leaf, size uint64) ([]merkle.Hash, uint64, error) {
	if size == 0 {
		size = v.cat.Size
	}
	if size > v.cat.Size || leaf >= size {
		return nil, 0, fmt.Errorf("engine: inclusion proof of %s leaf %d at size %d (size %d): %w", v.p, leaf, size, v.cat.Size, ErrBadSize)
	}
	proof, err := merkle.InclusionProof(ctx, leaf, size, v)
	if err != nil {
		return nil, 0, fmt.Errorf("engine: inclusion proof of %s leaf %d: %w", v.p, leaf, err)
	}
	return proof, size, nil
}

// ProvedEntry is an entry with its inclusion proof in the tree of TreeSize
// leaves.
type ProvedEntry struct {
	StoredEntry
	Proof    []merkle.Hash
	TreeSize uint64
}

// ProveLeaf reads leaf of p and proves it in the tree of the given size
// (0 = current), both from one view: what a proof request answers, for
// about half the reads of Entry followed by InclusionProof.
func (e *Engine) ProveLeaf(ctx context.Context, p Partition, leaf, size uint64) (ProvedEntry, error) {
	v, err := e.view(p)
	if err != nil {
		return ProvedEntry{}, err
	}
	defer v.release()
	return v.prove(ctx, leaf, size)
}

// ProveEvent is ProveLeaf for the leaf of a tenant's event.
func (e *Engine) ProveEvent(ctx context.Context, tenant, eventID string, size uint64) (ProvedEntry, error) {
	if err := e.checkOpen(); err != nil {
		return ProvedEntry{}, err
	}
	rec, found, err := e.findDedup(tenant, eventID)
	if err != nil {
		return ProvedEntry{}, err
	}
	if !found {
		return ProvedEntry{}, fmt.Errorf("engine: tenant %q event %q: %w", tenant, eventID, ErrNotFound)
	}
	return e.ProveLeaf(ctx, Partition{Tenant: tenant, Month: rec.Month}, rec.Leaf, size)
}

func (v *view) prove(ctx context.Context, leaf, size uint64) (ProvedEntry, error) {
	se, err := v.entry(ctx, leaf)
	if err != nil {
		return ProvedEntry{}, err
	}
	proof, size, err := v.inclusionProof(ctx, leaf, size)
	if err != nil {
		return ProvedEntry{}, err
	}
	return ProvedEntry{StoredEntry: se, Proof: proof, TreeSize: size}, nil
}

// ConsistencyProof proves p's tree of size from is a prefix of size to.
func (e *Engine) ConsistencyProof(ctx context.Context, p Partition, from, to uint64) ([]merkle.Hash, error) {
	v, err := e.view(p)
	if err != nil {
		return nil, err
	}
	defer v.release()
	if to == 0 {
		to = v.cat.Size
	}
	if from > to || to > v.cat.Size {
		return nil, fmt.Errorf("engine: consistency proof of %s %d..%d (size %d): %w", p, from, to, v.cat.Size, ErrBadSize)
	}
	proof, err := merkle.ConsistencyProof(ctx, from, to, v)
	if err != nil {
		return nil, fmt.Errorf("engine: consistency proof of %s %d..%d: %w", p, from, to, err)
	}
	return proof, nil
}

// Entries returns up to n consecutive leaves of p starting at from, read
// from one consistent view (for Tail and exports). Fewer are returned at the
// end of the partition.
func (e *Engine) Entries(ctx context.Context, p Partition, from uint64, n int) ([]StoredEntry, error) {
	v, err := e.view(p)
	if err != nil {
		return nil, err
	}
	defer v.release()
	var out []StoredEntry
	for leaf := from; leaf < v.cat.Size && len(out) < n; leaf++ {
		se, err := v.entry(ctx, leaf)
		if err != nil {
			return nil, err
		}
		out = append(out, se)
	}
	return out, nil
}

// LatestPartition returns the partition a tenant's log currently ends in;
// found is false for a tenant with no entries.
func (e *Engine) LatestPartition(ctx context.Context, tenant string) (info PartitionInfo, found bool, err error) {
	if err := e.checkOpen(); err != nil {
		return PartitionInfo{}, false, err
	}
	e.stateMu.RLock()
	ts := e.tenants[tenant]
	e.stateMu.RUnlock()
	if ts == nil {
		return PartitionInfo{}, false, nil
	}
	head := ts.pub.Load()
	if head == nil {
		return PartitionInfo{}, false, nil // no append of the tenant was ever accepted
	}
	info, err = e.PartitionInfo(ctx, Partition{Tenant: tenant, Month: head.Month})
	if err != nil {
		return PartitionInfo{}, false, err
	}
	return info, true, nil
}

// UnsealedBefore lists every partition, of every tenant, that is still open
// although its month is before m: the partitions the leader should seal.
func (e *Engine) UnsealedBefore(ctx context.Context, m Month) ([]Partition, error) {
	if err := e.checkOpen(); err != nil {
		return nil, err
	}
	e.stateMu.RLock()
	var out []Partition
	for p := range e.open {
		if p.Month.Before(m) {
			out = append(out, p)
		}
	}
	e.stateMu.RUnlock()
	slices.SortFunc(out, func(a, b Partition) int {
		if c := strings.Compare(a.Tenant, b.Tenant); c != 0 {
			return c
		}
		return compareMonths(a.Month, b.Month)
	})
	return out, nil
}
