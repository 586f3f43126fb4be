package merkle

import (
	"errors"
	"fmt"
)

var (
	errProofTooLong  = errors.New("proof too long")
	errProofTooShort = errors.New("proof too short")
)

// VerifyInclusion checks that proof shows the leaf hash leaf at index in the
// tree of the given size whose root is root, following RFC 9162 §2.1.3.2.
// It returns nil on success, an error wrapping ErrInvalidProof if the proof
// cannot be a proof for that index and size, and one wrapping
// ErrRootMismatch if it leads to a different root.
func VerifyInclusion(index, size uint64, leaf Hash, proof []Hash, root Hash) error {
	if index >= size {
		return fmt.Errorf("merkle: verify inclusion: index %d not below size %d: %w", index, size, ErrInvalidProof)
	}
	got, err := rootFromInclusion(index, size, leaf, proof)
	if err != nil {
		return fmt.Errorf("merkle: verify inclusion of %d in %d: %w: %w", index, size, ErrInvalidProof, err)
	}
	if got != root {
		return fmt.Errorf("merkle: verify inclusion of %d in %d: computed root %s, want %s: %w",
			index, size, got, root, ErrRootMismatch)
	}
	return nil
}

// rootFromInclusion is the RFC 9162 §2.1.3.2 walk. fn is the index of the
// current node at the current level and sn the index of the last node there;
// when fn is a right child, or the last node (so it has no right sibling
// inside the tree), the proof element is its left sibling.
func rootFromInclusion(index, size uint64, leaf Hash, proof []Hash) (Hash, error) {
	fn, sn := index, size-1
	r := leaf
	for _, p := range proof {
		if sn == 0 {
			return Hash{}, errProofTooLong
		}
		if fn&1 == 1 || fn == sn {
			r = NodeHash(p, r)
			// A last node that is a left child has no sibling: it is
			// promoted unchanged until it becomes a right child.
			for fn&1 == 0 && fn != 0 {
				fn >>= 1
				sn >>= 1
			}
		} else {
			r = NodeHash(r, p)
		}
		fn >>= 1
		sn >>= 1
	}
	if sn != 0 {
		return Hash{}, errProofTooShort
	}
	return r, nil
}

// VerifyConsistency checks that proof shows the tree of size size1 with root
// root1 is a prefix of the tree of size size2 with root root2, following RFC
// 9162 §2.1.4.2. Errors wrap ErrInvalidProof or ErrRootMismatch as for
// VerifyInclusion.
//
// size1 == 0 and size1 == size2 need an empty proof. For size1 == 0, root1
// must be EmptyRoot (and so must root2 if size2 is 0 too).
func VerifyConsistency(size1, size2 uint64, root1, root2 Hash, proof []Hash) error {
	if err := verifyConsistency(size1, size2, root1, root2, proof); err != nil {
		return fmt.Errorf("merkle: verify consistency from %d to %d: %w", size1, size2, err)
	}
	return nil
}

func verifyConsistency(size1, size2 uint64, root1, root2 Hash, proof []Hash) error {
	switch {
	case size1 > size2:
		return fmt.Errorf("size1 above size2: %w", ErrInvalidProof)
	case size1 == 0:
		// Every tree extends the empty tree, but a claimed empty-tree root
		// that is not the empty root is still a false claim.
		if len(proof) != 0 {
			return fmt.Errorf("want an empty proof, got %d hashes: %w", len(proof), ErrInvalidProof)
		}
		empty := EmptyRoot()
		if root1 != empty {
			return fmt.Errorf("old root %s is not the empty-tree root %s: %w", root1, empty, ErrRootMismatch)
		}
		if size2 == 0 && root2 != empty {
			return fmt.Errorf("new root %s is not the empty-tree root %s: %w", root2, empty, ErrRootMismatch)
		}
		return nil
	case size1 == size2:
		if len(proof) != 0 {
			return fmt.Errorf("want an empty proof, got %d hashes: %w", len(proof), ErrInvalidProof)
		}
		if root1 != root2 {
			return fmt.Errorf("roots %s and %s of the same size differ: %w", root1, root2, ErrRootMismatch)
		}
		return nil
	case len(proof) == 0:
		return fmt.Errorf("empty proof: %w", ErrInvalidProof)
	}
	r1, r2, err := rootsFromConsistency(size1, size2, root1, proof)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidProof, err)
	}
	if r1 != root1 {
		return fmt.Errorf("computed old root %s, want %s: %w", r1, root1, ErrRootMismatch)
	}
	if r2 != root2 {
		return fmt.Errorf("computed new root %s, want %s: %w", r2, root2, ErrRootMismatch)
	}
	return nil
}

// rootsFromConsistency is the RFC 9162 §2.1.4.2 walk for 0 < size1 < size2
// and a non-empty proof. It starts from the old tree's rightmost perfect
// subtree (the old root itself when size1 is a power of two, otherwise the
// first proof element) and climbs both trees at once: left siblings feed
// both roots, right siblings only the new one.
func rootsFromConsistency(size1, size2 uint64, root1 Hash, proof []Hash) (Hash, Hash, error) {
	seed, path := proof[0], proof[1:]
	if size1&(size1-1) == 0 {
		seed, path = root1, proof
	}
	fn, sn := size1-1, size2-1
	for fn&1 == 1 {
		fn >>= 1
		sn >>= 1
	}
	fr, sr := seed, seed
	for _, c := range path {
		if sn == 0 {
			return Hash{}, Hash{}, errProofTooLong
		}
		if fn&1 == 1 || fn == sn {
			fr = NodeHash(c, fr)
			sr = NodeHash(c, sr)
			for fn&1 == 0 && fn != 0 {
				fn >>= 1
				sn >>= 1
			}
		} else {
			sr = NodeHash(sr, c)
		}
		fn >>= 1
		sn >>= 1
	}
	if sn != 0 {
		return Hash{}, Hash{}, errProofTooShort
	}
	return fr, sr, nil
}
