package report

import (
	"bytes"
	"encoding/base64"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"

	"github.com/trailaudit/trail/merkle"
)

// CSV trailer record markers (first column).
const (
	CSVParametersRecord  = "#parameters"
	CSVCheckpointRecord  = "#checkpoint"
	CSVAttestationRecord = "#attestation"
)

// csvListSep joins list values (roles, fields, proof hashes) inside one cell.
const csvListSep = ";"

// csvEvidenceColumns end every header: the entry's exact bytes, the
// opening key of an opened sealed payload, and its inclusion proof, which
// make a CSV report verifiable on its own. A CSV report whose header lacks
// them was written before they existed.
var csvEvidenceColumns = []string{"entry_bytes", csvOpeningKeyColumn, "inclusion_proof"}

// The columns of a row's sealed payload: its state on every record of the
// row, its opening key (base64) with the entry bytes.
const (
	csvPayloadColumn    = "payload_state"
	csvOpeningKeyColumn = "opening_key"
)

var accessHeader = append([]string{
	"sequencer_time", "occurred_at", "event_id", "actor_id", "actor_type", "actor_roles", "actor_display_name",
	"actor_ip", "action", "outcome", "fields_accessed", "purpose_code", "flag", csvPayloadColumn,
	"partition", "leaf_index", "leaf_hash", "checkpoint_size", "checkpoint_root", "report_digest",
}, csvEvidenceColumns...)

var historyHeader = append([]string{
	"sequencer_time", "occurred_at", "event_id", "category", "action", "outcome", "actor_id", "actor_type",
	"actor_roles", "actor_display_name", "actor_ip", "subject_id", csvPayloadColumn, "field", "before", "after",
	"partition", "leaf_index", "leaf_hash", "checkpoint_size", "checkpoint_root", "report_digest",
}, csvEvidenceColumns...)

// withoutColumns is header without the named columns.
func withoutColumns(header []string, names ...string) []string {
	return slices.DeleteFunc(slices.Clone(header), func(h string) bool { return slices.Contains(names, h) })
}

// Earlier layouts of the headers. Reports written before payload states
// carry neither payload column and verify as they did: they cannot hold
// a row of a sealed event. Reports written before the evidence columns
// cannot be verified on their own.
var (
	accessHeaderNoPayload   = withoutColumns(accessHeader, csvPayloadColumn, csvOpeningKeyColumn)
	historyHeaderNoPayload  = withoutColumns(historyHeader, csvPayloadColumn, csvOpeningKeyColumn)
	accessHeaderNoEvidence  = withoutColumns(accessHeader, append([]string{csvPayloadColumn}, csvEvidenceColumns...)...)
	historyHeaderNoEvidence = withoutColumns(historyHeader, append([]string{csvPayloadColumn}, csvEvidenceColumns...)...)
)

// WriteCSV writes d as RFC 4180 CSV (see the package documentation).
func WriteCSV(w io.Writer, d *Document) error {
	records, err := csvRecords(d)
	if err != nil {
		return err
	}
	cw := csv.NewWriter(w)
	cw.UseCRLF = true // RFC 4180 line breaks; readers turn them back into "\n"
	for _, r := range records {
		if err := cw.Write(neutralize(r)); err != nil {
			return fmt.Errorf("report: write CSV: %w", err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("report: write CSV: %w", err)
	}
	return nil
}

// csvRecords are the records of d's CSV form, before neutralization.
func csvRecords(d *Document) ([][]string, error) {
	return csvRecordsAs(d, nil)
}

// csvRecordsAs are the records of d's CSV form with the columns of header,
// the current header of d's kind (nil) or an earlier one: a verifier
// compares a file with the rendering in the file's own layout.
func csvRecordsAs(d *Document, header []string) ([][]string, error) {
	cps, err := checkpointsByPartition(d)
	if err != nil {
		return nil, err
	}
	if n := len(d.Content.sources()); len(d.Attestation.Proofs) != n {
		return nil, fmt.Errorf("report: write CSV: %w: %d inclusion proofs for %d rows", ErrInvalid, len(d.Attestation.Proofs), n)
	}
	var records [][]string
	if d.Content.Kind == KindEntityHistory {
		records = historyRecords(d, cps)
	} else {
		records = accessRecords(d, cps)
	}
	if header != nil && !slices.Equal(header, records[0]) {
		if records, err = projectColumns(records, header); err != nil {
			return nil, err
		}
	}
	params, err := compactJSON(d.Content.Parameters)
	if err != nil {
		return nil, err
	}
	return append(records, trailerRecords(d, string(params), len(records[0]))...), nil
}

// projectColumns keeps the columns of header, in its order, of records
// whose first record is their header.
func projectColumns(records [][]string, header []string) ([][]string, error) {
	idx := make([]int, len(header))
	for i, h := range header {
		if idx[i] = slices.Index(records[0], h); idx[i] < 0 {
			return nil, fmt.Errorf("report: write CSV: %w: no column %q", ErrInvalid, h)
		}
	}
	out := make([][]string, len(records))
	for i, r := range records {
		out[i] = make([]string, len(idx))
		for j, k := range idx {
			out[i][j] = r[k]
		}
	}
	return out, nil
}

// checkpointsByPartition parses the document's checkpoints for display.
func checkpointsByPartition(d *Document) (map[string]merkle.Checkpoint, error) {
	out := make(map[string]merkle.Checkpoint)
	for _, sc := range d.Attestation.Checkpoints {
		cp, err := checkpointOf([]byte(sc.SignedNote), d.Content.LogName, d.Content.TenantID, sc.Partition)
		if err != nil {
			return nil, err
		}
		out[sc.Partition] = cp
	}
	return out, nil
}

// proofColumns are the columns every record ends with. The entry bytes and
// the proof are written once per row: proof is nil on the second and later
// records of an event with several changes.
func proofColumns(s Source, proof *InclusionProof, cps map[string]merkle.Checkpoint, digest string) []string {
	cp := cps[s.Partition]
	var entry, key, path string
	if proof != nil {
		entry = base64.StdEncoding.EncodeToString(s.EntryBytes)
		if len(s.OpeningKey) > 0 {
			key = base64.StdEncoding.EncodeToString(s.OpeningKey)
		}
		hs := make([]string, len(proof.AuditPath))
		for i, h := range proof.AuditPath {
			hs[i] = h.String()
		}
		path = strings.Join(hs, csvListSep)
	}
	return []string{
		s.Partition, strconv.FormatUint(s.LeafIndex, 10), s.LeafHash.String(),
		strconv.FormatUint(cp.Size, 10), base64.StdEncoding.EncodeToString(cp.Root[:]), digest, entry, key, path,
	}
}

func accessRecords(d *Document, cps map[string]merkle.Checkpoint) [][]string {
	out := [][]string{accessHeader}
	for i, r := range d.Content.Accesses {
		rec := []string{
			timeText(r.SequencerTime), timeText(r.OccurredAt), r.EventID, r.ActorID, r.ActorType,
			strings.Join(r.ActorRoles, csvListSep), r.ActorName, r.ActorIP, r.Action, r.Outcome,
			strings.Join(r.FieldsAccessed, csvListSep), r.PurposeCode, r.Flag, string(r.Payload),
		}
		out = append(out, append(rec, proofColumns(r.Source, &d.Attestation.Proofs[i], cps, d.Attestation.Digest)...))
	}
	return out
}

func historyRecords(d *Document, cps map[string]merkle.Checkpoint) [][]string {
	out := [][]string{historyHeader}
	for i, r := range d.Content.History {
		changes := r.Changes
		if len(changes) == 0 {
			changes = []Change{{}} // one record for an event without changes
		}
		for j, ch := range changes {
			rec := []string{
				timeText(r.SequencerTime), timeText(r.OccurredAt), r.EventID, r.Category, r.Action, r.Outcome,
				r.ActorID, r.ActorType, strings.Join(r.ActorRoles, csvListSep), r.ActorName, r.ActorIP, r.SubjectID,
				string(r.Payload), ch.Field, ch.Before, ch.After,
			}
			var proof *InclusionProof
			if j == 0 {
				proof = &d.Attestation.Proofs[i]
			}
			out = append(out, append(rec, proofColumns(r.Source, proof, cps, d.Attestation.Digest)...))
		}
	}
	return out
}

// trailerRecords carry the parameters, the signed checkpoints and the
// attestation, padded to width so that every record has the header's
// number of fields.
func trailerRecords(d *Document, params string, width int) [][]string {
	pad := func(fields ...string) []string {
		rec := make([]string, width)
		copy(rec, fields)
		return rec
	}
	out := [][]string{pad(CSVParametersRecord, params)}
	for _, sc := range d.Attestation.Checkpoints {
		out = append(out, pad(CSVCheckpointRecord, sc.Partition, sc.SignedNote))
	}
	return append(out, pad(CSVAttestationRecord, d.Attestation.Digest, d.Attestation.SignedNote))
}

// neutralizing are the first characters that make a spreadsheet evaluate
// a cell as a formula.
const neutralizing = "=+-@\t\r"

// neutralize prefixes cells a spreadsheet would evaluate as formulas with a
// single quote. Trailer markers ("#...") and signed notes are unaffected:
// they start with neither of these characters.
func neutralize(rec []string) []string {
	for i, v := range rec {
		if v != "" && strings.ContainsRune(neutralizing, rune(v[0])) {
			rec[i] = "'" + v
		}
	}
	return rec
}

// unneutralize undoes neutralize for a cell the verifier decodes (base64
// entry bytes may start with "+").
func unneutralize(v string) string {
	if len(v) > 1 && v[0] == '\'' && strings.ContainsRune(neutralizing, rune(v[1])) {
		return v[1:]
	}
	return v
}

// csvFile is a CSV report as read: its records, the line each starts on,
// and the document its entry bytes, proofs and trailer records carry.
type csvFile struct {
	// records[0] is the header, of the current layout or an earlier one.
	records [][]string
	lines   []int
	doc     *Document
}

// readCSVRecords parses RFC 4180 CSV whose records all have the same
// number of fields, and notes the line each record starts on.
func readCSVRecords(b []byte) (recs [][]string, lines []int, err error) {
	r := csv.NewReader(bytes.NewReader(b))
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return recs, lines, nil
		}
		if err != nil {
			return nil, nil, err
		}
		line, _ := r.FieldPos(0)
		recs = append(recs, rec)
		lines = append(lines, line)
	}
}

// decodeCSV reads a CSV report and rebuilds, unverified, the document it
// carries: the content from the entry bytes, the parameters and the
// attestation's kind, tenant and time; the attestation from the trailer
// and each row's proof. Verification then treats it as a JSON report, and
// checks that the file is exactly that document's CSV rendering.
func decodeCSV(b []byte) (*csvFile, error) {
	recs, lines, err := readCSVRecords(b)
	if err != nil {
		return nil, fmt.Errorf("report: %w: not a CSV report: %v", ErrInvalid, err)
	}
	if len(recs) == 0 {
		return nil, fmt.Errorf("report: %w: empty CSV report", ErrInvalid)
	}
	header := recs[0]
	var kind string
	switch {
	case slices.Equal(header, accessHeader), slices.Equal(header, accessHeaderNoPayload):
		kind = KindPIIAccess
	case slices.Equal(header, historyHeader), slices.Equal(header, historyHeaderNoPayload):
		kind = KindEntityHistory
	case slices.Equal(header, accessHeaderNoEvidence), slices.Equal(header, historyHeaderNoEvidence):
		return nil, fmt.Errorf("report: %w: this CSV report predates CSV reports carrying entry bytes and proofs: it cannot be verified on its own", ErrInvalid)
	default:
		return nil, fmt.Errorf("report: %w: not a Trail CSV report: the header is not a PII access report's or an entity history's", ErrInvalid)
	}
	col := make(map[string]int, len(header))
	for i, h := range header {
		col[h] = i
	}
	end := 1
	for end < len(recs) && !strings.HasPrefix(recs[end][0], "#") {
		end++
	}
	data, trailer := recs[1:end], recs[end:]
	d := &Document{Attestation: new(Attestation)}
	params, err := decodeCSVTrailer(trailer, lines[end:], d.Attestation)
	if err != nil {
		return nil, err
	}
	entries, proofs, err := decodeCSVRows(data, lines[1:end], col, kind)
	if err != nil {
		return nil, err
	}
	text, err := noteText([]byte(d.Attestation.SignedNote))
	if err != nil {
		return nil, fmt.Errorf("report: %s record: %w", CSVAttestationRecord, err)
	}
	body, err := parseAttestationBody(string(text))
	if err != nil {
		return nil, fmt.Errorf("report: %s record: %w", CSVAttestationRecord, err)
	}
	if body.kind != kind {
		return nil, fmt.Errorf("report: %w: the CSV has the columns of a %s report, its attestation is of a %s report", ErrInvalid, kind, body.kind)
	}
	switch kind {
	case KindPIIAccess:
		q := PIIAccessQuery{Tenant: body.tenant, SubjectID: params.SubjectID, From: params.From, To: params.To, ValidPurposeCodes: params.ValidPurposeCodes}
		d.Content, err = NewPIIAccess(body.logName, q, body.generated, entries)
	default:
		q := EntityHistoryQuery{Tenant: body.tenant, TargetType: params.TargetType, TargetID: params.TargetID, From: params.From, To: params.To}
		d.Content, err = NewEntityHistory(body.logName, q, body.generated, entries)
	}
	if err != nil {
		return nil, err
	}
	// The proofs in the content's row order; a reordered file is caught
	// when it is compared with the rendering.
	for _, s := range d.Content.sources() {
		d.Attestation.Proofs = append(d.Attestation.Proofs, proofs[leafKey{s.Partition, s.LeafIndex}])
	}
	if d.canonical, err = canonicalJSON(d.Content); err != nil {
		return nil, err
	}
	return &csvFile{records: recs, lines: lines, doc: d}, nil
}

// decodeCSVTrailer reads the trailer records: the parameters, each
// checkpoint and the attestation, in that order and nothing after.
func decodeCSVTrailer(trailer [][]string, lines []int, a *Attestation) (Parameters, error) {
	var p Parameters
	if len(trailer) < 2 || trailer[0][0] != CSVParametersRecord || len(trailer[0]) < 3 {
		return p, fmt.Errorf("report: %w: the CSV report has no %s record after its rows", ErrInvalid, CSVParametersRecord)
	}
	if err := strictUnmarshal([]byte(trailer[0][1]), &p); err != nil {
		return p, fmt.Errorf("report: %w: line %d: %s: %v", ErrInvalid, lines[0], CSVParametersRecord, err)
	}
	last := len(trailer) - 1
	for i, r := range trailer[1:last] {
		if r[0] != CSVCheckpointRecord {
			return p, fmt.Errorf("report: %w: line %d: %q record where a %s record belongs", ErrInvalid, lines[1+i], r[0], CSVCheckpointRecord)
		}
		a.Checkpoints = append(a.Checkpoints, SignedCheckpoint{Partition: r[1], SignedNote: unneutralize(r[2])})
	}
	if r := trailer[last]; r[0] != CSVAttestationRecord {
		return p, fmt.Errorf("report: %w: line %d: the CSV report does not end with its %s record", ErrInvalid, lines[last], CSVAttestationRecord)
	}
	a.Digest, a.SignedNote = trailer[last][1], unneutralize(trailer[last][2])
	return p, nil
}

type leafKey struct {
	partition string
	leaf      uint64
}

// decodeCSVRows reads each row's position, entry bytes and proof. An
// entity history writes them on the first record of each event only.
func decodeCSVRows(data [][]string, lines []int, col map[string]int, kind string) ([]LogEntry, map[leafKey]InclusionProof, error) {
	var entries []LogEntry
	proofs := make(map[leafKey]InclusionProof)
	for i, r := range data {
		bad := func(format string, args ...any) error {
			return fmt.Errorf("report: %w: line %d: %s", ErrInvalid, lines[i], fmt.Sprintf(format, args...))
		}
		// The payload columns are absent from reports written before them.
		cell := func(name string) string {
			if j, ok := col[name]; ok {
				return r[j]
			}
			return ""
		}
		entry, keyText, path := r[col["entry_bytes"]], cell(csvOpeningKeyColumn), r[col["inclusion_proof"]]
		if entry == "" {
			if path != "" || keyText != "" || kind != KindEntityHistory || i == 0 {
				return nil, nil, bad("the record has no entry bytes")
			}
			continue
		}
		b, err := base64.StdEncoding.Strict().DecodeString(unneutralize(entry))
		if err != nil {
			return nil, nil, bad("entry_bytes is not base64: %v", err)
		}
		var openingKey []byte
		if keyText != "" {
			if openingKey, err = base64.StdEncoding.Strict().DecodeString(unneutralize(keyText)); err != nil {
				return nil, nil, bad("%s is not base64: %v", csvOpeningKeyColumn, err)
			}
		}
		leaf, err := strconv.ParseUint(r[col["leaf_index"]], 10, 64)
		if err != nil {
			return nil, nil, bad("leaf_index %q", r[col["leaf_index"]])
		}
		size, err := strconv.ParseUint(r[col["checkpoint_size"]], 10, 64)
		if err != nil {
			return nil, nil, bad("checkpoint_size %q", r[col["checkpoint_size"]])
		}
		var hashes []Hash
		if path != "" {
			for _, s := range strings.Split(path, csvListSep) {
				var h Hash
				if err := h.UnmarshalText([]byte(s)); err != nil {
					return nil, nil, bad("inclusion_proof: %v", err)
				}
				hashes = append(hashes, h)
			}
		}
		part := r[col["partition"]]
		key := leafKey{part, leaf}
		if _, dup := proofs[key]; dup {
			return nil, nil, bad("%s leaf %d appears twice", part, leaf)
		}
		proofs[key] = InclusionProof{Partition: part, LeafIndex: leaf, TreeSize: size, AuditPath: hashes}
		entries = append(entries, LogEntry{Partition: part, LeafIndex: leaf, Data: b,
			Payload: PayloadState(cell(csvPayloadColumn)), OpeningKey: openingKey})
	}
	return entries, proofs, nil
}

// VerifyCSV checks a CSV report offline with the log's public key alone.
// The document it carries (see decodeCSV) must pass every check Verify
// makes of a JSON report, and the file must be exactly that document's CSV
// rendering, record by record: an edited cell, a dropped, added or
// reordered record, or a digest of another report fails.
func VerifyCSV(b []byte, key note.Verifier, logName string) (*Verified, error) {
	logName, err := checkVerifyArgs(b, key, logName)
	if err != nil {
		return nil, err
	}
	cf, err := decodeCSV(b)
	if err != nil {
		return nil, err
	}
	v, err := verifyDocument(cf.doc, key, logName)
	if err != nil {
		return nil, err
	}
	want, err := csvRecordsAs(cf.doc, cf.records[0])
	if err != nil {
		return nil, err
	}
	if err := compareCSV(cf, want); err != nil {
		return nil, fmt.Errorf("report: verify: %w", err)
	}
	v.Format, v.Records = FormatCSV, len(cf.records)
	return v, nil
}

// compareCSV requires the file's records to be want, neutralized.
func compareCSV(cf *csvFile, want [][]string) error {
	header := cf.records[0]
	for i, w := range want {
		if i == len(cf.records) {
			return fmt.Errorf("%w: the CSV ends after %d records, the attested report has %d: records were removed", ErrInvalid, len(cf.records), len(want))
		}
		w = neutralize(slices.Clone(w))
		got := cf.records[i]
		for j := range w {
			if got[j] == w[j] {
				continue
			}
			name := fmt.Sprintf("field %d", j+1)
			if !strings.HasPrefix(w[0], "#") {
				name = header[j]
			}
			return fmt.Errorf("%w: line %d, %s: the CSV has %q, the attested report %q: the CSV was altered",
				ErrInvalid, cf.lines[i], name, shorten(got[j]), shorten(w[j]))
		}
	}
	if len(cf.records) > len(want) {
		return fmt.Errorf("%w: line %d: the CSV has %d records, the attested report %d: records were added", ErrInvalid, cf.lines[len(want)], len(cf.records), len(want))
	}
	return nil
}

// shorten cuts a value for an error message.
func shorten(s string) string {
	const n = 80
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
