// Package engine is Trail's storage engine: it owns the bytes of every log
// entry, every partition's Merkle tree, the search indexes, the event_id
// dedup records and the applied index: open partitions in append-only
// files, sealed ones in segment files, and the rest in one Pebble database.
//
// The engine is single-node and knows nothing of replication: the raftnode
// package feeds it already-ordered batches, each tagged with the Raft index
// that carries it. Apply is deterministic (invariant 6): two engines fed
// the same batches hold byte-identical entries and roots.
//
// # Layout
//
// A tenant's log is cut into monthly partitions (tenant, UTC month of
// sequencer time). An open partition is three append-only files under
// open/<tenant>/<YYYY-MM>/ (partfiles.go): the entries as hashed, each
// leaf's end offset, and every stored tree node in the order appends
// complete them. A sealed partition is a segment file (package segment).
//
// Pebble holds, with key prefixes chosen so that the sstables a checkpoint
// ingests never overlap each other or the memtable (keys.go):
//
//	'D' identity                       -> dedup record (original receipt)
//	'c' tenant 0x00 yyyy mm            -> partition catalog record (size, root, right edge, sealed)
//	'e' tenant 0x00 yyyy mm firstleaf  -> the chunk holding a partition's leaves from firstleaf
//	'h' tenant                         -> tenant head (partition, last leaf hash, last time)
//	'k' chunk                          -> a chunk's sequencer-time bounds
//	'm' name                           -> applied index, hash-log length, next chunk, format
//	'p' tenant 0x00 yyyy mm 'x' leaf   -> prune record of an open partition's leaf
//	'q' / 'r' tenant 0x00 yyyy mm      -> segment rewrite / deletion to finish after a crash
//	's' key                            -> replicated settings (API keys, policies, holds)
//	'z' chunk tenant 0x00 kind hash value 0x00 yyyy mm -> posting list (leaves)
//
// # Writes and durability
//
// Apply writes entries to the partitions' files and keeps dedup records and
// posting lists in the current chunk in memory (chunk.go, postings.go); a
// bloom filter over every identity (bloom.go) spares new events any
// lookup. A checkpoint (checkpoint.go) makes everything applied durable in
// one atomic Pebble ingest; after a crash Open returns to the last one and
// Raft replays the rest (invariant 10).
//
// # Memory
//
// Per tenant the engine holds its head; per open partition, its compact
// range (O(log n) hashes); the current chunk and, while it is checkpointed,
// the previous one; and the dedup filter, 12 bits per event ever appended,
// the one structure that grows with the log (invariant 7).
package engine
