package merkle

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"testing"
)

func TestTileForNode(t *testing.T) {
	for _, tc := range []struct {
		id   NodeID
		tile TileID
		row  uint8
		pos  uint64
	}{
		{NodeID{0, 0}, TileID{0, 0}, 0, 0},
		{NodeID{0, 255}, TileID{0, 0}, 0, 255},
		{NodeID{0, 256}, TileID{0, 1}, 0, 0},
		{NodeID{1, 127}, TileID{0, 0}, 1, 127},
		{NodeID{1, 128}, TileID{0, 1}, 1, 0},
		{NodeID{7, 1}, TileID{0, 0}, 7, 1},
		{NodeID{7, 2}, TileID{0, 1}, 7, 0},
		{NodeID{8, 0}, TileID{1, 0}, 0, 0}, // root of tile 0/0
		{NodeID{8, 257}, TileID{1, 1}, 0, 1},
		{NodeID{9, 3}, TileID{1, 0}, 1, 3},
		{NodeID{16, 5}, TileID{2, 0}, 0, 5},
		{NodeID{23, 7}, TileID{2, 3}, 7, 1},
		{NodeID{63, 1}, TileID{7, 0}, 7, 1},
	} {
		tile, row, pos := TileForNode(tc.id)
		if tile != tc.tile || row != tc.row || pos != tc.pos {
			t.Errorf("TileForNode(%s) = %s, %d, %d, want %s, %d, %d", tc.id, tile, row, pos, tc.tile, tc.row, tc.pos)
		}
		if back := tile.Node(row, pos); back != tc.id {
			t.Errorf("TileID(%s).Node(%d, %d) = %s, want %s", tile, row, pos, back, tc.id)
		}
	}
}

// buildTile returns tile 0/0 of a tree of n <= 256 leaves, and the tree.
func buildTile(t *testing.T, n int) (*Tile, *MemoryNodes) {
	t.Helper()
	leaves := randomLeavesN(n)
	tile := new(Tile)
	app, _ := NewAppender(0, nil)
	for _, l := range leaves {
		app.Append(l, func(id NodeID, h Hash) {
			tid, row, pos := TileForNode(id)
			if tid != (TileID{}) {
				return // the tile's own root belongs to the tile above
			}
			if err := tile.Set(row, pos, h); err != nil {
				t.Fatal(err)
			}
		})
	}
	return tile, NewMemoryNodes(leaves)
}

func TestTileRoundTrip(t *testing.T) {
	for _, n := range []int{1, 2, 3, 5, 100, 127, 128, 255, 256} {
		tile, mem := buildTile(t, n)
		if tile.Width() != n {
			t.Fatalf("width %d, want %d", tile.Width(), n)
		}
		for row := range uint8(TileHeight) {
			for pos := range uint64(n>>row) + 1 {
				h, ok := tile.Node(row, pos)
				if want := pos < uint64(n>>row); ok != want {
					t.Fatalf("n=%d: Node(%d, %d) present=%v, want %v", n, row, pos, ok, want)
				}
				if !ok {
					continue
				}
				hs, err := mem.ReadNodes(context.Background(), []NodeID{{Level: row, Index: pos}})
				if err != nil || hs[0] != h {
					t.Fatalf("n=%d: Node(%d, %d) = %s, tree has %v (%v)", n, row, pos, h, hs, err)
				}
			}
		}
		b, err := tile.AppendBinary([]byte("prefix"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(b, []byte("prefix")) {
			t.Fatal("AppendBinary dropped the prefix")
		}
		b = b[len("prefix"):]
		if want := tileHeaderSize + HashSize*tileHashes(n); len(b) != want {
			t.Errorf("n=%d: encoding is %d bytes, want %d", n, len(b), want)
		}
		back, err := DecodeTile(b)
		if err != nil {
			t.Fatalf("n=%d: %v", n, err)
		}
		b2, _ := back.AppendBinary(nil)
		if !bytes.Equal(b, b2) {
			t.Errorf("n=%d: re-encoding differs", n)
		}
		if bottom := back.BottomRow(); len(bottom) != n || bottom[n-1] != mem.levels[0][n-1] {
			t.Errorf("n=%d: BottomRow has %d hashes", n, len(bottom))
		}
		for i := range b {
			b[i] = 0xff // the decoded tile must not alias its input
		}
		if h, _ := back.Node(0, 0); h != mem.levels[0][0] {
			t.Errorf("n=%d: decoded tile aliases its input", n)
		}
	}
}

// TestTileGrowAfterDecode continues filling a decoded partial tile: rows
// decoded from one buffer must not overwrite each other when they grow.
func TestTileGrowAfterDecode(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	leaves := randomLeaves(rng, 3*TileWidth+17)
	store, _ := buildTiles(t, rng, leaves, 3)
	mem := NewMemoryNodes(leaves)
	for tid, b := range store.enc {
		tile, err := DecodeTile(b)
		if err != nil {
			t.Fatal(err)
		}
		for row := range uint8(TileHeight) {
			for pos := uint64(0); ; pos++ {
				h, ok := tile.Node(row, pos)
				if !ok {
					break
				}
				want, err := mem.ReadNodes(context.Background(), []NodeID{tid.Node(row, pos)})
				if err != nil || want[0] != h {
					t.Fatalf("tile %s node %d/%d = %s, want %v (%v)", tid, row, pos, h, want, err)
				}
			}
		}
	}
}

func TestTileSetErrors(t *testing.T) {
	h := LeafHash(nil)
	empty := func() *Tile { return new(Tile) }
	three := func() *Tile { tile, _ := buildTile(t, 3); return tile }
	full := func() *Tile { tile, _ := buildTile(t, TileWidth); return tile }
	for _, tc := range []struct {
		name     string
		tile     func() *Tile
		row      uint8
		pos      uint64
		wantFail bool
	}{
		{"first leaf", empty, 0, 0, false},
		{"leaf out of order", empty, 0, 1, true},
		{"parent before children", empty, 1, 0, true},
		{"parent with one child", three, 1, 1, true},
		{"next leaf", three, 0, 3, false},
		{"rewrite leaf", three, 0, 2, true},
		{"skip a leaf", three, 0, 4, true},
		{"row beyond height", empty, TileHeight, 0, true},
		{"leaf beyond width", full, 0, TileWidth, true},
		{"top row beyond width", full, TileHeight - 1, 2, true},
	} {
		err := tc.tile().Set(tc.row, tc.pos, h)
		if tc.wantFail != (err != nil) || err != nil && !errors.Is(err, ErrInvalidTile) {
			t.Errorf("%s: Set(%d, %d) = %v, want failure %v", tc.name, tc.row, tc.pos, err, tc.wantFail)
		}
	}
}

func TestTileAppendBinaryErrors(t *testing.T) {
	if _, err := new(Tile).AppendBinary(nil); !errors.Is(err, ErrInvalidTile) {
		t.Errorf("empty tile: %v, want ErrInvalidTile", err)
	}
	// Leaves 0 and 1 set but not their parent: an append stopped half way.
	half := new(Tile)
	if err := errors.Join(half.Set(0, 0, Hash{}), half.Set(0, 1, Hash{})); err != nil {
		t.Fatal(err)
	}
	if _, err := half.AppendBinary(nil); !errors.Is(err, ErrInvalidTile) {
		t.Errorf("incomplete tile: %v, want ErrInvalidTile", err)
	}
}

func TestDecodeTileErrors(t *testing.T) {
	good, _ := buildTile(t, 5)
	enc, err := good.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	header := func(version byte, width uint16) []byte {
		return binary.BigEndian.AppendUint16([]byte{version}, width)
	}
	withWidth := func(w int) []byte {
		return append(header(tileVersion, uint16(w)), make([]byte, HashSize*tileHashes(w))...)
	}
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"nil", nil},
		{"version only", []byte{tileVersion}},
		{"short header", []byte{tileVersion, 0}},
		{"bad version", append([]byte{2}, enc[1:]...)},
		{"version 0", append([]byte{0}, enc[1:]...)},
		{"width 0", header(tileVersion, 0)},
		{"width 257", withWidth(257)},
		{"width 65535", header(tileVersion, 65535)},
		{"truncated", enc[:len(enc)-1]},
		{"truncated by a hash", enc[:len(enc)-HashSize]},
		{"trailing byte", append(bytes.Clone(enc), 0)},
		{"trailing hash", append(bytes.Clone(enc), make([]byte, HashSize)...)},
		{"width says 4", append(header(tileVersion, 4), enc[tileHeaderSize:]...)},
		{"width says 6", append(header(tileVersion, 6), enc[tileHeaderSize:]...)},
	} {
		if _, err := DecodeTile(tc.b); !errors.Is(err, ErrInvalidTile) {
			t.Errorf("%s: DecodeTile = %v, want ErrInvalidTile", tc.name, err)
		}
		if _, _, err := DecodeTileNode(tc.b, 0, 0); !errors.Is(err, ErrInvalidTile) {
			t.Errorf("%s: DecodeTileNode = %v, want ErrInvalidTile", tc.name, err)
		}
	}
	for _, w := range []int{1, 256} {
		if _, err := DecodeTile(withWidth(w)); err != nil {
			t.Errorf("width %d: %v", w, err)
		}
	}
}
