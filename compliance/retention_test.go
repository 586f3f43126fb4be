package compliance

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/trailaudit/trail/engine"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// retentionLog is a real engine fed directly, with its own Raft indexes.
type retentionLog struct {
	t     *testing.T
	e     *engine.Engine
	index uint64
}

func newRetentionLog(t *testing.T) *retentionLog {
	t.Helper()
	e, err := engine.Open(context.Background(), engine.Options{Dir: t.TempDir(), LogName: "test.trail", CacheBytes: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return &retentionLog{t: t, e: e}
}

func (l *retentionLog) next() uint64 { l.index++; return l.index }

// add appends one event per call at sequencer time at.
func (l *retentionLog) add(at time.Time, ev *trailv1.Event) engine.Receipt {
	l.t.Helper()
	res, err := l.e.Apply(context.Background(), &engine.Batch{Index: l.next(), Time: at, Events: []*trailv1.Event{ev}})
	if err != nil || res[0].Err != nil {
		l.t.Fatalf("apply %s: %v %v", ev.GetEventId(), err, res)
	}
	return res[0].Receipt
}

func (l *retentionLog) settings(ops []engine.SettingOp, err error) {
	l.t.Helper()
	if err != nil {
		l.t.Fatal(err)
	}
	if err := l.e.ApplySettings(context.Background(), l.next(), ops); err != nil {
		l.t.Fatal(err)
	}
}

func (l *retentionLog) prune(p engine.Partition, leaves []uint64) int {
	l.t.Helper()
	n, err := l.e.Prune(context.Background(), l.next(), p, leaves)
	if err != nil {
		l.t.Fatal(err)
	}
	return n
}

func retentionEvent(tenant, id string, c trailv1.Category, subject string) *trailv1.Event {
	return &trailv1.Event{
		TenantId: tenant, EventId: id, Category: c, Action: "thing.done",
		Outcome:    trailv1.Outcome_OUTCOME_SUCCESS,
		Actor:      &trailv1.Actor{Id: "actor-" + subject},
		SubjectId:  subject,
		Target:     &trailv1.Target{Type: "record", Id: "rec-" + subject},
		OccurredAt: timestamppb.New(time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)),
	}
}

func TestDefaultRetention(t *testing.T) {
	want := map[trailv1.Category]uint32{
		trailv1.Category_CATEGORY_AUTHENTICATION:    730,
		trailv1.Category_CATEGORY_AUTHORIZATION:     2557,
		trailv1.Category_CATEGORY_DATA_ACCESS:       2557,
		trailv1.Category_CATEGORY_DATA_MODIFICATION: 2557,
		trailv1.Category_CATEGORY_WORKFLOW:          2557,
		trailv1.Category_CATEGORY_SYSTEM:            2557,
		trailv1.Category_CATEGORY_FINANCIAL:         3653,
		trailv1.Category_CATEGORY_COMPLIANCE:        3653,
		trailv1.Category_CATEGORY_SECURITY:          3653,
	}
	if got := Categories(); len(got) != len(want) {
		t.Fatalf("Categories() = %v", got)
	}
	for c, days := range want {
		if got, err := DefaultRetentionDays(c); err != nil || got != days {
			t.Errorf("%s: %d, %v; want %d", c, got, err, days)
		}
	}
	if _, err := DefaultRetentionDays(trailv1.Category_CATEGORY_UNSPECIFIED); !errors.Is(err, ErrBadPolicy) {
		t.Errorf("unspecified category: %v", err)
	}
}

func TestCheckPolicy(t *testing.T) {
	cases := []struct {
		name   string
		tenant string
		c      trailv1.Category
		days   uint32
		ok     bool
	}{
		{"minimum", "acme", trailv1.Category_CATEGORY_AUTHENTICATION, 730, true},
		{"maximum", "acme", trailv1.Category_CATEGORY_SECURITY, 3653, true},
		{"below 2 years", "acme", trailv1.Category_CATEGORY_AUTHENTICATION, 729, false},
		{"above 10 years", "acme", trailv1.Category_CATEGORY_SECURITY, 3654, false},
		{"zero days", "acme", trailv1.Category_CATEGORY_SECURITY, 0, false},
		{"unspecified category", "acme", trailv1.Category_CATEGORY_UNSPECIFIED, 1000, false},
		{"unknown category", "acme", trailv1.Category(42), 1000, false},
		{"empty tenant", "", trailv1.Category_CATEGORY_FINANCIAL, 1000, false},
		{"reserved tenant", "_acme", trailv1.Category_CATEGORY_FINANCIAL, 1000, false},
		{"system tenant", engine.SystemTenant, trailv1.Category_CATEGORY_SYSTEM, 1000, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := SetPolicyOps(c.tenant, c.c, c.days)
			if c.ok != (err == nil) || err != nil && !errors.Is(err, ErrBadPolicy) {
				t.Fatalf("SetPolicyOps: %v, want ok=%v", err, c.ok)
			}
		})
	}
}

func TestParseCategory(t *testing.T) {
	for in, want := range map[string]trailv1.Category{
		"data_access": trailv1.Category_CATEGORY_DATA_ACCESS, "FINANCIAL": trailv1.Category_CATEGORY_FINANCIAL,
		"CATEGORY_SECURITY": trailv1.Category_CATEGORY_SECURITY, "1": trailv1.Category_CATEGORY_AUTHENTICATION,
	} {
		if got, err := ParseCategory(in); err != nil || got != want {
			t.Errorf("ParseCategory(%q) = %v, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "unspecified", "0", "42", "marketing"} {
		if _, err := ParseCategory(in); !errors.Is(err, ErrBadPolicy) {
			t.Errorf("ParseCategory(%q): %v", in, err)
		}
	}
}

func TestPolicyStorage(t *testing.T) {
	l := newRetentionLog(t)
	ctx := context.Background()
	fin := trailv1.Category_CATEGORY_FINANCIAL
	l.settings(SetPolicyOps("acme", fin, 3000))
	ps, err := Policies(ctx, l.e, "acme")
	if err != nil || len(ps) != 9 {
		t.Fatalf("Policies: %v, %v", ps, err)
	}
	for i, p := range ps {
		if p.GetCategory() != Categories()[i] {
			t.Fatalf("policy %d is %s: not in category order", i, p.GetCategory())
		}
		def, _ := DefaultRetentionDays(p.GetCategory())
		switch {
		case p.GetCategory() == fin && (p.GetRetentionDays() != 3000 || p.GetIsDefault()):
			t.Errorf("financial: %v", p)
		case p.GetCategory() != fin && (p.GetRetentionDays() != def || !p.GetIsDefault()):
			t.Errorf("%s: %v, want default %d", p.GetCategory(), p, def)
		}
	}
	// Another tenant keeps the defaults.
	if p, err := Policy(l.e, "globex", fin); err != nil || !p.GetIsDefault() || p.GetRetentionDays() != 3653 {
		t.Fatalf("globex financial: %v, %v", p, err)
	}
	l.settings(ResetPolicyOps("acme", fin))
	if p, err := Policy(l.e, "acme", fin); err != nil || !p.GetIsDefault() || p.GetRetentionDays() != 3653 {
		t.Fatalf("after reset: %v, %v", p, err)
	}
}

var jan2020 = time.Date(2020, 1, 10, 12, 0, 0, 0, time.UTC)

// Expired walks each category oldest first, up to its own retention, and
// an entry pruned while the walk goes on is not seen again.
func TestExpiredOldestFirstPerCategory(t *testing.T) {
	l := newRetentionLog(t)
	ctx := context.Background()
	auth, access := trailv1.Category_CATEGORY_AUTHENTICATION, trailv1.Category_CATEGORY_DATA_ACCESS
	for i := range 2500 {
		c := auth
		if i%5 == 0 {
			c = access
		}
		l.add(jan2020.Add(time.Duration(i)*time.Minute), retentionEvent("acme", fmt.Sprintf("e-%d", i), c, "s"))
	}
	// Three years on: authentication (2y) expired, data access (7y) not.
	asOf := jan2020.AddDate(3, 0, 0)
	var seen []Candidate
	pages := 0
	err := Expired(ctx, l.e, "acme", asOf, nil, func(page []Candidate) error {
		pages++
		seen = append(seen, page...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != 2000 || pages != 2 {
		t.Fatalf("%d candidates in %d pages, want 2000 in 2", len(seen), pages)
	}
	for i, c := range seen {
		if c.Category != auth || c.RetentionDays != 730 || len(c.HeldBy) != 0 {
			t.Fatalf("candidate %d: %+v", i, c)
		}
		if !c.ExpiredAt.Equal(c.SequencerTime.Add(730*24*time.Hour)) || !c.ExpiredAt.Before(asOf) {
			t.Fatalf("candidate %d expires at %s", i, c.ExpiredAt)
		}
		if i > 0 && !seen[i-1].SequencerTime.Before(c.SequencerTime) {
			t.Fatalf("candidate %d is not after %d", i, i-1)
		}
	}
	// Pruning each page as it comes does not disturb the walk.
	pruned := 0
	err = Expired(ctx, l.e, "acme", asOf, nil, func(page []Candidate) error {
		var leaves []uint64
		for _, c := range page {
			leaves = append(leaves, c.Leaf)
		}
		pruned += l.prune(page[0].Partition, leaves)
		return nil
	})
	if err != nil || pruned != 2000 {
		t.Fatalf("pruned %d while walking: %v", pruned, err)
	}
	err = Expired(ctx, l.e, "acme", asOf, nil, func(page []Candidate) error {
		return fmt.Errorf("%d pruned entries seen again", len(page))
	})
	if err != nil {
		t.Fatal(err)
	}
	// A shorter policy for data access expires it too.
	l.settings(SetPolicyOps("acme", access, 730))
	n := 0
	if err := Expired(ctx, l.e, "acme", asOf, nil, func(p []Candidate) error { n += len(p); return nil }); err != nil || n != 500 {
		t.Fatalf("data access under a 2-year policy: %d, %v", n, err)
	}
}

// PlanPrunes cuts chunks per partition, category and size, and counts
// what holds keep instead of proposing it.
func TestPlanPrunes(t *testing.T) {
	l := newRetentionLog(t)
	ctx := context.Background()
	auth := trailv1.Category_CATEGORY_AUTHENTICATION
	for i := range 10 { // January: leaves 0..9, February: 0..9
		l.add(jan2020.Add(time.Duration(i)*time.Hour), retentionEvent("acme", fmt.Sprintf("jan-%d", i), auth, fmt.Sprint("s", i%2)))
	}
	for i := range 10 {
		l.add(jan2020.AddDate(0, 1, i), retentionEvent("acme", fmt.Sprintf("feb-%d", i), auth, fmt.Sprint("s", i%2)))
	}
	hold := &trailv1.LegalHold{Id: "h1", TenantId: "acme", SubjectId: "s1", CaseReference: "C-1", Reason: "litigation"}
	l.settings(HoldOps(hold))
	holds, err := ActiveHolds(ctx, l.e, "acme")
	if err != nil {
		t.Fatal(err)
	}
	var chunks []Chunk
	held, err := PlanPrunes(ctx, l.e, "acme", jan2020.AddDate(5, 0, 0), holds, 3, func(c Chunk) error {
		chunks = append(chunks, c)
		return nil
	})
	if err != nil || held != 10 {
		t.Fatalf("held %d, %v", held, err)
	}
	want := [][]uint64{{0, 2, 4}, {6, 8}, {0, 2, 4}, {6, 8}}
	if len(chunks) != len(want) {
		t.Fatalf("chunks %+v", chunks)
	}
	for i, c := range chunks {
		if fmt.Sprint(c.Leaves) != fmt.Sprint(want[i]) || c.Category != auth || c.RetentionDays != 730 {
			t.Errorf("chunk %d: %+v, want leaves %v", i, c, want[i])
		}
		if wantMonth := time.Month(1 + i/2); c.Partition.Month.Month != wantMonth {
			t.Errorf("chunk %d in %s", i, c.Partition)
		}
	}
}

func TestRanges(t *testing.T) {
	cases := []struct {
		leaves []uint64
		want   string
	}{
		{nil, ""},
		{[]uint64{7}, "7"},
		{[]uint64{0, 1, 2, 3}, "0-3"},
		{[]uint64{0, 1, 2, 5, 7, 8, 200}, "0-2,5,7-8,200"},
	}
	for _, c := range cases {
		got := FormatRanges(c.leaves)
		if got != c.want {
			t.Errorf("FormatRanges(%v) = %q, want %q", c.leaves, got, c.want)
		}
		back, err := ParseRanges(got)
		if err != nil || fmt.Sprint(back) != fmt.Sprint(c.leaves) && len(c.leaves) > 0 {
			t.Errorf("ParseRanges(%q) = %v, %v", got, back, err)
		}
	}
	for _, bad := range []string{"x", "5-3", "1-", "0-99999999999"} {
		if _, err := ParseRanges(bad); err == nil {
			t.Errorf("ParseRanges(%q) accepted", bad)
		}
	}
}
