package engine

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/cockroachdb/pebble/v2"
	"google.golang.org/protobuf/proto"

	"github.com/trailaudit/trail/engine/segment"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// prefixPendingPrune marks a sealed partition whose segment still has to be
// rewritten without pruned payloads: 'q' tenant 0x00 yyyy mm -> leaves.
const prefixPendingPrune = 'q'

func pendingPruneKey(p Partition) []byte {
	return p.Month.appendKey(tenantKey(prefixPendingPrune, p.Tenant))
}

// Prune removes the payloads of the given leaves of p (DESIGN.md invariant
// 9): entry bytes and their index keys go; leaf hashes, tiles and dedup
// records stay, so every proof keeps verifying and reading a pruned leaf
// reports it pruned with its leaf hash. Leaves already pruned are skipped.
// It returns how many payloads it removed.
//
// For a sealed partition the segment file is rewritten. The Pebble side
// (index keys, catalog, applied index, and a pending-prune record) commits
// first and durably; the rewrite follows, and Open finishes a rewrite a
// crash interrupted, so a prune is never half done.
func (e *Engine) Prune(ctx context.Context, index uint64, p Partition, leaves []uint64) (int, error) {
	if err := e.checkOpen(); err != nil {
		return 0, err
	}
	e.writeMu.Lock()
	defer e.writeMu.Unlock()
	if index <= e.applied.Load() {
		return 0, ErrAlreadyApplied
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
	wb := e.db.NewIndexedBatch()
	defer wb.Close()
	var removed []uint64
	for _, leaf := range leaves {
		data, pruned, err := v.entryBytes(leaf)
		if err != nil {
			return 0, fmt.Errorf("leaf %d: %w", leaf, err)
		}
		if pruned {
			continue
		}
		en := new(trailv1.Entry)
		if err := proto.Unmarshal(data, en); err != nil {
			return 0, fmt.Errorf("leaf %d: decode: %w: %v", leaf, ErrCorrupt, err)
		}
		if err := removePostings(wb, en.GetEvent(), p.Month, leaf); err != nil {
			return 0, err
		}
		if !v.cat.Sealed {
			if err := wb.Delete(entryKey(p, leaf), nil); err != nil {
				return 0, err
			}
			if err := wb.Set(pruneKey(p, leaf), encodeUint64(index), nil); err != nil {
				return 0, err
			}
		}
		removed = append(removed, leaf)
	}
	cat := v.cat
	cat.Pruned += uint64(len(removed))
	if err := e.setCatalog(wb, p, cat); err != nil {
		return 0, err
	}
	if cat.Sealed && len(removed) > 0 {
		if err := wb.Set(pendingPruneKey(p), encodeLeaves(removed), nil); err != nil {
			return 0, err
		}
		if err := wb.Set(appliedKey, encodeUint64(index), nil); err != nil {
			return 0, err
		}
		if err := wb.Commit(pebble.Sync); err != nil {
			e.dropState()
			return 0, err
		}
		e.applied.Store(index)
		return len(removed), e.rewriteSegment(ctx, p, cat, removed)
	}
	if err := e.commit(wb, index); err != nil {
		return 0, err
	}
	return len(removed), nil
}

// setCatalog writes cat for p, keeping the writer's cached copy in step.
func (e *Engine) setCatalog(wb *pebble.Batch, p Partition, cat catalogRecord) error {
	if ts := e.tenants[p.Tenant]; ts != nil && ts.open != nil && ts.open.p == p {
		ts.open.cat.Pruned = cat.Pruned
		cat = ts.open.cat
	}
	return wb.Set(catalogKey(p), cat.marshal(), nil)
}

// rewriteSegment replaces p's segment with one where leaves are pruned,
// verifies it, and clears the pending-prune record.
func (e *Engine) rewriteSegment(ctx context.Context, p Partition, cat catalogRecord, leaves []uint64) error {
	path := segmentPath(e.opts.Dir, p)
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

// decodePartitionKey parses prefix tenant 0x00 yyyy mm.
func decodePartitionKey(k []byte) (Partition, error) {
	if len(k) < 5 || k[len(k)-4] != 0 {
		return Partition{}, fmt.Errorf("partition key %q: %w", k, errBadRecord)
	}
	m, err := decodeMonthKey(k[len(k)-3:])
	if err != nil {
		return Partition{}, err
	}
	return Partition{Tenant: string(k[1 : len(k)-4]), Month: m}, nil
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
