package server

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	"github.com/trailaudit/trail/compliance"
	"github.com/trailaudit/trail/engine"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
	"github.com/trailaudit/trail/raftnode"
)

// recv returns the next domain event or fails after d.
func recv(t *testing.T, s grpc.ServerStreamingClient[trailv1.DomainEvent], d time.Duration) *trailv1.DomainEvent {
	t.Helper()
	type result struct {
		ev  *trailv1.DomainEvent
		err error
	}
	ch := make(chan result, 1)
	go func() { ev, err := s.Recv(); ch <- result{ev, err} }()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("Recv: %v", r.err)
		}
		return r.ev
	case <-time.After(d):
		t.Fatalf("no domain event within %s", d)
		return nil
	}
}

// TestSubscribeDomainEvents follows a tenant through appends, an anomaly
// and a month's seal: recorded batches carry exact leaf ranges, the
// anomaly arrives with its entry, and the seal with the final checkpoint,
// which verifies.
func TestSubscribeDomainEvents(t *testing.T) {
	clock := &settableClock{t: time.Date(2026, 10, 31, 22, 0, 0, 0, time.UTC)}
	e := newEnv(t, envOptions{tuneNode: func(c *raftnode.Config) {
		c.Clock = clock.now
		c.Inspector = compliance.NewDetector()
	}})
	producer := e.key(trailv1.Role_ROLE_PRODUCER, "acme")
	auditor := e.key(trailv1.Role_ROLE_AUDITOR, "acme")
	e.appendAll(producer, quiet(events("acme", "before", 3))) // not reported: before the subscription

	ctx, cancel := context.WithTimeout(e.ctx(auditor), time.Minute)
	defer cancel()
	sub, err := e.comp.Subscribe(ctx, &trailv1.SubscribeRequest{TenantId: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	// The subscription starts once the server has answered with headers;
	// an event appended before that might be counted as "before".
	if _, err := sub.Header(); err != nil {
		t.Fatal(err)
	}

	e.appendAll(producer, quiet(events("acme", "oct", 4)))
	total := uint64(0)
	for total < 4 {
		ev := recv(t, sub, 10*time.Second)
		if ev.GetType() != DomainEventRecorded || ev.GetPartition() != "2026-10" || ev.GetFromLeaf() != 3+total {
			t.Fatalf("domain event %v, want recorded leaves from %d of 2026-10", ev, 3+total)
		}
		total += ev.GetCount()
		if ev.GetTreeSize() != 3+total {
			t.Fatalf("tree size %d after %d new leaves", ev.GetTreeSize(), total)
		}
	}

	// A data access without a purpose code raises an anomaly record.
	access := event("acme", "peek")
	access.Category = trailv1.Category_CATEGORY_DATA_ACCESS
	access.SubjectId = "citizen-1"
	e.appendAll(producer, []*trailv1.Event{access})
	var anomaly *trailv1.DomainEvent
	for anomaly == nil {
		ev := recv(t, sub, 10*time.Second)
		switch ev.GetType() {
		case DomainEventRecorded:
		case DomainEventSecurityAnomaly:
			anomaly = ev
		default:
			t.Fatalf("unexpected %v", ev)
		}
	}
	a := anomaly.GetEntry().GetEntry().GetEvent()
	if a.GetAttributes()["rule"] != compliance.RuleMissingPurpose || a.GetAttributes()["event_id"] != "peek" {
		t.Fatalf("anomaly %v", a)
	}

	clock.set(time.Date(2026, 11, 1, 0, 0, 1, 0, time.UTC))
	oct := engine.Partition{Tenant: "acme", Month: engine.Month{Year: 2026, Month: time.October}}
	if err := e.node.Seal(context.Background(), oct); err != nil {
		t.Fatal(err)
	}
	for {
		ev := recv(t, sub, 10*time.Second)
		if ev.GetType() == DomainEventRecorded {
			continue
		}
		if ev.GetType() != DomainEventPartitionSealed || ev.GetPartition() != "2026-10" || ev.GetTreeSize() != 9 {
			t.Fatalf("domain event %v, want 2026-10 sealed at 9 leaves", ev)
		}
		cp := e.openCheckpoint([]byte(ev.GetCheckpoint().GetSignedNote()), "acme", "2026-10")
		if cp.Size != 9 {
			t.Fatalf("final checkpoint of size %d", cp.Size)
		}
		break
	}

	// November: a new partition from leaf 0.
	e.appendAll(producer, quiet(events("acme", "nov", 2)))
	ev := recv(t, sub, 10*time.Second)
	if ev.GetType() != DomainEventRecorded || ev.GetPartition() != "2026-11" || ev.GetFromLeaf() != 0 {
		t.Fatalf("domain event %v, want recorded from leaf 0 of 2026-11", ev)
	}
}

// quiet makes evs logins, which no anomaly rule looks at.
func quiet(evs []*trailv1.Event) []*trailv1.Event {
	for _, ev := range evs {
		ev.Category = trailv1.Category_CATEGORY_AUTHENTICATION
		ev.Action = "user.login"
	}
	return evs
}

func TestSubscribeBadRequests(t *testing.T) {
	e := newEnv(t, envOptions{})
	auditor := e.key(trailv1.Role_ROLE_AUDITOR, "acme")
	tests := []struct {
		name  string
		token string
		req   *trailv1.SubscribeRequest
		code  codes.Code
	}{
		{"unknown type", auditor, &trailv1.SubscribeRequest{TenantId: "acme", Types: []string{"audit.everything"}}, codes.InvalidArgument},
		{"no tenant", auditor, &trailv1.SubscribeRequest{}, codes.InvalidArgument},
		{"other tenant", auditor, &trailv1.SubscribeRequest{TenantId: "globex"}, codes.PermissionDenied},
		{"no key", "", &trailv1.SubscribeRequest{TenantId: "acme"}, codes.Unauthenticated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(e.ctx(tt.token), 10*time.Second)
			defer cancel()
			sub, err := e.comp.Subscribe(ctx, tt.req)
			if err == nil {
				_, err = sub.Recv()
			}
			wantCode(t, err, tt.code)
		})
	}
}

func TestAnomalyRulesAPI(t *testing.T) {
	e := newEnv(t, envOptions{})
	auditor := e.key(trailv1.Role_ROLE_AUDITOR, "acme")
	r, err := e.comp.GetAnomalyRules(e.ctx(auditor), &trailv1.GetAnomalyRulesRequest{TenantId: "acme"})
	if err != nil || r.GetRules().GetMaxDistinctSubjectsPerHour() != compliance.DefaultMaxDistinctSubjects {
		t.Fatalf("default rules = %v, %v", r, err)
	}
	bad := []*trailv1.AnomalyRules{
		{TenantId: "acme", TimeZone: "Nowhere/Land"},
		{TenantId: "acme", WorkingHoursStart: "25:00", WorkingHoursEnd: "18:00"},
		{TenantId: "acme", WorkingHoursStart: "08:00"},
		{TenantId: engine.SystemTenant},
		{},
	}
	for _, rules := range bad {
		_, err := e.comp.SetAnomalyRules(e.ctx(e.admin), &trailv1.SetAnomalyRulesRequest{Rules: rules})
		wantCode(t, err, codes.InvalidArgument)
	}
	_, err = e.comp.SetAnomalyRules(e.ctx(e.admin), &trailv1.SetAnomalyRulesRequest{})
	wantCode(t, err, codes.InvalidArgument)

	// REST: the same rules under the admin route.
	body := &trailv1.AnomalyRules{TenantId: "acme", WorkingHoursStart: "07:30", WorkingHoursEnd: "16:00", TimeZone: "Europe/Tallinn"}
	status, out, _ := e.rest("PUT", "/api/v1/admin/tenants/acme/anomaly-rules", e.admin, body)
	if status != 200 {
		t.Fatalf("PUT anomaly rules: %d %s", status, out)
	}
	got := new(trailv1.GetAnomalyRulesResponse)
	e.restJSON("GET", "/api/v1/admin/tenants/acme/anomaly-rules", auditor, nil, got)
	if got.GetRules().GetWorkingHoursStart() != "07:30" || got.GetRules().GetMaxDistinctSubjectsPerHour() != compliance.DefaultMaxDistinctSubjects {
		t.Fatalf("rules after PUT: %v", got.GetRules())
	}
}

// TestSubscribeRESTLive: over REST a subscription answers 200 as soon as
// it is live, before any event (a quiet tenant's subscriber is not left
// waiting for headers), and receives what is recorded after that; a
// refused one still gets its HTTP status.
func TestSubscribeRESTLive(t *testing.T) {
	e := newEnv(t, envOptions{})
	auditor := e.key(trailv1.Role_ROLE_AUDITOR, "acme")
	e.appendAll(e.admin, []*trailv1.Event{event("acme", "before")})
	tests := []struct {
		name, path, token string
		status            int
	}{
		{"live", "/api/v1/audit/tenants/acme/subscribe?types=audit.event.recorded", auditor, http.StatusOK},
		{"other tenant", "/api/v1/audit/tenants/globex/subscribe", auditor, http.StatusForbidden},
		{"unknown type", "/api/v1/audit/tenants/acme/subscribe?types=audit.nothing", auditor, http.StatusBadRequest},
		{"no key", "/api/v1/audit/tenants/acme/subscribe", "", http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, "GET", e.httpBase+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tt.token != "" {
				req.Header.Set("Authorization", "Bearer "+tt.token)
			}
			// Nothing is appended before the answer: headers must come
			// without a first event.
			resp, err := e.http.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tt.status {
				b, _ := io.ReadAll(resp.Body)
				t.Fatalf("HTTP %d, want %d: %s", resp.StatusCode, tt.status, b)
			}
			if tt.status != http.StatusOK {
				return
			}
			e.appendAll(e.admin, []*trailv1.Event{event("acme", "after")})
			line, err := bufio.NewReader(resp.Body).ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			var msg struct {
				Result struct {
					Type     string `json:"type"`
					FromLeaf string `json:"from_leaf"`
					Count    string `json:"count"`
				} `json:"result"`
			}
			if err := json.Unmarshal([]byte(line), &msg); err != nil {
				t.Fatalf("%q: %v", line, err)
			}
			if msg.Result.Type != DomainEventRecorded || msg.Result.FromLeaf != "1" || msg.Result.Count != "1" {
				t.Errorf("first event %s, want the one leaf appended after the subscription went live", line)
			}
		})
	}
}
