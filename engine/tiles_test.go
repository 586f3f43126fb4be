package engine

import (
	"bytes"
	"testing"

	"github.com/trailaudit/trail/merkle"
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
