package report

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/trailaudit/trail/merkle"
)

// attestationVersion names the attestation body layout on its first line.
const attestationVersion = "v1"

// digestPrefix names the digest algorithm wherever a digest is written.
const digestPrefix = "sha256:"

// Document is an attested report: what the renderers write.
type Document struct {
	Content     *Content
	Attestation *Attestation
	// canonical is the compact JSON of Content that the digest covers.
	canonical []byte
}

// Attestation binds a report's content to the log: the signed digest, the
// signed checkpoint of every partition the rows come from, and each row's
// inclusion proof against its partition's checkpoint (the JSON and CSV
// forms carry the proofs, the PDF through its attached JSON).
type Attestation struct {
	// Digest is "sha256:<hex>" of the canonical content.
	Digest string `json:"digest"`
	// SignedNote is the C2SP signed note of the attestation body.
	SignedNote  string             `json:"signed_note"`
	Checkpoints []SignedCheckpoint `json:"checkpoints"`
	// Proofs holds one proof per row, in row order.
	Proofs []InclusionProof `json:"inclusion_proofs,omitempty"`
}

// SignedCheckpoint is one partition's checkpoint as a C2SP signed note.
type SignedCheckpoint struct {
	Partition  string `json:"partition"`
	SignedNote string `json:"signed_note"`
}

// InclusionProof proves one row's leaf in its partition's checkpoint.
type InclusionProof struct {
	Partition string `json:"partition"`
	LeafIndex uint64 `json:"leaf_index"`
	TreeSize  uint64 `json:"tree_size"`
	AuditPath []Hash `json:"audit_path"`
}

// Prover supplies the log's evidence for an attestation.
type Prover interface {
	// SignedCheckpoint returns the partition's current checkpoint as a
	// signed note.
	SignedCheckpoint(ctx context.Context, partition string) ([]byte, error)
	// InclusionProof proves leaf in the partition's tree of size leaves.
	InclusionProof(ctx context.Context, partition string, leaf, size uint64) ([]merkle.Hash, error)
}

// Attest gathers c's checkpoints and proofs from p, checks every proof
// (the log never signs a report it cannot prove), and signs the report's
// digest with signer, the log key.
func Attest(ctx context.Context, c *Content, p Prover, signer note.Signer) (*Document, error) {
	canonical, err := canonicalJSON(c)
	if err != nil {
		return nil, err
	}
	a := &Attestation{Digest: digestOf(canonical)}
	cps := make(map[string]merkle.Checkpoint)
	for _, part := range c.Partitions() {
		signed, err := p.SignedCheckpoint(ctx, part)
		if err != nil {
			return nil, fmt.Errorf("report: checkpoint of %s: %w", part, err)
		}
		cp, err := checkpointOf(signed, c.LogName, c.TenantID, part)
		if err != nil {
			return nil, err
		}
		cps[part] = cp
		a.Checkpoints = append(a.Checkpoints, SignedCheckpoint{Partition: part, SignedNote: string(signed)})
	}
	if a.Proofs, err = proveRows(ctx, c, p, cps); err != nil {
		return nil, err
	}
	body := attestationBody{
		logName: c.LogName, kind: c.Kind, tenant: c.TenantID, generated: c.GeneratedAt,
		rows: len(c.sources()), digest: a.Digest,
	}
	for _, part := range c.Partitions() {
		body.checkpoints = append(body.checkpoints, bodyCheckpoint{partition: part, size: cps[part].Size, root: cps[part].Root})
	}
	text := body.marshal()
	// Sign only a body that parses back to itself: a tenant or log name
	// with a space or a newline would make the log sign another statement.
	if back, err := parseAttestationBody(text); err != nil || back.logName != c.LogName || back.tenant != c.TenantID {
		return nil, fmt.Errorf("report: %w: log name %q or tenant %q cannot be attested", ErrInvalid, c.LogName, c.TenantID)
	}
	signed, err := note.Sign(&note.Note{Text: text}, signer)
	if err != nil {
		return nil, fmt.Errorf("report: sign attestation: %w", err)
	}
	a.SignedNote = string(signed)
	return &Document{Content: c, Attestation: a, canonical: canonical}, nil
}

// proveRows fetches and checks each row's inclusion proof.
func proveRows(ctx context.Context, c *Content, p Prover, cps map[string]merkle.Checkpoint) ([]InclusionProof, error) {
	srcs := c.sources()
	out := make([]InclusionProof, len(srcs))
	for i, s := range srcs {
		cp := cps[s.Partition]
		path, err := p.InclusionProof(ctx, s.Partition, s.LeafIndex, cp.Size)
		if err != nil {
			return nil, fmt.Errorf("report: inclusion proof of %s leaf %d: %w", s.Partition, s.LeafIndex, err)
		}
		if err := merkle.VerifyInclusion(s.LeafIndex, cp.Size, merkle.Hash(s.LeafHash), path, cp.Root); err != nil {
			return nil, fmt.Errorf("report: %s leaf %d does not prove against its checkpoint: %w", s.Partition, s.LeafIndex, err)
		}
		out[i] = InclusionProof{Partition: s.Partition, LeafIndex: s.LeafIndex, TreeSize: cp.Size, AuditPath: hashes(path)}
	}
	return out, nil
}

func hashes(hs []merkle.Hash) []Hash {
	out := make([]Hash, len(hs))
	for i, h := range hs {
		out[i] = Hash(h)
	}
	return out
}

// canonicalJSON is the compact JSON encoding of c. HTML characters are not
// escaped, so that text reads as written; the encoding is otherwise that of
// encoding/json, whose struct field order and escapes are fixed.
func canonicalJSON(c *Content) ([]byte, error) {
	return compactJSON(c)
}

// compactJSON is the compact JSON encoding of v, HTML characters
// unescaped.
func compactJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("report: encode %T: %w", v, err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

func digestOf(canonical []byte) string {
	sum := sha256.Sum256(canonical)
	return digestPrefix + hex.EncodeToString(sum[:])
}

// noteText returns the text of a signed note, without verifying it: the
// part before the blank line that starts the signatures.
func noteText(signed []byte) ([]byte, error) {
	i := bytes.Index(signed, []byte("\n\n"))
	if i < 0 {
		return nil, fmt.Errorf("%w: not a signed note", ErrInvalid)
	}
	return signed[:i+1], nil
}

// checkpointOf parses a signed checkpoint's body (unverified: the caller
// produced or verified it) and checks its origin.
func checkpointOf(signed []byte, logName, tenant, partition string) (merkle.Checkpoint, error) {
	text, err := noteText(signed)
	if err != nil {
		return merkle.Checkpoint{}, fmt.Errorf("report: checkpoint of %s: %w", partition, err)
	}
	cp, err := merkle.ParseCheckpoint(text)
	if err != nil {
		return merkle.Checkpoint{}, fmt.Errorf("report: checkpoint of %s: %w", partition, err)
	}
	if want := origin(logName, tenant, partition); cp.Origin != want {
		return merkle.Checkpoint{}, fmt.Errorf("report: %w: checkpoint of %s has origin %q, want %q", ErrInvalid, partition, cp.Origin, want)
	}
	return cp, nil
}

// origin is a partition's checkpoint origin (invariant 5).
func origin(logName, tenant, partition string) string {
	return logName + "/" + tenant + "/" + partition
}

// attestationBody is the text of an attestation note.
type attestationBody struct {
	logName, kind, tenant string
	generated             time.Time
	rows                  int
	digest                string
	checkpoints           []bodyCheckpoint
}

type bodyCheckpoint struct {
	partition string
	size      uint64
	root      merkle.Hash
}

func (b attestationBody) marshal() string {
	var s strings.Builder
	fmt.Fprintf(&s, "%s report attestation %s\n", b.logName, attestationVersion)
	fmt.Fprintf(&s, "kind %s\n", b.kind)
	fmt.Fprintf(&s, "tenant %s\n", b.tenant)
	fmt.Fprintf(&s, "generated %s\n", b.generated.Format(time.RFC3339Nano))
	fmt.Fprintf(&s, "rows %d\n", b.rows)
	fmt.Fprintf(&s, "digest %s\n", b.digest)
	for _, c := range b.checkpoints {
		fmt.Fprintf(&s, "checkpoint %s %d %s\n", c.partition, c.size, base64.StdEncoding.EncodeToString(c.root[:]))
	}
	return s.String()
}

// parseAttestationBody parses an attestation note's text strictly: it must
// be exactly what marshal writes for the values it yields.
func parseAttestationBody(text string) (attestationBody, error) {
	var b attestationBody
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if !strings.HasSuffix(text, "\n") || len(lines) < 6 {
		return b, fmt.Errorf("%w: attestation body is not the %s layout", ErrInvalid, attestationVersion)
	}
	var ok bool
	if b.logName, ok = strings.CutSuffix(lines[0], " report attestation "+attestationVersion); !ok || b.logName == "" {
		return b, fmt.Errorf("%w: attestation body starts with %q", ErrInvalid, lines[0])
	}
	var err error
	fields := []struct {
		key   string
		parse func(string) error
	}{
		{"kind", func(v string) error { b.kind = v; return nil }},
		{"tenant", func(v string) error { b.tenant = v; return nil }},
		{"generated", func(v string) (err error) { b.generated, err = time.Parse(time.RFC3339Nano, v); return err }},
		{"rows", func(v string) (err error) { b.rows, err = strconv.Atoi(v); return err }},
		{"digest", func(v string) error { b.digest = v; return nil }},
	}
	for i, f := range fields {
		v, found := strings.CutPrefix(lines[1+i], f.key+" ")
		if !found {
			return b, fmt.Errorf("%w: attestation line %d is not %q", ErrInvalid, i+2, f.key)
		}
		if err := f.parse(v); err != nil {
			return b, fmt.Errorf("%w: attestation %s: %v", ErrInvalid, f.key, err)
		}
	}
	for _, l := range lines[6:] {
		c, err := parseBodyCheckpoint(l)
		if err != nil {
			return b, err
		}
		b.checkpoints = append(b.checkpoints, c)
	}
	if b.marshal() != text {
		err = fmt.Errorf("%w: attestation body is not in canonical form", ErrInvalid)
	}
	return b, err
}

func parseBodyCheckpoint(l string) (bodyCheckpoint, error) {
	f := strings.Split(l, " ")
	if len(f) != 4 || f[0] != "checkpoint" {
		return bodyCheckpoint{}, fmt.Errorf("%w: attestation line %q is not a checkpoint line", ErrInvalid, l)
	}
	size, err := strconv.ParseUint(f[2], 10, 64)
	if err != nil {
		return bodyCheckpoint{}, fmt.Errorf("%w: attestation checkpoint size %q", ErrInvalid, f[2])
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(f[3])
	if err != nil || len(raw) != merkle.HashSize {
		return bodyCheckpoint{}, fmt.Errorf("%w: attestation checkpoint root %q", ErrInvalid, f[3])
	}
	return bodyCheckpoint{partition: f[1], size: size, root: merkle.Hash(raw)}, nil
}
