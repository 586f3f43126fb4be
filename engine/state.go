package engine

import (
	"errors"
	"fmt"
	"io"

	"github.com/cockroachdb/pebble/v2"

	"github.com/trailaudit/trail/merkle"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// tenantState is the writer's cached view of one tenant.
type tenantState struct {
	id      string
	head    headRecord
	started bool           // the tenant has at least one entry
	open    *openPartition // the partition of head.Month, loaded lazily
}

// tenant returns the cached state of tenant id, loading it on first use.
func (e *Engine) tenant(id string) (*tenantState, error) {
	if ts := e.tenants[id]; ts != nil {
		return ts, nil
	}
	ts := &tenantState{id: id}
	v, closer, err := e.db.Get(headKey(id))
	switch {
	case errors.Is(err, pebble.ErrNotFound):
	case err != nil:
		return nil, fmt.Errorf("read head of tenant %s: %w", id, err)
	default:
		ts.head, err = unmarshalHead(v)
		closer.Close()
		if err != nil {
			return nil, fmt.Errorf("tenant %s: %w", id, err)
		}
		ts.started = true
	}
	e.tenants[id] = ts
	return ts, nil
}

// partitionFor returns the open partition month m of ts, starting it when
// the tenant's log moves into a new month. It returns the link to the
// previous partition exactly when it starts a partition after an earlier
// one: that link goes into leaf 0 (DESIGN.md invariant 3).
func (e *Engine) partitionFor(ts *tenantState, m Month) (*openPartition, *trailv1.PartitionLink, error) {
	if ts.open != nil && ts.open.p.Month == m {
		return ts.open, nil, nil
	}
	if ts.started && ts.head.Month == m {
		op, err := e.loadOpenPartition(Partition{Tenant: ts.id, Month: m})
		if err != nil {
			return nil, nil, err
		}
		ts.open = op
		return op, nil, nil
	}
	var link *trailv1.PartitionLink
	if ts.started {
		if m.Before(ts.head.Month) {
			return nil, nil, fmt.Errorf("tenant %s: month %s before current %s", ts.id, m, ts.head.Month)
		}
		prev := ts.open
		if prev == nil || prev.p.Month != ts.head.Month {
			cat, found, err := e.readCatalog(e.db, Partition{Tenant: ts.id, Month: ts.head.Month})
			if err != nil || !found {
				return nil, nil, fmt.Errorf("tenant %s: previous partition %s: found=%v: %w", ts.id, ts.head.Month, found, err)
			}
			prev = &openPartition{p: Partition{Tenant: ts.id, Month: ts.head.Month}, cat: cat}
		}
		link = &trailv1.PartitionLink{Partition: prev.p.Month.String(), Size: prev.cat.Size, Root: prev.cat.Root[:]}
	}
	p := Partition{Tenant: ts.id, Month: m}
	if _, found, err := e.readCatalog(e.db, p); err != nil || found {
		return nil, nil, fmt.Errorf("tenant %s: new partition %s already exists (found=%v): %w", ts.id, m, found, err)
	}
	app, err := merkle.NewAppender(0, nil)
	if err != nil {
		return nil, nil, err
	}
	ts.open = newOpenPartition(p, catalogRecord{Root: merkle.EmptyRoot()}, app)
	return ts.open, link, nil
}

func (e *Engine) loadOpenPartition(p Partition) (*openPartition, error) {
	cat, found, err := e.readCatalog(e.db, p)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, fmt.Errorf("partition %s: catalog record missing", p)
	}
	if cat.Sealed {
		return nil, fmt.Errorf("partition %s: sealed, cannot append", p)
	}
	app, err := merkle.NewAppender(cat.Size, cat.RightEdge)
	if err != nil {
		return nil, fmt.Errorf("partition %s: %w", p, err)
	}
	return newOpenPartition(p, cat, app), nil
}

func (e *Engine) readCatalog(r pebble.Reader, p Partition) (catalogRecord, bool, error) {
	v, closer, err := r.Get(catalogKey(p))
	if errors.Is(err, pebble.ErrNotFound) {
		return catalogRecord{}, false, nil
	}
	if err != nil {
		return catalogRecord{}, false, fmt.Errorf("read catalog of %s: %w", p, err)
	}
	defer closer.Close()
	cat, err := unmarshalCatalog(v)
	if err != nil {
		return catalogRecord{}, false, fmt.Errorf("partition %s: %w", p, err)
	}
	return cat, true, nil
}

// openPartition is the writer's state of a partition being appended to:
// its compact range, and the node hashes a batch has completed, per tile,
// until the batch is flushed.
type openPartition struct {
	p       Partition
	cat     catalogRecord
	app     *merkle.Appender
	pending map[merkle.TileID][]byte
	// complete lists the tiles the batch filled.
	complete map[merkle.TileID]bool
	dirty    bool // touched by the batch being applied
	// stored is the tree size the stored tiles hold, before the batch.
	stored uint64
}

func newOpenPartition(p Partition, cat catalogRecord, app *merkle.Appender) *openPartition {
	return &openPartition{p: p, cat: cat, app: app, stored: cat.Size,
		pending: make(map[merkle.TileID][]byte), complete: make(map[merkle.TileID]bool)}
}

func (op *openPartition) append(leaf merkle.Hash) {
	op.app.Append(leaf, op.visit)
}

// visit queues a newly completed node for its tile, in emission order.
func (op *openPartition) visit(id merkle.NodeID, h merkle.Hash) {
	tid, row, pos := merkle.TileForNode(id)
	op.pending[tid] = append(op.pending[tid], h[:]...)
	if row == merkle.TileHeight-1 && pos == 1 { // the last node of a tile
		op.complete[tid] = true
	}
}

// flush extends the touched tiles with the batch's new nodes and writes the
// catalog record into wb. A tile the batch completed is written whole, so
// that reads of full tiles, which is most of what proofs read, never have
// merge operands to combine.
func (op *openPartition) flush(db pebble.Reader, wb *pebble.Batch) error {
	op.cat.Root = op.app.Root()
	op.cat.RightEdge = op.app.RightEdge()
	for _, id := range sortedTileIDs(op.pending) {
		key := tileKey(op.p, id.Level, id.Index)
		whole := op.complete[id] || rewritesTile(id, op.stored, op.app.Size())
		if !whole {
			if err := wb.Merge(key, op.pending[id], nil); err != nil {
				return err
			}
			continue
		}
		full, err := op.wholeTile(db, key, id, op.pending[id])
		if err != nil {
			return fmt.Errorf("partition %s tile %v: %w", op.p, id, err)
		}
		if err := wb.Set(key, full, nil); err != nil {
			return err
		}
	}
	clear(op.pending)
	clear(op.complete)
	op.stored = op.app.Size()
	return wb.Set(catalogKey(op.p), op.cat.marshal(), nil)
}

// wholeTile joins what is stored of a tile with the batch's nodes and
// checks the result holds exactly the tile's nodes at the new size.
func (op *openPartition) wholeTile(db pebble.Reader, key []byte, id merkle.TileID, last []byte) ([]byte, error) {
	stored, closer, err := db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		stored, closer, err = nil, io.NopCloser(nil), nil
	}
	if err != nil {
		return nil, err
	}
	defer closer.Close()
	full := append(append(make([]byte, 0, tileNodes*merkle.HashSize), stored...), last...)
	if want := tileNodeCount(id, op.app.Size()) * merkle.HashSize; uint64(len(full)) != want {
		return nil, fmt.Errorf("tile holds %d bytes, want %d: %w", len(full), want, ErrCorrupt)
	}
	return full, nil
}

// upperTileStride bounds the merge operands of an incomplete tile above
// level 0: each time such a tile's node count crosses a multiple of it,
// the tile is written whole. Every proof at the current size reads the
// right edge's upper tiles, and a read combines every operand still
// uncompacted, which left alone grew with the log (half of a proof's CPU at
// 3 M leaves). Rewriting costs about 4 bytes per leaf at level 1 and
// nothing measurable above. Level-0 tiles are left to merges: they fill
// within 256 leaves and are then written whole.
const upperTileStride = 16

// rewritesTile says whether a batch taking the tree from size before to
// after writes tile id whole although it is not complete.
func rewritesTile(id merkle.TileID, before, after uint64) bool {
	if id.Level == 0 {
		return false
	}
	return tileNodeCount(id, before)/upperTileStride != tileNodeCount(id, after)/upperTileStride
}

// tileNodeCount is the number of nodes tile id holds in the tree of size
// leaves: k of its 256 bottom nodes are complete, each with the parents
// it completes inside the tile (see emissionIndex), and a full tile holds
// all of rows 0..7.
func tileNodeCount(id merkle.TileID, size uint64) uint64 {
	shift := merkle.TileHeight * uint(id.Level)
	k := size >> shift
	first := id.Index * merkle.TileWidth
	switch {
	case k <= first:
		return 0
	case k-first >= merkle.TileWidth:
		return tileNodes
	}
	return emissionIndex(0, k-first)
}
