package compliance

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/trailaudit/trail/engine"
	"github.com/trailaudit/trail/merkle"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

func ts(t time.Time) *timestamppb.Timestamp { return timestamppb.New(t) }

func TestHoldCovers(t *testing.T) {
	at := time.Date(2021, 3, 4, 5, 6, 7, 0, time.UTC)
	entry := &trailv1.Entry{
		SequencerTime: ts(at),
		Event: &trailv1.Event{
			TenantId: "acme", Category: trailv1.Category_CATEGORY_FINANCIAL,
			Actor: &trailv1.Actor{Id: "bob"}, SubjectId: "alice",
			Target: &trailv1.Target{Type: "invoice", Id: "inv-7"},
		},
	}
	cases := []struct {
		name string
		hold *trailv1.LegalHold
		want bool
	}{
		{"tenant only", &trailv1.LegalHold{TenantId: "acme"}, true},
		{"other tenant", &trailv1.LegalHold{TenantId: "globex"}, false},
		{"subject", &trailv1.LegalHold{TenantId: "acme", SubjectId: "alice"}, true},
		{"other subject", &trailv1.LegalHold{TenantId: "acme", SubjectId: "carol"}, false},
		{"actor", &trailv1.LegalHold{TenantId: "acme", ActorId: "bob"}, true},
		{"other actor", &trailv1.LegalHold{TenantId: "acme", ActorId: "dave"}, false},
		{"target", &trailv1.LegalHold{TenantId: "acme", TargetType: "invoice", TargetId: "inv-7"}, true},
		{"target type only", &trailv1.LegalHold{TenantId: "acme", TargetType: "invoice"}, true},
		{"other target id", &trailv1.LegalHold{TenantId: "acme", TargetType: "invoice", TargetId: "inv-8"}, false},
		{"other target type", &trailv1.LegalHold{TenantId: "acme", TargetType: "order", TargetId: "inv-7"}, false},
		{"category", &trailv1.LegalHold{TenantId: "acme", Category: trailv1.Category_CATEGORY_FINANCIAL}, true},
		{"other category", &trailv1.LegalHold{TenantId: "acme", Category: trailv1.Category_CATEGORY_SECURITY}, false},
		{"in range", &trailv1.LegalHold{TenantId: "acme", From: ts(at), To: ts(at.Add(time.Second))}, true},
		{"to is exclusive", &trailv1.LegalHold{TenantId: "acme", To: ts(at)}, false},
		{"before from", &trailv1.LegalHold{TenantId: "acme", From: ts(at.Add(time.Nanosecond))}, false},
		{"open end", &trailv1.LegalHold{TenantId: "acme", From: ts(at.Add(-time.Hour))}, true},
		{"every field", &trailv1.LegalHold{TenantId: "acme", SubjectId: "alice", ActorId: "bob", TargetType: "invoice",
			TargetId: "inv-7", Category: trailv1.Category_CATEGORY_FINANCIAL, From: ts(at), To: ts(at.AddDate(1, 0, 0))}, true},
		{"every field but one", &trailv1.LegalHold{TenantId: "acme", SubjectId: "alice", ActorId: "bob", TargetType: "invoice",
			TargetId: "inv-7", Category: trailv1.Category_CATEGORY_SECURITY}, false},
		{"released", &trailv1.LegalHold{TenantId: "acme", ReleasedAt: ts(at)}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := HoldCovers(c.hold, entry); got != c.want {
				t.Fatalf("HoldCovers = %v, want %v", got, c.want)
			}
		})
	}
	hs := Holds{{Id: "a", TenantId: "acme"}, {Id: "b", TenantId: "globex"}, {Id: "c", TenantId: "acme", SubjectId: "alice"}}
	if got := hs.Match(entry); !slices.Equal(got, []string{"a", "c"}) {
		t.Fatalf("Match = %v", got)
	}
}

func TestCheckHold(t *testing.T) {
	valid := func() *trailv1.LegalHold {
		return &trailv1.LegalHold{Id: "hold-1", TenantId: "acme", CaseReference: "CASE-9", Reason: "litigation"}
	}
	at := time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		name   string
		change func(*trailv1.LegalHold)
		ok     bool
	}{
		{"valid", func(*trailv1.LegalHold) {}, true},
		{"no id", func(h *trailv1.LegalHold) { h.Id = "" }, false},
		{"id with slash", func(h *trailv1.LegalHold) { h.Id = "a/b" }, false},
		{"empty tenant", func(h *trailv1.LegalHold) { h.TenantId = "" }, false},
		{"no case reference", func(h *trailv1.LegalHold) { h.CaseReference = " " }, false},
		{"no reason", func(h *trailv1.LegalHold) { h.Reason = "" }, false},
		{"long subject", func(h *trailv1.LegalHold) { h.SubjectId = strings.Repeat("s", 300) }, false},
		{"unknown category", func(h *trailv1.LegalHold) { h.Category = 42 }, false},
		{"range", func(h *trailv1.LegalHold) { h.From, h.To = ts(at), ts(at.Add(time.Hour)) }, true},
		{"empty range", func(h *trailv1.LegalHold) { h.From, h.To = ts(at), ts(at) }, false},
		{"invalid time", func(h *trailv1.LegalHold) { h.From = &timestamppb.Timestamp{Nanos: -1} }, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := valid()
			c.change(h)
			_, err := HoldOps(h)
			if c.ok != (err == nil) || err != nil && !errors.Is(err, ErrBadHold) {
				t.Fatalf("HoldOps: %v, want ok=%v", err, c.ok)
			}
		})
	}
}

func TestHoldStorage(t *testing.T) {
	l := newRetentionLog(t)
	ctx := context.Background()
	h1 := &trailv1.LegalHold{Id: "h1", TenantId: "acme", SubjectId: "alice", CaseReference: "C-1", Reason: "r"}
	h2 := &trailv1.LegalHold{Id: "h2", TenantId: "globex", CaseReference: "C-2", Reason: "r"}
	l.settings(HoldOps(h1))
	l.settings(HoldOps(h2))
	l.settings(HoldOps(Released(h2, "apikey:x", "case closed", jan2020)))
	got, err := LoadHold(l.e, "h2")
	if err != nil || Active(got) || got.GetReleaseReason() != "case closed" {
		t.Fatalf("released hold: %v, %v", got, err)
	}
	if _, err := LoadHold(l.e, "nope"); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("unknown hold: %v", err)
	}
	for _, c := range []struct {
		tenant   string
		released bool
		want     []string
	}{
		{"", false, []string{"h1"}},
		{"", true, []string{"h1", "h2"}},
		{"globex", false, nil},
		{"globex", true, []string{"h2"}},
	} {
		hs, err := ListHolds(ctx, l.e, c.tenant, c.released)
		var ids []string
		for _, h := range hs {
			ids = append(ids, h.GetId())
		}
		if err != nil || !slices.Equal(ids, c.want) {
			t.Errorf("ListHolds(%q, %v) = %v, %v; want %v", c.tenant, c.released, ids, err, c.want)
		}
	}
}

// FilterHeld keeps exactly the leaves no active hold covers, reading only
// the engine.
func TestFilterHeld(t *testing.T) {
	l := newRetentionLog(t)
	ctx := context.Background()
	var p engine.Partition
	for i := range 12 {
		r := l.add(jan2020.Add(time.Duration(i)*time.Hour), retentionEvent("acme", fmt.Sprint("e-", i), trailv1.Category_CATEGORY_AUTHENTICATION, fmt.Sprint("s", i%3)))
		p = engine.Partition{Tenant: "acme", Month: r.Partition}
	}
	all := []uint64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}
	filter := func() []uint64 {
		t.Helper()
		got, err := FilterHeld(ctx, l.e, p, all)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := filter(); !slices.Equal(got, all) {
		t.Fatalf("no holds: %v", got)
	}
	// Holds of another tenant or another month change nothing.
	l.settings(HoldOps(&trailv1.LegalHold{Id: "other", TenantId: "globex", CaseReference: "C", Reason: "r"}))
	l.settings(HoldOps(&trailv1.LegalHold{Id: "later", TenantId: "acme", From: ts(jan2020.AddDate(0, 2, 0)), CaseReference: "C", Reason: "r"}))
	if got := filter(); !slices.Equal(got, all) {
		t.Fatalf("unrelated holds: %v", got)
	}
	s1 := &trailv1.LegalHold{Id: "s1", TenantId: "acme", SubjectId: "s1", CaseReference: "C", Reason: "r"}
	l.settings(HoldOps(s1))
	early := &trailv1.LegalHold{Id: "early", TenantId: "acme", To: ts(jan2020.Add(2 * time.Hour)), CaseReference: "C", Reason: "r"}
	l.settings(HoldOps(early))
	if got, want := filter(), []uint64{2, 3, 5, 6, 8, 9, 11}; !slices.Equal(got, want) {
		t.Fatalf("held by subject s1 and the first two hours: kept %v, want %v", got, want)
	}
	// Already pruned leaves pass: the engine skips them anyway.
	l.prune(p, []uint64{2})
	l.settings(HoldOps(Released(s1, "x", "done", jan2020)))
	if got, want := filter(), []uint64{2, 3, 4, 5, 6, 7, 8, 9, 10, 11}; !slices.Equal(got, want) {
		t.Fatalf("after release: kept %v, want %v", got, want)
	}
	// A leaf beyond the tree is a refusal, as the engine's own.
	if _, err := FilterHeld(ctx, l.e, p, []uint64{99}); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("leaf beyond size: %v", err)
	}
	// A hold that does not decode could cover anything: nothing is pruned.
	l.settings([]engine.SettingOp{{Key: holdKey("garbled"), Value: []byte{0xff, 0xff}}}, nil)
	if got := filter(); len(got) != 0 {
		t.Fatalf("undecodable hold: kept %v", got)
	}
}

func TestDryRunAndDropCandidates(t *testing.T) {
	l := newRetentionLog(t)
	ctx := context.Background()
	auth := trailv1.Category_CATEGORY_AUTHENTICATION
	for i := range 6 {
		l.add(jan2020.Add(time.Duration(i)*time.Hour), retentionEvent("acme", fmt.Sprint("jan-", i), auth, fmt.Sprint("s", i%2)))
	}
	l.add(jan2020.AddDate(0, 1, 0), retentionEvent("acme", "feb-0", auth, "s0"))
	jan := engine.Partition{Tenant: "acme", Month: engine.MonthOf(jan2020)}
	if err := l.e.Seal(ctx, l.next(), jan, jan2020.AddDate(0, 1, 0)); err != nil {
		t.Fatal(err)
	}
	asOf := jan2020.AddDate(3, 0, 0)
	var r DryRunResult
	if err := DryRun(ctx, l.e, "acme", asOf, 3, &r); err != nil {
		t.Fatal(err)
	}
	if r.Expired != 7 || r.Held != 0 || len(r.Candidates) != 3 || !r.Truncated() || !slices.Equal(r.Droppable, []engine.Partition{jan}) {
		t.Fatalf("dry run without holds: %+v", r)
	}
	// A hold on one January subject keeps three entries, and the file.
	l.settings(HoldOps(&trailv1.LegalHold{Id: "h", TenantId: "acme", SubjectId: "s1", CaseReference: "C", Reason: "r"}))
	r = DryRunResult{}
	if err := DryRun(ctx, l.e, "acme", asOf, 100, &r); err != nil {
		t.Fatal(err)
	}
	if r.Expired != 7 || r.Held != 3 || len(r.Candidates) != 7 || r.Truncated() || len(r.Droppable) != 0 {
		t.Fatalf("dry run with a hold: %+v", r)
	}
	for _, c := range r.Candidates {
		if held := len(c.HeldBy) > 0; held != (c.Partition == jan && c.Leaf%2 == 1) {
			t.Fatalf("candidate %s/%d held by %v", c.Partition, c.Leaf, c.HeldBy)
		}
	}
	// Nothing is expired a year on.
	r = DryRunResult{}
	if err := DryRun(ctx, l.e, "acme", jan2020.AddDate(1, 0, 0), 100, &r); err != nil || r.Expired != 0 {
		t.Fatalf("a year on: %+v, %v", r, err)
	}
}

func TestDropCandidates(t *testing.T) {
	jan := engine.Partition{Tenant: "acme", Month: engine.Month{Year: 2020, Month: time.January}}
	full := engine.PartitionInfo{Partition: jan, Size: 4, Pruned: 4, Sealed: true, FirstTime: jan2020, LastTime: jan2020.Add(time.Hour)}
	cases := []struct {
		name    string
		change  func(*engine.PartitionInfo)
		pending uint64
		holds   Holds
		want    bool
	}{
		{"fully pruned", func(*engine.PartitionInfo) {}, 0, nil, true},
		{"pruned once pending goes", func(pi *engine.PartitionInfo) { pi.Pruned = 1 }, 3, nil, true},
		{"payload left", func(pi *engine.PartitionInfo) { pi.Pruned = 3 }, 0, nil, false},
		{"open", func(pi *engine.PartitionInfo) { pi.Sealed = false }, 0, nil, false},
		{"already dropped", func(pi *engine.PartitionInfo) { pi.Dropped = true }, 0, nil, false},
		{"hold spans it", func(*engine.PartitionInfo) {}, 0, Holds{{TenantId: "acme", SubjectId: "x"}}, false},
		{"hold ends before", func(*engine.PartitionInfo) {}, 0, Holds{{TenantId: "acme", To: ts(jan2020)}}, true},
		{"hold of another tenant", func(*engine.PartitionInfo) {}, 0, Holds{{TenantId: "globex"}}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pi := full
			c.change(&pi)
			got := DropCandidates([]engine.PartitionInfo{pi}, map[engine.Partition]uint64{jan: c.pending}, c.holds)
			if (len(got) == 1) != c.want {
				t.Fatalf("DropCandidates = %v, want droppable %v", got, c.want)
			}
		})
	}
}

// A tombstone's signed body never parses as a checkpoint, and its event id
// depends only on what was pruned.
func TestTombstone(t *testing.T) {
	tb := Tombstone{Tenant: "acme", Partition: "2020-01", Category: trailv1.Category_CATEGORY_AUTHENTICATION,
		RetentionDays: 730, Leaves: []uint64{0, 1, 2, 7}, TreeSize: 9, Root: make([]byte, 32)}
	body := tb.Body("test.trail")
	if !strings.HasPrefix(body, "test.trail retention tombstone v1\ntenant acme\n") || !strings.Contains(body, "\nleaves 0-2,7\n") {
		t.Fatalf("body:\n%s", body)
	}
	if _, err := merkle.ParseCheckpoint([]byte(body)); err == nil {
		t.Fatal("a tombstone body parses as a checkpoint")
	}
	ev := tb.Event("signed", jan2020)
	if err := engine.ValidateEvent(ev); err != nil {
		t.Fatal(err)
	}
	if ev.GetAttributes()["leaves"] != "0-2,7" || ev.GetAttributes()["count"] != "4" || ev.GetAttributes()["policy"] != "authentication=730d" {
		t.Fatalf("attributes %v", ev.GetAttributes())
	}
	again := tb
	again.Root = []byte("other")
	if again.EventID() != tb.EventID() || len(tb.EventID()) > engine.MaxEventIDLen {
		t.Fatalf("event ids %q, %q", tb.EventID(), again.EventID())
	}
	again.Leaves = []uint64{0, 1, 2}
	if again.EventID() == tb.EventID() {
		t.Fatal("different prunings share an event id")
	}
}
