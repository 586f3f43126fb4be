package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/trailaudit/trail/merkle"
)

// MaxDocumentBytes bounds a report file the verifiers read whole.
const MaxDocumentBytes = 1 << 30

// Verified is what Verify established about a report.
type Verified struct {
	// Format is the format of the file verified.
	Format    Format
	Kind      string
	Tenant    string
	LogName   string
	Generated time.Time
	Rows      int
	Flagged   int
	Digest    string
	// Erased is the number of rows whose sealed payload was erased,
	// Unavailable of those the server could not open.
	Erased, Unavailable int
	// Checkpoints are the partitions' verified checkpoints, in order.
	Checkpoints []merkle.Checkpoint
	// Records is the number of records of a CSV report, header and
	// trailer included; Pages the number of pages of a PDF report.
	Records, Pages int
	// Members are the file names in a bundle, JSON, CSV and PDF.
	Members []string
}

// Verify checks a JSON report offline with the log's public key alone:
//
//   - the attestation note is signed by key, names logName (default: the
//     key's name), and its digest is the SHA-256 of the content as received
//     (whitespace aside), with the content's kind, tenant, time and row count;
//   - every checkpoint is signed by key, is of its partition of the tenant,
//     and is the one the attestation names; there is one per partition the
//     rows come from, and no other;
//   - every row's leaf hash is the hash of its entry bytes, and its inclusion
//     proof leads from that leaf to its partition's signed root;
//   - rebuilding the report from the entry bytes and the parameters yields
//     the content exactly: every row, flag and count is what the log says.
func Verify(doc []byte, key note.Verifier, logName string) (*Verified, error) {
	_, v, err := verifyJSON(doc, key, logName)
	return v, err
}

// VerifyFile checks a report file in any format, which it recognizes by
// its first bytes: [Verify] for JSON, [VerifyCSV], [VerifyPDF] or
// [VerifyBundle].
func VerifyFile(b []byte, key note.Verifier, logName string) (*Verified, error) {
	switch DetectFormat(b) {
	case FormatPDF:
		return VerifyPDF(b, key, logName)
	case FormatBundle:
		return VerifyBundle(b, key, logName)
	case FormatCSV:
		return VerifyCSV(b, key, logName)
	}
	return Verify(b, key, logName)
}

// DetectFormat names the format a report file appears to be in by its
// first bytes: a PDF or zip signature, a JSON object, and otherwise CSV.
func DetectFormat(b []byte) Format {
	switch {
	case bytes.HasPrefix(b, []byte("%PDF-")):
		return FormatPDF
	case bytes.HasPrefix(b, []byte("PK\x03\x04")), bytes.HasPrefix(b, []byte("PK\x05\x06")):
		return FormatBundle
	}
	if t := bytes.TrimLeft(b, " \t\r\n"); len(t) == 0 || t[0] == '{' || t[0] == '[' {
		return FormatJSON
	}
	return FormatCSV
}

// checkVerifyArgs checks the arguments every verifier takes and returns
// the log name to require.
func checkVerifyArgs(doc []byte, key note.Verifier, logName string) (string, error) {
	if key == nil {
		return "", errors.New("report: verify: no log key")
	}
	if len(doc) > MaxDocumentBytes {
		return "", fmt.Errorf("report: %w: document of %d bytes exceeds %d", ErrInvalid, len(doc), MaxDocumentBytes)
	}
	if logName == "" {
		logName = key.Name()
	}
	return logName, nil
}

// verifyJSON verifies a JSON report and returns the document it holds.
func verifyJSON(doc []byte, key note.Verifier, logName string) (*Document, *Verified, error) {
	logName, err := checkVerifyArgs(doc, key, logName)
	if err != nil {
		return nil, nil, err
	}
	d, err := decodeDocument(doc)
	if err != nil {
		return nil, nil, err
	}
	v, err := verifyDocument(d, key, logName)
	if err != nil {
		return nil, nil, err
	}
	v.Format = FormatJSON
	return d, v, nil
}

// verifyDocument makes Verify's checks of a decoded document, whatever
// the file it came from.
func verifyDocument(d *Document, key note.Verifier, logName string) (*Verified, error) {
	v := &verification{d: d, key: key, logName: logName}
	for _, step := range []func() error{v.attestation, v.checkpoints, v.proofs, v.rebuild} {
		if err := step(); err != nil {
			return nil, fmt.Errorf("report: verify: %w", err)
		}
	}
	c := d.Content
	return &Verified{
		Kind: c.Kind, Tenant: c.TenantID, LogName: c.LogName, Generated: c.GeneratedAt,
		Rows: c.Summary.Rows, Flagged: c.Summary.Flagged, Erased: c.Summary.Erased, Unavailable: c.Summary.Unavailable, Digest: d.Attestation.Digest, Checkpoints: v.ordered,
	}, nil
}

// decodeDocument parses a JSON report strictly and keeps the content's
// canonical bytes: the content member with insignificant whitespace removed.
func decodeDocument(doc []byte) (*Document, error) {
	var jd jsonDocument
	if err := strictUnmarshal(doc, &jd); err != nil {
		return nil, fmt.Errorf("report: %w: not a JSON report: %v", ErrInvalid, err)
	}
	if len(jd.Content) == 0 || jd.Attestation == nil {
		return nil, fmt.Errorf("report: %w: JSON report needs content and attestation", ErrInvalid)
	}
	var canonical bytes.Buffer
	if err := json.Compact(&canonical, jd.Content); err != nil {
		return nil, fmt.Errorf("report: %w: content: %v", ErrInvalid, err)
	}
	c := new(Content)
	if err := strictUnmarshal(canonical.Bytes(), c); err != nil {
		return nil, fmt.Errorf("report: %w: content: %v", ErrInvalid, err)
	}
	return &Document{Content: c, Attestation: jd.Attestation, canonical: canonical.Bytes()}, nil
}

// strictUnmarshal refuses unknown fields and trailing data: a verifier
// cannot vouch for what it does not understand.
func strictUnmarshal(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("data after the JSON value")
	}
	return nil
}

// verification is the state of one Verify call.
type verification struct {
	d       *Document
	key     note.Verifier
	logName string
	body    attestationBody
	cps     map[string]merkle.Checkpoint
	ordered []merkle.Checkpoint
}

// attestation checks the signed note against the content.
func (v *verification) attestation() error {
	a, c := v.d.Attestation, v.d.Content
	n, err := note.Open([]byte(a.SignedNote), note.VerifierList(v.key))
	if err != nil {
		return fmt.Errorf("attestation is not signed by key %s: %w", v.key.Name(), err)
	}
	if v.body, err = parseAttestationBody(n.Text); err != nil {
		return err
	}
	digest := digestOf(v.d.canonical)
	b := v.body
	switch {
	case b.logName != v.logName:
		return fmt.Errorf("attestation is of log %q, want %q", b.logName, v.logName)
	case c.LogName != v.logName:
		return fmt.Errorf("content names log %q, want %q", c.LogName, v.logName)
	case b.digest != digest:
		return fmt.Errorf("content digest is %s, the attestation signs %s: the content was altered", digest, b.digest)
	case a.Digest != b.digest:
		return fmt.Errorf("attestation digest field %q differs from the signed digest %s", a.Digest, b.digest)
	case b.kind != c.Kind || b.tenant != c.TenantID || !b.generated.Equal(c.GeneratedAt) || b.rows != len(c.sources()):
		return fmt.Errorf("%w: the signed attestation does not describe this content", ErrInvalid)
	}
	return nil
}

// checkpoints opens every signed checkpoint and matches it with the
// attestation's checkpoint lines and the rows' partitions.
func (v *verification) checkpoints() error {
	a, c := v.d.Attestation, v.d.Content
	parts := c.Partitions()
	if len(a.Checkpoints) != len(parts) || len(v.body.checkpoints) != len(parts) {
		return fmt.Errorf("%w: %d checkpoints and %d attested for %d partitions", ErrInvalid, len(a.Checkpoints), len(v.body.checkpoints), len(parts))
	}
	v.cps = make(map[string]merkle.Checkpoint, len(parts))
	for i, part := range parts {
		sc, bc := a.Checkpoints[i], v.body.checkpoints[i]
		if sc.Partition != part || bc.partition != part {
			return fmt.Errorf("%w: checkpoint %d is of %q, attested for %q, want %q", ErrInvalid, i, sc.Partition, bc.partition, part)
		}
		cp, err := merkle.OpenCheckpoint([]byte(sc.SignedNote), v.key)
		if errors.Is(err, merkle.ErrUnverified) {
			return fmt.Errorf("checkpoint of %s is not signed by key %s: %w", part, v.key.Name(), err)
		}
		if err != nil {
			return fmt.Errorf("checkpoint of %s: %w", part, err)
		}
		if want := origin(v.logName, c.TenantID, part); cp.Origin != want {
			return fmt.Errorf("%w: checkpoint of %s has origin %q, want %q", ErrInvalid, part, cp.Origin, want)
		}
		if cp.Size != bc.size || cp.Root != bc.root {
			return fmt.Errorf("%w: checkpoint of %s is not the one attested", ErrInvalid, part)
		}
		v.cps[part] = cp
		v.ordered = append(v.ordered, cp)
	}
	return nil
}

// proofs checks every row's leaf hash and inclusion proof.
func (v *verification) proofs() error {
	srcs := v.d.Content.sources()
	pr := v.d.Attestation.Proofs
	if len(pr) != len(srcs) {
		return fmt.Errorf("%w: %d inclusion proofs for %d rows", ErrInvalid, len(pr), len(srcs))
	}
	for i, s := range srcs {
		p := pr[i]
		cp := v.cps[s.Partition]
		switch {
		case p.Partition != s.Partition || p.LeafIndex != s.LeafIndex:
			return fmt.Errorf("%w: proof %d is of %s leaf %d, row is %s leaf %d", ErrInvalid, i, p.Partition, p.LeafIndex, s.Partition, s.LeafIndex)
		case p.TreeSize != cp.Size:
			return fmt.Errorf("%w: proof %d is against size %d, the checkpoint has %d", ErrInvalid, i, p.TreeSize, cp.Size)
		case merkle.LeafHash(s.EntryBytes) != merkle.Hash(s.LeafHash):
			return fmt.Errorf("%w: row %d (%s leaf %d): leaf hash is not the hash of its entry bytes", ErrInvalid, i, s.Partition, s.LeafIndex)
		}
		path := make([]merkle.Hash, len(p.AuditPath))
		for j, h := range p.AuditPath {
			path[j] = merkle.Hash(h)
		}
		if err := merkle.VerifyInclusion(s.LeafIndex, cp.Size, merkle.Hash(s.LeafHash), path, cp.Root); err != nil {
			return fmt.Errorf("row %d (%s leaf %d): %w", i, s.Partition, s.LeafIndex, err)
		}
	}
	return nil
}

// rebuild builds the report anew from the proven entry bytes and the
// parameters and requires the very content that was signed.
func (v *verification) rebuild() error {
	c := v.d.Content
	// Each row's payload state and opening key are checked against its
	// entry bytes as the rows are built again: a state claimed for a clear
	// event, or a key that does not open the payload, fails.
	entries := c.entries()
	p := c.Parameters
	var (
		again *Content
		err   error
	)
	switch c.Kind {
	case KindPIIAccess:
		if len(c.History) > 0 {
			return fmt.Errorf("%w: a PII access report has history rows", ErrInvalid)
		}
		q := PIIAccessQuery{Tenant: c.TenantID, SubjectID: p.SubjectID, From: p.From, To: p.To, ValidPurposeCodes: p.ValidPurposeCodes}
		again, err = NewPIIAccess(c.LogName, q, c.GeneratedAt, entries)
	case KindEntityHistory:
		if len(c.Accesses) > 0 {
			return fmt.Errorf("%w: an entity history has access rows", ErrInvalid)
		}
		q := EntityHistoryQuery{Tenant: c.TenantID, TargetType: p.TargetType, TargetID: p.TargetID, From: p.From, To: p.To}
		again, err = NewEntityHistory(c.LogName, q, c.GeneratedAt, entries)
	default:
		return fmt.Errorf("%w: unknown report kind %q", ErrInvalid, c.Kind)
	}
	if err != nil {
		return err
	}
	if c.Version != contentVersion {
		return fmt.Errorf("%w: content version %d, want %d", ErrInvalid, c.Version, contentVersion)
	}
	if err := sameRows(c, again); err != nil {
		return err
	}
	canonical, err := canonicalJSON(again)
	if err != nil {
		return err
	}
	if !bytes.Equal(canonical, v.d.canonical) {
		return fmt.Errorf("%w: the content is not what its entries and parameters yield (rows out of log order, or summary or parameters differ)", ErrInvalid)
	}
	return nil
}

// sameRows names the first row that differs from its rebuilt form, for a
// precise message; rebuild compares the whole content afterwards.
func sameRows(c, again *Content) error {
	enc := func(v any) []byte { b, _ := json.Marshal(v); return b }
	for i := range min(len(c.Accesses), len(again.Accesses)) {
		if !bytes.Equal(enc(c.Accesses[i]), enc(again.Accesses[i])) {
			return fmt.Errorf("%w: access row %d (%s leaf %d) differs from its entry", ErrInvalid, i, c.Accesses[i].Partition, c.Accesses[i].LeafIndex)
		}
	}
	for i := range min(len(c.History), len(again.History)) {
		if !bytes.Equal(enc(c.History[i]), enc(again.History[i])) {
			return fmt.Errorf("%w: history row %d (%s leaf %d) differs from its entry", ErrInvalid, i, c.History[i].Partition, c.History[i].LeafIndex)
		}
	}
	return nil
}
