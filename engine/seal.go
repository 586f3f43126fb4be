package engine

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/trailaudit/trail/engine/segment"
	"github.com/trailaudit/trail/merkle"
)

// Errors of Seal.
var (
	ErrSealed        = errors.New("partition already sealed")
	ErrMonthNotEnded = errors.New("partition's month has not ended")
)

// Seal turns partition p into an immutable segment file. at is the
// sequencer time of the seal command; p's month must have ended before it.
// The segment is written, fsynced and verified against the partition's root
// before p's Pebble range is dropped; from then on reads are served from
// the segment. A refused seal (ErrNotFound, ErrSealed, ErrMonthNotEnded)
// still advances the applied index, so that replicas stay identical.
func (e *Engine) Seal(ctx context.Context, index uint64, p Partition, at time.Time) error {
	return e.command(index, "seal", p, func() (error, error) { return e.seal(ctx, index, p, at) })
}

// command runs op, the Raft command at index on p, under the write lock.
// A refusal (op's first result) still advances the applied index, so that
// replicas stay identical, and is returned wrapped like an error.
func (e *Engine) command(index uint64, name string, p Partition, op func() (refusal, err error)) error {
	if err := e.checkOpen(); err != nil {
		return err
	}
	e.writeMu.Lock()
	defer e.writeMu.Unlock()
	if index <= e.applied.Load() {
		return ErrAlreadyApplied
	}
	refusal, err := op()
	if err != nil {
		return fmt.Errorf("engine: %s %s: %w", name, p, err)
	}
	if refusal != nil {
		wb := e.db.NewBatch()
		defer wb.Close()
		if err := e.commit(wb, index); err != nil {
			return fmt.Errorf("engine: %s %s: %w", name, p, err)
		}
		return fmt.Errorf("engine: %s %s: %w", name, p, refusal)
	}
	return nil
}

func (e *Engine) seal(ctx context.Context, index uint64, p Partition, at time.Time) (refusal, err error) {
	cat, found, err := e.readCatalog(e.db, p)
	switch {
	case err != nil:
		return nil, err
	case !found:
		return ErrNotFound, nil
	case cat.Sealed:
		return ErrSealed, nil
	case !p.Month.Before(MonthOf(at)):
		return fmt.Errorf("%w (seal time %s)", ErrMonthNotEnded, at.UTC().Format(time.RFC3339)), nil
	}
	path := segmentPath(e.opts.Dir, p)
	if err := e.writeSegment(ctx, p, cat, path); err != nil {
		return nil, err
	}
	ts, err := e.tenant(p.Tenant)
	if err != nil {
		return nil, err
	}
	wb := e.db.NewBatch()
	defer wb.Close()
	cat.Sealed, cat.RightEdge = true, nil
	if err := wb.Set(catalogKey(p), cat.marshal(), nil); err != nil {
		return nil, err
	}
	if err := wb.DeleteRange(partitionPrefix(p), partitionEnd(p), nil); err != nil {
		return nil, err
	}
	// No entry may land in p after the seal, whatever clock a later leader has.
	ts.head.LastTime = max(ts.head.LastTime, at.UnixNano())
	if err := wb.Set(headKey(p.Tenant), ts.head.marshal(), nil); err != nil {
		return nil, err
	}
	if ts.open != nil && ts.open.p == p {
		ts.open = nil
	}
	if err := e.commit(wb, index); err != nil {
		return nil, err
	}
	e.segments.forget(p)
	e.opts.Logger.Info("partition sealed", "partition", p.String(), "size", cat.Size, "root", cat.Root.String())
	return nil, nil
}

// writeSegment writes p's entries and tiles from Pebble into a segment file
// at path and verifies it against cat before returning.
func (e *Engine) writeSegment(ctx context.Context, p Partition, cat catalogRecord, path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	w, err := segment.Create(path, segment.Header{Tenant: p.Tenant, Partition: p.Month.String(), Size: cat.Size, Root: cat.Root}, segment.WriterOptions{})
	if err != nil {
		return err
	}
	if err := e.copyPartition(ctx, p, cat.Size, w); err != nil {
		w.Abort()
		return err
	}
	if err := w.Commit(); err != nil {
		return err
	}
	return verifySegmentFile(ctx, path, cat)
}

func (e *Engine) copyPartition(ctx context.Context, p Partition, size uint64, w *segment.Writer) error {
	snap := e.db.NewSnapshot()
	defer snap.Close()
	lo := append(partitionPrefix(p), partEntry)
	it, err := snap.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: lo, UpperBound: prefixEnd(lo)})
	if err != nil {
		return err
	}
	defer it.Close()
	it.First()
	for leaf := uint64(0); leaf < size; leaf++ {
		if leaf%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		// it.Value is only valid until the iterator moves: add it first.
		present := it.Valid() && bytes.Equal(it.Key(), entryKey(p, leaf))
		var data []byte
		if present {
			data = it.Value()
		} else if _, closer, err := snap.Get(pruneKey(p, leaf)); err == nil {
			closer.Close()
		} else {
			return fmt.Errorf("leaf %d: entry missing and not pruned: %w", leaf, ErrCorrupt)
		}
		if err := w.AddEntry(leaf, data); err != nil {
			return err
		}
		if present {
			it.Next()
		}
	}
	if err := it.Error(); err != nil {
		return err
	}
	return copyTiles(ctx, snap, p, w)
}

func copyTiles(ctx context.Context, r pebble.Reader, p Partition, w *segment.Writer) error {
	lo := append(partitionPrefix(p), partTile)
	it, err := r.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: lo, UpperBound: prefixEnd(lo)})
	if err != nil {
		return err
	}
	defer it.Close()
	var buf []byte
	for it.First(); it.Valid(); it.Next() {
		k := it.Key()[len(lo):]
		if len(k) != 9 {
			return fmt.Errorf("tile key of %d bytes: %w", len(k), ErrCorrupt)
		}
		id := merkle.TileID{Level: k[0], Index: binary.BigEndian.Uint64(k[1:])}
		t, err := emittedToTile(it.Value())
		if err != nil {
			return fmt.Errorf("tile %v: %w", id, err)
		}
		if buf, err = t.AppendBinary(buf[:0]); err != nil {
			return fmt.Errorf("tile %v: %w", id, err)
		}
		if err := w.AddTile(id, buf); err != nil {
			return err
		}
	}
	return it.Error()
}

// verifySegmentFile re-reads a segment and checks it end to end: every
// entry rehashed into a fresh tree whose every node must equal the stored
// tile node, the chain within the partition, and the final size and root.
func verifySegmentFile(ctx context.Context, path string, cat catalogRecord) error {
	r, err := segment.Open(path, segment.ReaderOptions{})
	if err != nil {
		return fmt.Errorf("verify %s: %w", path, err)
	}
	defer r.Close()
	if err := verifySegment(ctx, r, cat.Size, cat.Root); err != nil {
		return fmt.Errorf("verify %s: %w", path, err)
	}
	return nil
}

func verifySegment(ctx context.Context, r *segment.Reader, size uint64, root merkle.Hash) error {
	app, err := merkle.NewAppender(0, nil)
	if err != nil {
		return err
	}
	tv := &tileVerifier{r: r, tiles: make(map[merkle.TileID]*merkle.Tile)}
	var prev merkle.Hash
	err = r.Scan(0, func(leaf uint64, data []byte) error {
		if leaf%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		var h merkle.Hash
		if data == nil { // pruned: the tree keeps its hash
			stored, err := tv.node(merkle.NodeID{Level: 0, Index: leaf})
			if err != nil {
				return err
			}
			h = stored
		} else {
			h = merkle.LeafHash(data)
			if leaf > 0 {
				if err := checkPrev(data, prev, leaf); err != nil {
					return err
				}
			}
		}
		prev = h
		app.Append(h, tv.visit)
		return tv.err
	})
	if err != nil {
		return err
	}
	if app.Size() != size || app.Root() != root {
		return fmt.Errorf("segment tree (size %d, root %s) differs from partition (size %d, root %s): %w",
			app.Size(), app.Root(), size, root, ErrCorrupt)
	}
	return nil
}

func checkPrev(entry []byte, want merkle.Hash, leaf uint64) error {
	got, err := prevLeafHash(entry)
	if err != nil {
		return fmt.Errorf("leaf %d: %w", leaf, err)
	}
	if got != want {
		return fmt.Errorf("leaf %d: chain broken: prev_leaf_hash %s, previous leaf %s: %w", leaf, got, want, ErrCorrupt)
	}
	return nil
}

// tileVerifier checks nodes produced by rehashing against stored tiles,
// holding at most the tiles still being filled.
type tileVerifier struct {
	r     *segment.Reader
	tiles map[merkle.TileID]*merkle.Tile
	err   error
}

func (tv *tileVerifier) node(id merkle.NodeID) (merkle.Hash, error) {
	tid, row, pos := merkle.TileForNode(id)
	t := tv.tiles[tid]
	if t == nil {
		b, err := tv.r.Tile(tid)
		if err != nil {
			return merkle.Hash{}, fmt.Errorf("tile %d/%d: %w", tid.Level, tid.Index, err)
		}
		if t, err = merkle.DecodeTile(b); err != nil {
			return merkle.Hash{}, fmt.Errorf("tile %d/%d: %w: %v", tid.Level, tid.Index, ErrCorrupt, err)
		}
		tv.tiles[tid] = t
	}
	h, ok := t.Node(row, pos)
	if !ok {
		return merkle.Hash{}, fmt.Errorf("node %d/%d missing from tile: %w", id.Level, id.Index, ErrCorrupt)
	}
	if row == merkle.TileHeight-1 && pos == 1 { // last node of a full tile
		delete(tv.tiles, tid)
	}
	return h, nil
}

func (tv *tileVerifier) visit(id merkle.NodeID, h merkle.Hash) {
	if tv.err != nil {
		return
	}
	stored, err := tv.node(id)
	if err != nil {
		tv.err = err
		return
	}
	if stored != h {
		tv.err = fmt.Errorf("node %d/%d: stored %s, recomputed %s: %w", id.Level, id.Index, stored, h, ErrCorrupt)
	}
}

// prevLeafHash reads field 5 (prev_leaf_hash) of an encoded Entry without
// decoding the rest: sealing and integrity checks do this for every entry.
func prevLeafHash(entry []byte) (merkle.Hash, error) {
	for b := entry; len(b) > 0; {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return merkle.Hash{}, fmt.Errorf("decode entry: %w", protowire.ParseError(n))
		}
		b = b[n:]
		if num == 5 && typ == protowire.BytesType {
			v, n := protowire.ConsumeBytes(b)
			if n < 0 || len(v) != merkle.HashSize {
				return merkle.Hash{}, fmt.Errorf("decode entry: bad prev_leaf_hash: %w", ErrCorrupt)
			}
			return merkle.Hash(v), nil
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return merkle.Hash{}, fmt.Errorf("decode entry: %w", protowire.ParseError(n))
		}
		b = b[n:]
	}
	return merkle.Hash{}, fmt.Errorf("decode entry: no prev_leaf_hash: %w", ErrCorrupt)
}
