package report

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/trailaudit/trail/merkle"
)

// TestVerifyTampering alters an honest report in ways an attacker holding
// the file could (anything but the log key), and checks that Verify
// refuses each for the right reason.
func TestVerifyTampering(t *testing.T) {
	f := newFixture(t)
	honest := render(t, f.piiDoc(t), FormatJSON)
	other := f.historyDoc(t)
	otherSigner, _ := testKey(t, testLogName)
	tests := []struct {
		name   string
		tamper func(d *Document)
		want   string
	}{
		{"row purpose code", editContent(`"purpose_code":"MARKETING"`, `"purpose_code":"CASE_MGMT"`), "content was altered"},
		{"flag removed", editContent(`,"flag":"missing_purpose_code"`, ``), "content was altered"},
		{"summary count", editContent(`"flagged":2`, `"flagged":0`), "content was altered"},
		{"digest field", func(d *Document) { d.Attestation.Digest = other.Attestation.Digest }, "differs from the signed digest"},
		{"attestation of another report", func(d *Document) { d.Attestation.SignedNote = other.Attestation.SignedNote }, "content was altered"},
		{"attestation signed by another key", func(d *Document) {
			d.Attestation.SignedNote = resign(t, d.Attestation.SignedNote, otherSigner)
		}, "not signed by key"},
		{"attestation text edited", func(d *Document) {
			d.Attestation.SignedNote = strings.Replace(d.Attestation.SignedNote, "rows 4", "rows 5", 1)
		}, "not signed by key"},
		{"proof hash", func(d *Document) { d.Attestation.Proofs[2].AuditPath[0][0] ^= 1 }, "root"},
		{"proof dropped", func(d *Document) { d.Attestation.Proofs = d.Attestation.Proofs[:3] }, "3 inclusion proofs for 4 rows"},
		{"proofs swapped", func(d *Document) {
			p := d.Attestation.Proofs
			p[1], p[2] = p[2], p[1]
		}, "proof 1 is of"},
		{"proof tree size", func(d *Document) { d.Attestation.Proofs[0].TreeSize++ }, "against size"},
		{"checkpoint dropped", func(d *Document) { d.Attestation.Checkpoints = d.Attestation.Checkpoints[1:] }, "1 checkpoints"},
		{"checkpoint of another partition", func(d *Document) {
			d.Attestation.Checkpoints[0].SignedNote = d.Attestation.Checkpoints[1].SignedNote
		}, "origin"},
		{"checkpoint by another key", func(d *Document) {
			d.Attestation.Checkpoints[1].SignedNote = resign(t, d.Attestation.Checkpoints[1].SignedNote, otherSigner)
		}, "not signed"},
		{"older checkpoint", func(d *Document) {
			d.Attestation.Checkpoints[1].SignedNote = checkpointAt(t, f, "2026-11", 3)
		}, "not the one attested"},
		{"attestation removed", func(d *Document) { d.Attestation = nil }, "needs content and attestation"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := decodeDocument(honest)
			if err != nil {
				t.Fatal(err)
			}
			tt.tamper(d)
			var buf bytes.Buffer
			if d.Attestation == nil {
				buf.WriteString(`{"content":` + string(d.canonical) + `}`)
			} else if err := WriteJSON(&buf, d); err != nil {
				t.Fatal(err)
			}
			_, err = Verify(buf.Bytes(), f.log.verifier, "")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Verify = %v, want an error containing %q", err, tt.want)
			}
		})
	}
	if _, err := Verify(honest, f.log.verifier, ""); err != nil {
		t.Fatalf("the honest report does not verify: %v", err)
	}
}

// TestVerifyDishonestLog: a report signed with the log key that does not
// say what its entries say (a log, or a server, lying) is refused too.
func TestVerifyDishonestLog(t *testing.T) {
	f := newFixture(t)
	otherLog := newTestLog(t, "acme")
	tests := []struct {
		name string
		lie  func(c *Content)
		want string
	}{
		{"flag hidden", func(c *Content) { c.Accesses[1].Flag = "" }, "access row 1"},
		{"purpose invented", func(c *Content) { c.Accesses[1].PurposeCode = "CASE_MGMT" }, "access row 1"},
		{"actor renamed", func(c *Content) { c.Accesses[0].ActorID = "mallory" }, "access row 0"},
		{"summary", func(c *Content) { c.Summary.Flagged = 0 }, "summary"},
		{"valid codes", func(c *Content) { c.Parameters.ValidPurposeCodes = []string{"MARKETING"} }, "access row"},
		{"rows reordered", func(c *Content) { c.Accesses[2], c.Accesses[3] = c.Accesses[3], c.Accesses[2] }, "access row 2"},
		{"row of another subject", func(c *Content) {
			le := f.log.add(access("z", "citizen-9", "alice", "AUDIT"), nov.Add(5*time.Hour))
			other, err := NewPIIAccess(testLogName, PIIAccessQuery{Tenant: "acme", SubjectID: "citizen-9"}, nov, []LogEntry{le})
			if err != nil {
				t.Fatal(err)
			}
			c.Accesses = append(c.Accesses, other.Accesses[0])
			c.summarize()
		}, "not a data_access event on subject"},
		{"wrong tenant", func(c *Content) { c.TenantID = "globex" }, "tenant"},
		{"other log name", func(c *Content) { c.LogName = "other.log" }, "log"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := NewPIIAccess(testLogName, f.piiQuery(), nov.Add(6*time.Hour), f.subject)
			if err != nil {
				t.Fatal(err)
			}
			tt.lie(c)
			prover := Prover(f.log)
			if c.TenantID != "acme" || c.LogName != testLogName {
				prover = &renamedLog{f.log, c.LogName, c.TenantID}
			}
			d, err := Attest(context.Background(), c, prover, f.log.signer)
			if err != nil {
				t.Fatalf("Attest: %v", err)
			}
			_, err = Verify(render(t, d, FormatJSON), f.log.verifier, "")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Verify = %v, want an error containing %q", err, tt.want)
			}
		})
	}
	// A report of another log signed with a different key of the same name.
	c, err := NewPIIAccess(testLogName, f.piiQuery(), nov, nil)
	if err != nil {
		t.Fatal(err)
	}
	d, err := Attest(context.Background(), c, otherLog, otherLog.signer)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(render(t, d, FormatJSON), f.log.verifier, ""); err == nil || !strings.Contains(err.Error(), "not signed by key") {
		t.Errorf("report of another key: %v", err)
	}
	if _, err := Verify(render(t, f.piiDoc(t), FormatJSON), f.log.verifier, "another.log"); err == nil {
		t.Error("verified against another log name")
	}
}

// renamedLog serves f's trees under another log's or tenant's origins, as
// a log that lies about whose entries they are would.
type renamedLog struct {
	*testLog
	logName, tenant string
}

func (r *renamedLog) SignedCheckpoint(_ context.Context, partition string) ([]byte, error) {
	tree := r.trees[partition]
	cp := merkle.Checkpoint{Origin: origin(r.logName, r.tenant, partition), Size: tree.Size(), Root: tree.Root()}
	return merkle.SignCheckpoint(cp, r.signer)
}

func TestVerifyMalformed(t *testing.T) {
	f := newFixture(t)
	honest := render(t, f.piiDoc(t), FormatJSON)
	for name, doc := range map[string][]byte{
		"empty":          nil,
		"not JSON":       []byte("%PDF-1.3"),
		"unknown field":  bytes.Replace(honest, []byte(`"attestation": {`), []byte(`"extra": 1, "attestation": {`), 1),
		"trailing data":  append(bytes.Clone(honest), []byte(`{}`)...),
		"array":          []byte(`[]`),
		"content string": []byte(`{"content":"x","attestation":{}}`),
	} {
		if _, err := Verify(doc, f.log.verifier, ""); err == nil {
			t.Errorf("%s: verified", name)
		}
	}
}

// editContent replaces old with new in the canonical content.
func editContent(old, new string) func(d *Document) {
	return func(d *Document) {
		if !bytes.Contains(d.canonical, []byte(old)) {
			panic("fixture lacks " + old)
		}
		d.canonical = bytes.Replace(d.canonical, []byte(old), []byte(new), 1)
	}
}

// resign re-signs a note's text with another signer.
func resign(t *testing.T, signed string, s note.Signer) string {
	t.Helper()
	text, err := noteText([]byte(signed))
	if err != nil {
		t.Fatal(err)
	}
	out, err := note.Sign(&note.Note{Text: string(text)}, s)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// checkpointAt signs the checkpoint of an earlier size of a partition.
func checkpointAt(t *testing.T, f *fixture, partition string, size uint64) string {
	t.Helper()
	root, err := merkle.RootAt(context.Background(), size, f.log.trees[partition])
	if err != nil {
		t.Fatal(err)
	}
	cp := merkle.Checkpoint{Origin: origin(testLogName, "acme", partition), Size: size, Root: root}
	b, err := merkle.SignCheckpoint(cp, f.log.signer)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// FuzzVerify: Verify never panics, and whatever it accepts carries the
// signed digest of the one honest report: no edit beyond whitespace
// survives verification.
func FuzzVerify(f *testing.F) {
	fx := newSealedFixture(f)
	d := fx.piiDoc(f)
	honest := render(f, d, FormatJSON)
	f.Add(honest)
	f.Add(render(f, fx.historyDoc(f), FormatJSON))
	sealed := fx.attest(f, fx.historyContent(f))
	f.Add(render(f, sealed, FormatJSON))
	var compact bytes.Buffer
	if err := json.Compact(&compact, honest); err != nil {
		f.Fatal(err)
	}
	f.Add(compact.Bytes())
	f.Add(bytes.Replace(honest, []byte(`"leaf_index": 1`), []byte(`"leaf_index": 2`), 1))
	f.Add([]byte(`{"content":{},"attestation":{"digest":"","signed_note":"","checkpoints":null}}`))
	history := fx.historyDoc(f).Attestation.Digest
	f.Fuzz(func(t *testing.T, doc []byte) {
		res, err := Verify(doc, fx.log.verifier, "")
		if err != nil {
			return
		}
		if res.Digest != d.Attestation.Digest && res.Digest != history && res.Digest != sealed.Attestation.Digest {
			t.Fatalf("verified a report with digest %s that the log never signed", res.Digest)
		}
	})
}

func TestAttestRefusesUnparsableNames(t *testing.T) {
	f := newFixture(t)
	c, err := NewPIIAccess(testLogName, PIIAccessQuery{Tenant: "a\nrows 0", SubjectID: "s"}, nov, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Attest(context.Background(), c, f.log, f.log.signer); err == nil {
		t.Error("a tenant with a newline was attested")
	}
	if _, err := NewPIIAccess(testLogName, PIIAccessQuery{SubjectID: "s"}, nov, nil); err == nil {
		t.Error("a report without a tenant was built")
	}
}
