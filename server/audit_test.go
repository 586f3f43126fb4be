package server

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/trailaudit/trail/engine"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// TestAccessAudit: reads, searches, proofs and admin calls are appended to
// the system tenant, saying who did what to which tenant, and denials too.
func TestAccessAudit(t *testing.T) {
	e := newEnv(t, envOptions{})
	auditor := e.key(trailv1.Role_ROLE_AUDITOR, "acme")
	auditorID, _, _ := parseToken(auditor)
	part := e.appendAll(e.admin, []*trailv1.Event{event("acme", "seed")})[0].GetPartition()

	ctx := e.ctx(auditor)
	if _, err := e.read.GetEvent(ctx, &trailv1.GetEventRequest{TenantId: "acme", EventId: "seed"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.read.Search(ctx, &trailv1.SearchRequest{TenantId: "acme", Action: "record.view"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.proofs.GetInclusionProof(ctx, &trailv1.GetInclusionProofRequest{TenantId: "acme", EventId: "seed"}); err != nil {
		t.Fatal(err)
	}
	e.rest("GET", "/api/v1/audit/tenants/acme/partitions/"+part+"/checkpoint", auditor, nil)
	if _, err := e.read.GetEvent(ctx, &trailv1.GetEventRequest{TenantId: "globex", EventId: "seed"}); err == nil {
		t.Fatal("cross-tenant read allowed")
	}

	want := map[string]struct {
		outcome trailv1.Outcome
		tenant  string
		attr    [2]string
	}{
		"trail.v1.ReadService.GetEvent/acme":           {trailv1.Outcome_OUTCOME_SUCCESS, "acme", [2]string{"event_ids", "seed"}},
		"trail.v1.ReadService.Search/acme":             {trailv1.Outcome_OUTCOME_SUCCESS, "acme", [2]string{"results", "1"}},
		"trail.v1.ProofService.GetInclusionProof/acme": {trailv1.Outcome_OUTCOME_SUCCESS, "acme", [2]string{"event_ids", "seed"}},
		"trail.v1.ProofService.GetCheckpoint/acme":     {trailv1.Outcome_OUTCOME_SUCCESS, "acme", [2]string{"partition", part}},
		"trail.v1.ReadService.GetEvent/globex":         {trailv1.Outcome_OUTCOME_DENIED, "globex", [2]string{"code", "PermissionDenied"}},
	}
	var got []*trailv1.StoredEntry
	waitFor(t, 10*time.Second, "access events in the system tenant", func() bool {
		res, err := e.read.Search(e.ctx(e.admin), &trailv1.SearchRequest{TenantId: engine.SystemTenant, ActorId: "apikey:" + auditorID})
		if err != nil {
			t.Fatal(err)
		}
		got = res.GetEntries()
		return len(got) >= len(want)
	})
	for _, se := range got {
		ev := se.GetEntry().GetEvent()
		key := ev.GetAction() + "/" + ev.GetTarget().GetId()
		w, ok := want[key]
		if !ok {
			t.Errorf("unexpected access event %s", key)
			continue
		}
		delete(want, key)
		if ev.GetCategory() != trailv1.Category_CATEGORY_DATA_ACCESS || ev.GetOutcome() != w.outcome ||
			ev.GetActor().GetType() != "api_key" || len(ev.GetActor().GetRoles()) != 1 || ev.GetActor().GetRoles()[0] != "auditor" ||
			ev.GetAttributes()["tenant"] != w.tenant || ev.GetAttributes()[w.attr[0]] != w.attr[1] {
			t.Errorf("%s: access event %v", key, ev)
		}
		if ev.GetActor().GetIp() != "127.0.0.1" {
			t.Errorf("%s: caller IP %q", key, ev.GetActor().GetIp())
		}
	}
	for key := range want {
		t.Errorf("no access event for %s", key)
	}

	// Admin calls are SYSTEM events.
	e.key(trailv1.Role_ROLE_PRODUCER, "acme")
	waitFor(t, 10*time.Second, "the key creation event", func() bool {
		res, err := e.read.Search(e.ctx(e.admin), &trailv1.SearchRequest{TenantId: engine.SystemTenant, Category: trailv1.Category_CATEGORY_SYSTEM})
		if err != nil {
			t.Fatal(err)
		}
		for _, se := range res.GetEntries() {
			ev := se.GetEntry().GetEvent()
			if ev.GetAction() == "trail.v1.AdminService.CreateAPIKey" && ev.GetAttributes()["role"] == "ROLE_PRODUCER" && ev.GetAttributes()["key_id"] != "" {
				return true
			}
		}
		return false
	})
}

// TestAuditQueueOverflow: a full queue drops and counts; enqueue never
// blocks.
func TestAuditQueueOverflow(t *testing.T) {
	a := newAuditLog(nil, "n1", 2, time.Second, slog.New(slog.NewTextHandler(io.Discard, nil)))
	a.metrics = newMetrics(nil, func() float64 { return float64(len(a.queue)) })
	done := make(chan struct{})
	go func() {
		for range 5 {
			a.enqueue(&trailv1.Event{})
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("enqueue blocked on a full queue")
	}
	if got := counterValue(t, a.metrics.auditDropped); got != 3 {
		t.Fatalf("dropped %v, want 3", got)
	}
}

// TestAuditDrainsOnShutdown: events queued before shutdown are appended.
func TestAuditDrainsOnShutdown(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.appendAll(e.admin, []*trailv1.Event{event("acme", "seed")})
	for range 20 {
		if _, err := e.read.GetEvent(e.ctx(e.admin), &trailv1.GetEventRequest{TenantId: "acme", EventId: "seed"}); err != nil {
			t.Fatal(err)
		}
	}
	metrics := e.srv.metrics
	if err := e.shutdown(); err != nil {
		t.Fatal(err)
	}
	if got := counterValue(t, metrics.auditWritten); got != 20 {
		t.Fatalf("%v access events written by shutdown, want 20", got)
	}
	parts, err := e.node.Engine().Partitions(context.Background(), engine.SystemTenant)
	if err != nil || len(parts) != 1 || parts[0].Size != 20 {
		t.Fatalf("system tenant partitions %v, %v", parts, err)
	}
}
