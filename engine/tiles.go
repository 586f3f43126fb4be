package engine

import (
	"cmp"
	"fmt"
	"math/bits"
	"slices"

	"github.com/trailaudit/trail/merkle"
)

// An open partition's hashes file holds its nodes in the order the Appender
// completed them (see nodePosition); each tile's nodes appear in that
// order too, interleaved with other tiles' nodes. Sealing gathers each
// tile's nodes in emission order and converts them to the merkle.Tile
// encoding segments carry.

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

// sortedTileIDs returns the keys of m in a fixed order.
func sortedTileIDs(m map[merkle.TileID][]byte) []merkle.TileID {
	ids := make([]merkle.TileID, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(x, y merkle.TileID) int {
		if x.Level != y.Level {
			return int(x.Level) - int(y.Level)
		}
		return cmp.Compare(x.Index, y.Index)
	})
	return ids
}
