package engine

import (
	"bytes"
	"slices"
	"strconv"
	"testing"

	"github.com/trailaudit/trail/merkle"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// The emission-order formulas must agree with the Appender's visits: the
// tile-local one (seal converts tiles with it) for every node of a full
// tile and of the tiles above it, and the global one (the hashes file) for
// every node; forEachStoredNode must walk the same order.
func TestEmissionOrderMatchesAppender(t *testing.T) {
	app, _ := merkle.NewAppender(0, nil)
	streams := map[merkle.TileID][]byte{}
	var order []merkle.NodeID
	for i := range 3 * merkle.TileWidth * merkle.TileWidth / 2 {
		app.Append(merkle.LeafHash([]byte{byte(i), byte(i >> 8), byte(i >> 16)}), func(id merkle.NodeID, h merkle.Hash) {
			tid, row, pos := merkle.TileForNode(id)
			if got := emissionIndex(row, pos); got != uint64(len(streams[tid])/merkle.HashSize) {
				t.Fatalf("node %v (tile %v row %d pos %d): formula says %d, appender emitted it at %d",
					id, tid, row, pos, got, len(streams[tid])/merkle.HashSize)
			}
			if got := nodePosition(id); got != uint64(len(order)) {
				t.Fatalf("node %v: nodePosition says %d, appender emitted it at %d", id, got, len(order))
			}
			order = append(order, id)
			streams[tid] = append(streams[tid], h[:]...)
		})
		if got := storedNodes(app.Size()); got != uint64(len(order)) {
			t.Fatalf("size %d: storedNodes says %d, appender emitted %d", app.Size(), got, len(order))
		}
	}
	var walked []merkle.NodeID
	forEachStoredNode(app.Size(), func(id merkle.NodeID) error { walked = append(walked, id); return nil })
	if !slices.Equal(walked, order) {
		t.Fatal("forEachStoredNode walks another order than the appender's")
	}
	for tid, b := range streams {
		tile, err := emittedToTile(b)
		if err != nil {
			t.Fatalf("tile %v: %v", tid, err)
		}
		for row := uint8(0); row < merkle.TileHeight; row++ {
			for pos := uint64(0); pos < uint64(tile.Width()>>row); pos++ {
				got, _ := tile.Node(row, pos)
				i := emissionIndex(row, pos) * merkle.HashSize
				if want := merkle.Hash(b[i : i+merkle.HashSize]); got != want {
					t.Fatalf("tile %v node %d/%d differs from the emitted node", tid, row, pos)
				}
			}
		}
	}
}

func TestEmittedTileRejectsGarbage(t *testing.T) {
	for _, b := range [][]byte{{1, 2, 3}, bytes.Repeat([]byte{1}, (tileNodes+1)*merkle.HashSize)} {
		if _, err := emittedToTile(b); err == nil {
			t.Errorf("emittedToTile accepted %d bytes", len(b))
		}
	}
}

func FuzzEmittedTile(f *testing.F) {
	f.Add(bytes.Repeat([]byte{7}, 3*merkle.HashSize))
	f.Fuzz(func(t *testing.T, b []byte) {
		tile, err := emittedToTile(b)
		if err != nil {
			return
		}
		// Every node the bytes hold is in the tile, where emission order says.
		for i := 0; i+merkle.HashSize <= len(b); i += merkle.HashSize {
			found := false
			for row := uint8(0); row < merkle.TileHeight && !found; row++ {
				for pos := uint64(0); pos < uint64(merkle.TileWidth>>row); pos++ {
					if emissionIndex(row, pos) == uint64(i/merkle.HashSize) {
						h, ok := tile.Node(row, pos)
						if !ok || h != merkle.Hash(b[i:i+merkle.HashSize]) {
							t.Fatalf("emitted node %d is not the tile's node %d/%d", i/merkle.HashSize, row, pos)
						}
						found = true
						break
					}
				}
			}
		}
	})
}

// TestSmallBatchesAcrossReopen: a tree built by many small batches, with a
// reopen half-way, stores exactly its nodes and every proof verifies.
func TestSmallBatchesAcrossReopen(t *testing.T) {
	dir := t.TempDir()
	e := openEngine(t, dir)
	p := mustPartition(t, "acme", "2026-11")
	const leaves, batch = 6006, 7 // half of it a whole number of batches, for the reopen
	index := uint64(0)
	appendUpTo := func(e *Engine, n int) {
		for done := int(e.applied.Load()) * batch; done < n; done += batch {
			evs := make([]*trailv1.Event, 0, batch)
			for i := done; i < min(done+batch, n); i++ {
				evs = append(evs, event("acme", "e"+strconv.Itoa(i)))
			}
			index++
			applyOK(t, e, index, nov, evs...)
		}
	}
	appendUpTo(e, leaves/2)
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	e = openEngine(t, dir)
	appendUpTo(e, leaves)
	if info := checkPartition(t, e, p); info.Size != leaves {
		t.Fatalf("size %d, want %d", info.Size, leaves)
	}
	op := e.openPartitionOf(p)
	st, err := op.files.hashes.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(storedNodes(leaves)) * merkle.HashSize; st.Size() != want {
		t.Fatalf("hashes file holds %d bytes, want %d", st.Size(), want)
	}
}
