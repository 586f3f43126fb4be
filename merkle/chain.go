package merkle

import "fmt"

// ChainVerifier checks the linear chain of invariant 3: every entry
// records prev_leaf_hash, the leaf hash of the tenant's entry before it, so
// dropping, reordering or inserting an entry anywhere breaks a link even
// across partitions. Feed it the entries in order.
type ChainVerifier struct {
	prev  Hash   // leaf hash the next entry must record
	pos   uint64 // position of the next entry, for messages
	count uint64
}

// NewChainVerifier starts a chain check. prev is the prev_leaf_hash the
// first entry must record (the zero Hash for a tenant's first ever entry)
// and start is that entry's position, used only in error messages.
func NewChainVerifier(prev Hash, start uint64) *ChainVerifier {
	return &ChainVerifier{prev: prev, pos: start}
}

// Next checks one entry: leaf is its leaf hash and prevLeaf the
// prev_leaf_hash it records. A mismatch returns an error wrapping
// ErrChainBroken with the position and both hashes. Either way the verifier
// moves on to expect leaf next, so each broken link is reported once; a
// caller that needs an unbroken chain stops at the first error.
func (v *ChainVerifier) Next(leaf, prevLeaf Hash) error {
	var err error
	if prevLeaf != v.prev {
		err = fmt.Errorf("merkle: entry %d records previous leaf hash %s, want %s: %w",
			v.pos, prevLeaf, v.prev, ErrChainBroken)
	}
	v.prev = leaf
	v.pos++
	v.count++
	return err
}

// Last returns the leaf hash of the last entry checked, or the starting
// prev hash if none was: the prev_leaf_hash the next entry must record.
func (v *ChainVerifier) Last() Hash {
	return v.prev
}

// Count returns the number of entries checked.
func (v *ChainVerifier) Count() uint64 {
	return v.count
}
