package merkle

import (
	"context"
	"fmt"
)

// MemoryNodes is a NodeReader FOR TESTS AND TOOLS: it keeps every node of the
// tree in memory (about two hashes per leaf), which production code must not
// do (invariant 7). Use it to build reference trees, to compute proofs
// over a handful of leaves in a tool, and to check a tile-backed reader.
//
// ReadNodes may be called concurrently; Append may not be called
// concurrently with anything else.
type MemoryNodes struct {
	app    *Appender
	levels [][]Hash // levels[l][i] is the hash of NodeID{l, i}
}

// NewMemoryNodes returns a tree holding the given leaf hashes.
func NewMemoryNodes(leaves []Hash) *MemoryNodes {
	app, _ := NewAppender(0, nil) // cannot fail for size 0
	m := &MemoryNodes{app: app}
	for _, l := range leaves {
		m.Append(l)
	}
	return m
}

// Append adds a leaf hash.
func (m *MemoryNodes) Append(leaf Hash) {
	m.app.Append(leaf, m.store)
}

// store records a completed node. Nodes complete in index order within each
// level, so appending keeps levels[l] indexed by node index.
func (m *MemoryNodes) store(id NodeID, h Hash) {
	for len(m.levels) <= int(id.Level) {
		m.levels = append(m.levels, nil)
	}
	m.levels[id.Level] = append(m.levels[id.Level], h)
}

// Size returns the number of leaves.
func (m *MemoryNodes) Size() uint64 {
	return m.app.Size()
}

// Root returns the root at the current size.
func (m *MemoryNodes) Root() Hash {
	return m.app.Root()
}

// ReadNodes implements NodeReader. A node that is not complete at the
// current size is reported with ErrNodeNotFound.
func (m *MemoryNodes) ReadNodes(ctx context.Context, ids []NodeID) ([]Hash, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("merkle: memory nodes: %w", err)
	}
	out := make([]Hash, len(ids))
	for i, id := range ids {
		if int(id.Level) >= len(m.levels) || id.Index >= uint64(len(m.levels[id.Level])) {
			return nil, fmt.Errorf("merkle: memory nodes: node %s at size %d: %w", id, m.Size(), ErrNodeNotFound)
		}
		out[i] = m.levels[id.Level][id.Index]
	}
	return out, nil
}
