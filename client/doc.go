// Package client is the Go SDK for services that write audit events to
// Trail. It owns the producer's side of exactly-once delivery: batching,
// backpressure, failover between nodes, retries, an optional durable local
// spool, and checking receipts against the log's public key.
//
// A Client accepts events with Append, which returns at once with a
// Pending receipt (or, with a spool, once the event is fsync'd to local
// disk). A background batcher groups events by count, size and time and
// sends each batch with AppendBatch to one node of the cluster; any node
// accepts appends and forwards them to the Raft leader. A batch that fails
// in a way retrying may fix (UNAVAILABLE during an election, a node down,
// a timeout) is resent to the next node with the same event ids. The
// server deduplicates by (tenant, event_id) and answers a retry with the
// original receipt, so an event Append accepted is in the log exactly once,
// however often it was sent.
//
// The buffer is bounded (Config.BufferEvents). When Trail is slow or
// unreachable it fills, and Append waits for room until its context ends:
// the producer slows down rather than losing events or memory. With
// Config.SpoolDir the accepted events also survive the producer's own
// crash: the next Client opened on the directory sends them again.
//
// Receipts are evidence only once checked: Client.Prove fetches the
// inclusion proof of a receipt and Verifier.Verify checks it against the
// log's verifier key with package merkle, trusting nothing the server said
// beyond what the key signed.
//
// The subpackages audithttp and auditgrpc emit one event per request of an
// HTTP handler or gRPC server through a Client.
package client
