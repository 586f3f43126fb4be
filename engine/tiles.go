package engine

import (
	"fmt"
	"math/bits"

	"github.com/trailaudit/trail/merkle"
)

// Open partitions store each hash tile as the node hashes in the order the
// Appender completed them, 32 bytes each, and extend it with a Pebble merge
// (Pebble's default merger concatenates operands). An append therefore
// writes only its new hashes, about 64 bytes per leaf, instead of rewriting
// a partial tile of up to 16 KiB on every batch: with small batches that
// rewrite was most of the bytes written. A node's place in that order is a
// closed formula (emissionIndex), so a read is one lookup. Sealing converts
// tiles to merkle.Tile encoding, which segments carry.

// emissionIndex is the position, within its tile's emission order, of the
// node at row and pos of the tile. Appending local leaf j emits (0, j) and
// then each (r, (j+1)>>r - 1) for r = 1.. while 2^r divides j+1, up to row
// 7 (row 8 is the next tile's row 0). So before (0, j) come j leaves and
// sum_{i<=j} tz(i) = j - popcount(j) parents: index 2j - popcount(j).
func emissionIndex(row uint8, pos uint64) uint64 {
	if row == 0 {
		return 2*pos - uint64(bits.OnesCount64(pos))
	}
	j := (pos+1)<<row - 1 // the local leaf whose append completes the node
	return emissionIndex(0, j) + uint64(row)
}

// emittedNode reads the node at row and pos from a tile in emission order.
func emittedNode(b []byte, row uint8, pos uint64) (merkle.Hash, bool, error) {
	if len(b)%merkle.HashSize != 0 || len(b) > tileNodes*merkle.HashSize {
		return merkle.Hash{}, false, fmt.Errorf("tile of %d bytes: %w", len(b), ErrCorrupt)
	}
	if row >= merkle.TileHeight || pos >= merkle.TileWidth>>row {
		return merkle.Hash{}, false, fmt.Errorf("node %d/%d outside a tile: %w", row, pos, ErrCorrupt)
	}
	i := emissionIndex(row, pos)
	if (i+1)*merkle.HashSize > uint64(len(b)) {
		return merkle.Hash{}, false, nil
	}
	return merkle.Hash(b[i*merkle.HashSize : (i+1)*merkle.HashSize]), true, nil
}

// tileNodes is the number of nodes in a full tile: rows 0..7.
const tileNodes = 2*merkle.TileWidth - 2

// emittedToTile converts a tile in emission order to a merkle.Tile.
func emittedToTile(b []byte) (*merkle.Tile, error) {
	if len(b)%merkle.HashSize != 0 || len(b) > tileNodes*merkle.HashSize {
		return nil, fmt.Errorf("tile of %d bytes: %w", len(b), ErrCorrupt)
	}
	t := new(merkle.Tile)
	n := len(b) / merkle.HashSize
	for i, j := 0, uint64(0); i < n; j++ {
		if err := t.Set(0, j, merkle.Hash(b[i*merkle.HashSize:])); err != nil {
			return nil, fmt.Errorf("tile: %w: %v", ErrCorrupt, err)
		}
		i++
		for r := uint8(1); r < merkle.TileHeight && (j+1)%(1<<r) == 0 && i < n; r++ {
			if err := t.Set(r, (j+1)>>r-1, merkle.Hash(b[i*merkle.HashSize:])); err != nil {
				return nil, fmt.Errorf("tile: %w: %v", ErrCorrupt, err)
			}
			i++
		}
	}
	return t, nil
}
