package engine

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trailaudit/trail/filter"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// aggregateFixture: 400 events from Nov 20 to Dec 10, one batch per
// six hours, by five actors, on forty subjects, in three categories,
// some with PII fields, purposes and words.
func aggregateFixture(t *testing.T, e *Engine) {
	start := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	var batch []*trailv1.Event
	index := uint64(1)
	for i := range 400 {
		ev := event("acme", fmt.Sprintf("a%03d", i))
		ev.Actor.Id = fmt.Sprintf("actor-%d", i%5)
		ev.SubjectId = fmt.Sprintf("citizen-%d", i%40)
		ev.Target = &trailv1.Target{Type: "record", Id: fmt.Sprint(i % 7)}
		switch i % 3 {
		case 0:
			ev.Category, ev.Action = trailv1.Category_CATEGORY_DATA_ACCESS, "record.view"
			ev.PiiFieldsAccessed = []string{"name", []string{"address", "iban"}[i%2]}
			ev.PurposeCode = []string{"case", "audit"}[i%2]
		case 1:
			ev.Category, ev.Action = trailv1.Category_CATEGORY_AUTHENTICATION, "user.login"
		case 2:
			ev.Category, ev.Action = trailv1.Category_CATEGORY_DATA_MODIFICATION, "record.update"
		}
		if i%4 == 0 {
			ev.Attributes = map[string]string{"reason": "bulk export of records"}
		}
		batch = append(batch, ev)
		if len(batch) == 8 {
			applyOK(t, e, index, start.Add(time.Duration(index)*6*time.Hour), batch...)
			index++
			batch = nil
		}
	}
}

// bruteForce aggregates by reading every entry, the answer Aggregate must
// give without doing so.
func bruteForce(t *testing.T, e *Engine, a Aggregation) AggregateResult {
	t.Helper()
	return bruteForceOver(e, searchAll(t, e, Query{Tenant: a.Tenant, Limit: MaxSearchLimit}), a)
}

func bruteForceOver(e *Engine, hits []Hit, a Aggregation) AggregateResult {
	counts := map[string]uint64{}
	var res AggregateResult
	f := a.Filter
	if len(f.Text) > 0 {
		f.TextAttributes = e.TextAttributes(a.Tenant)
	}
	for _, h := range hits {
		ev := filter.EventOf(h.Entry)
		if !f.Match(&ev) {
			continue
		}
		res.Total++
		if kind, ok := a.By.kind(); ok {
			for _, v := range fieldValues(kind, h.Entry.GetEvent()) {
				counts[v]++
			}
			continue
		}
		at := h.Entry.GetSequencerTime().AsTime()
		var key time.Time
		switch a.By {
		case GroupHour:
			key = at.Truncate(time.Hour)
		case GroupDay:
			key = time.Date(at.Year(), at.Month(), at.Day(), 0, 0, 0, 0, time.UTC)
		default:
			key = time.Date(at.Year(), at.Month(), 1, 0, 0, 0, 0, time.UTC)
		}
		counts[key.Format(time.RFC3339)]++
	}
	if _, ok := a.By.kind(); ok {
		limit := a.Limit
		if limit == 0 {
			limit = DefaultAggregateLimit
		}
		res.Groups = topGroups(counts, limit)
		return res
	}
	for _, k := range slices.Sorted(maps.Keys(counts)) {
		res.Groups = append(res.Groups, Group{Key: k, Count: counts[k]})
	}
	return res
}

func nonZero(gs []Group) []Group {
	var out []Group
	for _, g := range gs {
		if g.Count > 0 {
			out = append(out, Group{Key: g.Key, Count: g.Count})
		}
	}
	return out
}

func TestAggregateMatchesBruteForce(t *testing.T) {
	for _, reopen := range []bool{false, true} {
		t.Run(fmt.Sprintf("reopened=%v", reopen), func(t *testing.T) {
			dir := t.TempDir()
			e := openEngine(t, dir)
			aggregateFixture(t, e)
			if reopen {
				if err := e.Close(); err != nil {
					t.Fatal(err)
				}
				e = openEngine(t, dir)
			}
			// Two pruned entries must not be counted.
			nov := Partition{Tenant: "acme", Month: Month{2026, time.November}}
			if _, err := e.Prune(context.Background(), 1000, nov, []uint64{0, 3}); err != nil {
				t.Fatal(err)
			}
			hits := searchAll(t, e, Query{Tenant: "acme", Limit: MaxSearchLimit})
			mid := time.Date(2026, 11, 27, 13, 30, 0, 0, time.UTC)
			filters := []filter.Filter{
				{},
				{Categories: filter.Categories{trailv1.Category_CATEGORY_DATA_ACCESS}},
				{ActorIDs: []string{"actor-1", "actor-3"}, From: mid},
				{To: mid},
				{From: mid.Add(-72 * time.Hour), To: mid.Add(100 * time.Hour)},
				{PIIFields: []string{"iban"}, Exclude: filter.Fields{ActorIDs: []string{"actor-0"}}},
				{Text: []string{"bulk export"}},
				{Text: []string{"reco*"}, Categories: filter.Categories{trailv1.Category_CATEGORY_AUTHENTICATION, trailv1.Category_CATEGORY_DATA_ACCESS}},
				{Exclude: filter.Fields{Categories: filter.Categories{trailv1.Category_CATEGORY_AUTHENTICATION}}},
			}
			for _, f := range filters {
				for _, by := range []GroupBy{GroupActor, GroupSubject, GroupTarget, GroupCategory, GroupAction, GroupPurpose, GroupPIIField, GroupHour, GroupDay, GroupMonth} {
					a := Aggregation{Tenant: "acme", Filter: f, By: by, Limit: 50}
					got, err := e.Aggregate(context.Background(), a)
					if err != nil {
						t.Fatalf("Aggregate(%s by %d): %v", f.Describe(), by, err)
					}
					want := bruteForceOver(e, hits, a)
					if got.Total != want.Total || !slices.Equal(nonZero(got.Groups), nonZero(want.Groups)) {
						t.Fatalf("Aggregate(%s by %d):\n got %d %v\nwant %d %v", f.Describe(), by, got.Total, nonZero(got.Groups), want.Total, want.Groups)
					}
				}
			}
		})
	}
}

// TestAggregateIndexPath: a selection too large to read is counted from
// the lists, and gives the brute-force answer.
func TestAggregateIndexPath(t *testing.T) {
	e := openEngine(t, t.TempDir())
	var batch []*trailv1.Event
	index := uint64(1)
	for i := range readBelow + 2500 {
		ev := event("acme", fmt.Sprintf("x%05d", i))
		ev.Actor.Id = fmt.Sprintf("actor-%d", i%17)
		ev.Target = &trailv1.Target{Type: "doc", Id: fmt.Sprint(i % 3)}
		batch = append(batch, ev)
		if len(batch) == 1000 {
			applyOK(t, e, index, nov.Add(time.Duration(index)*time.Minute), batch...)
			index++
			batch = nil
		}
	}
	applyOK(t, e, index, nov.Add(time.Duration(index)*time.Minute), batch...)
	hits := searchAll(t, e, Query{Tenant: "acme", Limit: MaxSearchLimit})
	cut := nov.Add(2 * time.Minute)
	for _, f := range []filter.Filter{
		{},
		{From: cut},
		{Exclude: filter.Fields{ActorIDs: []string{"actor-1", "actor-2"}}},
		{ActorIDs: []string{"actor-3", "actor-4", "actor-5", "actor-6", "actor-7", "actor-8", "actor-9", "actor-10", "actor-11", "actor-12", "actor-13", "actor-14", "actor-15", "actor-16"}, To: cut.Add(3 * time.Minute)},
	} {
		for _, by := range []GroupBy{GroupActor, GroupTarget, GroupHour} {
			a := Aggregation{Tenant: "acme", Filter: f, By: by, Limit: 20}
			got, err := e.Aggregate(context.Background(), a)
			if err != nil {
				t.Fatal(err)
			}
			want := bruteForceOver(e, hits, a)
			if got.Total != want.Total || !slices.Equal(nonZero(got.Groups), nonZero(want.Groups)) {
				t.Fatalf("%s by %d: got %d %v, want %d %v", f.Describe(), by, got.Total, got.Groups, want.Total, want.Groups)
			}
			if got.Total <= readBelow {
				t.Fatalf("%s selects %d events: not the index path", f.Describe(), got.Total)
			}
		}
	}
}

func TestAggregateRefusals(t *testing.T) {
	e := openEngine(t, t.TempDir())
	aggregateFixture(t, e)
	for _, tt := range []struct {
		a    Aggregation
		want string
	}{
		{Aggregation{Tenant: "acme", By: GroupActor, Limit: MaxAggregateLimit + 1}, "limit"},
		{Aggregation{Tenant: "../x", By: GroupActor}, "tenant"},
		{Aggregation{Tenant: "acme", By: GroupHour, Filter: filter.Filter{From: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)}}, "time buckets"},
		{Aggregation{Tenant: "acme", By: GroupDay, Filter: filter.Filter{ActorIDs: []string{""}}}, "empty value"},
	} {
		_, err := e.Aggregate(context.Background(), tt.a)
		if !errors.Is(err, ErrBadQuery) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Aggregate(%+v) = %v, want a bad query about %q", tt.a, err, tt.want)
		}
	}
}

func TestCountBoth(t *testing.T) {
	long := make([]uint64, 0, 10000)
	for i := range uint64(10000) {
		long = append(long, i*3)
	}
	for _, tt := range []struct {
		a, b []uint64
		want uint64
	}{
		{nil, long, 0},
		{[]uint64{0, 3, 4, 29997, 30000}, long, 3},
		{[]uint64{1, 2}, long, 0},
		{long, []uint64{6, 9, 10}, 2},
		{[]uint64{1, 2, 3}, []uint64{2, 3, 4}, 2},
	} {
		if got := countBoth(tt.a, tt.b); got != tt.want {
			t.Errorf("countBoth(%d leaves, %d leaves) = %d, want %d", len(tt.a), len(tt.b), got, tt.want)
		}
	}
}
