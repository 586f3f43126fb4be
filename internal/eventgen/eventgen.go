// Package eventgen generates realistic audit events for tests and
// benchmarks: the nine categories in plausible proportions, tenants of
// skewed sizes, actors and subjects with realistic cardinality, PII-field
// data access with purpose codes, and field-level changes. Output is a pure
// function of the seed, so runs are reproducible; payloads vary so that
// compression numbers mean something.
package eventgen

import (
	"fmt"
	"math/rand/v2"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// Config shapes a Generator.
type Config struct {
	Seed     uint64
	Tenants  int // default 8; tenant i gets weight 1/(i+1)
	Actors   int // per tenant, default 2000
	Subjects int // per tenant, default 100000
	// TargetBytes pads events with realistic attributes up to about this
	// encoded size (0: no padding).
	TargetBytes int
	// Start is the producer time of the first event; it advances ~1 ms per event.
	Start time.Time
}

// Generator produces events. It is not safe for concurrent use.
type Generator struct {
	cfg     Config
	rng     *rand.Rand
	zipf    *rand.Zipf
	seq     uint64
	now     time.Time
	weights []float64
}

// New returns a Generator.
func New(cfg Config) *Generator {
	if cfg.Tenants <= 0 {
		cfg.Tenants = 8
	}
	if cfg.Actors <= 0 {
		cfg.Actors = 2000
	}
	if cfg.Subjects <= 0 {
		cfg.Subjects = 100_000
	}
	if cfg.Start.IsZero() {
		cfg.Start = time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC)
	}
	g := &Generator{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)), now: cfg.Start}
	g.zipf = rand.NewZipf(g.rng, 1.2, 1, uint64(cfg.Actors-1))
	total := 0.0
	for i := range cfg.Tenants {
		total += 1 / float64(i+1)
		g.weights = append(g.weights, total)
	}
	for i := range g.weights {
		g.weights[i] /= total
	}
	return g
}

// TenantID is the name of tenant i.
func TenantID(i int) string { return fmt.Sprintf("tenant-%02d", i) }

var categories = []struct {
	c      trailv1.Category
	weight int
	acts   []string
}{
	{trailv1.Category_CATEGORY_AUTHENTICATION, 30, []string{"user.login", "user.logout", "mfa.challenge", "password.reset"}},
	{trailv1.Category_CATEGORY_AUTHORIZATION, 10, []string{"role.grant", "role.revoke", "permission.check"}},
	{trailv1.Category_CATEGORY_DATA_ACCESS, 25, []string{"record.view", "record.export", "report.run"}},
	{trailv1.Category_CATEGORY_DATA_MODIFICATION, 15, []string{"record.update", "record.create", "record.delete"}},
	{trailv1.Category_CATEGORY_WORKFLOW, 6, []string{"case.assign", "case.close", "approval.submit"}},
	{trailv1.Category_CATEGORY_FINANCIAL, 5, []string{"payment.create", "refund.issue", "invoice.approve"}},
	{trailv1.Category_CATEGORY_COMPLIANCE, 3, []string{"consent.record", "policy.ack"}},
	{trailv1.Category_CATEGORY_SYSTEM, 4, []string{"config.change", "service.start"}},
	{trailv1.Category_CATEGORY_SECURITY, 2, []string{"alert.raise", "key.rotate"}},
}

var (
	piiFields = []string{"name", "date_of_birth", "national_id", "address", "phone", "email", "health_record", "bank_account", "tax_id", "income"}
	purposes  = []string{"CASE_MGMT", "BENEFIT_ELIGIBILITY", "FRAUD_INVESTIGATION", "CUSTOMER_SUPPORT", "LEGAL_REQUEST", "AUDIT"}
	services  = []string{"identity", "payments", "crm", "hr", "courts", "permits"}
	roles     = []string{"caseworker", "supervisor", "clerk", "admin", "auditor", "support"}
	targets   = []string{"citizen_record", "permit", "invoice", "case", "employee", "account"}
	reasons   = []string{
		"Benefit eligibility review requested by the applicant",
		"Bulk export for the annual statistics report",
		"Customer called about a missing payment",
		"Fraud investigation opened after an alert",
		"Court order to disclose the case file",
		"Routine audit of closed cases",
		"Address change verification",
		"Duplicate record check before merge",
	}
)

// Next returns the next event.
func (g *Generator) Next() *trailv1.Event {
	g.seq++
	g.now = g.now.Add(time.Duration(500+g.rng.IntN(1000)) * time.Microsecond)
	tenant := g.tenant()
	cat := g.category()
	actor := int(g.zipf.Uint64())
	subject := g.rng.IntN(g.cfg.Subjects)
	ev := &trailv1.Event{
		TenantId: TenantID(tenant),
		EventId:  fmt.Sprintf("evt-%016x-%08d", g.cfg.Seed, g.seq),
		Category: cat.c,
		Action:   cat.acts[g.rng.IntN(len(cat.acts))],
		Outcome:  g.outcome(),
		Actor: &trailv1.Actor{
			Id: fmt.Sprintf("user-%05d", actor), Type: "user",
			DisplayName: fmt.Sprintf("User %05d", actor),
			Roles:       []string{roles[actor%len(roles)]},
			Ip:          fmt.Sprintf("10.%d.%d.%d", actor%256, g.rng.IntN(256), g.rng.IntN(256)),
			UserAgent:   "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36",
			SessionId:   fmt.Sprintf("sess-%08x", g.rng.Uint32()),
		},
		SubjectId:     fmt.Sprintf("citizen-%07d", subject),
		Target:        &trailv1.Target{Type: targets[g.rng.IntN(len(targets))], Id: fmt.Sprintf("obj-%08d", g.rng.IntN(10_000_000))},
		SourceService: services[g.rng.IntN(len(services))],
		TraceId:       fmt.Sprintf("%016x%016x", g.rng.Uint64(), g.rng.Uint64()),
		OccurredAt:    timestamppb.New(g.now),
	}
	switch cat.c {
	case trailv1.Category_CATEGORY_DATA_ACCESS:
		n := 1 + g.rng.IntN(3)
		for range n {
			ev.PiiFieldsAccessed = append(ev.PiiFieldsAccessed, piiFields[g.rng.IntN(len(piiFields))])
		}
		ev.PurposeCode = purposes[g.rng.IntN(len(purposes))]
		// Free text, as a caseworker types it: what full-text search
		// reads (the "reason" attribute is indexed by default).
		ev.Attributes = map[string]string{"reason": reasons[g.rng.IntN(len(reasons))] + fmt.Sprintf(" (ticket %d)", g.rng.IntN(100_000))}
	case trailv1.Category_CATEGORY_DATA_MODIFICATION:
		n := 1 + g.rng.IntN(3)
		for range n {
			f := piiFields[g.rng.IntN(len(piiFields))]
			ev.Changes = append(ev.Changes, &trailv1.Change{Field: f, Before: g.word(), After: g.word()})
		}
	}
	g.pad(ev)
	return ev
}

func (g *Generator) tenant() int {
	x := g.rng.Float64()
	for i, w := range g.weights {
		if x < w {
			return i
		}
	}
	return len(g.weights) - 1
}

func (g *Generator) category() struct {
	c      trailv1.Category
	weight int
	acts   []string
} {
	x := g.rng.IntN(100)
	for _, c := range categories {
		if x < c.weight {
			return c
		}
		x -= c.weight
	}
	return categories[0]
}

func (g *Generator) outcome() trailv1.Outcome {
	switch x := g.rng.IntN(100); {
	case x < 90:
		return trailv1.Outcome_OUTCOME_SUCCESS
	case x < 96:
		return trailv1.Outcome_OUTCOME_FAILURE
	case x < 99:
		return trailv1.Outcome_OUTCOME_DENIED
	default:
		return trailv1.Outcome_OUTCOME_ERROR
	}
}

const letters = "abcdefghijklmnopqrstuvwxyz"

func (g *Generator) word() string {
	b := make([]byte, 4+g.rng.IntN(10))
	for i := range b {
		b[i] = letters[g.rng.IntN(len(letters))]
	}
	return string(b)
}

// pad adds attributes until the event is about TargetBytes encoded.
func (g *Generator) pad(ev *trailv1.Event) {
	if g.cfg.TargetBytes <= 0 {
		return
	}
	size := approxSize(ev)
	for i := 0; size < g.cfg.TargetBytes && i < 64; i++ {
		if ev.Attributes == nil {
			ev.Attributes = make(map[string]string)
		}
		k, v := fmt.Sprintf("attr_%02d", i), g.word()+"-"+g.word()
		ev.Attributes[k] = v
		size += len(k) + len(v) + 6
	}
}

func approxSize(ev *trailv1.Event) int {
	n := len(ev.TenantId) + len(ev.EventId) + len(ev.Action) + len(ev.SubjectId) + len(ev.SourceService) + len(ev.TraceId) + len(ev.PurposeCode) + 40
	a := ev.Actor
	n += len(a.Id) + len(a.Type) + len(a.DisplayName) + len(a.Ip) + len(a.UserAgent) + len(a.SessionId) + 16
	for _, r := range a.Roles {
		n += len(r) + 2
	}
	n += len(ev.Target.Type) + len(ev.Target.Id) + 6
	for _, f := range ev.PiiFieldsAccessed {
		n += len(f) + 2
	}
	for _, c := range ev.Changes {
		n += len(c.Field) + len(c.Before) + len(c.After) + 8
	}
	return n
}
