package compliance

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/trailaudit/trail/engine"
	"github.com/trailaudit/trail/engine/eventwire"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// anomalyEngine opens a real engine holding rules for tenant "acme".
func anomalyEngine(t *testing.T, rules *trailv1.AnomalyRules) *engine.Engine {
	t.Helper()
	e, err := engine.Open(context.Background(), engine.Options{Dir: t.TempDir(), LogName: "test.trail", CacheBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	if rules != nil {
		if err := CheckRules(rules); err != nil {
			t.Fatal(err)
		}
		op, err := RulesSetting(rules)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.ApplySettings(context.Background(), 1, []engine.SettingOp{op}); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

// monday10 is a Monday, 10:00 UTC.
var monday10 = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

func dataAccess(id, actor, subject, purpose string, at time.Time) *trailv1.Event {
	return &trailv1.Event{
		TenantId: "acme", EventId: id, Category: trailv1.Category_CATEGORY_DATA_ACCESS,
		Action: "record.view", Outcome: trailv1.Outcome_OUTCOME_SUCCESS,
		Actor: &trailv1.Actor{Id: actor}, SubjectId: subject, PurposeCode: purpose,
		PiiFieldsAccessed: []string{"address"}, OccurredAt: timestamppb.New(at),
	}
}

// wire reads events as the write path hands them to an inspector.
func wire(t testing.TB, evs []*trailv1.Event) []*eventwire.Event {
	t.Helper()
	out := make([]*eventwire.Event, len(evs))
	for i, ev := range evs {
		out[i] = new(eventwire.Event)
		if _, err := eventwire.Marshal(ev, out[i]); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func inspect(t *testing.T, d *Detector, e *engine.Engine, evs ...*trailv1.Event) []*trailv1.Event {
	t.Helper()
	out, err := d.Inspect(context.Background(), e, wire(t, evs))
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range out {
		if err := engine.ValidateEvent(a); err != nil {
			t.Fatalf("anomaly %s is not a valid event: %v", a.GetEventId(), err)
		}
	}
	return out
}

func rulesOf(evs []*trailv1.Event) []string {
	var out []string
	for _, ev := range evs {
		out = append(out, ev.GetAttributes()["rule"])
	}
	return out
}

func TestCheckRules(t *testing.T) {
	tests := []struct {
		name  string
		rules *trailv1.AnomalyRules
		ok    bool
	}{
		{"defaults", &trailv1.AnomalyRules{TenantId: "acme"}, true},
		{"office hours", &trailv1.AnomalyRules{TenantId: "acme", WorkingHoursStart: "08:00", WorkingHoursEnd: "18:30", TimeZone: "Europe/Tallinn"}, true},
		{"night shift", &trailv1.AnomalyRules{TenantId: "acme", WorkingHoursStart: "22:00", WorkingHoursEnd: "06:00", WorkingDays: []uint32{1, 2, 3, 4, 5, 6, 7}}, true},
		{"no tenant", &trailv1.AnomalyRules{}, false},
		{"system tenant name", &trailv1.AnomalyRules{TenantId: "_other"}, false},
		{"unknown zone", &trailv1.AnomalyRules{TenantId: "acme", TimeZone: "Mars/Olympus"}, false},
		{"bad clock", &trailv1.AnomalyRules{TenantId: "acme", WorkingHoursStart: "8:00", WorkingHoursEnd: "18:00"}, false},
		{"hour 24", &trailv1.AnomalyRules{TenantId: "acme", WorkingHoursStart: "08:00", WorkingHoursEnd: "24:00"}, false},
		{"one end only", &trailv1.AnomalyRules{TenantId: "acme", WorkingHoursStart: "08:00"}, false},
		{"day 0", &trailv1.AnomalyRules{TenantId: "acme", WorkingHoursStart: "08:00", WorkingHoursEnd: "18:00", WorkingDays: []uint32{0}}, false},
		{"empty purpose", &trailv1.AnomalyRules{TenantId: "acme", ValidPurposeCodes: []string{""}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckRules(tt.rules)
			if (err == nil) != tt.ok {
				t.Fatalf("CheckRules = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrBadRules) {
				t.Fatalf("error %v is not ErrBadRules", err)
			}
			if err == nil && tt.rules.GetMaxDistinctSubjectsPerHour() != DefaultMaxDistinctSubjects {
				t.Fatalf("threshold default not filled: %d", tt.rules.GetMaxDistinctSubjectsPerHour())
			}
		})
	}
}

func TestOffHours(t *testing.T) {
	office := &trailv1.AnomalyRules{TenantId: "acme", WorkingHoursStart: "08:00", WorkingHoursEnd: "18:00", TimeZone: "Europe/Tallinn"}
	night := &trailv1.AnomalyRules{TenantId: "acme", WorkingHoursStart: "22:00", WorkingHoursEnd: "06:00", WorkingDays: []uint32{1, 2, 3, 4, 5, 6, 7}}
	tests := []struct {
		name  string
		rules *trailv1.AnomalyRules
		at    time.Time
		off   bool
	}{
		// Tallinn is UTC+2 in November.
		{"monday 10:00 local", office, time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC), false},
		{"monday 07:59 local", office, time.Date(2026, 11, 23, 5, 59, 0, 0, time.UTC), true},
		{"monday 18:00 local", office, time.Date(2026, 11, 23, 16, 0, 0, 0, time.UTC), true},
		{"saturday noon", office, time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC), true},
		{"night shift 23:00", night, time.Date(2026, 11, 23, 23, 0, 0, 0, time.UTC), false},
		{"night shift 03:00", night, time.Date(2026, 11, 24, 3, 0, 0, 0, time.UTC), false},
		{"night shift noon", night, time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC), true},
		{"no hours set", DefaultRules("acme"), time.Date(2026, 11, 28, 3, 0, 0, 0, time.UTC), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := compileRules(tt.rules)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.offHours(tt.at); got != tt.off {
				t.Fatalf("offHours(%s) = %v, want %v", tt.at, got, tt.off)
			}
		})
	}
}

func TestPurposeRules(t *testing.T) {
	e := anomalyEngine(t, &trailv1.AnomalyRules{TenantId: "acme", ValidPurposeCodes: []string{"case-work", "benefit-claim"}})
	d := NewDetector()
	out := inspect(t, d, e,
		dataAccess("ok", "alice", "s1", "case-work", monday10),
		dataAccess("none", "alice", "s2", "", monday10),
		dataAccess("unknown", "alice", "s3", "curiosity", monday10),
	)
	if got := rulesOf(out); len(got) != 2 || got[0] != RuleMissingPurpose || got[1] != RuleMissingPurpose {
		t.Fatalf("rules fired %v, want two %s", got, RuleMissingPurpose)
	}
	if out[0].GetAttributes()["event_id"] != "none" || out[1].GetAttributes()["event_id"] != "unknown" {
		t.Fatalf("anomalies name events %q and %q", out[0].GetAttributes()["event_id"], out[1].GetAttributes()["event_id"])
	}
	a := out[0]
	if a.GetCategory() != trailv1.Category_CATEGORY_SECURITY || a.GetAction() != ActionSecurityAnomaly ||
		a.GetTarget().GetId() != "alice" || a.GetSubjectId() != "s2" {
		t.Fatalf("anomaly event %v", a)
	}
}

func TestBulkSubjectAccess(t *testing.T) {
	e := anomalyEngine(t, nil) // defaults: 150 subjects an hour
	d := NewDetector()
	var fired []*trailv1.Event
	// 149 subjects in 50 minutes: below the threshold.
	for i := range 149 {
		fired = append(fired, inspect(t, d, e, dataAccess(fmt.Sprintf("a%d", i), "mallory", fmt.Sprintf("citizen-%d", i), "audit", monday10.Add(time.Duration(i)*20*time.Second)))...)
	}
	// Reading one of them again adds no distinct subject.
	fired = append(fired, inspect(t, d, e, dataAccess("again", "mallory", "citizen-3", "audit", monday10.Add(51*time.Minute)))...)
	if len(fired) != 0 {
		t.Fatalf("%d anomalies below the threshold: %v", len(fired), rulesOf(fired))
	}
	// "150 records in one hour": the 150th distinct subject fires, once.
	fired = inspect(t, d, e, dataAccess("a149", "mallory", "citizen-149", "audit", monday10.Add(52*time.Minute)))
	if len(fired) != 1 || fired[0].GetAttributes()["rule"] != RuleBulkSubjectAccess || fired[0].GetAttributes()["distinct_subjects"] != "150" {
		t.Fatalf("anomalies %v, want one %s at 150 subjects", fired, RuleBulkSubjectAccess)
	}
	fired = inspect(t, d, e, dataAccess("a150", "mallory", "citizen-150", "audit", monday10.Add(53*time.Minute)))
	if len(fired) != 0 {
		t.Fatalf("flagged twice within the hour: %v", rulesOf(fired))
	}
	// Another actor is counted on its own.
	if out := inspect(t, d, e, dataAccess("b1", "bob", "citizen-1", "audit", monday10)); len(out) != 0 {
		t.Fatalf("bob flagged: %v", rulesOf(out))
	}
}

// TestOffHoursOncePerWindow: a night burst raises one off-hours alert per
// actor per hour, counting the accesses of the request that raised it;
// the next hour's accesses raise the next alert.
func TestOffHoursOncePerWindow(t *testing.T) {
	e := anomalyEngine(t, &trailv1.AnomalyRules{TenantId: "acme", WorkingHoursStart: "08:00", WorkingHoursEnd: "18:00"})
	d := NewDetector()
	night := monday10.Add(13 * time.Hour) // 23:00
	offHours := func(out []*trailv1.Event) []*trailv1.Event {
		var got []*trailv1.Event
		for _, a := range out {
			if a.GetAttributes()["rule"] == RuleOffHours {
				got = append(got, a)
			}
		}
		return got
	}
	var first []*trailv1.Event
	for i := range 40 {
		first = append(first, dataAccess(fmt.Sprintf("n%d", i), "mallory", fmt.Sprintf("c%d", i), "audit", night.Add(time.Duration(i)*10*time.Second)))
	}
	// Another actor in the same request gets its own alert.
	first = append(first, dataAccess("o1", "oscar", "c1", "audit", night))
	got := offHours(inspect(t, d, e, first...))
	if len(got) != 2 {
		t.Fatalf("%d off-hours alerts for one request of two actors, want 2", len(got))
	}
	want := map[string]string{"mallory": "40", "oscar": "1"}
	for _, a := range got {
		attrs := a.GetAttributes()
		if attrs["accesses"] != want[attrs["actor_id"]] || attrs["window"] != "1h0m0s" {
			t.Fatalf("alert for %s: %v, want %s accesses in a 1h window", attrs["actor_id"], attrs, want[attrs["actor_id"]])
		}
	}
	mallory := got[0]
	if mallory.GetAttributes()["actor_id"] != "mallory" {
		mallory = got[1]
	}
	if a := mallory.GetAttributes(); a["event_id"] != "n0" || a["window_start"] != night.Format(time.RFC3339Nano) ||
		a["window_end"] != night.Add(time.Hour).Format(time.RFC3339Nano) {
		t.Fatalf("alert %v, want raised at n0 covering 23:00-00:00", a)
	}
	// Later requests within the hour are covered by that alert.
	for i := 40; i < 160; i++ {
		if out := offHours(inspect(t, d, e, dataAccess(fmt.Sprintf("n%d", i), "mallory", fmt.Sprintf("c%d", i), "audit", night.Add(time.Duration(i)*20*time.Second)))); len(out) != 0 {
			t.Fatalf("second off-hours alert within the hour at n%d: %v", i, out[0].GetAttributes())
		}
	}
	// An hour after the first, a new window opens.
	if out := offHours(inspect(t, d, e, dataAccess("late", "mallory", "c1", "audit", night.Add(61*time.Minute)))); len(out) != 1 {
		t.Fatalf("%d alerts for the next hour's access, want 1", len(out))
	}
	// A new leader's detector finds the alert in the log and stays quiet.
	applyAll(t, e, 2, night, append(first, mallory))
	if out := offHours(inspect(t, NewDetector(), e, dataAccess("after", "mallory", "c2", "audit", night.Add(30*time.Minute)))); len(out) != 0 {
		t.Fatalf("a new leader raised the alert again: %v", out[0].GetAttributes())
	}
}

func TestBulkAccessSlowReaderNotFlagged(t *testing.T) {
	e := anomalyEngine(t, nil)
	d := NewDetector()
	// 300 subjects, one every 30 seconds: at most 120 in any hour.
	for i := range 300 {
		if out := inspect(t, d, e, dataAccess(fmt.Sprintf("a%d", i), "carol", fmt.Sprintf("s%d", i), "audit", monday10.Add(time.Duration(i)*30*time.Second))); len(out) != 0 {
			t.Fatalf("flagged at access %d: %v", i, rulesOf(out))
		}
	}
}

func TestDetectorMemoryBound(t *testing.T) {
	e := anomalyEngine(t, nil)
	d := &Detector{MaxActors: 10}
	for i := range 100 {
		inspect(t, d, e, dataAccess(fmt.Sprintf("a%d", i), fmt.Sprintf("actor-%d", i), "s", "audit", monday10))
	}
	if d.lru.Len() != 10 || len(d.actors) != 10 {
		t.Fatalf("tracking %d actors (%d in the map), bound 10", d.lru.Len(), len(d.actors))
	}
}

func TestInspectSkipsAndDisables(t *testing.T) {
	d := NewDetector()
	e := anomalyEngine(t, &trailv1.AnomalyRules{TenantId: "acme", Disabled: true})
	if out := inspect(t, d, e, dataAccess("x", "alice", "s1", "", monday10)); len(out) != 0 {
		t.Fatalf("disabled rules fired: %v", rulesOf(out))
	}
	sys := dataAccess("y", "alice", "s1", "", monday10)
	sys.TenantId = engine.SystemTenant
	login := dataAccess("z", "alice", "s1", "", monday10)
	login.Category = trailv1.Category_CATEGORY_AUTHENTICATION
	e2 := anomalyEngine(t, nil)
	if out := inspect(t, d, e2, sys, login); len(out) != 0 {
		t.Fatalf("system or non-access events inspected: %v", rulesOf(out))
	}
}

// TestAnomalyDeterministic: a retried event yields the identical anomaly,
// which the engine then deduplicates instead of storing twice.
func TestAnomalyDeterministic(t *testing.T) {
	e := anomalyEngine(t, &trailv1.AnomalyRules{TenantId: "acme", WorkingHoursStart: "08:00", WorkingHoursEnd: "18:00"})
	ev := dataAccess("late", "alice", "s1", "", monday10.Add(12*time.Hour))
	a := inspect(t, NewDetector(), e, ev)
	b := inspect(t, NewDetector(), e, proto.Clone(ev).(*trailv1.Event))
	if len(a) != 2 || len(a) != len(b) {
		t.Fatalf("anomalies %v then %v, want purpose and off-hours twice", rulesOf(a), rulesOf(b))
	}
	for i := range a {
		if !proto.Equal(a[i], b[i]) {
			t.Fatalf("anomaly %d differs between runs:\n%v\n%v", i, a[i], b[i])
		}
	}
	res, err := e.Apply(context.Background(), &engine.Batch{Index: 2, Time: monday10, Events: append(a, b...)})
	if err != nil {
		t.Fatal(err)
	}
	if !res[2].Receipt.Duplicate || res[2].Receipt.LeafIndex != res[0].Receipt.LeafIndex {
		t.Fatalf("retried anomaly not deduplicated: %+v", res)
	}
}

func BenchmarkDetectorInspect(b *testing.B) {
	e, err := engine.Open(context.Background(), engine.Options{Dir: b.TempDir(), LogName: "bench.trail", CacheBytes: 1 << 20})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	d := NewDetector()
	batch := make([]*trailv1.Event, 100)
	for i := range batch {
		batch[i] = dataAccess(fmt.Sprintf("e%d", i), fmt.Sprintf("actor-%d", i%20), fmt.Sprintf("s%d", i), "audit", monday10.Add(time.Duration(i)*time.Second))
	}
	wired := wire(b, batch)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := d.Inspect(context.Background(), e, wired); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(batch)), "ns/event")
}

// applyAll stores evs in e as one batch sequenced at at, as the leader's
// entry would.
func applyAll(t *testing.T, e *engine.Engine, index uint64, at time.Time, evs []*trailv1.Event) {
	t.Helper()
	res, err := e.Apply(context.Background(), &engine.Batch{Index: index, Time: at, Events: evs})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r.Err != nil {
			t.Fatalf("event %d: %v", i, r.Err)
		}
	}
}

// TestDetectorWarmsFromTheLog: a new leader's detector starts empty, so it
// rebuilds an actor's window from the log the first time it sees the
// actor. A burst split across a leader change is flagged once, by the new
// leader; one the old leader flagged is not flagged again.
func TestDetectorWarmsFromTheLog(t *testing.T) {
	t.Run("burst across a leader change", func(t *testing.T) {
		e := anomalyEngine(t, nil)
		var before []*trailv1.Event
		for i := range 100 {
			before = append(before, dataAccess(fmt.Sprintf("a%d", i), "mallory", fmt.Sprintf("c%d", i), "audit", monday10.Add(time.Duration(i)*10*time.Second)))
		}
		if out := inspect(t, NewDetector(), e, before...); len(out) != 0 {
			t.Fatalf("old leader flagged %v", rulesOf(out))
		}
		applyAll(t, e, 2, monday10.Add(20*time.Minute), before)

		fresh := NewDetector() // the new leader's
		var fired []*trailv1.Event
		for i := 100; i < 151; i++ {
			fired = append(fired, inspect(t, fresh, e, dataAccess(fmt.Sprintf("a%d", i), "mallory", fmt.Sprintf("c%d", i), "audit", monday10.Add(30*time.Minute+time.Duration(i)*time.Second)))...)
		}
		if len(fired) != 1 || fired[0].GetAttributes()["event_id"] != "a149" || fired[0].GetAttributes()["distinct_subjects"] != "150" {
			t.Fatalf("new leader flagged %v; want one bulk access at a149, the 150th subject", fired)
		}
	})
	t.Run("flagged before the leader change", func(t *testing.T) {
		e := anomalyEngine(t, nil)
		old := NewDetector()
		var burst, flags []*trailv1.Event
		for i := range 151 {
			ev := dataAccess(fmt.Sprintf("a%d", i), "mallory", fmt.Sprintf("c%d", i), "audit", monday10.Add(time.Duration(i)*10*time.Second))
			burst = append(burst, ev)
			flags = append(flags, inspect(t, old, e, ev)...)
		}
		if len(flags) != 1 {
			t.Fatalf("old leader flagged %d times", len(flags))
		}
		applyAll(t, e, 2, monday10.Add(26*time.Minute), append(burst, flags...))

		fresh := NewDetector()
		for i := 151; i < 302; i++ {
			if out := inspect(t, fresh, e, dataAccess(fmt.Sprintf("a%d", i), "mallory", fmt.Sprintf("c%d", i), "audit", monday10.Add(30*time.Minute+time.Duration(i)*time.Second))); len(out) != 0 {
				t.Fatalf("flagged again within the hour at a%d: %v", i, rulesOf(out))
			}
		}
	})
}

func TestWindowMerge(t *testing.T) {
	t0 := monday10
	win := func(quiet time.Time, subjects map[string]time.Time) *actorWindow {
		return &actorWindow{subjects: subjects, quietTil: quiet}
	}
	for _, tc := range []struct {
		name      string
		w, warmed *actorWindow
		want      map[string]time.Time
		wantQuiet time.Time
	}{
		{"union, later access wins",
			win(time.Time{}, map[string]time.Time{"a": t0, "b": t0.Add(time.Minute)}),
			win(time.Time{}, map[string]time.Time{"a": t0.Add(2 * time.Minute), "c": t0}),
			map[string]time.Time{"a": t0.Add(2 * time.Minute), "b": t0.Add(time.Minute), "c": t0}, time.Time{}},
		{"a flag found by the warm-up restarts the window",
			win(time.Time{}, map[string]time.Time{"a": t0, "b": t0.Add(20 * time.Minute)}),
			win(t0.Add(10*time.Minute+anomalyWindow), map[string]time.Time{"c": t0.Add(5 * time.Minute)}),
			map[string]time.Time{"b": t0.Add(20 * time.Minute)}, t0.Add(10*time.Minute + anomalyWindow)},
		{"the later of two flags holds",
			win(t0.Add(30*time.Minute+anomalyWindow), map[string]time.Time{"d": t0.Add(40 * time.Minute)}),
			win(t0.Add(10*time.Minute+anomalyWindow), map[string]time.Time{"c": t0.Add(25 * time.Minute)}),
			map[string]time.Time{"d": t0.Add(40 * time.Minute)}, t0.Add(30*time.Minute + anomalyWindow)},
	} {
		tc.w.merge(tc.warmed)
		if !maps.Equal(tc.w.subjects, tc.want) || !tc.w.quietTil.Equal(tc.wantQuiet) {
			t.Errorf("%s: subjects %v quiet %v, want %v %v", tc.name, tc.w.subjects, tc.w.quietTil, tc.want, tc.wantQuiet)
		}
	}
}

// TestDetectorConcurrentFirstSight: calls inspecting the same unseen actors
// at once each warm a window outside the lock; the windows merge, and a
// burst spread over the calls is still flagged exactly once per actor.
func TestDetectorConcurrentFirstSight(t *testing.T) {
	e := anomalyEngine(t, &trailv1.AnomalyRules{TenantId: "acme", MaxDistinctSubjectsPerHour: 20})
	d := NewDetector()
	const actors, callers, perCaller = 5, 8, 5 // 40 distinct subjects per actor
	var mu sync.Mutex
	flags := map[string]int{}
	var wg sync.WaitGroup
	for c := range callers {
		wg.Go(func() {
			for i := range perCaller {
				var batch []*trailv1.Event
				for a := range actors {
					n := c*perCaller + i
					batch = append(batch, dataAccess(fmt.Sprintf("c%d-%d-%d", c, i, a), fmt.Sprintf("actor-%d", a),
						fmt.Sprintf("s%d", n), "audit", monday10.Add(time.Duration(n)*time.Second)))
				}
				out, err := d.Inspect(context.Background(), e, wire(t, batch))
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				for _, ev := range out {
					if ev.GetAttributes()["rule"] == RuleBulkSubjectAccess {
						flags[ev.GetAttributes()["actor_id"]]++
					}
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for a := range actors {
		if got := flags[fmt.Sprintf("actor-%d", a)]; got != 1 {
			t.Errorf("actor-%d flagged %d times, want once: %v", a, got, flags)
		}
	}
}
