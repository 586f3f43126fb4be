package report

import (
	"bytes"
	"compress/zlib"
	"encoding/csv"
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/note"

	"github.com/trailaudit/trail/merkle"
)

func TestJSONVerifies(t *testing.T) {
	f := newFixture(t)
	for name, d := range map[string]*Document{"pii": f.piiDoc(t), "history": f.historyDoc(t)} {
		t.Run(name, func(t *testing.T) {
			doc := render(t, d, FormatJSON)
			res, err := Verify(doc, f.log.verifier, "")
			if err != nil {
				t.Fatalf("Verify: %v\n%s", err, doc)
			}
			if res.Digest != d.Attestation.Digest || res.Rows != d.Content.Summary.Rows || res.Tenant != "acme" || len(res.Checkpoints) != 2 {
				t.Errorf("verified %+v", res)
			}
			// Whitespace is not content: a re-indented report still verifies.
			var re bytes.Buffer
			if err := json.Indent(&re, doc, "\t", "\t"); err != nil {
				t.Fatal(err)
			}
			if _, err := Verify(re.Bytes(), f.log.verifier, testLogName); err != nil {
				t.Errorf("re-indented: %v", err)
			}
		})
	}
}

func TestJSONPIIContent(t *testing.T) {
	f := newFixture(t)
	d := f.piiDoc(t)
	if d.Content.Summary.Flagged != 2 {
		t.Fatalf("flagged %d, want 2", d.Content.Summary.Flagged)
	}
	doc := render(t, d, FormatJSON)
	var got struct {
		Content struct {
			Accesses []map[string]any `json:"accesses"`
		} `json:"content"`
		Attestation struct {
			Proofs []InclusionProof `json:"inclusion_proofs"`
		} `json:"attestation"`
	}
	if err := json.Unmarshal(doc, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Content.Accesses) != 4 || len(got.Attestation.Proofs) != 4 {
		t.Fatalf("%d rows, %d proofs", len(got.Content.Accesses), len(got.Attestation.Proofs))
	}
	row := got.Content.Accesses[1]
	for _, k := range []string{"sequencer_time", "occurred_at", "actor_id", "actor_type", "actor_roles", "actor_display_name",
		"actor_ip", "action", "outcome", "fields_accessed", "flag", "partition", "leaf_index", "leaf_hash", "entry_bytes"} {
		if _, ok := row[k]; !ok {
			t.Errorf("row lacks %q: %v", k, row)
		}
	}
	if row["flag"] != FlagMissingPurpose {
		t.Errorf("row 1 flag %v", row["flag"])
	}
}

func TestEmptyReportVerifies(t *testing.T) {
	f := newFixture(t)
	c, err := NewPIIAccess(testLogName, PIIAccessQuery{Tenant: "acme", SubjectID: "nobody"}, nov, nil)
	if err != nil {
		t.Fatal(err)
	}
	d := f.attest(t, c)
	if _, err := Verify(render(t, d, FormatJSON), f.log.verifier, ""); err != nil {
		t.Fatal(err)
	}
	for _, format := range []Format{FormatCSV, FormatPDF} {
		if len(render(t, d, format)) == 0 {
			t.Errorf("empty %s", format)
		}
	}
}

// TestAttestationIsNotACheckpoint: the log key signs both, so neither may
// ever parse as the other.
func TestAttestationIsNotACheckpoint(t *testing.T) {
	f := newFixture(t)
	d := f.piiDoc(t)
	n, err := note.Open([]byte(d.Attestation.SignedNote), note.VerifierList(f.log.verifier))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(n.Text, testLogName+" report attestation v1\nkind pii-access\n") {
		t.Errorf("attestation body:\n%s", n.Text)
	}
	if _, err := merkle.ParseCheckpoint([]byte(n.Text)); err == nil {
		t.Error("attestation body parses as a checkpoint (merkle)")
	}
	if _, err := merkle.OpenCheckpoint([]byte(d.Attestation.SignedNote), f.log.verifier); err == nil {
		t.Error("attestation opens as a checkpoint")
	}
	first := strings.SplitN(n.Text, "\n", 2)[0]
	if _, _, _, err := log.ParseCheckpoint([]byte(d.Attestation.SignedNote), first, f.log.verifier); err == nil {
		t.Error("attestation parses as a checkpoint (transparency-dev)")
	}
	cp := d.Attestation.Checkpoints[0].SignedNote
	cn, err := note.Open([]byte(cp), note.VerifierList(f.log.verifier))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := parseAttestationBody(cn.Text); err == nil {
		t.Error("checkpoint parses as an attestation")
	}
}

func TestCSV(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name    string
		d       *Document
		header  []string
		records int // data records
	}{
		{"pii", f.piiDoc(t), accessHeader, 4},
		{"history", f.historyDoc(t), historyHeader, 3}, // one per change
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := render(t, tt.d, FormatCSV)
			recs, err := csv.NewReader(bytes.NewReader(out)).ReadAll()
			if err != nil {
				t.Fatalf("CSV does not parse back: %v\n%s", err, out)
			}
			if strings.Join(recs[0], ",") != strings.Join(tt.header, ",") {
				t.Errorf("header %q", recs[0])
			}
			col := func(name string) int {
				for i, h := range recs[0] {
					if h == name {
						return i
					}
				}
				t.Fatalf("no column %q", name)
				return -1
			}
			data, trailer := splitTrailer(recs[1:])
			if len(data) != tt.records {
				t.Fatalf("%d data records, want %d", len(data), tt.records)
			}
			for _, r := range data {
				if r[col("report_digest")] != tt.d.Attestation.Digest || r[col("leaf_hash")] == "" || r[col("checkpoint_root")] == "" {
					t.Errorf("record lacks its proof columns: %q", r)
				}
			}
			checkTrailer(t, f, tt.d, trailer)
			if tt.name == "pii" {
				if got := data[1][col("flag")]; got != FlagMissingPurpose {
					t.Errorf("record 1 flag %q", got)
				}
				if got := data[0][col("actor_roles")]; got != "caseworker;clerk" {
					t.Errorf("roles %q", got)
				}
			} else {
				// A formula is neutralized; quotes, markup and newlines survive.
				if got := data[2][col("after")]; got != "'=SUM(A1) <b>&\"quoted\"\nline" {
					t.Errorf("after %q", got)
				}
				if data[1][col("event_id")] != "h2" || data[1][col("before")] != "open" || data[1][col("after")] != "closed" {
					t.Errorf("change record %q", data[1])
				}
			}
		})
	}
}

func splitTrailer(recs [][]string) (data, trailer [][]string) {
	for i, r := range recs {
		if strings.HasPrefix(r[0], "#") {
			return recs[:i], recs[i:]
		}
	}
	return recs, nil
}

// checkTrailer opens the signed notes of the CSV trailer.
func checkTrailer(t *testing.T, f *fixture, d *Document, trailer [][]string) {
	t.Helper()
	if len(trailer) != len(d.Attestation.Checkpoints)+2 {
		t.Fatalf("%d trailer records", len(trailer))
	}
	if trailer[0][0] != CSVParametersRecord || !strings.HasPrefix(trailer[0][1], `{"`) {
		t.Errorf("parameters record %q", trailer[0][:2])
	}
	trailer = trailer[1:]
	for i, r := range trailer[:len(trailer)-1] {
		if r[0] != CSVCheckpointRecord || r[1] != d.Attestation.Checkpoints[i].Partition {
			t.Errorf("trailer %d: %q", i, r[:2])
		}
		if _, err := merkle.OpenCheckpoint([]byte(r[2]), f.log.verifier); err != nil {
			t.Errorf("trailer checkpoint %d: %v", i, err)
		}
	}
	last := trailer[len(trailer)-1]
	if last[0] != CSVAttestationRecord || last[1] != d.Attestation.Digest {
		t.Errorf("attestation record %q", last[:2])
	}
	if _, err := note.Open([]byte(last[2]), note.VerifierList(f.log.verifier)); err != nil {
		t.Errorf("attestation record note: %v", err)
	}
}

func TestPDF(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name string
		d    *Document
		want []string
	}{
		{"pii", f.piiDoc(t), []string{"PII access report", "citizen-1", "NO PURPOSE", "INVALID PURPOSE", "Flagged accesses"}},
		{"history", f.historyDoc(t), []string{"Entity history (chain of custody)", "case / 4711", "closed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := render(t, tt.d, FormatPDF)
			if !bytes.HasPrefix(out, []byte("%PDF-")) || !bytes.Contains(out[len(out)-16:], []byte("%%EOF")) {
				t.Fatalf("not a PDF: %q...", out[:min(len(out), 16)])
			}
			if !bytes.Contains(out, []byte(tt.d.Attestation.Digest)) {
				t.Error("document info lacks the digest")
			}
			text := pdfText(t, out)
			want := append(tt.want, testLogName+" report attestation v1", "digest "+tt.d.Attestation.Digest,
				tt.d.Content.Summary.Partitions[0], tt.d.sourcesHash(0))
			for _, cp := range tt.d.Attestation.Checkpoints {
				// Every line of every signed checkpoint, signature included.
				want = append(want, strings.Split(strings.TrimSpace(cp.SignedNote), "\n")[2:]...)
			}
			for _, w := range want {
				if !strings.Contains(text, pdfEscape(w)) {
					t.Errorf("PDF lacks %q", w)
				}
			}
			if again := render(t, tt.d, FormatPDF); !bytes.Equal(again, out) {
				t.Error("rendering twice gives different bytes")
			}
		})
	}
}

func (d *Document) sourcesHash(i int) string { return d.Content.sources()[i].LeafHash.String() }

// pdfText is every content stream of a PDF, inflated.
func pdfText(t *testing.T, pdf []byte) string {
	t.Helper()
	var out strings.Builder
	rest := pdf
	for {
		i := bytes.Index(rest, []byte("stream\n"))
		if i < 0 {
			return out.String()
		}
		rest = rest[i+len("stream\n"):]
		j := bytes.Index(rest, []byte("endstream"))
		if j < 0 {
			t.Fatal("unterminated stream")
		}
		r, err := zlib.NewReader(bytes.NewReader(rest[:j]))
		if err == nil {
			b, _ := io.ReadAll(r)
			out.Write(b)
		}
		rest = rest[j+len("endstream"):]
	}
}

// pdfEscape is s as it appears in a PDF string in Windows-1252.
func pdfEscape(s string) string {
	s = strings.NewReplacer(`\`, `\\`, "(", `\(`, ")", `\)`).Replace(s)
	return strings.ReplaceAll(s, "—", "\x97")
}
