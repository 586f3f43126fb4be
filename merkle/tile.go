package merkle

import (
	"encoding/binary"
	"fmt"
	"slices"
)

// Tile geometry. Tiles are addressed as in C2SP tlog-tiles with height 8: the
// tile (L, I) is rooted at node (8L+8, I) and its bottom row is the nodes
// [256I, 256I+256) of level 8L. Unlike tlog-tiles, a stored tile keeps all 8
// rows of its subtree (row r holds level 8L+r), so a proof reads any node
// directly instead of re-hashing up to 255 nodes. A tile's own root is not in
// it: it is in row 0 of the tile above.
const (
	TileHeight = 8
	TileWidth  = 1 << TileHeight
)

// Tile encoding: a version byte, the width as a big-endian uint16, then
// every row bottom-up, row r holding width>>r hashes.
const (
	tileVersion    = 1
	tileHeaderSize = 3
)

// TileID names a tile: Level is the tile level (its bottom row is tree level
// 8*Level) and Index its position within that tile level.
type TileID struct {
	Level uint8
	Index uint64
}

// String returns the tile as "level/index", for messages.
func (t TileID) String() string {
	return fmt.Sprintf("%d/%d", t.Level, t.Index)
}

// Node returns the id of the node at row and pos within the tile: the
// inverse of TileForNode.
func (t TileID) Node(row uint8, pos uint64) NodeID {
	return NodeID{
		Level: t.Level*TileHeight + row,
		Index: t.Index*(TileWidth>>row) + pos,
	}
}

// TileForNode returns the tile that stores the node, the row within the tile
// (the node's level minus the tile's bottom level) and the node's position
// within that row.
func TileForNode(id NodeID) (t TileID, row uint8, pos uint64) {
	row = id.Level % TileHeight
	perTile := uint64(TileWidth >> row) // nodes of this row in a full tile
	t = TileID{Level: id.Level / TileHeight, Index: id.Index / perTile}
	return t, row, id.Index % perTile
}

// Tile holds the stored nodes of one tile. Row 0 grows by appending up to
// TileWidth hashes; row r holds the parents of row r-1, so once every node
// completed by the appended leaves is set, row r holds Width()>>r hashes.
// The zero Tile is empty and ready for use.
type Tile struct {
	rows [TileHeight][]Hash
}

// Width returns the number of hashes in row 0, from 0 to TileWidth.
func (t *Tile) Width() int {
	return len(t.rows[0])
}

// Node returns the hash at row and pos, and whether it is present.
func (t *Tile) Node(row uint8, pos uint64) (Hash, bool) {
	if row >= TileHeight || pos >= uint64(len(t.rows[row])) {
		return Hash{}, false
	}
	return t.rows[row][pos], true
}

// Set stores the hash of the node at row and pos. Tiles only grow, in the
// order Appender completes nodes: pos must be the current length of the row,
// and for row > 0 both children must already be in row-1. Set does not
// recompute the hash from the children; the Appender already did.
func (t *Tile) Set(row uint8, pos uint64, h Hash) error {
	if row >= TileHeight {
		return fmt.Errorf("merkle: tile set %d/%d: row beyond tile height %d: %w", row, pos, TileHeight, ErrInvalidTile)
	}
	cur := t.rows[row]
	if pos != uint64(len(cur)) {
		return fmt.Errorf("merkle: tile set %d/%d: row has %d hashes, appends must be in order: %w",
			row, pos, len(cur), ErrInvalidTile)
	}
	limit := TileWidth >> row
	if len(cur) == limit {
		return fmt.Errorf("merkle: tile set %d/%d: row is full: %w", row, pos, ErrInvalidTile)
	}
	if row > 0 && uint64(len(t.rows[row-1])) < 2*pos+2 {
		return fmt.Errorf("merkle: tile set %d/%d: children not set: %w", row, pos, ErrInvalidTile)
	}
	if len(cur) == cap(cur) {
		// Grow straight to the row's final size: a tile is filled one
		// hash at a time, and decoded rows have no spare capacity.
		cur = append(make([]Hash, 0, limit), cur...)
	}
	t.rows[row] = append(cur, h)
	return nil
}

// BottomRow returns a copy of row 0: the C2SP tlog-tiles tile data to serve.
func (t *Tile) BottomRow() []Hash {
	return slices.Clone(t.rows[0])
}

// tileHashes returns how many hashes a tile of the given width stores.
func tileHashes(width int) int {
	return tileHashesBelow(width, TileHeight)
}

// tileHashesBelow returns how many hashes the rows below row hold in a tile
// of the given width: the offset of that row in the encoding, in hashes.
func tileHashesBelow(width int, row uint8) int {
	n := 0
	for r := range row {
		n += width >> r
	}
	return n
}

// AppendBinary appends the tile's encoding to b. It fails for an empty tile
// and for one whose upper rows do not hold exactly Width()>>r hashes: that
// means an append stopped half way, and storing it would lose nodes.
func (t *Tile) AppendBinary(b []byte) ([]byte, error) {
	w := t.Width()
	if w == 0 {
		return b, fmt.Errorf("merkle: encode tile: empty tile: %w", ErrInvalidTile)
	}
	for r := 1; r < TileHeight; r++ {
		if got, want := len(t.rows[r]), w>>r; got != want {
			return b, fmt.Errorf("merkle: encode tile: width %d, row %d has %d hashes, want %d: %w",
				w, r, got, want, ErrInvalidTile)
		}
	}
	b = slices.Grow(b, tileHeaderSize+HashSize*tileHashes(w))
	b = append(b, tileVersion)
	b = binary.BigEndian.AppendUint16(b, uint16(w))
	for _, row := range t.rows {
		for i := range row {
			b = append(b, row[i][:]...)
		}
	}
	return b, nil
}

// DecodeTileNode returns the hash at row and pos of an encoded tile, and
// whether it is present, without decoding the rest: a proof needs one or two
// nodes from each tile it touches. It checks the encoding as strictly as
// DecodeTile.
func DecodeTileNode(b []byte, row uint8, pos uint64) (Hash, bool, error) {
	w, err := checkTileEncoding(b)
	if err != nil {
		return Hash{}, false, err
	}
	if row >= TileHeight || pos >= uint64(w>>row) {
		return Hash{}, false, nil
	}
	off := tileHeaderSize + HashSize*(tileHashesBelow(w, row)+int(pos))
	return Hash(b[off : off+HashSize]), true, nil
}

// checkTileEncoding validates the header and length of an encoded tile and
// returns its width.
func checkTileEncoding(b []byte) (int, error) {
	if len(b) < tileHeaderSize {
		return 0, fmt.Errorf("merkle: decode tile: %d bytes, shorter than the %d-byte header: %w",
			len(b), tileHeaderSize, ErrInvalidTile)
	}
	if b[0] != tileVersion {
		return 0, fmt.Errorf("merkle: decode tile: unknown format version %d: %w", b[0], ErrInvalidTile)
	}
	w := int(binary.BigEndian.Uint16(b[1:tileHeaderSize]))
	if w == 0 || w > TileWidth {
		return 0, fmt.Errorf("merkle: decode tile: width %d not in [1, %d]: %w", w, TileWidth, ErrInvalidTile)
	}
	if want := tileHeaderSize + tileHashes(w)*HashSize; len(b) != want {
		return 0, fmt.Errorf("merkle: decode tile: width %d needs %d bytes, got %d: %w", w, want, len(b), ErrInvalidTile)
	}
	return w, nil
}

// DecodeTile decodes a tile written by AppendBinary. It checks the
// structure strictly (version, width, exact length) but not that parents
// hash their children: a proof reading one node should not re-hash the
// tile. The tile does not retain b.
func DecodeTile(b []byte) (*Tile, error) {
	w, err := checkTileEncoding(b)
	if err != nil {
		return nil, err
	}
	n := tileHashes(w)
	hs := make([]Hash, n)
	for i := range hs {
		copy(hs[i][:], b[tileHeaderSize+i*HashSize:])
	}
	t := new(Tile)
	for r := range TileHeight {
		k := w >> r
		// Full slice expressions cap each row, so appending to one row
		// can never overwrite the next.
		t.rows[r], hs = hs[:k:k], hs[k:]
	}
	return t, nil
}
