// Package natsingest appends audit events consumed from NATS JetStream.
//
// It owns the bus side of ingest: a durable pull consumer on configured
// subjects, the decoding of one message into one event (the protobuf
// encoding producers send over gRPC, the event's REST JSON form, or a
// CloudEvents 1.0 JSON envelope carrying either), acknowledgement, and
// dead letters. What an append means (validation, replication,
// deduplication by event_id) belongs to the cluster it is given; this
// package uses the same append path as the gRPC API and adds nothing to
// it.
//
// The rules it keeps:
//
//   - A message is acknowledged only after its event is committed through
//     Raft and applied on the leader, or found to be there already (a
//     duplicate event_id answers with the original receipt). A failed or
//     ambiguous append leaves the message unacknowledged; JetStream
//     redelivers it and the engine's deduplication makes the retry
//     harmless. The log therefore holds every acknowledged event exactly
//     once, whatever crashes in between.
//   - A message that can never be appended (undecodable, an invalid
//     event, a tenant outside the consumer's scope, an event_id already
//     used for different content, an event too large) is published to the
//     dead-letter subject with the reason in a header, and terminated once
//     JetStream has stored the dead letter. Nothing is dropped silently.
//   - Messages are fetched in batches and appended as one call, which the
//     cluster commits in as few Raft entries as fit.
package natsingest
