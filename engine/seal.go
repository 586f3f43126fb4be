package engine

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
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
// before p's files are removed; from then on reads are served from the
// segment. A refused seal (ErrNotFound, ErrSealed, ErrMonthNotEnded)
// still advances the applied index, so that replicas stay identical.
func (e *Engine) Seal(ctx context.Context, index uint64, p Partition, at time.Time) error {
	return e.command(index, "seal", p, func() (error, error) { return e.seal(ctx, index, p, at) })
}

// command runs op, the Raft command at index on p, under the write lock,
// after a checkpoint: a command commits its own changes with the applied
// index, which must then cover every append before it. A refusal (op's
// first result) still advances the applied index, so that replicas stay
// identical, and is returned wrapped like an error.
func (e *Engine) command(index uint64, name string, p Partition, op func() (refusal, err error)) error {
	if err := e.checkWritable(); err != nil {
		return err
	}
	e.writeMu.Lock()
	defer e.writeMu.Unlock()
	if index <= e.applied.Load() {
		return ErrAlreadyApplied
	}
	if err := e.checkpointNow(); err != nil {
		return fmt.Errorf("engine: %s %s: %w", name, p, err)
	}
	// A partition name no append could have made is refused on every
	// replica alike, before it can name a path.
	refusal, err := checkPartitionName(p), error(nil)
	if refusal == nil {
		refusal, err = op()
	}
	if err != nil {
		return fmt.Errorf("engine: %s %s: %w", name, p, err)
	}
	if refusal != nil {
		e.applied.Store(index)
		return fmt.Errorf("engine: %s %s: %w", name, p, refusal)
	}
	return nil
}

// checkPartitionName refuses a partition whose tenant id breaks the
// grammar (invariant 12): it cannot exist.
func checkPartitionName(p Partition) error {
	if err := ValidateTenantID(p.Tenant); err != nil {
		return fmt.Errorf("%w: %v", ErrNotFound, err)
	}
	return nil
}

// commitCommand commits a command's batch durably with its applied index.
func (e *Engine) commitCommand(wb *pebble.Batch, index uint64) error {
	if err := wb.Set(appliedKey, encodeUint64(index), nil); err != nil {
		return err
	}
	if err := wb.Commit(pebble.Sync); err != nil {
		return e.fail(fmt.Errorf("commit: %w", err))
	}
	e.applied.Store(index)
	e.durable.Store(index)
	return nil
}

func (e *Engine) seal(ctx context.Context, index uint64, p Partition, at time.Time) (refusal, err error) {
	op := e.openPartitionOf(p)
	if op == nil {
		cat, found, err := e.readCatalog(e.db, p)
		switch {
		case err != nil:
			return nil, err
		case !found:
			return ErrNotFound, nil
		case cat.Sealed:
			return ErrSealed, nil
		}
		return nil, fmt.Errorf("catalog records an open partition with no files open: %w", ErrCorrupt)
	}
	if !p.Month.Before(MonthOf(at)) {
		return fmt.Errorf("%w (seal time %s)", ErrMonthNotEnded, at.UTC().Format(time.RFC3339)), nil
	}
	cat := op.catalogRecord()
	path, err := segmentPath(e.opts.Dir, p)
	if err != nil {
		return nil, err
	}
	if err := e.writeSegment(ctx, op, cat, path); err != nil {
		return nil, err
	}
	ts := e.tenant(p.Tenant)
	wb := e.db.NewBatch()
	defer wb.Close()
	cat.Sealed, cat.RightEdge = true, nil
	if err := wb.Set(catalogKey(p), cat.marshal(), nil); err != nil {
		return nil, err
	}
	// The prune records of the month are in the segment now.
	if err := wb.DeleteRange(partitionPrefix(p), partitionEnd(p), nil); err != nil {
		return nil, err
	}
	// No entry may land in p after the seal, whatever clock a later leader has.
	ts.head.LastTime = max(ts.head.LastTime, at.UnixNano())
	if err := wb.Set(headKey(p.Tenant), ts.head.marshal(), nil); err != nil {
		return nil, err
	}
	if err := e.commitCommand(wb, index); err != nil {
		return nil, err
	}
	ts.publish()
	if ts.open == op {
		ts.open = nil
	}
	e.stateMu.Lock()
	delete(e.open, p)
	e.stateMu.Unlock()
	op.files.release()
	e.segments.forget(p)
	if err := removePartitionDir(op.files.dir); err != nil {
		// The seal is committed: Open removes what is left.
		e.opts.Logger.Warn("sealed partition: remove its files; retried at the next open", "partition", p.String(), "err", err)
	}
	e.opts.Logger.Info("partition sealed", "partition", p.String(), "size", cat.Size, "root", cat.Root.String())
	return nil, nil
}

// writeSegment writes p's entries and tiles from its files into a segment
// file at path and verifies it against cat before returning.
func (e *Engine) writeSegment(ctx context.Context, op *openPartition, cat catalogRecord, path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	p := op.p
	w, err := segment.Create(path, segment.Header{Tenant: p.Tenant, Partition: p.Month.String(), Size: cat.Size, Root: cat.Root}, segment.WriterOptions{})
	if err != nil {
		return err
	}
	if err := e.copyPartition(ctx, op, cat, w); err != nil {
		w.Abort()
		return err
	}
	if err := w.Commit(); err != nil {
		return err
	}
	return verifySegmentFile(ctx, path, cat)
}

// copyPartition streams an open partition's entries (nil where pruned)
// and tiles into w.
func (e *Engine) copyPartition(ctx context.Context, op *openPartition, cat catalogRecord, w *segment.Writer) error {
	pf := op.files
	offsets := bufio.NewReaderSize(io.NewSectionReader(pf.offsets, 0, int64(cat.Size)*offsetSize), 1<<16)
	entries := bufio.NewReaderSize(io.NewSectionReader(pf.entries, 0, op.at.entries), 1<<20)
	var start uint64
	var off [offsetSize]byte
	var data []byte
	for leaf := uint64(0); leaf < cat.Size; leaf++ {
		if leaf%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if _, err := io.ReadFull(offsets, off[:]); err != nil {
			return fmt.Errorf("offset of leaf %d: %w", leaf, err)
		}
		end := binary.BigEndian.Uint64(off[:])
		if end < start || end-start > uint64(segment.MaxEntrySize) {
			return fmt.Errorf("leaf %d spans [%d, %d): %w", leaf, start, end, ErrCorrupt)
		}
		data = slices.Grow(data[:0], int(end-start))[:end-start]
		if _, err := io.ReadFull(entries, data); err != nil {
			return fmt.Errorf("entry of leaf %d: %w", leaf, err)
		}
		start = end
		add := data
		if cat.Pruned > 0 {
			pruned, err := e.pruneMarked(op.p, leaf)
			if err != nil {
				return err
			}
			if pruned {
				add = nil
			}
		}
		if err := w.AddEntry(leaf, add); err != nil {
			return err
		}
	}
	return copyTiles(pf, cat.Size, w)
}

// copyTiles reads every stored node of a tree of size leaves, in the
// hashes file's order, and adds each tile to w once its nodes are read.
func copyTiles(pf *partFiles, size uint64, w *segment.Writer) error {
	r := bufio.NewReaderSize(io.NewSectionReader(pf.hashes, 0, int64(storedNodes(size))*merkle.HashSize), 1<<20)
	pending := make(map[merkle.TileID][]byte)
	var buf []byte
	emit := func(id merkle.TileID) error {
		t, err := emittedToTile(pending[id])
		if err != nil {
			return fmt.Errorf("tile %v: %w", id, err)
		}
		if buf, err = t.AppendBinary(buf[:0]); err != nil {
			return fmt.Errorf("tile %v: %w", id, err)
		}
		delete(pending, id)
		return w.AddTile(id, buf)
	}
	var h merkle.Hash
	err := forEachStoredNode(size, func(id merkle.NodeID) error {
		if _, err := io.ReadFull(r, h[:]); err != nil {
			return fmt.Errorf("node %s: %w", id, err)
		}
		tid, row, pos := merkle.TileForNode(id)
		pending[tid] = append(pending[tid], h[:]...)
		if row == merkle.TileHeight-1 && pos == 1 { // the tile's last node
			return emit(tid)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, id := range sortedTileIDs(pending) {
		if err := emit(id); err != nil {
			return err
		}
	}
	return nil
}

// forEachStoredNode calls fn for every node a tree of size leaves stores,
// in the order appends complete them (the hashes file's order).
func forEachStoredNode(size uint64, fn func(merkle.NodeID) error) error {
	for j := uint64(0); j < size; j++ {
		if err := fn(merkle.NodeID{Level: 0, Index: j}); err != nil {
			return err
		}
		for r := uint8(1); (j+1)&(1<<r-1) == 0; r++ {
			if err := fn(merkle.NodeID{Level: r, Index: (j+1)>>r - 1}); err != nil {
				return err
			}
		}
	}
	return nil
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
