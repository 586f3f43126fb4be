// Package witness implements the C2SP tlog-witness protocol
// (c2sp.org/tlog-witness) with Ed25519 tlog-cosignatures
// (c2sp.org/tlog-cosignature, cosignature/v1), from both sides.
//
// Server is a witness: it keeps, per log origin, the latest checkpoint it
// cosigned, and cosigns a new one only when the log's signature verifies
// and a consistency proof shows the new tree extends the old. It is what
// `trailctl witness serve` runs. Client is what a log uses to submit its
// checkpoints to a witness and collect the cosignatures.
//
// The package owns the protocol's wire formats (the add-checkpoint request
// body, the 409 size body, cosignature lines) and the witness's persisted
// state. It knows nothing of Trail's storage or replication: a log hands it
// signed checkpoint notes and consistency proofs.
package witness
