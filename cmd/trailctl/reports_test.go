package main

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trailaudit/trail/internal/syncbuf"
	"github.com/trailaudit/trail/merkle"
	"github.com/trailaudit/trail/report"
)

// TestReportCommands runs "trailctl report pii|history" against a real
// server and "trailctl verify --report" on what they wrote, and on altered
// copies.
func TestReportCommands(t *testing.T) {
	rs := startRealServer(t)
	dir := t.TempDir()
	vkey := filepath.Join(dir, "log.vkey")
	writeTestFile(t, vkey, rs.vkey+"\n")
	otherVKey := filepath.Join(dir, "other.vkey")
	_, other, err := merkle.GenerateKey("test.trail", nil)
	if err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, otherVKey, other+"\n")

	var events strings.Builder
	for i := range 4 {
		purpose := `"purpose_code":"CASE_MGMT","pii_fields_accessed":["name"],`
		if i == 3 {
			purpose = "" // an access without a purpose code: flagged
		}
		fmt.Fprintf(&events, `{"tenant_id":"acme","event_id":"a-%d","category":"CATEGORY_DATA_ACCESS","action":"record.view",`+
			`"outcome":"OUTCOME_SUCCESS","actor":{"id":"user-%d"},"subject_id":"c-1",%s"occurred_at":"2026-11-23T10:00:00Z"}`+"\n",
			i, i%2, purpose)
	}
	for i := range 2 {
		fmt.Fprintf(&events, `{"tenant_id":"acme","event_id":"m-%d","category":"CATEGORY_DATA_MODIFICATION","action":"case.update",`+
			`"outcome":"OUTCOME_SUCCESS","actor":{"id":"judge"},"target":{"type":"case","id":"9"},`+
			`"changes":[{"field":"status","before":"s%d","after":"s%d"}],"occurred_at":"2026-11-23T10:00:00Z"}`+"\n", i, i, i+1)
	}
	jsonl := filepath.Join(dir, "events.jsonl")
	writeTestFile(t, jsonl, events.String())
	rs.runOK(t, rs.admin, "append", "--jsonl", jsonl)
	auditor := keyToken(t, rs, "auditor")

	pii := filepath.Join(dir, "pii.json")
	rs.runOK(t, rs.admin, "report", "pii", "--tenant", "acme", "--subject", "c-1", "-o", pii)
	out := rs.runOK(t, "", "verify", "--vkey", vkey, "--report", pii, "--tenant", "acme")
	for _, want := range []string{
		"OK checkpoint test.trail/acme/", "OK 4 rows: leaf hashes recomputed",
		"OK attestation of pii-access report of tenant acme", "4 rows, 1 flagged, signed by key test.trail+",
		"NOTE 1 accesses are flagged",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("verify output lacks %q:\n%s", want, out)
		}
	}

	// Verified on download; the history by an auditor; CSV and PDF.
	hist := filepath.Join(dir, "hist.json")
	out = rs.runOK(t, auditor, "report", "history", "--tenant", "acme", "--target-type", "case", "--target-id", "9",
		"--from", "2020-01-01", "-o", hist, "--vkey", vkey)
	if !strings.Contains(out, "OK attestation of entity-history report of tenant acme") || !strings.Contains(out, "2 rows, 0 flagged") {
		t.Errorf("report history --vkey output:\n%s", out)
	}
	csvFile := filepath.Join(dir, "pii.csv")
	rs.runOK(t, rs.admin, "report", "pii", "--tenant", "acme", "--subject", "c-1", "--format", "csv", "-o", csvFile)
	if recs, err := csv.NewReader(bytes.NewReader(readTestFile(t, csvFile))).ReadAll(); err != nil || len(recs) != 8 {
		t.Errorf("CSV: %d records, %v", len(recs), err)
	}
	stdout := rs.runOK(t, rs.admin, "report", "pii", "--tenant", "acme", "--subject", "c-1", "--format", "pdf", "-o", "-")
	if !strings.HasPrefix(stdout, "%PDF-") {
		t.Errorf("report --format pdf -o - wrote %.20q", stdout)
	}
	// Without -o, the file takes the server's name in the current directory.
	t.Chdir(dir)
	var errb syncbuf.Buffer
	if code := rs.run(context.Background(), rs.admin, &syncbuf.Buffer{}, &errb, "report", "history", "--tenant", "acme",
		"--target-type", "case", "--target-id", "9", "--format", "pdf"); code != exitOK || !strings.Contains(errb.String(), "entity-history_acme_case_9_") {
		t.Errorf("exit %d: %s", code, errb.String())
	}

	// One run, three renderings: a bundle, verified on download, then each
	// of its files on its own.
	bundleFile := filepath.Join(dir, "pii.zip")
	out = rs.runOK(t, rs.admin, "report", "pii", "--tenant", "acme", "--subject", "c-1", "--format", "bundle", "-o", bundleFile, "--vkey", vkey)
	for _, want := range []string{"OK attestation of pii-access report of tenant acme", ".json: the report above", ".csv: its entry bytes and proofs are the report above",
		".pdf: its attached JSON is the report above", "OK bundle: its JSON, CSV and PDF are renderings of one run"} {
		if !strings.Contains(out, want) {
			t.Errorf("report --format bundle --vkey output lacks %q:\n%s", want, out)
		}
	}
	members, err := report.ReadBundle(readTestFile(t, bundleFile))
	if err != nil {
		t.Fatal(err)
	}
	files := make(map[report.Format]string)
	var digest string
	for _, m := range members {
		files[m.Format] = filepath.Join(dir, m.Name)
		writeTestFile(t, files[m.Format], string(m.Data))
		out := rs.runOK(t, "", "verify", "--vkey", vkey, "--report", files[m.Format], "--tenant", "acme")
		_, d, _ := strings.Cut(out, "digest ")
		d, _, _ = strings.Cut(d, ",")
		if digest == "" {
			digest = d
		}
		if d != digest || !strings.Contains(out, "OK 4 rows") {
			t.Errorf("verify --report %s: digest %q, want %q:\n%s", m.Name, d, digest, out)
		}
	}
	if out := rs.runOK(t, "", "verify", "--vkey", vkey, "--report", csvFile); !strings.Contains(out, "OK CSV file: its entry bytes and proofs") {
		t.Errorf("verify --report of a CSV download:\n%s", out)
	}
	otherPDF := filepath.Join(dir, "other.pdf")
	rs.runOK(t, rs.admin, "report", "pii", "--tenant", "acme", "--subject", "c-1", "--format", "pdf", "-o", otherPDF, "--vkey", vkey)
	forgedCSV := bytes.Replace(readTestFile(t, files[report.FormatCSV]), []byte(",user-1,"), []byte(",user-9,"), 1)
	forgedPDF := bytes.Replace(readTestFile(t, files[report.FormatPDF]), []byte("/Title (PII access report)"), []byte("/Title (PII access rep0rt)"), 1)
	mixed := zipOf(t, filepath.Base(files[report.FormatJSON]), readTestFile(t, files[report.FormatJSON]),
		filepath.Base(files[report.FormatCSV]), readTestFile(t, files[report.FormatCSV]), "other.pdf", readTestFile(t, otherPDF))

	data := readTestFile(t, pii)
	forged := bytes.Replace(data, []byte(`"actor_id": "user-1"`), []byte(`"actor_id": "user-9"`), 1)
	if bytes.Equal(forged, data) {
		t.Fatal("fixture lacks the field to forge")
	}
	tests := []struct {
		name  string
		token string
		args  []string
		code  int
		want  string
	}{
		{"row altered", "", []string{"verify", "--vkey", vkey, "--report", writeTemp(t, dir, forged)}, exitFailed, "the content was altered"},
		{"truncated", "", []string{"verify", "--vkey", vkey, "--report", writeTemp(t, dir, data[:len(data)/2])}, exitFailed, "not a JSON report"},
		{"CSV row altered", "", []string{"verify", "--vkey", vkey, "--report", writeTemp(t, dir, forgedCSV)}, exitFailed, "actor_id: the CSV has \"user-9\", the attested report \"user-1\": the CSV was altered"},
		{"PDF altered", "", []string{"verify", "--vkey", vkey, "--report", writeTemp(t, dir, forgedPDF)}, exitFailed, "the PDF was altered"},
		{"PDF truncated", "", []string{"verify", "--vkey", vkey, "--report", writeTemp(t, dir, readTestFile(t, otherPDF)[:2000])}, exitFailed, "not a PDF report"},
		{"bundle of two runs", "", []string{"verify", "--vkey", vkey, "--report", writeTemp(t, dir, mixed)}, exitFailed, "not renderings of one run"},
		{"PDF with wrong key", "", []string{"verify", "--vkey", otherVKey, "--report", files[report.FormatPDF]}, exitFailed, "not signed by key"},
		{"bundle of another tenant", "", []string{"verify", "--vkey", vkey, "--report", bundleFile, "--tenant", "globex"}, exitFailed, `not "globex"`},
		{"wrong key", "", []string{"verify", "--vkey", otherVKey, "--report", pii}, exitFailed, "not signed by key"},
		{"wrong tenant", "", []string{"verify", "--vkey", vkey, "--report", pii, "--tenant", "globex"}, exitFailed, `not "globex"`},
		{"missing file", "", []string{"verify", "--vkey", vkey, "--report", filepath.Join(dir, "nope")}, exitIO, "no such file"},
		{"report with chain", "", []string{"verify", "--vkey", vkey, "--report", pii, "--chain", pii}, exitUsage, "give one of"},
		{"report with partition", "", []string{"verify", "--vkey", vkey, "--report", pii, "--partition", "2026-11"}, exitUsage, "do not apply"},
		{"auditor denied PII", auditor, []string{"report", "pii", "--tenant", "acme", "--subject", "c-1", "-o", filepath.Join(dir, "x")}, exitFailed, "PermissionDenied"},
		{"no subject", rs.admin, []string{"report", "pii", "--tenant", "acme"}, exitUsage, "--subject is required"},
		{"no target id", rs.admin, []string{"report", "history", "--tenant", "acme", "--target-type", "case"}, exitUsage, "--target-id are required"},
		{"bad format", rs.admin, []string{"report", "pii", "--tenant", "acme", "--subject", "c-1", "--format", "xml"}, exitUsage, "--format"},
		{"vkey to stdout", rs.admin, []string{"report", "pii", "--tenant", "acme", "--subject", "c-1", "--format", "pdf", "--vkey", vkey, "-o", "-"}, exitUsage, "does not go with -o -"},
		{"bad time", rs.admin, []string{"report", "pii", "--tenant", "acme", "--subject", "c-1", "--from", "yesterday"}, exitUsage, "--from"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb syncbuf.Buffer
			code := rs.run(context.Background(), tc.token, &out, &errb, tc.args...)
			if code != tc.code || !strings.Contains(errb.String(), tc.want) {
				t.Fatalf("exit %d (want %d), stderr lacks %q:\n%s%s", code, tc.code, tc.want, out.String(), errb.String())
			}
			if tc.code == exitFailed && tc.args[0] == "verify" && !strings.Contains(errb.String(), "FAILED") {
				t.Fatalf("a failed verification must say FAILED:\n%s", errb.String())
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "x")); err == nil {
		t.Error("a refused report left a file behind")
	}
}

// zipOf writes a zip archive of name, data pairs.
func zipOf(t *testing.T, files ...any) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for i := 0; i < len(files); i += 2 {
		w, err := zw.Create(files[i].(string))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(files[i+1].([]byte)); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// keyToken creates an API key for tenant acme with role and returns its
// token.
func keyToken(t *testing.T, rs *realServer, role string) string {
	t.Helper()
	out := rs.runOK(t, rs.admin, "keys", "create", "--role", role, "--tenant", "acme")
	_, tok, ok := strings.Cut(out, "token: ")
	if !ok {
		t.Fatalf("keys create printed no token:\n%s", out)
	}
	return strings.TrimSpace(tok)
}

func readTestFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
