package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/trailaudit/trail/engine"
	"github.com/trailaudit/trail/filter"
	"github.com/trailaudit/trail/internal/eventgen"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// The search scenario loads a large log into one engine (8 tenants of
// skewed sizes, sequenced over two months) and measures the queries
// issue 14 names: a one-field search, a text query, a three-filter query,
// each for the newest 100 hits, and aggregations over a month, by a field
// and by day; plus index bytes per event and what indexing costs the
// apply path.

type searchReport struct {
	Machine        machine            `json:"machine"`
	Events         int                `json:"events"`
	LoadEventsSec  float64            `json:"load_events_per_sec"`
	LoadCPUUsEvent float64            `json:"load_cpu_us_per_event"`
	IndexBytesEv   float64            `json:"index_bytes_per_event"`
	Queries        []searchQueryStats `json:"queries"`
}

type searchQueryStats struct {
	Name    string      `json:"name"`
	Example string      `json:"example"`
	Runs    int         `json:"runs"`
	Hits    float64     `json:"mean_hits"`
	Latency percentiles `json:"latency_us"`
}

func runSearch(args []string) error {
	fs := flag.NewFlagSet("search", flag.ExitOnError)
	dir := fs.String("dir", "", "engine directory; an existing store of the same -events is reused (default: a temporary directory, removed afterwards)")
	events := fs.Int("events", 10_000_000, "events in the log")
	runs := fs.Int("runs", 200, "runs per query kind")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	fs.Parse(args)

	root, cleanup, err := workDir(*dir)
	if err != nil {
		return err
	}
	defer cleanup()
	ctx := context.Background()
	rep := searchReport{Machine: machine{runtime.NumCPU(), runtime.Version(), runtime.GOOS + "/" + runtime.GOARCH}, Events: *events}
	path := filepath.Join(root, "search-log")
	e, err := engine.Open(ctx, engine.Options{Dir: path, LogName: "bench"})
	if err != nil {
		return err
	}
	defer e.Close()
	pool := newPool(1 << 16)
	if e.AppliedIndex() == 0 {
		if err := loadSearchLog(ctx, e, pool, *events, &rep); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(os.Stderr, "search: reusing the log in %s (applied index %d)\n", path, e.AppliedIndex())
	}
	if err := e.Sync(); err != nil {
		return err
	}
	if n, err := e.IndexBytes(); err == nil {
		rep.IndexBytesEv = float64(n) / float64(*events)
	}
	rep.Queries, err = searchQueries(ctx, e, pool, *runs)
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(rep)
	}
	printSearchTable(rep)
	return nil
}

// searchSpan is the sequencer time the log covers: two months.
const searchSpan = 61 * 24 * time.Hour

func loadSearchLog(ctx context.Context, e *engine.Engine, pool *eventPool, n int, rep *searchReport) error {
	const batch = 1000
	b := &engine.Batch{}
	batches := (n + batch - 1) / batch
	cpu0, start := cpuSeconds(), time.Now()
	seq := 0
	for i := range batches {
		b.Index = uint64(i + 1)
		b.Time = benchStart.Add(time.Duration(float64(searchSpan) * float64(i) / float64(batches)))
		seq = pool.fill(b, min(batch, n-seq), seq, "")
		if _, err := e.Apply(ctx, b); err != nil {
			return err
		}
		if i%1000 == 999 {
			fmt.Fprintf(os.Stderr, "search: loaded %d events\n", seq)
		}
	}
	if err := e.Sync(); err != nil {
		return err
	}
	elapsed := time.Since(start).Seconds()
	rep.LoadEventsSec = float64(n) / elapsed
	rep.LoadCPUUsEvent = (cpuSeconds() - cpu0) / float64(n) * 1e6
	return nil
}

// searchQueries runs each query kind with parameters drawn from the pool's
// events, on the largest tenant, newest 100 hits.
func searchQueries(ctx context.Context, e *engine.Engine, pool *eventPool, runs int) ([]searchQueryStats, error) {
	rng := rand.New(rand.NewPCG(7, 7))
	tenant := eventgen.TenantID(0)
	var mine []*trailv1.Event
	for _, ev := range pool.events {
		if ev.GetTenantId() == tenant {
			mine = append(mine, ev)
		}
	}
	pick := func() *trailv1.Event { return mine[rng.IntN(len(mine))] }
	month := engine.MonthOf(benchStart.Add(searchSpan / 2))
	from, to := month.Start(), month.Next().Start()
	words := func(s string) []string {
		return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool { return r == ' ' || r == '(' || r == ')' })
	}
	kinds := []struct {
		name string
		f    func() (filter.Filter, engine.GroupBy)
	}{
		{"one field (actor), newest 100", func() (filter.Filter, engine.GroupBy) {
			return filter.Filter{ActorIDs: []string{pick().GetActor().GetId()}}, 0
		}},
		{"text: a two-word phrase, newest 100", func() (filter.Filter, engine.GroupBy) {
			for {
				ev := pick()
				if r := ev.GetAttributes()["reason"]; r != "" {
					w := words(r)
					i := rng.IntN(len(w) - 1)
					return filter.Filter{Text: []string{w[i] + " " + w[i+1]}}, 0
				}
			}
		}},
		{"three filters (category, purpose, PII field), newest 100", func() (filter.Filter, engine.GroupBy) {
			for {
				ev := pick()
				if ev.GetPurposeCode() != "" {
					return filter.Filter{Categories: filter.Categories{ev.GetCategory()}, PurposeCodes: []string{ev.GetPurposeCode()},
						PIIFields: ev.GetPiiFieldsAccessed()[:1]}, 0
				}
			}
		}},
		{"aggregate a month by actor, top 10", func() (filter.Filter, engine.GroupBy) {
			return filter.Filter{From: from, To: to}, engine.GroupActor
		}},
		{"aggregate a month by day", func() (filter.Filter, engine.GroupBy) {
			return filter.Filter{From: from, To: to}, engine.GroupDay
		}},
		{"aggregate a month's data access by purpose", func() (filter.Filter, engine.GroupBy) {
			return filter.Filter{From: from, To: to, Categories: filter.Categories{trailv1.Category_CATEGORY_DATA_ACCESS}}, engine.GroupPurpose
		}},
	}
	var out []searchQueryStats
	for _, k := range kinds {
		st := searchQueryStats{Name: k.name, Runs: runs}
		lat := make([]time.Duration, 0, runs)
		hits := 0
		for i := range runs {
			f, by := k.f()
			if i == 0 {
				st.Example = f.String()
			}
			t0 := time.Now()
			if by == 0 {
				res, err := e.Search(ctx, engine.Query{Tenant: tenant, Filter: f, NewestFirst: true, Limit: 100})
				if err != nil {
					return nil, fmt.Errorf("%s: %w", k.name, err)
				}
				hits += len(res.Hits)
			} else {
				res, err := e.Aggregate(ctx, engine.Aggregation{Tenant: tenant, Filter: f, By: by})
				if err != nil {
					return nil, fmt.Errorf("%s: %w", k.name, err)
				}
				hits += int(res.Total)
			}
			lat = append(lat, time.Since(t0))
		}
		st.Hits = float64(hits) / float64(runs)
		st.Latency = percentilesOf(lat)
		out = append(out, st)
	}
	return out, nil
}

func printSearchTable(r searchReport) {
	fmt.Printf("machine: %d CPUs, %s, %s\n", r.Machine.CPUs, r.Machine.GoVersion, r.Machine.OS)
	fmt.Printf("log: %d events over 8 tenants; loaded at %.0f events/s, %.1f us CPU/event; index %.1f bytes/event\n",
		r.Events, r.LoadEventsSec, r.LoadCPUUsEvent, r.IndexBytesEv)
	fmt.Printf("%-58s %10s %10s %10s %10s  %s\n", "query (largest tenant)", "mean hits", "p50 ms", "p99 ms", "max-ish ms", "example")
	for _, q := range r.Queries {
		fmt.Printf("%-58s %10.0f %10.2f %10.2f %10.2f  %s\n", q.Name, q.Hits, q.Latency.P50/1e3, q.Latency.P99/1e3, q.Latency.P999/1e3, q.Example)
	}
}
