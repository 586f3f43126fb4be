// Package engine is Trail's storage engine: it owns the bytes of every log
// entry, the hash tiles of every partition's Merkle tree, the secondary
// indexes, the event_id dedup keys, and the applied index, all in one Pebble
// database, plus the immutable segment files of sealed partitions.
//
// The engine is single-node and knows nothing of replication: the raftnode
// package feeds it already-ordered batches, each tagged with the Raft index
// that carries it. Apply is deterministic (DESIGN.md invariant 6): two engines
// fed the same batches hold byte-identical entries and roots.
//
// # Layout
//
// A tenant's log is cut into monthly partitions (tenant, UTC month of
// sequencer time). Each partition is one contiguous Pebble key range:
//
//	'p' tenant 0x00 yyyy mm 'e' leaf      -> entry bytes (exactly what was hashed)
//	'p' tenant 0x00 yyyy mm 't' lvl idx   -> hash tile (merkle.Tile encoding)
//	'p' tenant 0x00 yyyy mm 'x' leaf      -> prune record of a payload removed by retention
//
// State that must outlive sealing lives outside the partition ranges:
//
//	'c' tenant 0x00 yyyy mm               -> partition catalog record (size, root, right edge, sealed)
//	'h' tenant                            -> tenant head (current partition, last leaf hash, last time)
//	'd' tenant 0x00 event_id              -> dedup record (original receipt)
//	'i' tenant 0x00 kind value 0x00 yyyy mm leaf -> secondary index key (empty value)
//	'm' "applied"                         -> Raft index of the last applied command
//
// Dedup and index keys are tenant-wide rather than per partition because
// event_id uniqueness and search both span every month of a tenant's log;
// keeping them out of the partition range lets sealing drop the range whole.
//
// # Memory
//
// Per tenant the engine holds its head, the compact range (O(log n) hashes)
// of its open partition, and that partition's partial tiles (at most one per
// tile level). Nothing held grows with the length of the log (invariant 7).
package engine
