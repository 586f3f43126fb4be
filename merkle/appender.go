package merkle

import (
	"fmt"
	"math"
	"math/bits"
	"slices"
)

// NodeID names a perfect subtree: the node at Level covering leaves
// [Index<<Level, (Index+1)<<Level). Leaves are at level 0.
type NodeID struct {
	Level uint8
	Index uint64
}

// String returns the node as "level/index", for messages.
func (id NodeID) String() string {
	return fmt.Sprintf("%d/%d", id.Level, id.Index)
}

// Appender is the compact range [0, size) of a tree: the roots of the perfect
// subtrees along its right edge, one per set bit of size. That is all the
// state needed to append a leaf and to compute the root, so memory is
// O(log n) however large the tree grows (invariant 7).
//
// An Appender is not safe for concurrent use.
type Appender struct {
	size uint64
	edge []Hash // largest (leftmost) subtree first; len == popcount(size)
}

// NewAppender resumes a tree of the given size from its right edge, as
// returned by RightEdge: the hashes of the perfect subtrees of [0, size),
// largest (leftmost) first. NewAppender(0, nil) starts an empty tree.
func NewAppender(size uint64, rightEdge []Hash) (*Appender, error) {
	if want := bits.OnesCount64(size); len(rightEdge) != want {
		return nil, fmt.Errorf("merkle: new appender: size %d needs %d right-edge hashes, got %d",
			size, want, len(rightEdge))
	}
	// Room for the deepest possible edge, so appends never reallocate.
	edge := make([]Hash, len(rightEdge), 64)
	copy(edge, rightEdge)
	return &Appender{size: size, edge: edge}, nil
}

// Append adds a leaf hash at index Size(). For every node that becomes
// complete (the leaf itself at level 0, then each parent completed by it,
// bottom-up), visit is called with its id and hash, in that order; this is
// how the caller learns which stored nodes to write. visit may be nil.
//
// Append panics if the tree already holds 2^64-1 leaves.
func (a *Appender) Append(leaf Hash, visit func(id NodeID, h Hash)) {
	if a.size == math.MaxUint64 {
		panic("merkle: append: tree is full")
	}
	id := NodeID{Level: 0, Index: a.size}
	h := leaf
	if visit != nil {
		visit(id, h)
	}
	// Each trailing one bit of size is a perfect subtree of the same height
	// as h immediately to its left: merge them, carrying upward like a
	// binary increment.
	for n := a.size; n&1 == 1; n >>= 1 {
		last := len(a.edge) - 1
		h = NodeHash(a.edge[last], h)
		a.edge = a.edge[:last]
		id = NodeID{Level: id.Level + 1, Index: id.Index >> 1}
		if visit != nil {
			visit(id, h)
		}
	}
	a.edge = append(a.edge, h)
	a.size++
}

// Size returns the number of leaves appended so far.
func (a *Appender) Size() uint64 {
	return a.size
}

// Root returns the root of the tree at its current size, or EmptyRoot for
// an empty tree. It does not change the Appender.
func (a *Appender) Root() Hash {
	return foldRight(a.edge)
}

// RightEdge returns a copy of the right edge, in the order NewAppender
// takes it, so the caller can persist it and resume later.
func (a *Appender) RightEdge() []Hash {
	return slices.Clone(a.edge)
}

// foldRight returns the root of the tree whose perfect subtrees, left to
// right, are hs: under RFC 9162's split rule the left child of every node on
// the right border is the largest perfect subtree, so the root is
// hs[0] · (hs[1] · (... · hs[n-1])). It returns EmptyRoot for no subtrees.
func foldRight(hs []Hash) Hash {
	if len(hs) == 0 {
		return EmptyRoot()
	}
	h := hs[len(hs)-1]
	for i := len(hs) - 2; i >= 0; i-- {
		h = NodeHash(hs[i], h)
	}
	return h
}
