package merkle

import "errors"

// Sentinel errors. Functions wrap them with context, so test with errors.Is.
var (
	// ErrInvalidProof means a proof is malformed for the sizes and index it
	// claims to cover: wrong length, index out of range, sizes out of order.
	ErrInvalidProof = errors.New("invalid proof")

	// ErrRootMismatch means a proof is well formed but does not lead to the
	// expected root: the data, the proof or the root is not what was claimed.
	ErrRootMismatch = errors.New("root mismatch")

	// ErrOutOfRange means a proof or root was requested for an index or size
	// the tree cannot have (index not below size, size1 greater than size2).
	ErrOutOfRange = errors.New("out of range")

	// ErrNodeNotFound is returned by a NodeReader asked for a node it does not
	// hold, such as a subtree that is not complete yet.
	ErrNodeNotFound = errors.New("node not found")

	// ErrInvalidTile means a tile encoding or a tile update is malformed.
	ErrInvalidTile = errors.New("invalid tile")

	// ErrInvalidCheckpoint means a checkpoint body does not follow the C2SP
	// tlog-checkpoint format exactly.
	ErrInvalidCheckpoint = errors.New("invalid checkpoint")

	// ErrUnverified means a signed note is malformed or does not carry a
	// valid signature by the expected key.
	ErrUnverified = errors.New("checkpoint signature not verified")

	// ErrChainBroken means an entry does not record the leaf hash of the
	// entry before it.
	ErrChainBroken = errors.New("chain broken")
)
