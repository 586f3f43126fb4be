package server

import (
	"net/http"
	"testing"
	"time"

	"github.com/trailaudit/trail/compliance"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
	"github.com/trailaudit/trail/raftnode"
	"github.com/trailaudit/trail/report"
)

// TestPIIAccessWithoutPurposeIsStoredAndFlagged: a data access that lists
// PII fields but gives no purpose code is exactly what a privacy officer
// must review, so it is stored, over gRPC and REST alike, raises the
// missing_purpose_code anomaly, and is flagged in the subject's PII report.
func TestPIIAccessWithoutPurposeIsStoredAndFlagged(t *testing.T) {
	e := newEnv(t, envOptions{tuneNode: func(c *raftnode.Config) { c.Inspector = compliance.NewDetector() }})
	prod := e.key(trailv1.Role_ROLE_PRODUCER, "acme")
	po := e.key(trailv1.Role_ROLE_PRIVACY_OFFICER, "acme")

	viaGRPC := event("acme", "pii-grpc")
	viaGRPC.SubjectId, viaGRPC.PiiFieldsAccessed = "citizen-9", []string{"name", "personal_code"}
	e.appendAll(prod, []*trailv1.Event{viaGRPC})

	viaREST := event("acme", "pii-rest")
	viaREST.SubjectId, viaREST.PiiFieldsAccessed = "citizen-9", []string{"address"}
	var receipt trailv1.Receipt
	e.restJSON(http.MethodPost, "/api/v1/audit/events", prod, viaREST, &receipt)
	if receipt.GetEventId() != "pii-rest" {
		t.Fatalf("REST receipt %v", &receipt)
	}

	auditor := e.key(trailv1.Role_ROLE_AUDITOR, "acme")
	flagged := map[string]bool{}
	// The receipt comes once the entry is committed; reads follow the apply.
	waitFor(t, 10*time.Second, "missing_purpose_code anomalies for both accesses", func() bool {
		resp, err := e.read.Search(e.ctx(auditor), &trailv1.SearchRequest{TenantId: "acme", Action: compliance.ActionSecurityAnomaly, Limit: 100})
		if err != nil {
			t.Fatalf("search anomalies: %v", err)
		}
		for _, h := range resp.GetEntries() {
			if a := h.GetEntry().GetEvent().GetAttributes(); a["rule"] == compliance.RuleMissingPurpose {
				flagged[a["event_id"]] = true
			}
		}
		return flagged["pii-grpc"] && flagged["pii-rest"]
	})

	dl, err := e.piiReport(po, &trailv1.PIIAccessReportRequest{TenantId: "acme", SubjectId: "citizen-9"})
	if err != nil {
		t.Fatalf("PII report: %v", err)
	}
	res, c := e.mustVerify(dl.data)
	if res.Rows != 2 || res.Flagged != 2 || c.Summary.MissingPurpose != 2 {
		t.Fatalf("report verified %+v, summary %+v; want both accesses flagged", res, c.Summary)
	}
	for _, row := range c.Accesses {
		if row.Flag != report.FlagMissingPurpose || len(row.FieldsAccessed) == 0 {
			t.Fatalf("row %+v, want PII fields listed and flagged %s", row, report.FlagMissingPurpose)
		}
	}
}
