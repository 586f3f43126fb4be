package merkle

import (
	"context"
	"fmt"
	"math/bits"
)

// NodeReader returns stored hashes of perfect subtrees. The engine implements
// it over hash tiles. ids may be in any order and the result must be aligned
// with them. A reader asked for a node it does not hold should return an
// error wrapping ErrNodeNotFound.
type NodeReader interface {
	ReadNodes(ctx context.Context, ids []NodeID) ([]Hash, error)
}

// InclusionProof returns the RFC 9162 §2.1.3.1 inclusion proof of the leaf
// at index in the tree of the given size, reading the O(log size) stored
// nodes it needs with a single ReadNodes call.
func InclusionProof(ctx context.Context, index, size uint64, r NodeReader) ([]Hash, error) {
	if index >= size {
		return nil, fmt.Errorf("merkle: inclusion proof: index %d not below size %d: %w", index, size, ErrOutOfRange)
	}
	p := newPlan(size)
	p.path(0, index, size)
	proof, err := p.resolve(ctx, r)
	if err != nil {
		return nil, fmt.Errorf("merkle: inclusion proof of %d in %d: %w", index, size, err)
	}
	return proof, nil
}

// ConsistencyProof returns the RFC 9162 §2.1.4.1 consistency proof between
// the trees of sizes size1 and size2, reading the O(log size2) stored nodes
// it needs with a single ReadNodes call. The proof is empty when size1 is 0
// or equal to size2: there is nothing to prove.
func ConsistencyProof(ctx context.Context, size1, size2 uint64, r NodeReader) ([]Hash, error) {
	if size1 > size2 {
		return nil, fmt.Errorf("merkle: consistency proof: size1 %d above size2 %d: %w", size1, size2, ErrOutOfRange)
	}
	if size1 == 0 || size1 == size2 {
		return []Hash{}, nil
	}
	// The old tree's rightmost perfect subtree is the node (level, index)
	// below. The proof is that node (unless it is the whole old tree, whose
	// root the verifier already has) followed by its inclusion path in the
	// new tree.
	level := uint(bits.TrailingZeros64(size1))
	index := (size1 - 1) >> level
	p := newPlan(size2)
	if index != 0 {
		p.add(NodeID{Level: uint8(level), Index: index})
	}
	p.path(level, index, size2)
	proof, err := p.resolve(ctx, r)
	if err != nil {
		return nil, fmt.Errorf("merkle: consistency proof from %d to %d: %w", size1, size2, err)
	}
	return proof, nil
}

// RootAt returns the root of the tree at the given size from its stored
// perfect subtrees, for instance to sign a checkpoint at an earlier size.
func RootAt(ctx context.Context, size uint64, r NodeReader) (Hash, error) {
	if size == 0 {
		return EmptyRoot(), nil
	}
	p := newPlan(size)
	p.addRange(64, size)
	hs, err := p.resolve(ctx, r)
	if err != nil {
		return Hash{}, fmt.Errorf("merkle: root at %d: %w", size, err)
	}
	return hs[0], nil
}

// plan lists the stored nodes a proof needs and how they combine. Each proof
// element is either one perfect subtree or a node on the right border of the
// tree that is not perfect; such a node is not stored (it changes as the tree
// grows), so it is computed from the perfect subtrees that make it up.
type plan struct {
	ids   []NodeID
	parts []int // parts[k] is how many consecutive ids make up element k
}

// newPlan returns a plan with room for any proof in a tree of the given
// size (about two nodes per level), so a proof allocates its ids once.
func newPlan(size uint64) *plan {
	n := 2*bits.Len64(size) + 1
	return &plan{ids: make([]NodeID, 0, n), parts: make([]int, 0, n)}
}

// add appends an element that is a single stored node.
func (p *plan) add(id NodeID) {
	p.ids = append(p.ids, id)
	p.parts = append(p.parts, 1)
}

// addRange appends one element: the tree covering leaves
// [size &^ (1<<level - 1), size), computed from its perfect subtrees, one per
// set bit of size below level, largest first. A level of 64 covers the whole
// tree, so the element is the root.
func (p *plan) addRange(level uint, size uint64) {
	n := 0
	for t := min(level, 64); t > 0; t-- {
		l := t - 1
		if size&(1<<l) != 0 {
			p.ids = append(p.ids, NodeID{Level: uint8(l), Index: size>>l - 1})
			n++
		}
	}
	p.parts = append(p.parts, n)
}

// addBorder appends one element: the node at the given level on the right
// border of the tree of the given size. It is stored if it is perfect;
// otherwise it covers [size &^ (1<<level - 1), size) and is made up of the
// perfect subtrees given by the bits of size below level.
func (p *plan) addBorder(level uint, size uint64) {
	if size&(1<<level-1) == 0 {
		p.add(NodeID{Level: uint8(level), Index: size>>level - 1})
		return
	}
	p.addRange(level, size)
}

// path appends the inclusion path of the perfect subtree (level, index) in
// the tree of the given size, bottom-up: the sibling of each of its
// ancestors, where one exists.
func (p *plan) path(level uint, index, size uint64) {
	last := (size - 1) >> level
	// Below the level where index's path joins the path of the last leaf,
	// every sibling is a perfect subtree, except the topmost one, which is
	// the right-border node covering the rest of the tree.
	inner := uint(bits.Len64(index ^ last))
	for j := uint(0); j+1 < inner; j++ {
		p.add(NodeID{Level: uint8(level + j), Index: (index >> j) ^ 1})
	}
	if inner > 0 {
		p.addBorder(level+inner-1, size)
	}
	// Above it the path runs along the right border: an ancestor that is a
	// right child has a perfect left sibling; a left child has no sibling
	// and is promoted unchanged.
	for j := inner; index>>j != 0; j++ {
		if (index>>j)&1 == 1 {
			p.add(NodeID{Level: uint8(level + j), Index: index>>j - 1})
		}
	}
}

// resolve reads every node of the plan in one call and combines them into
// the proof elements.
func (p *plan) resolve(ctx context.Context, r NodeReader) ([]Hash, error) {
	var hs []Hash
	if len(p.ids) > 0 {
		var err error
		if hs, err = r.ReadNodes(ctx, p.ids); err != nil {
			return nil, fmt.Errorf("read %d nodes: %w", len(p.ids), err)
		}
		if len(hs) != len(p.ids) {
			return nil, fmt.Errorf("read %d nodes: reader returned %d hashes", len(p.ids), len(hs))
		}
	}
	out := make([]Hash, len(p.parts))
	for k, n := range p.parts {
		out[k] = foldRight(hs[:n])
		hs = hs[n:]
	}
	return out, nil
}
