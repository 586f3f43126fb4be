package engine

import (
	"bytes"
	"strconv"
	"testing"

	"github.com/trailaudit/trail/merkle"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// The emission-order formula must agree with the Appender's visits, for
// every node of a full tile and of the tiles above it.
func TestEmissionOrderMatchesAppender(t *testing.T) {
	app, _ := merkle.NewAppender(0, nil)
	streams := map[merkle.TileID][]byte{}
	for i := range 3 * merkle.TileWidth * merkle.TileWidth / 2 {
		app.Append(merkle.LeafHash([]byte{byte(i), byte(i >> 8), byte(i >> 16)}), func(id merkle.NodeID, h merkle.Hash) {
			tid, row, pos := merkle.TileForNode(id)
			if got := emissionIndex(row, pos); got != uint64(len(streams[tid])/merkle.HashSize) {
				t.Fatalf("node %v (tile %v row %d pos %d): formula says %d, appender emitted it at %d",
					id, tid, row, pos, got, len(streams[tid])/merkle.HashSize)
			}
			streams[tid] = append(streams[tid], h[:]...)
		})
		// tileNodeCount must say how many nodes every tile holds now.
		if size := app.Size(); size%97 == 0 || size%merkle.TileWidth == 0 {
			for tid, b := range streams {
				if got := tileNodeCount(tid, size) * merkle.HashSize; got != uint64(len(b)) {
					t.Fatalf("size %d tile %v: tileNodeCount says %d bytes, appender emitted %d", size, tid, got, len(b))
				}
			}
		}
	}
	for tid, b := range streams {
		tile, err := emittedToTile(b)
		if err != nil {
			t.Fatalf("tile %v: %v", tid, err)
		}
		for row := uint8(0); row < merkle.TileHeight; row++ {
			for pos := uint64(0); pos < uint64(tile.Width()>>row); pos++ {
				want, _ := tile.Node(row, pos)
				got, ok, err := emittedNode(b, row, pos)
				if err != nil || !ok || got != want {
					t.Fatalf("tile %v node %d/%d: %v %v", tid, row, pos, ok, err)
				}
			}
		}
	}
}

func TestEmittedTileRejectsGarbage(t *testing.T) {
	for _, b := range [][]byte{{1, 2, 3}, bytes.Repeat([]byte{1}, (tileNodes+1)*merkle.HashSize)} {
		if _, _, err := emittedNode(b, 0, 0); err == nil {
			t.Errorf("emittedNode accepted %d bytes", len(b))
		}
		if _, err := emittedToTile(b); err == nil {
			t.Errorf("emittedToTile accepted %d bytes", len(b))
		}
	}
}

func FuzzEmittedTile(f *testing.F) {
	f.Add(bytes.Repeat([]byte{7}, 3*merkle.HashSize), uint8(0), uint64(1))
	f.Fuzz(func(t *testing.T, b []byte, row uint8, pos uint64) {
		h, ok, err := emittedNode(b, row, pos)
		if err != nil || !ok {
			return
		}
		tile, err := emittedToTile(b)
		if err != nil {
			t.Fatalf("node readable but tile not: %v", err)
		}
		if want, ok := tile.Node(row, pos); !ok || want != h {
			t.Fatalf("node %d/%d differs between the two readings", row, pos)
		}
	})
}

func TestRewritesTile(t *testing.T) {
	up := merkle.TileID{Level: 1}
	for _, tc := range []struct {
		name         string
		id           merkle.TileID
		before, size uint64
		want         bool
	}{
		{"level 0 never", merkle.TileID{}, 0, 255, false},
		{"level 1, no new node", up, 256, 511, false},
		{"level 1, 16th node", up, 8 * 256, 9 * 256, true},         // 8 bottom nodes make 15 nodes, 9 make 16
		{"level 1, within a stride", up, 9 * 256, 10 * 256, false}, // 16 -> 18
		{"level 1, below the stride", up, 0, 8 * 256, false},
		{"level 1, many strides at once", up, 0, 65535, true},
		{"another tile's range", merkle.TileID{Level: 1, Index: 1}, 0, 65536, false},
	} {
		if got := rewritesTile(tc.id, tc.before, tc.size); got != tc.want {
			t.Errorf("%s: rewritesTile(%v, %d, %d) = %v", tc.name, tc.id, tc.before, tc.size, got)
		}
	}
}

// TestUpperTilesRewrittenAcrossSmallBatches: with small batches the upper
// tiles are merged and, every upperTileStride nodes, rewritten whole,
// across a reopen; what is stored is always exactly the tile's nodes and
// every proof verifies.
func TestUpperTilesRewrittenAcrossSmallBatches(t *testing.T) {
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
	stored, closer, err := e.db.Get(tileKey(p, 1, 0))
	if err != nil {
		t.Fatal(err)
	}
	defer closer.Close()
	if want := tileNodeCount(merkle.TileID{Level: 1}, leaves) * merkle.HashSize; uint64(len(stored)) != want {
		t.Fatalf("level-1 tile holds %d bytes, want %d", len(stored), want)
	}
}
