package engine

import (
	"context"
	"fmt"

	"github.com/trailaudit/trail/merkle"
)

// CompactRange returns the compact range [0, size) of p's tree: the roots
// of its perfect subtrees, largest (leftmost) first, one per set bit of
// size, which is what merkle.NewAppender takes to resume the tree at size.
// Exports send it ahead of a run of leaves starting at size, so a verifier
// can fold the run's leaves into the root at the run's end without the
// leaves before it. It reads O(log size) stored hashes, in one call.
func (e *Engine) CompactRange(ctx context.Context, p Partition, size uint64) ([]merkle.Hash, error) {
	v, err := e.view(p)
	if err != nil {
		return nil, err
	}
	defer v.release()
	if size > v.cat.Size {
		return nil, fmt.Errorf("engine: compact range of %s at %d (size %d): %w", p, size, v.cat.Size, ErrBadSize)
	}
	ids := compactRangeIDs(size)
	if len(ids) == 0 {
		return []merkle.Hash{}, nil
	}
	hs, err := v.ReadNodes(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("engine: compact range of %s at %d: %w", p, size, err)
	}
	return hs, nil
}

// compactRangeIDs names the perfect subtrees of [0, size), largest first:
// for each set bit l of size, from the top, the node at level l ending at
// size's prefix up to and including that bit.
func compactRangeIDs(size uint64) []merkle.NodeID {
	var ids []merkle.NodeID
	for l := 63; l >= 0; l-- {
		if size&(1<<l) != 0 {
			ids = append(ids, merkle.NodeID{Level: uint8(l), Index: size>>l - 1})
		}
	}
	return ids
}
