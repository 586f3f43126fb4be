// Package bundle owns Trail's attested export format: a self-contained,
// streamable file that carries a slice of one tenant's log together with
// everything an auditor needs to check it offline against the log's public
// key alone. It provides the [Writer] the server streams exports with and
// the [Verifier] behind "trailctl verify --bundle"; both work in constant
// memory, whatever the size of the export.
//
// # Format (trail-bundle/1)
//
// A bundle is JSON Lines: one JSON object per line, each line ending in
// "\n", each object starting with its "type" key. Bytes are standard
// base64, hashes included.
//
//	header       exactly once, first: format, log name, tenant, the export's
//	             filters, creation time, the log key's name and hash and,
//	             when the server knows it, the verifier key text
//	checkpoint   once per partition covered, before that partition's
//	             entries, partitions in month order: the C2SP signed note and
//	             (unsigned conveniences) its size and root
//	entry        in log order: partition, leaf_index, leaf_hash, the exact
//	             hashed entry bytes ("entry"; absent and "pruned":true when
//	             retention removed the payload) and an RFC 9162 inclusion
//	             proof against the partition's checkpoint
//	consistency  right after a leaf 0 whose prev_partition link records a
//	             size for the previous partition other than that partition's
//	             checkpoint in the bundle: the consistency proof between the
//	             two trees
//	manifest     exactly once, last: per-partition counts, the SHA-256 of
//	             every preceding byte, and a note signed by the log key
//	             over that digest and the counts
//
// The manifest's signed note makes the bundle as a whole attested: a line
// dropped, added, edited or reordered changes the digest, and the digest
// cannot be re-signed without the log key. The note's text cannot be
// mistaken for a checkpoint: its second line is not a tree size.
//
// # Verification
//
// [Verifier.Verify] reads a bundle once, holding one line and a few hashes
// per partition. It checks the header's key against the key the auditor
// trusts (the bundle's own key is informational), every checkpoint's
// signature and origin "<log>/<tenant>/<YYYY-MM>", every entry's leaf hash
// (recomputed from the bytes, never re-encoded), inclusion proof, decoded
// tenant, partition, leaf index, sequencer time and the export's filters,
// the prev_leaf_hash chain between consecutive leaves, partition links and
// their consistency proofs, and the manifest. The first failure is returned
// as an [*Error] naming the line; success returns a [Report].
package bundle
