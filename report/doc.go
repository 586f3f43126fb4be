// Package report owns Trail's compliance reports: the PII access report (every
// data_access event on one data subject, with the accesses that lack a valid
// purpose code flagged) and the entity history (every event on one target
// entity, oldest first, with its field-level before/after changes). It builds
// their content from log entries, attests it with the log key, renders it as
// JSON, CSV or PDF, and verifies a JSON report offline.
//
// The package does no I/O of its own beyond the io.Writer it renders to and
// knows nothing about storage: the server hands it entries (their exact
// stored bytes) and a [Prover] for checkpoints and inclusion proofs.
//
// # Content
//
// Every row of a report is derived from the entry bytes of one leaf, which
// the JSON report carries verbatim (invariant 1): a verifier
// recomputes the leaf hash from those bytes, proves the leaf, and rebuilds
// the row from the decoded entry, so no field of a row rests on the report's
// word alone. The canonical content is the compact JSON encoding of
// [Content]; its SHA-256 is the report digest.
//
// # Attestation
//
// For every partition the rows come from, the attestation holds that
// partition's signed checkpoint at the time of the report and, for JSON,
// each row's inclusion proof against it. The report itself is attested by a
// C2SP signed note, signed with the log key, whose body is
//
//	<log name> report attestation v1
//	kind <pii-access | entity-history>
//	tenant <tenant id>
//	generated <RFC 3339 time>
//	rows <n>
//	digest sha256:<hex SHA-256 of the canonical content>
//	checkpoint <YYYY-MM> <tree size> <base64 root>   (one line per partition)
//
// The second line is never a decimal number, so an attestation can never be
// mistaken for a checkpoint (whose second line is the tree size), nor a
// checkpoint for an attestation: the one key signs both kinds of statement.
//
// # Formats
//
// JSON: {"content": ..., "attestation": ...}; [Verify] checks it with the
// log's public key alone. Only whitespace may change between the server and
// the verifier: the digest is taken over the content member with
// insignificant whitespace removed, never over a re-encoding.
//
// CSV (RFC 4180): a header row, then one record per access (PII report) or
// per field change (entity history; an event without changes has one record
// with empty change columns). Each record carries its partition, leaf index
// and leaf hash, the size and root of the checkpoint it is proven against,
// and the report digest. Trailer records, padded to the header's width,
// follow the data: "#checkpoint" records with each partition's signed
// checkpoint and an "#attestation" record with the digest and the signed
// attestation. Cells that a spreadsheet would run as a formula (starting
// with =, +, -, @, tab or carriage return) are prefixed with a single quote;
// the JSON report carries the values unaltered.
//
// PDF: title, parameters, summary counts (flagged accesses included), a
// table of the rows with their leaf positions and hashes, and an attestation
// section with the digest, the signed attestation and every signed
// checkpoint. Text is set in the PDF core fonts, whose Windows-1252 encoding
// cannot show every character: others print as "?", and cells too long for
// their column are shortened with "…"; the JSON report has every value in
// full. A PDF holds at most [MaxPDFRows] rows, other formats [MaxRows].
package report
