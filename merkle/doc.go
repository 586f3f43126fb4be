// Package merkle owns Trail's cryptographic commitments: everything an
// auditor needs to check that a tenant's log is append-only and that an entry
// is in it, and nothing about where the bytes are stored.
//
// It provides:
//
//   - RFC 9162 (§2.1) hashing: [LeafHash], [NodeHash] and [EmptyRoot].
//   - [Appender], the incremental "right edge" of a tree, which appends a leaf
//     in O(log n) time and memory and reports every node it completes so the
//     caller can persist it.
//   - Proof generation ([InclusionProof], [ConsistencyProof], [RootAt]) from
//     stored perfect-subtree hashes behind a [NodeReader], reading O(log n)
//     nodes per proof, and proof verification ([VerifyInclusion],
//     [VerifyConsistency]) following RFC 9162 §2.1.3.2 and §2.1.4.2.
//   - The hash tile layout ([TileForNode]) and its binary encoding ([Tile]),
//     which address nodes as C2SP tlog-tiles does with tiles of height 8.
//   - Checkpoints ([Checkpoint]): C2SP tlog-checkpoint bodies signed as C2SP
//     signed notes with Ed25519 via golang.org/x/mod/sumdb/note.
//   - [ChainVerifier], which checks the linear chain in which every entry
//     records the leaf hash of the entry before it.
//
// The package never holds a whole tree in memory (except [MemoryNodes],
// which exists for tests and tools), has no global mutable state and does no
// I/O of its own: storage belongs to the engine, which implements
// [NodeReader] over its stored tiles.
package merkle
