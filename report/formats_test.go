package report

import (
	"archive/zip"
	"bytes"
	"compress/zlib"
	"encoding/base64"
	"encoding/csv"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
)

// TestFormatsRoundTrip: every format of one attested report verifies on
// its own, with the digest of the one run, and renders to the same bytes
// every time.
func TestFormatsRoundTrip(t *testing.T) {
	f := newFixture(t)
	empty, err := NewPIIAccess(testLogName, PIIAccessQuery{Tenant: "acme", SubjectID: "nobody"}, nov, nil)
	if err != nil {
		t.Fatal(err)
	}
	docs := []struct {
		name string
		d    *Document
	}{
		{"pii", f.piiDoc(t)},
		{"history", f.historyDoc(t)},
		{"empty", f.attest(t, empty)},
	}
	for _, dc := range docs {
		for _, format := range []Format{FormatJSON, FormatCSV, FormatPDF, FormatBundle} {
			t.Run(dc.name+"/"+string(format), func(t *testing.T) {
				b := render(t, dc.d, format)
				if !bytes.Equal(b, render(t, dc.d, format)) {
					t.Error("rendering twice gives different bytes")
				}
				if got := DetectFormat(b); got != format {
					t.Errorf("DetectFormat = %s", got)
				}
				v, err := VerifyFile(b, f.log.verifier, "")
				if err != nil {
					t.Fatalf("VerifyFile: %v", err)
				}
				c := dc.d.Content
				if v.Format != format || v.Digest != dc.d.Attestation.Digest || v.Rows != c.Summary.Rows ||
					v.Kind != c.Kind || v.Tenant != "acme" || len(v.Checkpoints) != len(c.Partitions()) {
					t.Errorf("verified %+v", v)
				}
				switch format {
				case FormatCSV:
					if v.Records < 3 {
						t.Errorf("%d records", v.Records)
					}
				case FormatPDF:
					if v.Pages < 2 {
						t.Errorf("%d pages", v.Pages)
					}
				case FormatBundle:
					want := []string{FileName(c, FormatJSON), FileName(c, FormatCSV), FileName(c, FormatPDF)}
					if !slices.Equal(v.Members, want) || v.Pages < 2 || v.Records < 3 {
						t.Errorf("bundle members %q, %d pages, %d records", v.Members, v.Pages, v.Records)
					}
				}
			})
		}
	}
}

// TestCSVCarriesEvidence: each row of a CSV report carries its entry bytes
// and inclusion proof once; a history's further change records do not.
func TestCSVCarriesEvidence(t *testing.T) {
	f := newFixture(t)
	d := f.historyDoc(t)
	recs, _, err := readCSVRecords(render(t, d, FormatCSV))
	if err != nil {
		t.Fatal(err)
	}
	entry, proof := colOf(t, recs[0], "entry_bytes"), colOf(t, recs[0], "inclusion_proof")
	// h1 (one change), h2 (two changes).
	if got := recs[1][entry]; got != base64.StdEncoding.EncodeToString(f.history[0].Data) {
		t.Errorf("record 1 entry bytes %q", got)
	}
	if recs[2][entry] == "" || recs[3][entry] != "" || recs[3][proof] != "" {
		t.Errorf("records 2 and 3: %q / %q", recs[2][entry:], recs[3][entry:])
	}
	if n := strings.Count(recs[2][proof], csvListSep) + 1; n != len(d.Attestation.Proofs[1].AuditPath) {
		t.Errorf("proof of record 2 has %d hashes: %q", n, recs[2][proof])
	}
}

func colOf(t testing.TB, header []string, name string) int {
	t.Helper()
	i := slices.Index(header, name)
	if i < 0 {
		t.Fatalf("no column %q", name)
	}
	return i
}

// editCSV rewrites a CSV report's records (as read, neutralized).
func editCSV(t testing.TB, b []byte, edit func(recs [][]string) [][]string) []byte {
	t.Helper()
	recs, _, err := readCSVRecords(b)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	w := csv.NewWriter(&out)
	w.UseCRLF = true
	if err := w.WriteAll(edit(recs)); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// otherRun is the fixture's PII report built and attested again later:
// the same rows, another digest.
func (f *fixture) otherRun(t testing.TB) *Document {
	t.Helper()
	c, err := NewPIIAccess(testLogName, f.piiQuery(), nov.Add(5*time.Hour), f.subject)
	if err != nil {
		t.Fatal(err)
	}
	return f.attest(t, c)
}

// TestCSVTampering alters an honest CSV report as anyone holding the file
// could, and checks that VerifyCSV refuses each for the right reason.
func TestCSVTampering(t *testing.T) {
	f := newFixture(t)
	d := f.piiDoc(t)
	honest := render(t, d, FormatCSV)
	history := render(t, f.historyDoc(t), FormatCSV)
	other := f.otherRun(t)
	otherSigner, _ := testKey(t, testLogName)
	header := accessHeader
	col := func(name string) int { return colOf(t, header, name) }
	last := func(recs [][]string) []string { return recs[len(recs)-1] }
	set := func(rec int, name, v string) func([][]string) [][]string {
		return func(recs [][]string) [][]string { recs[rec][col(name)] = v; return recs }
	}
	tests := []struct {
		name string
		file []byte
		edit func(recs [][]string) [][]string
		want string
	}{
		{"cell edited", honest, set(1, "actor_id", "mallory"), `line 2, actor_id: the CSV has "mallory", the attested report "alice": the CSV was altered`},
		{"flag cleared", honest, set(2, "flag", ""), "line 3, flag"},
		{"purpose code invented", honest, set(2, "purpose_code", "CASE_MGMT"), "line 3, purpose_code"},
		{"rows swapped", honest, func(r [][]string) [][]string { r[2], r[3] = r[3], r[2]; return r }, "line 3, sequencer_time"},
		{"row dropped", honest, func(r [][]string) [][]string { return slices.Delete(r, 2, 3) }, "content was altered"},
		{"row duplicated", honest, func(r [][]string) [][]string { return slices.Insert(r, 2, r[1]) }, "appears twice"},
		{"entry bytes of another event", honest, set(1, "entry_bytes", base64.StdEncoding.EncodeToString(f.history[0].Data)), "records position"},
		{"entry bytes not base64", honest, set(1, "entry_bytes", "!!"), "line 2: entry_bytes is not base64"},
		{"proof hash", honest, func(r [][]string) [][]string {
			p := []byte(r[1][col("inclusion_proof")])
			p[0] ^= 1
			r[1][col("inclusion_proof")] = string(p)
			return r
		}, "root"},
		{"digest column of another run", honest, set(1, "report_digest", other.Attestation.Digest), "line 2, report_digest"},
		{"attestation digest field", honest, func(r [][]string) [][]string { last(r)[1] = other.Attestation.Digest; return r }, "differs from the signed digest"},
		{"attestation of another run", honest, func(r [][]string) [][]string { last(r)[2] = other.Attestation.SignedNote; return r }, "differs from the signed digest"},
		{"whole attestation of another run", honest, func(r [][]string) [][]string {
			last(r)[1], last(r)[2] = other.Attestation.Digest, other.Attestation.SignedNote
			return r
		}, "line 2, report_digest"},
		{"attestation by another key", honest, func(r [][]string) [][]string {
			last(r)[2] = resign(t, last(r)[2], otherSigner)
			return r
		}, "not signed by key"},
		{"attestation removed", honest, func(r [][]string) [][]string { return r[:len(r)-1] }, "does not end with its #attestation record"},
		{"older checkpoint", honest, func(r [][]string) [][]string {
			r[len(r)-2][2] = checkpointAt(t, f, "2026-11", 3)
			return r
		}, "not the one attested"},
		{"parameters", honest, func(r [][]string) [][]string {
			r[5][1] = strings.Replace(r[5][1], `"AUDIT",`, ``, 1)
			return r
		}, "content was altered"},
		{"parameters removed", honest, func(r [][]string) [][]string { return slices.Delete(r, 5, 6) }, "no #parameters record"},
		{"record after the attestation", honest, func(r [][]string) [][]string { return append(r, slices.Clone(r[5])) }, "where a #checkpoint record belongs"},
		{"legacy header", honest, func(r [][]string) [][]string { return projectCSV(t, r, accessHeaderNoEvidence) },
			"predates CSV reports carrying entry bytes"},
		{"history change edited", history, func(r [][]string) [][]string {
			r[2][colOf(t, historyHeader, "after")] = "reopened"
			return r
		}, `the CSV has "reopened", the attested report "closed": the CSV was altered`},
		{"history change dropped", history, func(r [][]string) [][]string { return slices.Delete(r, 3, 4) }, "the CSV was altered"},
		{"history columns on a PII attestation", honest, func(r [][]string) [][]string {
			hr, _, _ := readCSVRecords(history)
			return append(hr[:4], padAll(r[5:], len(historyHeader))...)
		}, "the CSV has the columns of a entity-history report, its attestation is of a pii-access report"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := editCSV(t, tt.file, tt.edit)
			_, err := VerifyCSV(b, f.log.verifier, "")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("VerifyCSV = %v, want an error containing %q", err, tt.want)
			}
			if _, err := VerifyFile(b, f.log.verifier, ""); err == nil {
				t.Error("VerifyFile accepts it")
			}
		})
	}
	for name, b := range map[string][]byte{
		"empty": nil, "not a report": []byte("a,b\n1,2\n"), "truncated": honest[:len(honest)/2], "ragged": []byte("a,b\n1\n"),
	} {
		if _, err := VerifyCSV(b, f.log.verifier, ""); err == nil || !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: VerifyCSV = %v, want ErrInvalid", name, err)
		}
	}
	if _, err := VerifyCSV(honest, otherVerifier(t), ""); err == nil || !strings.Contains(err.Error(), "not signed by key") {
		t.Errorf("another key: %v", err)
	}
	if _, err := VerifyCSV(editCSV(t, honest, func(r [][]string) [][]string { return r }), f.log.verifier, ""); err != nil {
		t.Fatalf("the honest report, rewritten unchanged: %v", err)
	}
}

// projectCSV keeps the columns of header of a CSV report's records, as
// a report of an earlier layout has them.
func projectCSV(t testing.TB, recs [][]string, header []string) [][]string {
	t.Helper()
	data, trailer := splitTrailer(recs)
	out, err := projectColumns(data, header)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range trailer {
		out = append(out, append(slices.Clone(r[:3]), make([]string, len(header)-3)...))
	}
	return out
}

// padAll pads records to width fields.
func padAll(recs [][]string, width int) [][]string {
	var out [][]string
	for _, r := range recs {
		out = append(out, append(slices.Clone(r), make([]string, width-len(r))...))
	}
	return out
}

func otherVerifier(t testing.TB) interface {
	Name() string
	KeyHash() uint32
	Verify(msg, sig []byte) bool
} {
	_, v := testKey(t, testLogName)
	return v
}

// rewritePDF parses a PDF report, lets edit change its objects, and writes
// it back well formed: offsets and cross-references as fpdf writes them.
func rewritePDF(t testing.TB, b []byte, edit func(p *pdfFile)) []byte {
	t.Helper()
	p, err := parsePDF(b)
	if err != nil {
		t.Fatal(err)
	}
	edit(p)
	var out bytes.Buffer
	out.WriteString(p.header)
	for i := range p.objects {
		o := &p.objects[i]
		o.offset = out.Len()
		fmt.Fprintf(&out, "%d 0 obj\n%s", o.num, o.dict)
		if o.stream != nil {
			out.WriteString("stream\n")
			out.Write(o.stream)
			out.WriteString("\nendstream\nendobj\n")
		} else {
			out.WriteString("endobj\n")
		}
	}
	p.xref = out.Len()
	out.Write(p.wantTail(p.trailer))
	return out.Bytes()
}

// editStream inflates an object's stream, edits it and compresses it
// again at level.
func editStream(t testing.TB, o *pdfObject, level int, edit func([]byte) []byte) {
	t.Helper()
	data, err := inflate(o.stream, MaxDocumentBytes)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw, err := zlib.NewWriterLevel(&buf, level)
	if err != nil {
		t.Fatal(err)
	}
	zw.Write(edit(data))
	zw.Close()
	o.stream = buf.Bytes()
	o.dict = pdfLength.ReplaceAllString(o.dict, fmt.Sprintf("/Length %d", len(o.stream)))
}

// replaceIn edits the first object whose dictionary (or, with stream,
// inflated stream) contains old.
func replaceIn(t testing.TB, stream bool, old, new string) func(p *pdfFile) {
	return func(p *pdfFile) {
		t.Helper()
		for i := range p.objects {
			o := &p.objects[i]
			if !stream && strings.Contains(o.dict, old) {
				o.dict = strings.Replace(o.dict, old, new, 1)
				return
			}
			if stream && o.stream != nil {
				if data, err := inflate(o.stream, MaxDocumentBytes); err == nil && bytes.Contains(data, []byte(old)) {
					editStream(t, o, zlib.BestSpeed, func(b []byte) []byte { return bytes.Replace(b, []byte(old), []byte(new), 1) })
					return
				}
			}
		}
		t.Fatalf("no object holds %q", old)
	}
}

// TestPDFTampering alters an honest PDF report, keeping it a well-formed
// PDF, and checks that VerifyPDF refuses each for the right reason.
func TestPDFTampering(t *testing.T) {
	f := newFixture(t)
	d := f.piiDoc(t)
	honest := render(t, d, FormatPDF)
	other := f.otherRun(t)
	otherJSON := render(t, other, FormatJSON)
	tests := []struct {
		name string
		edit func(p *pdfFile)
		want string
	}{
		{"page text", replaceIn(t, true, "(carol)", "(mallory)"), "page 1 is not the rendering of the attested report it embeds: the PDF was altered"},
		{"flag on the page", replaceIn(t, true, "(NO PURPOSE)", "()"), "page 1 is not the rendering"},
		{"attestation page", replaceIn(t, true, "(rows 4)", "(rows 5)"), "page 2 is not the rendering"},
		{"embedded report row", replaceIn(t, true, `"actor_id": "bob"`, `"actor_id": "eve"`), "embedded report: report: verify: content digest"},
		{"embedded report of another run", func(p *pdfFile) {
			for i := range p.objects {
				if strings.Contains(p.objects[i].dict, "/Type /EmbeddedFile") {
					editStream(t, &p.objects[i], zlib.BestSpeed, func([]byte) []byte { return otherJSON })
				}
			}
		}, "the PDF states report digest"},
		{"stated digest", replaceIn(t, false, "/Subject ("+d.Attestation.Digest, "/Subject ("+other.Attestation.Digest), "the PDF states report digest"},
		{"title", replaceIn(t, false, "/Title (PII access report)", "/Title (Nothing to see)"), "the document information"},
		{"first layout", replaceIn(t, false, "/Producer ("+pdfProducer+")", "/Producer (Trail report/v1)"), "predates PDF reports carrying their JSON report"},
		{"another layout", replaceIn(t, false, "/Producer ("+pdfProducer+")", "/Producer (Trail report/v1 pdf/99)"), `producer is "Trail report/v1 pdf/99", not "Trail report/v1 pdf/2"`},
		{"no embedded report", replaceIn(t, false, "/Type /EmbeddedFile", "/Type /EmbeddedFont"), "embeds no report"},
		{"object added", func(p *pdfFile) {
			p.objects = append(p.objects, pdfObject{num: len(p.objects) + 1, dict: "<</Type /Annot>>\n"})
			p.byNum[len(p.objects)] = len(p.objects) - 1
		}, "pages or objects were added or removed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := rewritePDF(t, honest, tt.edit)
			_, err := VerifyPDF(b, f.log.verifier, "")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("VerifyPDF = %v, want an error containing %q", err, tt.want)
			}
		})
	}
	// Raw edits: an incremental update, a cut file, another key.
	update := append(bytes.Clone(honest), []byte("12 0 obj\n<</Type /Annot>>\nendobj\n")...)
	for name, tc := range map[string]struct {
		b    []byte
		want string
	}{
		"incremental update": {update, "cross-reference table or trailer"},
		"truncated":          {honest[:len(honest)/2], "not a PDF report as Trail writes it"},
		"not a PDF":          {[]byte("%PDF-1.3 nothing"), "not a PDF report as Trail writes it"},
	} {
		if _, err := VerifyPDF(tc.b, f.log.verifier, ""); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: VerifyPDF = %v, want an error containing %q", name, err, tc.want)
		}
	}
	if _, err := VerifyPDF(honest, otherVerifier(t), ""); err == nil || !strings.Contains(err.Error(), "not signed by key") {
		t.Errorf("another key: %v", err)
	}

	// The reader writes the file back byte for byte; a PDF whose streams
	// are compressed otherwise (another zlib) still verifies.
	if again := rewritePDF(t, honest, func(*pdfFile) {}); !bytes.Equal(again, honest) {
		t.Fatal("parsePDF and rewritePDF do not round-trip")
	}
	recompressed := rewritePDF(t, honest, func(p *pdfFile) {
		for i := range p.objects {
			if p.objects[i].stream != nil && strings.Contains(p.objects[i].dict, "/FlateDecode") {
				editStream(t, &p.objects[i], zlib.BestCompression, func(b []byte) []byte { return b })
			}
		}
	})
	if bytes.Equal(recompressed, honest) {
		t.Fatal("recompression changed nothing")
	}
	if _, err := VerifyPDF(recompressed, f.log.verifier, ""); err != nil {
		t.Errorf("recompressed: %v", err)
	}
}

// zipOf writes a zip archive of name, data pairs.
func zipOf(t testing.TB, files ...any) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for i := 0; i < len(files); i += 2 {
		w, err := zw.Create(files[i].(string))
		if err != nil {
			t.Fatal(err)
		}
		w.Write(files[i+1].([]byte))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestBundleTampering: a bundle verifies only if each of its files does
// and all are of one run.
func TestBundleTampering(t *testing.T) {
	f := newFixture(t)
	d, other := f.piiDoc(t), f.otherRun(t)
	js, cs, pdf := render(t, d, FormatJSON), render(t, d, FormatCSV), render(t, d, FormatPDF)
	forged := editCSV(t, cs, func(r [][]string) [][]string { r[1][colOf(t, accessHeader, "actor_id")] = "mallory"; return r })
	tests := []struct {
		name string
		b    []byte
		want string
	}{
		{"CSV of another run", zipOf(t, "r.json", js, "r.csv", render(t, other, FormatCSV), "r.pdf", pdf), "bundle file r.csv is of report " + other.Attestation.Digest + ", r.json of report " + d.Attestation.Digest + ": the files are not renderings of one run"},
		{"PDF of another run", zipOf(t, "r.json", js, "r.csv", cs, "r.pdf", render(t, other, FormatPDF)), "not renderings of one run"},
		{"CSV row edited", zipOf(t, "r.json", js, "r.csv", forged, "r.pdf", pdf), "bundle file r.csv: report: verify: invalid report: line 2, actor_id"},
		{"JSON of another report kind", zipOf(t, "r.json", render(t, f.historyDoc(t), FormatJSON), "r.csv", cs, "r.pdf", pdf), "not renderings of one run"},
		{"file missing", zipOf(t, "r.json", js, "r.pdf", pdf), "holds 3 files (JSON, CSV and PDF), this one 2"},
		{"file added", zipOf(t, "r.json", js, "r.csv", cs, "r.pdf", pdf, "README", []byte("x")), "this one 4"},
		{"two JSON files", zipOf(t, "r.json", js, "s.json", js, "r.pdf", pdf), "two json files"},
		{"directory", zipOf(t, "r.json", js, "x/r.csv", cs, "r.pdf", pdf), `file name "x/r.csv"`},
		{"other extension", zipOf(t, "r.json", js, "r.txt", cs, "r.pdf", pdf), "is not .json, .csv or .pdf"},
		{"not a zip", []byte("PK\x03\x04garbage"), "not a report bundle"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := VerifyBundle(tt.b, f.log.verifier, "")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("VerifyBundle = %v, want an error containing %q", err, tt.want)
			}
		})
	}
	// Another tool's archive of the same three files verifies too.
	if v, err := VerifyBundle(zipOf(t, "c.pdf", pdf, "a.json", js, "b.csv", cs), f.log.verifier, ""); err != nil ||
		!slices.Equal(v.Members, []string{"a.json", "b.csv", "c.pdf"}) {
		t.Errorf("re-zipped: %v, %+v", err, v)
	}
}

func TestDetectFormat(t *testing.T) {
	for in, want := range map[string]Format{
		"%PDF-1.3\n": FormatPDF, "PK\x03\x04": FormatBundle, " \n{}": FormatJSON, "": FormatJSON,
		"sequencer_time,occurred_at\r\n": FormatCSV,
	} {
		if got := DetectFormat([]byte(in)); got != want {
			t.Errorf("DetectFormat(%q) = %s, want %s", in, got, want)
		}
	}
}

// fuzzVerifier is the shape of the fuzz tests below: verify never panics,
// and whatever it accepts carries the digest of a report the log signed.
func fuzzVerifier(f *testing.F, format Format, verify func(b []byte, key note.Verifier) (*Verified, error)) {
	fx := newSealedFixture(f)
	docs := []*Document{fx.piiDoc(f), fx.historyDoc(f), fx.attest(f, fx.historyContent(f)), fx.attest(f, fx.piiContent(f))}
	signed := make(map[string]bool)
	for _, doc := range docs {
		f.Add(render(f, doc, format))
		signed[doc.Attestation.Digest] = true
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := verify(b, fx.log.verifier)
		if err != nil {
			return
		}
		if !signed[v.Digest] {
			t.Fatalf("verified a %s report with digest %s that the log never signed", format, v.Digest)
		}
	})
}

// FuzzVerifyCSV fuzzes the CSV reader (records, trailer, entry bytes and
// proofs) and the verifier behind it.
func FuzzVerifyCSV(f *testing.F) {
	f.Add([]byte("sequencer_time\r\n#parameters\r\n"))
	f.Add([]byte(strings.Join(accessHeader, ",") + "\r\n#parameters,{},\r\n"))
	fuzzVerifier(f, FormatCSV, func(b []byte, verifier note.Verifier) (*Verified, error) {
		// The decoder alone must not panic either.
		if cf, err := decodeCSV(b); err == nil && cf.doc.Content == nil {
			panic("decodeCSV returned no content")
		}
		return VerifyCSV(b, verifier, testLogName)
	})
}

// FuzzVerifyPDF fuzzes the PDF reader (objects, streams, trailer, the
// embedded report) and the verifier behind it.
func FuzzVerifyPDF(f *testing.F) {
	f.Add([]byte("%PDF-1.3\n1 0 obj\n<</Length 1>>\nstream\nx\nendstream\nendobj\nxref\n\ntrailer\n<<>>\nstartxref\n"))
	fuzzVerifier(f, FormatPDF, func(b []byte, verifier note.Verifier) (*Verified, error) {
		if p, err := parsePDF(b); err == nil {
			p.info("Producer")
			p.embeddedReport()
		}
		return VerifyPDF(b, verifier, testLogName)
	})
}

// FuzzVerifyBundle fuzzes the bundle reader.
func FuzzVerifyBundle(f *testing.F) {
	fuzzVerifier(f, FormatBundle, func(b []byte, verifier note.Verifier) (*Verified, error) {
		return VerifyBundle(b, verifier, testLogName)
	})
}
