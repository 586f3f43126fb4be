package server

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
	"github.com/trailaudit/trail/report"
)

// download is a report as received: the document and its chunks.
type download struct {
	data        []byte
	contentType string
	filename    string
	chunks      int
}

// collect reads a report stream to its end.
func collect(stream grpc.ServerStreamingClient[trailv1.DownloadChunk], err error) (download, error) {
	var d download
	if err != nil {
		return d, err
	}
	for {
		c, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return d, nil
		}
		if err != nil {
			return d, err
		}
		if d.chunks == 0 {
			d.contentType, d.filename = c.GetContentType(), c.GetFilename()
		} else if c.GetContentType() != "" || c.GetFilename() != "" {
			return d, fmt.Errorf("chunk %d repeats the content type or file name", d.chunks)
		}
		if len(c.GetData()) > downloadChunkBytes {
			return d, fmt.Errorf("chunk %d holds %d bytes, more than %d", d.chunks, len(c.GetData()), downloadChunkBytes)
		}
		d.chunks++
		d.data = append(d.data, c.GetData()...)
	}
}

func (e *env) piiReport(token string, req *trailv1.PIIAccessReportRequest) (download, error) {
	return collect(e.comp.PIIAccessReport(e.ctx(token), req))
}

func (e *env) entityHistory(token string, req *trailv1.EntityHistoryRequest) (download, error) {
	return collect(e.comp.EntityHistory(e.ctx(token), req))
}

// mustVerify verifies a JSON report offline with the log key, and checks
// every row's proof again with transparency-dev/merkle against the signed
// checkpoints (invariant 2).
func (e *env) mustVerify(doc []byte) (*report.Verified, *report.Content) {
	e.t.Helper()
	res, err := report.Verify(doc, e.verifier, "")
	if err != nil {
		e.t.Fatalf("verify report: %v\n%.2000s", err, doc)
	}
	var parsed struct {
		Content     report.Content     `json:"content"`
		Attestation report.Attestation `json:"attestation"`
	}
	if err := json.Unmarshal(doc, &parsed); err != nil {
		e.t.Fatal(err)
	}
	c, a := &parsed.Content, &parsed.Attestation
	roots := make(map[string][]byte)
	sizes := make(map[string]uint64)
	for _, sc := range a.Checkpoints {
		cp := e.openCheckpoint([]byte(sc.SignedNote), c.TenantID, sc.Partition)
		roots[sc.Partition], sizes[sc.Partition] = cp.Hash, cp.Size
	}
	var srcs []report.Source
	for _, r := range c.Accesses {
		srcs = append(srcs, r.Source)
	}
	for _, r := range c.History {
		srcs = append(srcs, r.Source)
	}
	for i, s := range srcs {
		leaf := rfc6962.DefaultHasher.HashLeaf(s.EntryBytes)
		p := a.Proofs[i]
		path := make([][]byte, len(p.AuditPath))
		for j := range p.AuditPath {
			path[j] = p.AuditPath[j][:]
		}
		if err := proof.VerifyInclusion(rfc6962.DefaultHasher, s.LeafIndex, sizes[s.Partition], leaf, path, roots[s.Partition]); err != nil {
			e.t.Fatalf("row %d: %v", i, err)
		}
	}
	return res, c
}

// reportFixture appends accesses on citizen-7 of tenant acme (one without
// a purpose code), noise on other subjects, and a history of case/42 (the
// last three receipts).
func reportFixture(e *env) []*trailv1.Receipt {
	prod := e.key(trailv1.Role_ROLE_PRODUCER, "acme")
	var evs []*trailv1.Event
	for i := range 4 {
		ev := event("acme", fmt.Sprintf("acc-%d", i))
		ev.SubjectId, ev.PiiFieldsAccessed, ev.PurposeCode = "citizen-7", []string{"name"}, "CASE_MGMT"
		ev.Actor.Id = fmt.Sprintf("officer-%d", i%2)
		evs = append(evs, ev)
	}
	noPurpose := event("acme", "acc-nopurpose")
	noPurpose.SubjectId = "citizen-7"
	evs = append(evs, noPurpose)
	evs = append(evs, events("acme", "noise", 10)...) // citizen-0..4, never citizen-7
	rs := e.appendAll(prod, evs)
	// One batch per change: a batch shares one sequencer time, and the
	// tests cut time ranges between changes.
	for i := range 3 {
		ev := event("acme", fmt.Sprintf("case-%d", i))
		ev.Category, ev.Action, ev.SubjectId = trailv1.Category_CATEGORY_DATA_MODIFICATION, "case.update", "citizen-7"
		ev.Target = &trailv1.Target{Type: "case", Id: "42"}
		ev.Changes = []*trailv1.Change{{Field: "status", Before: fmt.Sprint(i), After: fmt.Sprint(i + 1)}}
		rs = append(rs, e.appendAll(prod, []*trailv1.Event{ev})...)
	}
	return rs
}

func TestReportAuthorization(t *testing.T) {
	e := newEnv(t, envOptions{})
	reportFixture(e)
	pii := &trailv1.PIIAccessReportRequest{TenantId: "acme", SubjectId: "citizen-7"}
	hist := &trailv1.EntityHistoryRequest{TenantId: "acme", TargetType: "case", TargetId: "42"}
	tests := []struct {
		name      string
		token     string
		piiCode   codes.Code
		histCode  codes.Code
		otherCode codes.Code // both reports on tenant globex
	}{
		{"auditor", e.key(trailv1.Role_ROLE_AUDITOR, "acme"), codes.PermissionDenied, codes.OK, codes.PermissionDenied},
		{"privacy officer", e.key(trailv1.Role_ROLE_PRIVACY_OFFICER, "acme"), codes.OK, codes.OK, codes.PermissionDenied},
		{"privacy officer of globex", e.key(trailv1.Role_ROLE_PRIVACY_OFFICER, "globex"), codes.PermissionDenied, codes.PermissionDenied, codes.OK},
		{"producer", e.key(trailv1.Role_ROLE_PRODUCER, "acme"), codes.PermissionDenied, codes.PermissionDenied, codes.PermissionDenied},
		{"admin", e.admin, codes.OK, codes.OK, codes.OK},
		{"no key", "", codes.Unauthenticated, codes.Unauthenticated, codes.Unauthenticated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.piiReport(tt.token, pii)
			wantCode(t, err, tt.piiCode)
			_, err = e.entityHistory(tt.token, hist)
			wantCode(t, err, tt.histCode)
			_, err = e.piiReport(tt.token, &trailv1.PIIAccessReportRequest{TenantId: "globex", SubjectId: "citizen-7"})
			wantCode(t, err, tt.otherCode)
		})
	}
}

func TestReportFormats(t *testing.T) {
	e := newEnv(t, envOptions{})
	reportFixture(e)
	po := e.key(trailv1.Role_ROLE_PRIVACY_OFFICER, "acme")
	tests := []struct {
		format      trailv1.ReportFormat
		contentType string
		ext         string
		check       func(t *testing.T, b []byte)
	}{
		{trailv1.ReportFormat_REPORT_FORMAT_UNSPECIFIED, "application/json", ".json", func(t *testing.T, b []byte) {
			res, c := e.mustVerify(b)
			if res.Rows != 5 || res.Flagged != 1 || len(c.Accesses) != 5 {
				t.Errorf("verified %+v", res)
			}
			if c.Accesses[4].EventID != "acc-nopurpose" || c.Accesses[4].Flag != report.FlagMissingPurpose {
				t.Errorf("last row %+v", c.Accesses[4])
			}
		}},
		{trailv1.ReportFormat_REPORT_FORMAT_CSV, "text/csv", ".csv", func(t *testing.T, b []byte) {
			recs, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			// Header, five accesses, the parameters, one checkpoint, the
			// attestation.
			if len(recs) != 9 || recs[0][0] != "sequencer_time" || recs[8][0] != report.CSVAttestationRecord {
				t.Errorf("records %q", recs)
			}
			if v, err := report.VerifyCSV(b, e.verifier, ""); err != nil || v.Rows != 5 {
				t.Errorf("VerifyCSV: %+v, %v", v, err)
			}
		}},
		{trailv1.ReportFormat_REPORT_FORMAT_PDF, "application/pdf", ".pdf", func(t *testing.T, b []byte) {
			if !bytes.HasPrefix(b, []byte("%PDF-")) || !bytes.Contains(b, []byte("sha256:")) {
				t.Errorf("not an attested PDF: %.40q", b)
			}
			if v, err := report.VerifyPDF(b, e.verifier, ""); err != nil || v.Rows != 5 {
				t.Errorf("VerifyPDF: %+v, %v", v, err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.format.String(), func(t *testing.T) {
			d, err := e.piiReport(po, &trailv1.PIIAccessReportRequest{TenantId: "acme", SubjectId: "citizen-7", Format: tt.format})
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(d.contentType, tt.contentType) || !strings.HasPrefix(d.filename, "pii-access_acme_citizen-7_") || !strings.HasSuffix(d.filename, tt.ext) {
				t.Errorf("content type %q, file name %q", d.contentType, d.filename)
			}
			tt.check(t, d.data)
		})
	}
}

// TestReportBundle: one call returns the JSON, CSV and PDF of one run in
// a zip archive; each file verifies on its own with the one digest, and a
// file of another run, or an altered one, is refused.
func TestReportBundle(t *testing.T) {
	e := newEnv(t, envOptions{})
	reportFixture(e)
	po := e.key(trailv1.Role_ROLE_PRIVACY_OFFICER, "acme")
	aud := e.key(trailv1.Role_ROLE_AUDITOR, "acme")
	pii := &trailv1.PIIAccessReportRequest{TenantId: "acme", SubjectId: "citizen-7", Format: trailv1.ReportFormat_REPORT_FORMAT_BUNDLE}
	d, err := e.piiReport(po, pii)
	if err != nil {
		t.Fatal(err)
	}
	if d.contentType != "application/zip" || !strings.HasPrefix(d.filename, "pii-access_acme_citizen-7_") || !strings.HasSuffix(d.filename, ".zip") {
		t.Errorf("content type %q, file name %q", d.contentType, d.filename)
	}
	v, err := report.VerifyBundle(d.data, e.verifier, "")
	if err != nil {
		t.Fatalf("VerifyBundle: %v", err)
	}
	if v.Format != report.FormatBundle || v.Rows != 5 || v.Flagged != 1 || len(v.Members) != 3 {
		t.Errorf("verified %+v", v)
	}
	members, err := report.ReadBundle(d.data)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range members {
		mv, err := report.VerifyFile(m.Data, e.verifier, "")
		if err != nil || mv.Format != m.Format || mv.Digest != v.Digest {
			t.Errorf("%s: %+v, %v", m.Name, mv, err)
		}
		if strings.TrimSuffix(m.Name, "."+m.Format.Ext()) != strings.TrimSuffix(d.filename, ".zip") {
			t.Errorf("member %s of bundle %s", m.Name, d.filename)
		}
	}
	e.mustVerify(members[0].Data) // the JSON, also with transparency-dev/merkle

	// A second run is another attestation: its CSV does not belong in the
	// first run's bundle.
	again, err := e.piiReport(po, &trailv1.PIIAccessReportRequest{TenantId: "acme", SubjectId: "citizen-7", Format: trailv1.ReportFormat_REPORT_FORMAT_CSV})
	if err != nil {
		t.Fatal(err)
	}
	mixed := zipFiles(t, members[0].Name, members[0].Data, members[1].Name, again.data, members[2].Name, members[2].Data)
	if _, err := report.VerifyBundle(mixed, e.verifier, ""); err == nil || !strings.Contains(err.Error(), "not renderings of one run") {
		t.Errorf("a bundle mixing runs: %v", err)
	}
	forgedPDF := bytes.Replace(members[2].Data, []byte("/Title (PII access report)"), []byte("/Title (PII access rep0rt)"), 1)
	if bytes.Equal(forgedPDF, members[2].Data) {
		t.Fatal("the PDF lacks its title")
	}
	if _, err := report.VerifyFile(forgedPDF, e.verifier, ""); err == nil {
		t.Error("an altered PDF verifies")
	}

	// The history as a bundle, and both over REST.
	d, err = e.entityHistory(aud, &trailv1.EntityHistoryRequest{TenantId: "acme", TargetType: "case", TargetId: "42", Format: trailv1.ReportFormat_REPORT_FORMAT_BUNDLE})
	if err != nil {
		t.Fatal(err)
	}
	if v, err := report.VerifyBundle(d.data, e.verifier, ""); err != nil || v.Kind != report.KindEntityHistory || v.Rows != 3 {
		t.Errorf("history bundle: %+v, %v", v, err)
	}
	for _, path := range []string{"/api/v1/audit/tenants/acme/subjects/citizen-7/pii-access?format=bundle",
		"/api/v1/audit/tenants/acme/entities/case/42/history?format=bundle"} {
		token := po
		if strings.Contains(path, "history") {
			token = aud
		}
		code, body, h := e.rest("GET", path, token, nil)
		if code != http.StatusOK || h.Get("Content-Type") != "application/zip" {
			t.Fatalf("%s: HTTP %d %q: %.300s", path, code, h.Get("Content-Type"), body)
		}
		if _, err := report.VerifyBundle(body, e.verifier, ""); err != nil {
			t.Errorf("%s: %v", path, err)
		}
	}
}

// zipFiles writes a zip archive of name, data pairs.
func zipFiles(t *testing.T, files ...any) []byte {
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

func TestReportEntityHistory(t *testing.T) {
	e := newEnv(t, envOptions{})
	rs := reportFixture(e)
	aud := e.key(trailv1.Role_ROLE_AUDITOR, "acme")
	d, err := e.entityHistory(aud, &trailv1.EntityHistoryRequest{TenantId: "acme", TargetType: "case", TargetId: "42"})
	if err != nil {
		t.Fatal(err)
	}
	_, c := e.mustVerify(d.data)
	if len(c.History) != 3 {
		t.Fatalf("%d history rows", len(c.History))
	}
	for i, r := range c.History {
		if r.EventID != fmt.Sprintf("case-%d", i) || r.Changes[0].Before != fmt.Sprint(i) || r.Changes[0].After != fmt.Sprint(i+1) {
			t.Errorf("row %d: %+v", i, r)
		}
	}
	// A time range from the second change on.
	from := rs[len(rs)-2].GetSequencerTime()
	d, err = e.entityHistory(aud, &trailv1.EntityHistoryRequest{TenantId: "acme", TargetType: "case", TargetId: "42", From: from})
	if err != nil {
		t.Fatal(err)
	}
	if _, c := e.mustVerify(d.data); len(c.History) != 2 || c.History[0].EventID != "case-1" {
		t.Errorf("from %v: %d rows", from.AsTime(), len(c.History))
	}
}

func TestReportBadRequests(t *testing.T) {
	e := newEnv(t, envOptions{})
	reportFixture(e)
	po := e.key(trailv1.Role_ROLE_PRIVACY_OFFICER, "acme")
	now := timestamppb.Now()
	for name, req := range map[string]*trailv1.PIIAccessReportRequest{
		"no subject":     {TenantId: "acme"},
		"unknown format": {TenantId: "acme", SubjectId: "citizen-7", Format: 9},
		"empty range":    {TenantId: "acme", SubjectId: "citizen-7", From: now, To: now},
		"bad tenant":     {TenantId: "a/b", SubjectId: "citizen-7"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := e.piiReport(po, req)
			wantCode(t, err, codes.InvalidArgument)
		})
	}
	_, err := e.entityHistory(po, &trailv1.EntityHistoryRequest{TenantId: "acme", TargetType: "case"})
	wantCode(t, err, codes.InvalidArgument)
	// min_index is honoured: a read far ahead of this node waits.
	ctx, cancel := context.WithTimeout(e.ctx(po), 300*time.Millisecond)
	defer cancel()
	_, err = collect(e.comp.PIIAccessReport(ctx, &trailv1.PIIAccessReportRequest{TenantId: "acme", SubjectId: "citizen-7", MinIndex: 1 << 40}))
	wantCode(t, err, codes.DeadlineExceeded)
}

func TestReportRowLimit(t *testing.T) {
	e := newEnv(t, envOptions{})
	reportFixture(e)
	defer func(n int) { reportRowLimit = n }(reportRowLimit)
	reportRowLimit = 4
	po := e.key(trailv1.Role_ROLE_PRIVACY_OFFICER, "acme")
	_, err := e.piiReport(po, &trailv1.PIIAccessReportRequest{TenantId: "acme", SubjectId: "citizen-7"})
	wantCode(t, err, codes.InvalidArgument)
	if err == nil || !strings.Contains(err.Error(), "narrow the time range") {
		t.Errorf("error %v does not say what to do", err)
	}
	reportRowLimit = 5
	if _, err := e.piiReport(po, &trailv1.PIIAccessReportRequest{TenantId: "acme", SubjectId: "citizen-7"}); err != nil {
		t.Errorf("at the limit: %v", err)
	}
}

// TestReportChunks: a report larger than a chunk arrives in chunks of at
// most downloadChunkBytes that reassemble into a verifying document.
func TestReportChunks(t *testing.T) {
	e := newEnv(t, envOptions{})
	prod := e.key(trailv1.Role_ROLE_PRODUCER, "acme")
	evs := events("acme", "big", 300)
	for _, ev := range evs {
		ev.SubjectId, ev.PiiFieldsAccessed, ev.PurposeCode = "citizen-big", []string{"health_record"}, "CARE"
		ev.Attributes["note"] = strings.Repeat("x", 1500)
	}
	e.appendAll(prod, evs)
	d, err := e.piiReport(e.admin, &trailv1.PIIAccessReportRequest{TenantId: "acme", SubjectId: "citizen-big"})
	if err != nil {
		t.Fatal(err)
	}
	if d.chunks < 2 || len(d.data) <= downloadChunkBytes {
		t.Fatalf("%d bytes in %d chunks", len(d.data), d.chunks)
	}
	if res, _ := e.mustVerify(d.data); res.Rows != 300 {
		t.Errorf("%d rows", res.Rows)
	}
}

func TestReportREST(t *testing.T) {
	e := newEnv(t, envOptions{})
	reportFixture(e)
	po := e.key(trailv1.Role_ROLE_PRIVACY_OFFICER, "acme")
	aud := e.key(trailv1.Role_ROLE_AUDITOR, "acme")
	base := "/api/v1/audit/tenants/acme"
	tests := []struct {
		name, path, token string
		code              int
		contentType       string
		ext               string
	}{
		{"pdf", base + "/subjects/citizen-7/pii-access?format=pdf", po, http.StatusOK, "application/pdf", ".pdf"},
		{"csv", base + "/subjects/citizen-7/pii-access?format=csv&from=2000-01-01T00:00:00Z", po, http.StatusOK, "text/csv", ".csv"},
		{"json default", base + "/subjects/citizen-7/pii-access", po, http.StatusOK, "application/json", ".json"},
		{"history", base + "/entities/case/42/history?format=json&min_index=1", aud, http.StatusOK, "application/json", ".json"},
		{"auditor denied", base + "/subjects/citizen-7/pii-access?format=pdf", aud, http.StatusForbidden, "application/json", ""},
		{"no key", base + "/subjects/citizen-7/pii-access", "", http.StatusUnauthorized, "application/json", ""},
		{"bad format", base + "/subjects/citizen-7/pii-access?format=xml", po, http.StatusBadRequest, "application/json", ""},
		{"bad time", base + "/subjects/citizen-7/pii-access?from=yesterday", po, http.StatusBadRequest, "application/json", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body, h := e.rest("GET", tt.path, tt.token, nil)
			if code != tt.code || !strings.HasPrefix(h.Get("Content-Type"), tt.contentType) {
				t.Fatalf("HTTP %d %q, want %d %q: %.300s", code, h.Get("Content-Type"), tt.code, tt.contentType, body)
			}
			if tt.code != http.StatusOK {
				return
			}
			disp, params, err := mime.ParseMediaType(h.Get("Content-Disposition"))
			if err != nil || disp != "attachment" || !strings.HasSuffix(params["filename"], tt.ext) {
				t.Errorf("Content-Disposition %q", h.Get("Content-Disposition"))
			}
			if tt.ext == ".json" {
				e.mustVerify(body)
			}
		})
	}
	// A subject id that needs escaping in the path arrives intact.
	code, body, _ := e.rest("GET", base+"/subjects/"+url.PathEscape("citizen 7/x")+"/pii-access", po, nil)
	if code != http.StatusOK {
		t.Fatalf("escaped subject: HTTP %d %s", code, body)
	}
	if _, c := e.mustVerify(body); c.Parameters.SubjectID != "citizen 7/x" {
		t.Errorf("subject %q", c.Parameters.SubjectID)
	}
}

// TestReportAudited: the report call is recorded in the system tenant with
// its parameters.
func TestReportAudited(t *testing.T) {
	e := newEnv(t, envOptions{})
	reportFixture(e)
	po := e.key(trailv1.Role_ROLE_PRIVACY_OFFICER, "acme")
	from := timestamppb.New(time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC))
	if _, err := e.piiReport(po, &trailv1.PIIAccessReportRequest{TenantId: "acme", SubjectId: "citizen-7", From: from,
		Format: trailv1.ReportFormat_REPORT_FORMAT_CSV}); err != nil {
		t.Fatal(err)
	}
	var rec *trailv1.Event
	waitFor(t, 10*time.Second, "the access record", func() bool {
		resp, err := e.read.Search(e.ctx(e.admin), &trailv1.SearchRequest{TenantId: "_system", Action: "trail.v1.ComplianceService.PIIAccessReport"})
		if err != nil || len(resp.GetEntries()) == 0 {
			return false
		}
		rec = resp.GetEntries()[0].GetEntry().GetEvent()
		return true
	})
	attrs := rec.GetAttributes()
	for k, want := range map[string]string{
		"subject_id": "citizen-7", "rows": "5", "flagged": "1", "format": "csv", "from": "2020-01-01T00:00:00Z", "tenant": "acme",
	} {
		if attrs[k] != want {
			t.Errorf("attribute %s = %q, want %q (all: %v)", k, attrs[k], want, attrs)
		}
	}
	if !strings.HasPrefix(attrs["digest"], "sha256:") || !strings.Contains(attrs["event_ids"], "acc-nopurpose") {
		t.Errorf("attributes %v", attrs)
	}
	if rec.GetOutcome() != trailv1.Outcome_OUTCOME_SUCCESS || rec.GetActor().GetRoles()[0] != "privacy_officer" {
		t.Errorf("record %v", rec)
	}
}
