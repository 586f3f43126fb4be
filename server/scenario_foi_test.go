package server

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"mime"
	"net/http"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/trailaudit/trail/internal/eventgen"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
	"github.com/trailaudit/trail/report"
)

// foiAccess is one access to the citizen's data in the FOI scenario.
type foiAccess struct {
	id, actor, name, actorType, role, action, purpose string
	fields                                            []string
	outcome                                           trailv1.Outcome
}

// TestScenarioPrivacyOfficerFOIReport: a citizen asks the city which of its
// staff looked at their data, when and why (a freedom-of-information /
// GDPR access request). Over time, several actors read the citizen's
// record with purpose codes; one reads it without any. The privacy officer
// pulls the PII access report as JSON, CSV and PDF, verifies the JSON
// offline with the log's public key alone, and finds the access without a
// purpose flagged; nothing about other citizens or other tenants is in it.
func TestScenarioPrivacyOfficerFOIReport(t *testing.T) {
	e := newScenarioEnv(t)
	const tenant, citizen = "cityhall", "citizen-4242"
	prod := e.key(trailv1.Role_ROLE_PRODUCER, tenant)
	otherProd := e.key(trailv1.Role_ROLE_PRODUCER, "otherville")
	noise := eventgen.New(eventgen.Config{Seed: 4242, Tenants: 1, Actors: 50, Subjects: 500})
	background := func(tenant string, n int) []*trailv1.Event {
		out := make([]*trailv1.Event, n)
		for i := range out {
			out[i] = noise.Next()
			out[i].TenantId = tenant
		}
		return out
	}

	accesses := []foiAccess{
		{"foi-1", "alice", "Alice Jansen", "user", "caseworker", "record.view", "BENEFIT_ELIGIBILITY", []string{"name", "income"}, trailv1.Outcome_OUTCOME_SUCCESS},
		{"foi-2", "bob", "Bob de Vries", "user", "fraud_investigator", "record.view", "FRAUD_INVESTIGATION", []string{"bank_account", "tax_id"}, trailv1.Outcome_OUTCOME_SUCCESS},
		{"foi-3", "carol", "Carol Smit", "user", "support", "record.export", "", nil, trailv1.Outcome_OUTCOME_SUCCESS},
		{"foi-4", "mallory", "Mallory Bakker", "user", "intern", "record.view", "CASE_MGMT", []string{"health_record"}, trailv1.Outcome_OUTCOME_DENIED},
		{"foi-5", "benefits-batch", "Benefits batch job", "service", "service", "report.run", "BENEFIT_ELIGIBILITY", []string{"income"}, trailv1.Outcome_OUTCOME_SUCCESS},
		{"foi-6", "alice", "Alice Jansen", "user", "caseworker", "record.view", "CASE_MGMT", []string{"address"}, trailv1.Outcome_OUTCOME_SUCCESS},
	}
	// Over time: each access in its own batch, amid the city's other work.
	receipts := make(map[string]*trailv1.Receipt)
	for i, a := range accesses {
		batch := append(background(tenant, 20), foiEvent(tenant, citizen, a))
		rs := e.appendAll(prod, batch)
		receipts[a.id] = rs[len(rs)-1]
		// What must stay out of the report: the same citizen in another
		// city, the citizen's data being modified (not an access), and the
		// same actors reading another citizen.
		other := foiEvent("otherville", citizen, a)
		other.EventId = fmt.Sprintf("other-%d", i)
		e.appendAll(otherProd, append(background("otherville", 5), other))
		mod := foiEvent(tenant, citizen, a)
		mod.EventId, mod.Category, mod.Action = fmt.Sprintf("mod-%d", i), trailv1.Category_CATEGORY_DATA_MODIFICATION, "record.update"
		mod.Changes = []*trailv1.Change{{Field: "address", Before: "Old Street 1", After: "New Street 2"}}
		neighbour := foiEvent(tenant, "citizen-4243", a)
		neighbour.EventId = fmt.Sprintf("neighbour-%d", i)
		e.appendAll(prod, []*trailv1.Event{mod, neighbour})
	}

	officer := e.key(trailv1.Role_ROLE_PRIVACY_OFFICER, tenant)
	req := &trailv1.PIIAccessReportRequest{TenantId: tenant, SubjectId: citizen, Format: trailv1.ReportFormat_REPORT_FORMAT_JSON}

	// JSON: verified offline, complete, in order, with the flag.
	d, err := e.piiReport(officer, req)
	if err != nil {
		t.Fatalf("PII access report: %v", err)
	}
	res, c := e.mustVerify(d.data)
	if res.Rows != len(accesses) || res.Flagged != 1 || c.Summary.MissingPurpose != 1 || c.Summary.Actors != 5 {
		t.Fatalf("verified %+v, summary %+v", res, c.Summary)
	}
	for i, r := range c.Accesses {
		checkFOIRow(t, r, accesses[i], receipts[accesses[i].id])
	}

	// A time range: the accesses from foi-2 up to (not including) foi-5.
	ranged := &trailv1.PIIAccessReportRequest{TenantId: tenant, SubjectId: citizen,
		From: receipts["foi-2"].GetSequencerTime(), To: receipts["foi-5"].GetSequencerTime()}
	d, err = e.piiReport(officer, ranged)
	if err != nil {
		t.Fatal(err)
	}
	if _, rc := e.mustVerify(d.data); !slices.Equal(eventIDs(rc), []string{"foi-2", "foi-3", "foi-4"}) {
		t.Errorf("ranged report holds %q", eventIDs(rc))
	}

	// CSV and PDF, as the officer downloads them over REST.
	path := "/api/v1/audit/tenants/" + tenant + "/subjects/" + citizen + "/pii-access"
	csvBody := foiDownload(t, e, path+"?format=csv", officer, "text/csv", ".csv")
	checkFOICSV(t, csvBody, accesses)
	pdf := foiDownload(t, e, path+"?format=pdf", officer, "application/pdf", ".pdf")
	if !bytes.HasPrefix(pdf, []byte("%PDF-")) || !bytes.Contains(pdf, []byte("sha256:")) {
		t.Errorf("PDF %.40q lacks its attestation digest", pdf)
	}
	// Both verify offline, as the JSON does.
	for _, doc := range [][]byte{csvBody, pdf} {
		if v, err := report.VerifyFile(doc, e.verifier, ""); err != nil || v.Rows != len(accesses) || v.Flagged != 1 {
			t.Errorf("verify %s report: %+v, %v", report.DetectFormat(doc), v, err)
		}
	}

	// Another node serves the same report, provable with the same key.
	f := scenarioFollower(t, e)
	fd, err := f.piiReport(officer, req)
	if err != nil {
		t.Fatalf("report from follower %s: %v", f.node.ID(), err)
	}
	if _, fc := f.mustVerify(fd.data); !slices.Equal(eventIDs(fc), eventIDs(c)) {
		t.Errorf("follower lists %q, leader %q", eventIDs(fc), eventIDs(c))
	}

	// The city lists its valid purpose codes (the anomaly rules' list):
	// the report now also flags the access whose code is not on it.
	rules := &trailv1.AnomalyRules{TenantId: tenant, ValidPurposeCodes: []string{"BENEFIT_ELIGIBILITY", "CASE_MGMT"}}
	if _, err := e.comp.SetAnomalyRules(e.ctx(e.admin), &trailv1.SetAnomalyRulesRequest{Rules: rules}); err != nil {
		t.Fatal(err)
	}
	d, err = e.piiReport(officer, req)
	if err != nil {
		t.Fatal(err)
	}
	res, c = e.mustVerify(d.data)
	if res.Flagged != 2 || c.Summary.MissingPurpose != 1 || c.Summary.InvalidPurpose != 1 {
		t.Fatalf("with valid codes listed: verified %+v, summary %+v", res, c.Summary)
	}
	if r := c.Accesses[1]; r.EventID != "foi-2" || r.Flag != report.FlagInvalidPurpose {
		t.Fatalf("foi-2 (FRAUD_INVESTIGATION, not listed) flagged %q", r.Flag)
	}

	// The FOI report is the privacy officer's: an auditor may not run it.
	_, err = e.piiReport(e.key(trailv1.Role_ROLE_AUDITOR, tenant), req)
	wantCode(t, err, codes.PermissionDenied)
}

func foiEvent(tenant, citizen string, a foiAccess) *trailv1.Event {
	return &trailv1.Event{
		TenantId: tenant, EventId: a.id, Category: trailv1.Category_CATEGORY_DATA_ACCESS, Action: a.action, Outcome: a.outcome,
		Actor: &trailv1.Actor{Id: a.actor, Type: a.actorType, DisplayName: a.name, Roles: []string{a.role}, Ip: "10.20.30.40",
			SessionId: "sess-" + a.id},
		SubjectId: citizen, Target: &trailv1.Target{Type: "citizen_record", Id: citizen},
		PiiFieldsAccessed: a.fields, PurposeCode: a.purpose, SourceService: "benefits", OccurredAt: timestamppb.Now(),
	}
}

// checkFOIRow checks one report row against the access it reports.
func checkFOIRow(t *testing.T, r report.AccessRow, a foiAccess, rc *trailv1.Receipt) {
	t.Helper()
	wantFlag := ""
	if a.purpose == "" {
		wantFlag = report.FlagMissingPurpose
	}
	switch {
	case r.EventID != a.id || r.ActorID != a.actor || r.ActorName != a.name || r.ActorType != a.actorType:
		t.Errorf("row %s: actor %+v, want %+v", a.id, r.Actor, a)
	case !slices.Equal(r.ActorRoles, []string{a.role}) || r.ActorIP != "10.20.30.40":
		t.Errorf("row %s: roles %q ip %q", a.id, r.ActorRoles, r.ActorIP)
	case !slices.Equal(r.FieldsAccessed, a.fields) || r.PurposeCode != a.purpose || r.Flag != wantFlag:
		t.Errorf("row %s: fields %q purpose %q flag %q", a.id, r.FieldsAccessed, r.PurposeCode, r.Flag)
	case r.Action != a.action || r.Outcome != strings.ToLower(strings.TrimPrefix(a.outcome.String(), "OUTCOME_")):
		t.Errorf("row %s: action %q outcome %q", a.id, r.Action, r.Outcome)
	case !r.SequencerTime.Equal(rc.GetSequencerTime().AsTime()) || r.OccurredAt.IsZero():
		t.Errorf("row %s: sequenced %v, receipt says %v", a.id, r.SequencerTime, rc.GetSequencerTime().AsTime())
	case r.Partition != rc.GetPartition() || r.LeafIndex != rc.GetLeafIndex() || !bytes.Equal(r.LeafHash[:], rc.GetLeafHash()):
		t.Errorf("row %s: leaf %s/%d, receipt says %s/%d", a.id, r.Partition, r.LeafIndex, rc.GetPartition(), rc.GetLeafIndex())
	}
}

func eventIDs(c *report.Content) []string {
	var out []string
	for _, r := range c.Accesses {
		out = append(out, r.EventID)
	}
	for _, r := range c.History {
		out = append(out, r.EventID)
	}
	return out
}

// foiDownload fetches a report over REST and checks its headers.
func foiDownload(t *testing.T, e *env, path, token, contentType, ext string) []byte {
	t.Helper()
	code, body, h := e.rest("GET", path, token, nil)
	if code != http.StatusOK || !strings.HasPrefix(h.Get("Content-Type"), contentType) {
		t.Fatalf("GET %s: HTTP %d %q: %.300s", path, code, h.Get("Content-Type"), body)
	}
	disp, params, err := mime.ParseMediaType(h.Get("Content-Disposition"))
	if err != nil || disp != "attachment" || !strings.HasSuffix(params["filename"], ext) {
		t.Errorf("GET %s: Content-Disposition %q", path, h.Get("Content-Disposition"))
	}
	return body
}

// checkFOICSV checks the CSV lists every access once, with only the
// access without a purpose code flagged, and ends with the attestation.
func checkFOICSV(t *testing.T, body []byte, accesses []foiAccess) {
	t.Helper()
	recs, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatalf("CSV: %v", err)
	}
	col := make(map[string]int)
	for i, h := range recs[0] {
		col[h] = i
	}
	data := recs[1 : 1+len(accesses)]
	for i, r := range data {
		a := accesses[i]
		flagged := r[col["flag"]] == report.FlagMissingPurpose
		if r[col["event_id"]] != a.id || flagged != (a.purpose == "") || r[col["purpose_code"]] != a.purpose {
			t.Errorf("CSV record %d: %q", i, r)
		}
		if r[col["leaf_hash"]] == "" || !strings.HasPrefix(r[col["report_digest"]], "sha256:") {
			t.Errorf("CSV record %d lacks its proof columns", i)
		}
	}
	trailer := recs[1+len(accesses):]
	if len(trailer) < 3 || trailer[0][0] != report.CSVParametersRecord || trailer[1][0] != report.CSVCheckpointRecord ||
		trailer[len(trailer)-1][0] != report.CSVAttestationRecord {
		t.Errorf("CSV trailer %q", trailer)
	}
}
