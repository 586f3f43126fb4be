// Package report owns Trail's compliance reports: the PII access report (every
// data_access event on one data subject, with the accesses that lack a valid
// purpose code flagged) and the entity history (every event on one target
// entity, oldest first, with its field-level before/after changes). It builds
// their content from log entries, attests it with the log key, renders it as
// JSON, CSV, PDF or a bundle of all three, and verifies each offline.
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
// # Sealed payloads
//
// A tenant may seal its subjects' payloads (package shred): an event's
// changes and attributes are then an AES-GCM ciphertext in the entry
// bytes, under a key derived from the subject's data key. Every row says
// what became of its event's payload ([PayloadState], "payload_state"):
// nothing for an event that is not sealed; "opened" when the server
// opened it, and the row's source then carries the event's opening key
// (base64, "opening_key") and a history row shows the opened changes;
// "erased" when the subject's data key was erased (GDPR Art. 17), and
// "unavailable" when the server could not open it, both without changes.
// The summary counts the rows in each state. These are claims about the
// entry bytes and are checked as rows are built, by the server and by
// every verifier: a state claimed for an event that is not sealed, a
// sealed event without a state, an opening key that does not open the
// ciphertext (shred.Open) or does not give exactly the changes shown, or
// a key on a row that is not "opened", fails. A verifier cannot tell an
// erased payload from one the server chose not to open: only that it is
// sealed.
//
// # Attestation
//
// For every partition the rows come from, the attestation holds that
// partition's signed checkpoint at the time of the report and each row's
// inclusion proof against it. The report itself is attested by a
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
// per field change (entity history; an event without changes, or whose
// payload is erased or unavailable, has one record with empty change
// columns). Each record carries its payload state, its partition, leaf
// index and leaf hash, the size and root of the checkpoint it is proven
// against, and the report digest; the last three columns hold the row's
// entry bytes (base64), opening key (base64, opened payloads only) and
// inclusion proof (hex hashes joined by ";"), on the first record of each
// event only. Trailer records, padded to the header's
// width, follow the data: a "#parameters" record with the parameters'
// compact JSON, "#checkpoint" records with each partition's signed
// checkpoint and an "#attestation" record with the digest and the signed
// attestation. Cells that a spreadsheet would run as a formula (starting
// with =, +, -, @, tab or carriage return) are prefixed with a single quote;
// the JSON report carries the values unaltered.
//
// PDF: title, parameters, summary counts (flagged accesses and, when there
// are sealed payloads, their states included), a table of the rows with
// their leaf positions and hashes, a row of a sealed event marked as such
// ("payload erased (GDPR Art. 17)" in place of its changes), and an attestation
// section with the digest, the signed attestation and every signed
// checkpoint; the document's Subject is the digest, its Producer names the
// PDF layout, and the JSON report is attached to it (a document-level
// embedded file named as [FileName] names the JSON). Text is set in the
// PDF core fonts, whose Windows-1252 encoding cannot show every character:
// others print as "?", and cells too long for their column are shortened
// with "…"; the JSON report has every value in full. A PDF holds at most
// [MaxPDFRows] rows, other formats [MaxRows].
//
// Bundle: a zip archive of the JSON, CSV and PDF renderings of one attested
// report, so that one run yields all three with one digest. Every format is
// a function of the document alone: the same document renders to the same
// bytes.
//
// # Verification
//
// Every format verifies offline with the log's public key alone, and
// every verifier makes the JSON checks ([Verify]) of the report the file
// carries; a verifier fails closed on anything it cannot account for.
//
//   - CSV ([VerifyCSV]): the report is rebuilt from the entry bytes, the
//     "#parameters" record and the kind, tenant and time of the signed
//     attestation; its canonical content must have the signed digest, each
//     row's proof must hold, and the file must be that report's CSV,
//     record for record. An edited cell, a dropped, added or reordered
//     record, or a digest or attestation of another run fails.
//   - PDF ([VerifyPDF]): the attached JSON report is verified, the PDF must
//     state its digest, and the file must be that report's PDF rendering,
//     object for object (a stream may be compressed differently if it
//     inflates to the same bytes). The PDF is read in the layout its
//     library writes and no other: a PDF saved by another program, or
//     amended by an incremental update, fails. Re-rendering needs the
//     layout the PDF was written in: the verifier checks the layout this
//     package renders and refuses others by name.
//   - Bundle ([VerifyBundle]): exactly one JSON, one CSV and one PDF, each
//     verifying, all with the one digest.
//
// [VerifyFile] tells the formats apart by their first bytes. CSV and PDF
// reports written before they carried entry bytes, proofs or an attached
// report are refused as not verifiable on their own. A CSV report written
// before the payload columns verifies in its own layout when none of its
// rows is of a sealed event; JSON and PDF reports without sealed rows are
// as they were. A verifier that predates payload states refuses a report
// with them (unknown fields, unknown CSV header) rather than misreading it,
// so neither the content version nor the PDF layout changed.
package report
