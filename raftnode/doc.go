// Package raftnode is Trail's replication layer. It owns everything between
// a producer's append and the engine's Apply on every node: the Raft group
// (hashicorp/raft over TCP, TLS optional), the fsync'd Raft log, the state
// machine that feeds committed entries to the engine, the leader's
// group-commit batcher, forwarding of writes from followers to the leader,
// snapshots of the engine, and membership.
//
// # Write path
//
// Node.Append validates events (engine.ValidateEvent) so that a bad event
// never reaches the log, then sends them to the leader: directly into the
// batcher on the leader, over the forwarding protocol from a follower. The
// batcher packs concurrent callers into one Raft entry (bounded by events,
// bytes and a short linger), stamps the entry with the sequencer time
// max(now, last) and keeps several entries in flight. Each caller gets its
// own results once the entry is committed by a quorum and applied.
//
// # Errors
//
// "No leader" and "not leader" are retried inside Append until the caller's
// deadline. When Raft reports that leadership was lost while an entry was
// being committed, the entry may or may not be in the log: Append returns an
// *AmbiguousError and the caller retries with the same event ids, which the
// engine deduplicates (invariant 8).
//
// # Determinism
//
// The state machine never reads the clock or random numbers: the sequencer
// time travels inside the command, and every replica applies the same bytes
// (invariant 6). Entries at or below the engine's applied index are
// skipped on replay (invariant 10).
//
// # Raft log
//
// The Raft log is hashicorp/raft-wal by default (Config.LogStore): segment
// files written once and fsync'd per append, measured 2-3x cheaper per
// fsync'd 1 MiB entry than a dedicated Pebble instance, which remains
// available (LogStorePebble) and runs on any vfs.FS.
//
// # One port
//
// Raft traffic and forwarding share one TCP port: the first byte a dialer
// writes on a new connection (inside TLS when it is on) says which protocol
// follows.
package raftnode
