// Package bundle owns Trail's attested export format: a self-contained,
// streamable file that carries a slice of one tenant's log together with
// everything an auditor needs to check it offline against the log's public
// key alone. It provides the [Writer] the server streams exports with and
// the [Verifier] behind "trailctl verify --bundle"; both work in constant
// memory, whatever the size of the export.
//
// # Format (trail-bundle/4)
//
// A bundle is JSON Lines: one JSON object per line, each line ending in
// "\n", each object starting with its "type" key. Bytes are standard
// base64, hashes included.
//
//	header       exactly once, first: format, log name, tenant, the export's
//	             selection ("filter", a filter.Filter, normalized: each
//	             field's values sorted), creation time, the log key's name
//	             and hash and, when the server knows it, the verifier key
//	             text
//	checkpoint   once per partition covered, before that partition's
//	             runs, partitions in month order: the C2SP signed note and
//	             (unsigned conveniences) its size and root
//	run          opens a run of consecutive leaves of the partition: its
//	             first leaf "begin" and "prefix", the compact range
//	             [0, begin) of the partition's tree (one hash per set bit
//	             of begin, largest subtree first)
//	entry        the run's leaves, in leaf order, each in one fixed layout:
//	             partition, leaf_index, leaf_hash, then the exact hashed
//	             entry bytes ("entry"), or "pruned":true when retention
//	             removed the payload
//	run_end      closes the run: "end", the leaf after its last, and
//	             "consistency", the consistency proof from the tree at end
//	             to the checkpoint (empty when end is the checkpoint's size)
//	opening      right after a sealed entry (crypto-shredding, package
//	             shred), when the exporting node could tell: "opened" with
//	             the event's key, which the verifier checks opens the
//	             ciphertext the leaf hash covers, or "erased" (the subject's
//	             data key was erased; the entry must be sealed)
//	consistency  right after a leaf 0 whose prev_partition link records a
//	             size for the previous partition other than that partition's
//	             checkpoint in the bundle: the consistency proof between the
//	             two trees
//	manifest     exactly once, last: per-partition counts, the SHA-256 of
//	             every preceding line (an entry line by what it states:
//	             partition, leaf index, pruned flag, leaf hash; see
//	             digest.go), and a note signed by the log key over that
//	             digest and the counts
//
// An unfiltered export has one run per partition; a filter, a time range
// or an entry appended after the checkpoint was fixed splits runs. Runs of
// a partition ascend and never overlap. The run's proof comes in two
// halves around its entries because the exporter learns where a run ends
// only when it sees the entry after it: the prefix is known at the start,
// and the consistency proof needs the end. Both sides stay streaming:
// nothing is buffered and runs have no length limit.
//
// The manifest's signed note makes the bundle as a whole attested: a line
// dropped, added, edited or reordered changes the digest, and the digest
// cannot be re-signed without the log key. The note's text cannot be
// mistaken for a checkpoint: its second line is not a tree size.
//
// Version 1 carried an inclusion proof on every entry line; verifiers
// refuse it with a message saying so. Version 3 is version 4 without
// opening lines; verifiers read it. Version 2 is version 3 with one
// value per filter field, under the header key "filters"; verifiers read
// it as the equivalent filter.
//
// # Verification
//
// [Verifier.Verify] reads a bundle once, holding one line, a few hashes
// per partition and one compact range (O(log n) hashes) for the open run.
// It checks the header's key against the key the auditor trusts (the
// bundle's own key is informational), every checkpoint's signature and
// origin "<log>/<tenant>/<YYYY-MM>", every entry's leaf hash (recomputed
// from the bytes, never re-encoded), decoded tenant, partition, leaf
// index, sequencer time and the export's filters, the prev_leaf_hash
// chain between consecutive leaves, every run's proof (see runs.go for
// why it proves each leaf of the run as an inclusion proof would),
// partition links and their consistency proofs, and the manifest. The
// first failure is returned as an [*Error] naming the line; success
// returns a [Report].
//
// Entry lines, nearly all of a bundle, are parsed by hand in their fixed
// layout and their protobuf bytes read only as far as the checks need, so
// the verifier's time goes into hashing: each leaf hash, about one node
// hash per leaf for the runs, and a 50-byte digest record per entry.
package bundle
