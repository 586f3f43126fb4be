package engine

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/trailaudit/trail/filter"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// searchFixture: 60 events over Nov and Dec; even ones by alice on citizen-1
// reading "name" and "address" for CASE_MGMT, odd ones by bob logging in.
func searchFixture(t *testing.T, perBatch int) *Engine {
	e := openEngine(t, t.TempDir())
	var batch []*trailv1.Event
	for i := range 60 {
		ev := event("acme", ids("s", 60)[i])
		if i%2 == 0 {
			ev.Actor.Id = "alice"
			ev.Category = trailv1.Category_CATEGORY_DATA_ACCESS
			ev.Action = "record.view"
			ev.SubjectId = "citizen-1"
			ev.Target = &trailv1.Target{Type: "record", Id: "r-1"}
			ev.PiiFieldsAccessed = []string{"name", "address"}
			ev.PurposeCode = "CASE_MGMT"
		} else {
			ev.Actor.Id = "bob"
		}
		batch = append(batch, ev)
		if len(batch) == perBatch {
			at := nov.Add(time.Duration(i) * 24 * time.Hour / 2) // 30 days: crosses into December
			applyOK(t, e, uint64(i+1), at, batch...)
			batch = nil
		}
	}
	return e
}

func TestSearch(t *testing.T) {
	// One event per batch: one posting per index key. Ten per batch: posting
	// lists that pagination has to enter in the middle.
	// Reopened, the postings are read from Pebble rather than from the
	// chunk in memory.
	for _, perBatch := range []int{1, 10} {
		for _, reopen := range []bool{false, true} {
			t.Run(fmt.Sprintf("perBatch=%d/reopened=%v", perBatch, reopen), func(t *testing.T) { testSearch(t, perBatch, reopen) })
		}
	}
}

func testSearch(t *testing.T, perBatch int, reopen bool) {
	e := searchFixture(t, perBatch)
	if reopen {
		dir := e.opts.Dir
		if err := e.Close(); err != nil {
			t.Fatal(err)
		}
		e = openEngine(t, dir)
	}
	ctx := context.Background()
	cut := nov.Add(time.Duration(20/perBatch*perBatch) * 24 * time.Hour) // a batch boundary
	cases := []struct {
		name string
		q    Query
		want int
	}{
		{"all", Query{}, 60},
		{"actor", fq(filter.Filter{ActorIDs: []string{"alice"}}), 30},
		{"subject", fq(filter.Filter{SubjectIDs: []string{"citizen-1"}}), 30},
		{"target", fq(filter.Filter{Targets: []filter.Target{{Type: "record", ID: "r-1"}}}), 30},
		{"category", fq(filter.Filter{Categories: []trailv1.Category{trailv1.Category_CATEGORY_AUTHENTICATION}}), 30},
		{"action", fq(filter.Filter{Actions: []string{"record.view"}}), 30},
		{"purpose", fq(filter.Filter{PurposeCodes: []string{"CASE_MGMT"}}), 30},
		{"pii", fq(filter.Filter{PIIFields: []string{"name"}}), 30},
		{"two filters", fq(filter.Filter{ActorIDs: []string{"bob"}, SubjectIDs: []string{"citizen-1"}}), 0},
		{"time from", fq(filter.Filter{From: cut}), 20},
		{"time to", fq(filter.Filter{To: cut}), 40},
		{"subject in time", fq(filter.Filter{SubjectIDs: []string{"citizen-1"}, From: cut}), 10},
		{"unknown value", fq(filter.Filter{ActorIDs: []string{"carol"}}), 0},
		// Sets: the union of the values' posting lists, each hit once.
		{"two actors", fq(filter.Filter{ActorIDs: []string{"bob", "alice"}}), 60},
		{"two categories", fq(filter.Filter{Categories: []trailv1.Category{trailv1.Category_CATEGORY_AUTHENTICATION, trailv1.Category_CATEGORY_DATA_ACCESS}}), 60},
		{"a category set with one absent", fq(filter.Filter{Categories: []trailv1.Category{trailv1.Category_CATEGORY_SECURITY, trailv1.Category_CATEGORY_DATA_ACCESS}}), 30},
		{"PII fields an event has both of", fq(filter.Filter{PIIFields: []string{"address", "name"}}), 30},
		{"set and field", fq(filter.Filter{ActorIDs: []string{"alice", "bob"}, Categories: []trailv1.Category{trailv1.Category_CATEGORY_AUTHENTICATION}}), 30},
		{"set and time", fq(filter.Filter{ActorIDs: []string{"alice", "bob"}, To: cut}), 40},
		{"purpose set and pii", fq(filter.Filter{PurposeCodes: []string{"CASE_MGMT", "FRAUD"}, PIIFields: []string{"name"}, From: cut}), 10},
	}
	for _, c := range cases {
		for _, newest := range []bool{false, true} {
			q := c.q
			q.Tenant, q.NewestFirst, q.Limit = "acme", newest, 7
			hits := searchAll(t, e, q)
			if len(hits) != c.want {
				t.Fatalf("%s (newest=%v): %d hits, want %d", c.name, newest, len(hits), c.want)
			}
			for i := 1; i < len(hits); i++ {
				a, b := position{m: hits[i-1].Partition.Month, leaf: hits[i-1].LeafIndex}, position{m: hits[i].Partition.Month, leaf: hits[i].LeafIndex}
				if newest != b.less(a) {
					t.Fatalf("%s: hits out of order at %d", c.name, i)
				}
			}
			for _, h := range hits {
				if !q.matches(h.Entry) {
					t.Fatalf("%s: hit does not match", c.name)
				}
			}
		}
	}
	// Every hit can be proven.
	hits := searchAll(t, e, Query{Tenant: "acme", Filter: filter.Filter{SubjectIDs: []string{"citizen-1"}}, Limit: 100})
	for _, h := range hits {
		if _, _, err := e.InclusionProof(ctx, h.Partition, h.LeafIndex, 0); err != nil {
			t.Fatal(err)
		}
	}
}

func fq(f filter.Filter) Query { return Query{Filter: f} }

func searchAll(t *testing.T, e *Engine, q Query) []Hit {
	t.Helper()
	var all []Hit
	for pages := 0; ; pages++ {
		res, err := e.Search(context.Background(), q)
		if err != nil {
			t.Fatalf("Search(%+v): %v", q, err)
		}
		all = append(all, res.Hits...)
		if res.NextCursor == "" {
			return all
		}
		if pages > 100 {
			t.Fatal("pagination does not end")
		}
		q.Cursor = res.NextCursor
	}
}

func TestSearchBadQueries(t *testing.T) {
	e := searchFixture(t, 1)
	cases := []Query{
		{Tenant: ""},
		{Tenant: "a b"},
		{Tenant: "acme", Limit: MaxSearchLimit + 1},
		{Tenant: "acme", Filter: filter.Filter{Targets: []filter.Target{{Type: "record"}}}},
		{Tenant: "acme", Filter: filter.Filter{From: nov, To: nov}},
		{Tenant: "acme", Filter: filter.Filter{ActorIDs: []string{""}}},
		{Tenant: "acme", Cursor: "!!!"},
		{Tenant: "acme", Cursor: encodeCursor(position{m: Month{2026, 11}, leaf: 3}, true)}, // newest cursor, oldest query
	}
	for _, q := range cases {
		if _, err := e.Search(context.Background(), q); !errors.Is(err, ErrBadQuery) {
			t.Errorf("Search(%+v): %v, want ErrBadQuery", q, err)
		}
	}
	res, err := e.Search(context.Background(), Query{Tenant: "ghost"})
	if err != nil || len(res.Hits) != 0 {
		t.Fatalf("unknown tenant: %v %v", res, err)
	}
}

func TestSearchMaxBytes(t *testing.T) {
	e := searchFixture(t, 10)
	q := Query{Tenant: "acme", Filter: filter.Filter{ActorIDs: []string{"alice"}}, MaxBytes: 1}
	res, err := e.Search(context.Background(), q)
	if err != nil || len(res.Hits) != 1 || res.NextCursor == "" {
		t.Fatalf("MaxBytes 1: %d hits, cursor %q, %v", len(res.Hits), res.NextCursor, err)
	}
	if all := searchAll(t, e, q); len(all) != 30 {
		t.Fatalf("paging by bytes found %d, want 30", len(all))
	}
}

func TestEntriesAndLatestPartition(t *testing.T) {
	e := searchFixture(t, 10)
	ctx := context.Background()
	info, found, err := e.LatestPartition(ctx, "acme")
	if err != nil || !found || info.Month != (Month{2026, 12}) {
		t.Fatalf("LatestPartition: %+v %v %v", info, found, err)
	}
	if _, found, err := e.LatestPartition(ctx, "ghost"); found || err != nil {
		t.Fatalf("LatestPartition of an unknown tenant: %v %v", found, err)
	}
	nov := mustPartition(t, "acme", "2026-11")
	got, err := e.Entries(ctx, nov, 5, 1000)
	novInfo, _ := e.PartitionInfo(ctx, nov)
	if err != nil || uint64(len(got)) != novInfo.Size-5 {
		t.Fatalf("Entries: %d entries, size %d, %v", len(got), novInfo.Size, err)
	}
	for i, se := range got {
		if se.LeafIndex != uint64(5+i) || se.Data == nil {
			t.Fatalf("Entries[%d] is leaf %d", i, se.LeafIndex)
		}
	}
}
