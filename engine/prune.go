package engine

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/sstable"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/trailaudit/trail/engine/eventwire"
	"github.com/trailaudit/trail/engine/segment"
)

// prefixPendingPrune marks a sealed partition whose segment still has to be
// rewritten without pruned payloads: 'q' tenant 0x00 yyyy mm -> leaves.
const prefixPendingPrune = 'q'

func pendingPruneKey(p Partition) []byte {
	return p.Month.appendKey(tenantKey(prefixPendingPrune, p.Tenant))
}

// Prune removes the payloads of the given leaves of p (invariant 9): their
// posting lists lose them and their bytes become unreadable; leaf hashes,
// the tree and dedup records stay, so every proof keeps verifying and
// reading a pruned leaf reports it pruned with its leaf hash. Leaves
// already pruned are skipped. It returns how many payloads it removed.
//
// An open partition's files are append-only: a prune record hides the
// payload at once and the bytes go when the month is sealed (retention
// periods are years, so pruning an open month is rare). A sealed
// partition's segment file is rewritten. The Pebble side (posting lists,
// then catalog, prune or pending-prune records and applied index) commits
// first and durably; the rewrite follows, and Open finishes a rewrite a
// crash interrupted, so a prune is never half done.
func (e *Engine) Prune(ctx context.Context, index uint64, p Partition, leaves []uint64) (int, error) {
	if err := e.checkWritable(); err != nil {
		return 0, err
	}
	e.writeMu.Lock()
	defer e.writeMu.Unlock()
	if index <= e.applied.Load() {
		return 0, ErrAlreadyApplied
	}
	// Everything before the prune is made durable first, so that its
	// commit may record the applied index, and every chunk is in Pebble.
	if err := e.checkpointNow(); err != nil {
		return 0, err
	}
	if err := checkPartitionName(p); err != nil {
		return 0, fmt.Errorf("engine: prune %s: %w", p, err)
	}
	leaves = slices.Compact(slices.Sorted(slices.Values(leaves)))
	n, err := e.prune(ctx, index, p, leaves)
	if err != nil {
		return 0, fmt.Errorf("engine: prune %s: %w", p, err)
	}
	return n, nil
}

func (e *Engine) prune(ctx context.Context, index uint64, p Partition, leaves []uint64) (int, error) {
	v, err := e.view(p)
	if err != nil {
		return 0, err
	}
	defer v.release()
	if len(leaves) > 0 && leaves[len(leaves)-1] >= v.cat.Size {
		return 0, fmt.Errorf("leaf %d beyond size %d: %w", leaves[len(leaves)-1], v.cat.Size, ErrBadSize)
	}
	pr := postingRemoval{e: e, p: p, lists: make(map[string][]uint64)}
	var removed []uint64
	for _, leaf := range leaves {
		data, pruned, err := v.entryBytes(leaf)
		if err != nil {
			return 0, fmt.Errorf("leaf %d: %w", leaf, err)
		}
		if pruned {
			continue
		}
		if err := pr.add(leaf, data); err != nil {
			return 0, fmt.Errorf("leaf %d: %w", leaf, err)
		}
		removed = append(removed, leaf)
	}
	if len(removed) == 0 {
		e.applied.Store(index)
		return 0, nil
	}
	if err := pr.commit(ctx); err != nil {
		return 0, err
	}
	if v.cat.Sealed {
		return len(removed), e.pruneSealed(ctx, index, p, v.cat, removed)
	}
	return len(removed), e.pruneOpen(index, p, removed)
}

// pruneOpen records the prune of leaves of an open partition.
func (e *Engine) pruneOpen(index uint64, p Partition, removed []uint64) error {
	op := e.openPartitionOf(p)
	wb := e.db.NewBatch()
	defer wb.Close()
	for _, leaf := range removed {
		if err := wb.Set(pruneKey(p, leaf), encodeUint64(index), nil); err != nil {
			return err
		}
	}
	op.cat.Pruned += uint64(len(removed))
	cat := op.catalogRecord()
	if err := wb.Set(catalogKey(p), cat.marshal(), nil); err != nil {
		return err
	}
	if err := wb.Set(appliedKey, encodeUint64(index), nil); err != nil {
		return err
	}
	if err := wb.Commit(pebble.Sync); err != nil {
		return e.fail(err)
	}
	op.publish()
	e.applied.Store(index)
	e.durable.Store(index)
	return nil
}

// pruneSealed records the prune of leaves of a sealed partition and
// rewrites its segment.
func (e *Engine) pruneSealed(ctx context.Context, index uint64, p Partition, cat catalogRecord, removed []uint64) error {
	wb := e.db.NewBatch()
	defer wb.Close()
	cat.Pruned += uint64(len(removed))
	if err := wb.Set(catalogKey(p), cat.marshal(), nil); err != nil {
		return err
	}
	if err := wb.Set(pendingPruneKey(p), encodeLeaves(removed), nil); err != nil {
		return err
	}
	if err := wb.Set(appliedKey, encodeUint64(index), nil); err != nil {
		return err
	}
	if err := wb.Commit(pebble.Sync); err != nil {
		return e.fail(err)
	}
	e.applied.Store(index)
	e.durable.Store(index)
	return e.rewriteSegment(ctx, p, cat, removed)
}

// postingRemoval gathers the posting lists that lose leaves of p.
type postingRemoval struct {
	e     *Engine
	p     Partition
	lists map[string][]uint64 // posting key -> leaves to remove
	ev    eventwire.Event
}

// add finds the lists leaf is in: its terms, in the chunk that holds it.
func (pr *postingRemoval) add(leaf uint64, entry []byte) error {
	evBytes, err := entryEventBytes(entry)
	if err != nil {
		return err
	}
	if _, err := eventwire.Canonicalize(evBytes, &pr.ev); err != nil {
		return fmt.Errorf("stored event: %w: %v", ErrCorrupt, err)
	}
	seq, err := pr.e.chunkOf(pr.p, leaf)
	if err != nil {
		return err
	}
	for _, t := range eventTerms(&pr.ev) {
		k := string(postingKey(seq, pr.p.Tenant, t.kind, t.value, pr.p.Month))
		pr.lists[k] = append(pr.lists[k], leaf)
	}
	return nil
}

// commit rewrites the lists without the leaves, as an ingested sstable:
// posting keys are never written through the memtable (keys.go).
func (pr *postingRemoval) commit(ctx context.Context) error {
	keys := slices.Sorted(maps.Keys(pr.lists))
	type change struct {
		key, value []byte // value nil: delete
	}
	var changes []change
	for _, k := range keys {
		v, closer, err := pr.e.db.Get([]byte(k))
		if errors.Is(err, pebble.ErrNotFound) {
			continue // nothing indexed the leaf
		}
		if err != nil {
			return err
		}
		leaves, err := decodeLeaves(v)
		closer.Close()
		if err != nil {
			return fmt.Errorf("posting list %x: %w", k, ErrCorrupt)
		}
		drop := pr.lists[k]
		kept := slices.DeleteFunc(leaves, func(l uint64) bool { return slices.Contains(drop, l) })
		c := change{key: []byte(k)}
		if len(kept) > 0 {
			c.value = encodeLeaves(kept)
		}
		changes = append(changes, c)
	}
	if len(changes) == 0 {
		return nil
	}
	return pr.e.ingestFile("postings.sst", postingsLevel, func(w *sstable.Writer) error {
		for _, c := range changes {
			var err error
			if c.value == nil {
				err = w.Delete(c.key)
			} else {
				err = w.Set(c.key, c.value)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// chunkOf returns the chunk holding the posting lists of leaf of p.
func (e *Engine) chunkOf(p Partition, leaf uint64) (uint64, error) {
	lo := leafChunkKey(p, 0)
	it, err := e.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: leafChunkKey(p, leaf+1)})
	if err != nil {
		return 0, err
	}
	defer it.Close()
	if !it.Last() {
		if err := it.Error(); err != nil {
			return 0, err
		}
		return 0, fmt.Errorf("no chunk records leaf %d of %s: %w", leaf, p, ErrCorrupt)
	}
	seq, err := decodeUint64(it.Value())
	if err != nil {
		return 0, fmt.Errorf("chunk record of %s: %w", p, ErrCorrupt)
	}
	return seq, nil
}

// entryEventBytes returns field 1 (the event) of an encoded Entry.
func entryEventBytes(entry []byte) ([]byte, error) {
	for b := entry; len(b) > 0; {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, fmt.Errorf("decode entry: %w", ErrCorrupt)
		}
		b = b[n:]
		if num == entryEvent && typ == protowire.BytesType {
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return nil, fmt.Errorf("decode entry: %w", ErrCorrupt)
			}
			return v, nil
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return nil, fmt.Errorf("decode entry: %w", ErrCorrupt)
		}
		b = b[n:]
	}
	return nil, fmt.Errorf("decode entry: no event: %w", ErrCorrupt)
}

// rewriteSegment replaces p's segment with one where leaves are pruned,
// verifies it, and clears the pending-prune record.
func (e *Engine) rewriteSegment(ctx context.Context, p Partition, cat catalogRecord, leaves []uint64) error {
	path, err := segmentPath(e.opts.Dir, p)
	if err != nil {
		return err
	}
	old, err := segment.Open(path, segment.ReaderOptions{})
	if err != nil {
		return fmt.Errorf("rewrite: %w", err)
	}
	defer old.Close()
	w, err := segment.Create(path, old.Header(), segment.WriterOptions{})
	if err != nil {
		return fmt.Errorf("rewrite: %w", err)
	}
	if err := copySegment(old, w, leaves); err != nil {
		w.Abort()
		return fmt.Errorf("rewrite: %w", err)
	}
	if err := w.Commit(); err != nil {
		return fmt.Errorf("rewrite: %w", err)
	}
	e.segments.forget(p)
	if err := verifySegmentFile(ctx, path, cat); err != nil {
		return err
	}
	if err := e.db.Delete(pendingPruneKey(p), pebble.Sync); err != nil {
		return fmt.Errorf("clear pending prune: %w", err)
	}
	return nil
}

func copySegment(old *segment.Reader, w *segment.Writer, prune []uint64) error {
	err := old.Scan(0, func(leaf uint64, data []byte) error {
		if _, found := slices.BinarySearch(prune, leaf); found {
			data = nil
		}
		return w.AddEntry(leaf, data)
	})
	if err != nil {
		return err
	}
	for _, id := range old.Tiles() {
		b, err := old.Tile(id)
		if err != nil {
			return err
		}
		if err := w.AddTile(id, b); err != nil {
			return err
		}
	}
	return nil
}

// finishPendingPrunes completes segment rewrites a crash interrupted.
func (e *Engine) finishPendingPrunes(ctx context.Context) error {
	lo := []byte{prefixPendingPrune}
	it, err := e.db.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: lo, UpperBound: prefixEnd(lo)})
	if err != nil {
		return err
	}
	type pending struct {
		p      Partition
		leaves []uint64
	}
	var todo []pending
	for it.First(); it.Valid(); it.Next() {
		p, err := decodePartitionKey(it.Key())
		if err != nil {
			it.Close()
			return fmt.Errorf("engine: pending prune: %w", err)
		}
		leaves, err := decodeLeaves(it.Value())
		if err != nil {
			it.Close()
			return fmt.Errorf("engine: pending prune of %s: %w", p, err)
		}
		todo = append(todo, pending{p, leaves})
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return fmt.Errorf("engine: pending prunes: %w", err)
	}
	for _, t := range todo {
		cat, found, err := e.readCatalog(e.db, t.p)
		if err != nil || !found {
			return fmt.Errorf("engine: pending prune of %s: catalog found=%v: %w", t.p, found, err)
		}
		if err := e.rewriteSegment(ctx, t.p, cat, t.leaves); err != nil {
			return fmt.Errorf("engine: finish prune of %s: %w", t.p, err)
		}
		e.opts.Logger.Info("finished interrupted prune", "partition", t.p.String(), "leaves", len(t.leaves))
	}
	return nil
}

// encodeLeaves packs sorted leaf indexes as uvarint deltas.
func encodeLeaves(leaves []uint64) []byte {
	b := make([]byte, 0, len(leaves)*2)
	var prev uint64
	for _, l := range leaves {
		b = binary.AppendUvarint(b, l-prev)
		prev = l
	}
	return b
}

func decodeLeaves(b []byte) ([]uint64, error) {
	var out []uint64
	var prev uint64
	for len(b) > 0 {
		d, n := binary.Uvarint(b)
		if n <= 0 {
			return nil, errBadRecord
		}
		prev += d
		out = append(out, prev)
		b = b[n:]
	}
	return out, nil
}
