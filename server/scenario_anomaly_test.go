package server

import (
	"context"
	"fmt"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/trailaudit/trail/compliance"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// TestScenarioSecurityAnalystOffHoursBurst is the security analyst's
// scenario: a clerk of the city registry opens 150 citizens' records
// between 02:00 and 02:50 on a Tuesday night. The registry's rules
// (working hours 08:00-18:00 Tallinn time, at most 120 distinct citizens
// an hour) flag the burst once as off-hours access (with the size of the
// request that opened it) and once as bulk access, at the 120th citizen;
// daytime work by other clerks raises nothing. The
// analyst, an auditor of the tenant connected to another node, sees the
// anomalies arrive on a subscription, finds them by search, proves the
// bulk-access record and the access that triggered it against signed
// checkpoints, and lists the burst itself.
func TestScenarioSecurityAnalystOffHoursBurst(t *testing.T) {
	const tenant = "city-registry"
	e := newScenarioEnv(t)
	analystNode := scenarioFollower(t, e)

	rules := &trailv1.AnomalyRules{
		TenantId: tenant, MaxDistinctSubjectsPerHour: 120,
		WorkingHoursStart: "08:00", WorkingHoursEnd: "18:00", TimeZone: "Europe/Tallinn",
		ValidPurposeCodes: []string{"case-handling", "benefit-review", "fraud-investigation"},
	}
	if _, err := e.comp.SetAnomalyRules(e.ctx(e.admin), &trailv1.SetAnomalyRulesRequest{Rules: rules}); err != nil {
		t.Fatalf("SetAnomalyRules: %v", err)
	}
	analyst := e.key(trailv1.Role_ROLE_AUDITOR, tenant)
	producer := e.key(trailv1.Role_ROLE_PRODUCER, tenant)

	subCtx, cancel := context.WithTimeout(analystNode.ctx(analyst), time.Minute)
	defer cancel()
	waitApplied(t, analystNode, e)
	sub, err := analystNode.comp.Subscribe(subCtx, &trailv1.SubscribeRequest{TenantId: tenant, Types: []string{DomainEventSecurityAnomaly}})
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	got := make(chan *trailv1.DomainEvent, 1024)
	go func() {
		for {
			ev, err := sub.Recv()
			if err != nil {
				close(got)
				return
			}
			got <- ev
		}
	}()

	tallinn, err := time.LoadLocation("Europe/Tallinn")
	if err != nil {
		t.Fatal(err)
	}
	tuesday := time.Date(2026, 11, 17, 0, 0, 0, 0, tallinn)
	var day []*trailv1.Event
	for i := range 40 {
		at := tuesday.Add(9*time.Hour + time.Duration(i)*7*time.Minute)
		day = append(day, recordView(tenant, fmt.Sprintf("day-%d", i), fmt.Sprintf("clerk-%d", i%5), fmt.Sprintf("citizen-%d", 1000+i), "benefit-review", at))
	}
	// The producer's service talks to the analyst's node; appends are
	// forwarded to the leader, where the rules run.
	analystNode.appendAll(producer, day)

	var burst []*trailv1.Event
	for i := range 150 {
		at := tuesday.Add(2*time.Hour + time.Duration(i)*20*time.Second)
		burst = append(burst, recordView(tenant, fmt.Sprintf("night-%03d", i), "clerk-17", fmt.Sprintf("citizen-%d", 5000+i), "case-handling", at))
	}
	for i := 0; i < len(burst); i += 25 {
		analystNode.appendAll(producer, burst[i:i+25])
	}
	waitApplied(t, analystNode, e)

	// Subscription: one off-hours record and one bulk-access record.
	byRule := map[string]int{}
	var bulk, offHours *trailv1.DomainEvent
	deadline := time.After(30 * time.Second)
	for byRule[compliance.RuleOffHours]+byRule[compliance.RuleBulkSubjectAccess] < 2 {
		select {
		case ev, ok := <-got:
			if !ok {
				t.Fatalf("subscription ended early; so far %v", byRule)
			}
			if ev.GetType() != DomainEventSecurityAnomaly || ev.GetEntry() == nil {
				t.Fatalf("unexpected domain event %v", ev)
			}
			rule := ev.GetEntry().GetEntry().GetEvent().GetAttributes()["rule"]
			byRule[rule]++
			switch rule {
			case compliance.RuleBulkSubjectAccess:
				bulk = ev
			case compliance.RuleOffHours:
				offHours = ev
			}
		case <-deadline:
			t.Fatalf("subscription delivered %v, want 1 off-hours and 1 bulk access", byRule)
		}
	}
	if byRule[compliance.RuleOffHours] != 1 || byRule[compliance.RuleBulkSubjectAccess] != 1 || len(byRule) != 2 {
		t.Fatalf("anomalies by rule %v, want 1 off-hours and 1 bulk access, nothing else", byRule)
	}
	if a := offHours.GetEntry().GetEntry().GetEvent().GetAttributes(); a["event_id"] != "night-000" || a["accesses"] != "25" || a["window"] != "1h0m0s" {
		t.Fatalf("off-hours record %v; want one raised at night-000 counting the request's 25 accesses", a)
	}

	// Search: the same records through the action index, on the analyst's
	// node.
	var found int
	req := &trailv1.SearchRequest{TenantId: tenant, Action: compliance.ActionSecurityAnomaly, Limit: 100}
	for {
		resp, err := analystNode.read.Search(analystNode.ctx(analyst), req)
		if err != nil {
			t.Fatalf("Search anomalies: %v", err)
		}
		for _, h := range resp.GetEntries() {
			ev := h.GetEntry().GetEvent()
			if ev.GetCategory() != trailv1.Category_CATEGORY_SECURITY || ev.GetTarget().GetId() != "clerk-17" {
				t.Fatalf("anomaly %s about %v in category %v", ev.GetEventId(), ev.GetTarget(), ev.GetCategory())
			}
			found++
		}
		if req.Cursor = resp.GetNextCursor(); req.Cursor == "" {
			break
		}
	}
	if found != 2 {
		t.Fatalf("search found %d anomalies, want 2", found)
	}

	// Proof: the bulk record and the access that crossed the threshold.
	attrs := bulk.GetEntry().GetEntry().GetEvent().GetAttributes()
	if attrs["distinct_subjects"] != "120" || attrs["threshold"] != "120" || attrs["event_id"] != "night-119" {
		t.Fatalf("bulk-access record %v; want the 120th citizen (night-119) at a threshold of 120", attrs)
	}
	for _, id := range []string{bulk.GetEntry().GetEntry().GetEvent().GetEventId(), attrs["event_id"]} {
		p, err := analystNode.proofs.GetInclusionProof(analystNode.ctx(analyst), &trailv1.GetInclusionProofRequest{TenantId: tenant, EventId: id})
		if err != nil {
			t.Fatalf("prove %s: %v", id, err)
		}
		analystNode.verifyInclusion(p, tenant)
	}

	// The burst itself: every access of clerk-17 in that hour.
	from, to := tuesday.Add(2*time.Hour), tuesday.Add(3*time.Hour)
	subjects := map[string]bool{}
	sreq := &trailv1.SearchRequest{TenantId: tenant, ActorId: "clerk-17", Category: trailv1.Category_CATEGORY_DATA_ACCESS, Limit: 1000}
	resp, err := analystNode.read.Search(analystNode.ctx(analyst), sreq)
	if err != nil {
		t.Fatalf("Search burst: %v", err)
	}
	for _, h := range resp.GetEntries() {
		at := h.GetEntry().GetEvent().GetOccurredAt().AsTime()
		if at.Before(from) || !at.Before(to) {
			t.Fatalf("clerk-17 access at %s outside the hour", at)
		}
		subjects[h.GetEntry().GetEvent().GetSubjectId()] = true
	}
	if len(subjects) != 150 {
		t.Fatalf("clerk-17 read %d distinct citizens, want 150", len(subjects))
	}

	// Rules are an admin's to change; the analyst may read them.
	if _, err := analystNode.comp.SetAnomalyRules(analystNode.ctx(analyst), &trailv1.SetAnomalyRulesRequest{Rules: rules}); err == nil {
		t.Fatal("an auditor changed anomaly rules")
	} else {
		wantCode(t, err, codes.PermissionDenied)
	}
	r, err := analystNode.comp.GetAnomalyRules(analystNode.ctx(analyst), &trailv1.GetAnomalyRulesRequest{TenantId: tenant})
	if err != nil || r.GetRules().GetMaxDistinctSubjectsPerHour() != 120 {
		t.Fatalf("GetAnomalyRules = %v, %v", r, err)
	}
}

func recordView(tenant, id, actor, subject, purpose string, at time.Time) *trailv1.Event {
	return &trailv1.Event{
		TenantId: tenant, EventId: id, Category: trailv1.Category_CATEGORY_DATA_ACCESS,
		Action: "citizen.record.view", Outcome: trailv1.Outcome_OUTCOME_SUCCESS,
		Actor:     &trailv1.Actor{Id: actor, Type: "employee", Roles: []string{"registry-clerk"}},
		SubjectId: subject, Target: &trailv1.Target{Type: "citizen_record", Id: subject},
		PiiFieldsAccessed: []string{"name", "address", "personal_code"}, PurposeCode: purpose,
		SourceService: "registry-web", OccurredAt: timestamppb.New(at),
	}
}

// waitApplied waits until f has applied everything e's node has.
func waitApplied(t *testing.T, f, e *env) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := f.node.WaitApplied(ctx, e.node.AppliedIndex()); err != nil {
		t.Fatalf("%s catching up with %s: %v", f.node.ID(), e.node.ID(), err)
	}
}
