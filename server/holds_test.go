package server

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/trailaudit/trail/engine"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// A hold keeps its entries through sweeps until released; creating and
// releasing it are logged in the system tenant and the hold's tenant.
func TestLegalHoldBlocksPruning(t *testing.T) {
	re := newRetentionEnv(t, -1)
	re.add("login", 8, trailv1.Category_CATEGORY_AUTHENTICATION) // even: alice, odd: bob
	created, err := re.comp.CreateLegalHold(re.ctx(re.admin), &trailv1.CreateLegalHoldRequest{Hold: &trailv1.LegalHold{
		TenantId: "acme", SubjectId: "alice", CaseReference: "CASE-42", Reason: "subpoena"}})
	if err != nil {
		t.Fatal(err)
	}
	h := created.GetHold()
	if h.GetId() == "" || h.GetCreatedAt() == nil || h.GetCreatedBy() == "" || h.GetReleasedAt() != nil {
		t.Fatalf("created hold %v", h)
	}
	re.checkHoldLogged("legal_hold-created-"+h.GetId(), h.GetId(), "audit.legal_hold.created")

	re.now.set(retentionStart.AddDate(3, 0, 0))
	dry, err := re.comp.RetentionDryRun(re.ctx(re.admin), &trailv1.RetentionDryRunRequest{TenantId: "acme"})
	if err != nil || dry.GetExpired() != 8 || dry.GetHeld() != 4 {
		t.Fatalf("dry run: %v, %v", dry, err)
	}
	for _, c := range dry.GetCandidates() {
		held := len(c.GetHeldBy()) == 1 && c.GetHeldBy()[0] == h.GetId()
		if held != (c.GetLeafIndex()%2 == 0) {
			t.Fatalf("candidate %v", c)
		}
	}
	if resp := re.sweep("acme"); resp.GetPruned() != 4 || resp.GetHeld() != 4 {
		t.Fatalf("sweep under hold: %v", resp)
	}
	for i := range 8 {
		id := fmt.Sprint("login-", i)
		if pruned := re.mustEvent("acme", id).GetEntry().GetPruned(); pruned != (i%2 == 1) {
			t.Fatalf("%s pruned=%v under a hold on alice", id, pruned)
		}
	}

	var listed trailv1.ListLegalHoldsResponse
	re.restJSON(http.MethodGet, "/api/v1/admin/holds?tenant_id=acme", re.admin, nil, &listed)
	if len(listed.GetHolds()) != 1 || listed.GetHolds()[0].GetCaseReference() != "CASE-42" {
		t.Fatalf("holds: %v", listed.GetHolds())
	}
	released, err := re.comp.ReleaseLegalHold(re.ctx(re.admin), &trailv1.ReleaseLegalHoldRequest{Id: h.GetId(), Reason: "case closed"})
	if err != nil || released.GetHold().GetReleasedAt() == nil || released.GetHold().GetReleaseReason() != "case closed" {
		t.Fatalf("release: %v, %v", released, err)
	}
	re.checkHoldLogged("legal_hold-released-"+h.GetId(), h.GetId(), "audit.legal_hold.released")
	_, err = re.comp.ReleaseLegalHold(re.ctx(re.admin), &trailv1.ReleaseLegalHoldRequest{Id: h.GetId(), Reason: "again"})
	wantCode(t, err, codes.FailedPrecondition)
	for include, want := range map[bool]int{false: 0, true: 1} {
		got, err := re.comp.ListLegalHolds(re.ctx(re.admin), &trailv1.ListLegalHoldsRequest{IncludeReleased: include})
		if err != nil || len(got.GetHolds()) != want {
			t.Fatalf("list (include released %v): %v, %v", include, got, err)
		}
	}
	if resp := re.sweep("acme"); resp.GetPruned() != 4 || resp.GetHeld() != 0 {
		t.Fatalf("sweep after release: %v", resp)
	}
}

// checkHoldLogged finds the record of a hold action in both logs.
func (re *retentionEnv) checkHoldLogged(eventID, holdID, action string) {
	re.t.Helper()
	for _, tenant := range []string{engine.SystemTenant, "acme"} {
		ev := re.mustEvent(tenant, eventID).GetEntry().GetEntry().GetEvent()
		a := ev.GetAttributes()
		if ev.GetAction() != action || ev.GetCategory() != trailv1.Category_CATEGORY_COMPLIANCE ||
			a["hold_id"] != holdID || a["case_reference"] != "CASE-42" || a["reason"] != "subpoena" ||
			a["scope"] != "tenant=acme subject=alice" {
			re.t.Fatalf("%s in %s: %v", eventID, tenant, ev)
		}
	}
}

// A hold committed after the leader chose the leaves still protects them:
// the state machine filters every prune command (the three-node version of
// this is in raftnode).
func TestLegalHoldGuardsPruneCommand(t *testing.T) {
	re := newRetentionEnv(t, -1)
	re.add("login", 4, trailv1.Category_CATEGORY_AUTHENTICATION) // even: alice, odd: bob
	if _, err := re.comp.CreateLegalHold(re.ctx(re.admin), &trailv1.CreateLegalHoldRequest{Hold: &trailv1.LegalHold{
		TenantId: "acme", SubjectId: "alice", CaseReference: "C", Reason: "r"}}); err != nil {
		t.Fatal(err)
	}
	p := engine.Partition{Tenant: "acme", Month: engine.MonthOf(retentionStart)}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n, err := re.node.Prune(ctx, p, []uint64{0, 1, 2, 3})
	if err != nil || n != 2 {
		t.Fatalf("prune naming held leaves: %d, %v", n, err)
	}
	for i := range 4 {
		if pruned := re.mustEvent("acme", fmt.Sprint("login-", i)).GetEntry().GetPruned(); pruned != (i%2 == 1) {
			t.Fatalf("login-%d pruned=%v", i, pruned)
		}
	}
}
