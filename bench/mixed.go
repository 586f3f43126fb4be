package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/trailaudit/trail/internal/eventgen"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// mixedConfig is the mixed scenario: workers that each pick, call by call,
// an append, an inclusion proof or a search, in the given proportions.
type mixedConfig struct {
	run         runFlags
	target      targetFlags
	workers     int
	mix         [3]int // append, prove, search weights
	batch       int
	logSize     int
	eventBytes  int
	tenants     int
	verifyEvery int
	searchLimit int
}

const (
	opAppend = iota
	opProve
	opSearch
)

var opNames = [3]string{"append", "prove", "search"}

func parseMixed(args []string) (mixedConfig, error) {
	var c mixedConfig
	fs := flag.NewFlagSet("mixed", flag.ContinueOnError)
	c.run.register(fs, 20*time.Second)
	c.target.register(fs)
	fs.IntVar(&c.workers, "workers", 32, "concurrent clients")
	mix := fs.String("mix", "70,25,5", "relative weights of append,prove,search calls")
	fs.IntVar(&c.batch, "batch", 10, "events per append call (1 = unary Append)")
	fs.IntVar(&c.logSize, "log-size", 20_000, "events loaded before measuring, so that proofs and searches find something")
	fs.IntVar(&c.eventBytes, "event-bytes", 512, "approximate encoded event size")
	fs.IntVar(&c.tenants, "tenants", 8, "tenants (skewed: tenant i gets weight 1/(i+1))")
	fs.IntVar(&c.verifyEvery, "verify-every", 100, "verify every Nth proof client-side")
	fs.IntVar(&c.searchLimit, "search-limit", 20, "results per search page")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	parts := strings.Split(*mix, ",")
	if len(parts) != 3 {
		return c, fmt.Errorf("-mix %q: want three weights, append,prove,search", *mix)
	}
	total := 0
	for i, p := range parts {
		w, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || w < 0 {
			return c, fmt.Errorf("-mix %q: bad weight %q", *mix, p)
		}
		c.mix[i], total = w, total+w
	}
	switch {
	case total == 0:
		return c, fmt.Errorf("-mix %q: all weights are zero", *mix)
	case c.workers < 1 || c.batch < 1 || c.verifyEvery < 1 || c.searchLimit < 1:
		return c, errors.New("-workers, -batch, -verify-every and -search-limit must be positive")
	case c.logSize < 1 && (c.mix[opProve] > 0 || c.mix[opSearch] > 0):
		return c, errors.New("proofs and searches need -log-size of at least 1")
	}
	return c, c.target.check()
}

type mixedReport struct {
	header
	Mix   [3]int      `json:"mix_append_prove_search"`
	Load  loadResult  `json:"load"`
	Ops   []mixedOp   `json:"ops"`
	Total resourceUse `json:"resources"`
	// EventsPerSec is appended events acknowledged per second.
	EventsPerSec float64 `json:"events_per_sec"`
	Seconds      float64 `json:"seconds"`
	Workers      int     `json:"workers"`
	Nodes        int     `json:"nodes"`
}

type mixedOp struct {
	Op         string      `json:"op"`
	Calls      int64       `json:"calls"`
	CallsPerS  float64     `json:"calls_per_sec"`
	Failed     int64       `json:"failed"`
	FirstError string      `json:"first_error,omitempty"`
	Verified   int64       `json:"verified,omitempty"`
	Events     int64       `json:"events_acked,omitempty"`
	Sent       int64       `json:"events_sent,omitempty"`
	Hits       int64       `json:"search_hits,omitempty"`
	Latency    percentiles `json:"latency_us"`
}

func runMixed(args []string) error {
	return runScenario(args, parseMixed, func(c mixedConfig) runFlags { return c.run }, benchMixed, printMixed)
}

func benchMixed(ctx context.Context, c mixedConfig) (_ *mixedReport, err error) {
	rep := &mixedReport{header: newHeader(), Mix: c.mix, Workers: c.workers}
	root, cleanup, err := prepare(c.run, &rep.header)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	tgt, err := openTarget(ctx, c.target, root, c.run.verbose)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, tgt.close(ctx)) }()
	rep.Target, rep.Nodes = tgt.describe(), tgt.nodes
	tmpl := newTemplates(4096, c.eventBytes, c.tenants)
	tr := newTreeTracker()
	run := runID()
	if c.logSize > 0 {
		if rep.Load, err = loadLog(ctx, tgt, tmpl, run, "", c.logSize, 4, tr); err != nil {
			return nil, err
		}
	}
	ws := make([]*mixedWorker, c.workers)
	for i := range ws {
		ws[i] = &mixedWorker{
			cfg: &c, rng: rand.New(rand.NewPCG(uint64(i), 0x6d6978)), tr: tr, actors: actorsByTenant(tmpl),
			app:    &producer{conn: tgt.conn(i), src: tmpl.source(run+"-mixed", i, c.batch, ""), batch: c.batch, onReceipt: tr.observe},
			prover: newProver(tgt.proofs(i), uint64(i), c.verifyEvery, tgt.verifier),
			reads:  tgt.reads(i),
		}
	}
	prof := newProfiler(c.run, 1)
	if err := prof.start(); err != nil {
		return nil, err
	}
	m := tgt.startMeter(ctx)
	stats, elapsed := runMixedWorkers(ctx, ws, c.run.duration)
	use := m.stop(ctx)
	if err := prof.stop(); err != nil {
		return nil, err
	}
	rep.Seconds = elapsed.Seconds()
	ap := stats.app
	rep.Ops = append(rep.Ops, mixedOp{Op: "append", Calls: ap.calls, Failed: ap.failed, FirstError: ap.firstErr,
		Events: ap.acked, Sent: ap.sent, Latency: ap.lat.percentiles()})
	for _, op := range []int{opProve, opSearch} {
		r := stats.reads[op]
		rep.Ops = append(rep.Ops, mixedOp{Op: opNames[op], Calls: r.ok + r.failed, Failed: r.failed, FirstError: r.firstErr,
			Verified: r.verified, Latency: r.lat.percentiles()})
	}
	rep.Ops[2].Hits = stats.hits
	for i := range rep.Ops {
		rep.Ops[i].CallsPerS = float64(rep.Ops[i].Calls) / rep.Seconds
	}
	rep.EventsPerSec = float64(ap.acked) / rep.Seconds
	use.perEvent(nil, 0, ap.acked)
	rep.Total = use
	rep.Notes = append(rep.Notes, c.target.resourceNotes()...)
	rep.Notes = append(rep.Notes, rep.nodeRows().notes()...)
	rep.Notes = append(rep.Notes, "proofs and searches pass min_index from the newest receipt of their tenant, so a follower first waits until it has applied it",
		"every proof and search is also audited by the server (an event appended to the system tenant through Raft)")
	return rep, nil
}

// actorsByTenant lists the actors of the templates per tenant, so that
// searches ask for actors that exist.
func actorsByTenant(t *templates) map[string][]string {
	out := make(map[string][]string)
	for _, ev := range t.events {
		out[ev.GetTenantId()] = append(out[ev.GetTenantId()], ev.GetActor().GetId())
	}
	return out
}

type mixedWorker struct {
	cfg    *mixedConfig
	rng    *rand.Rand
	tr     *treeTracker
	actors map[string][]string
	app    *producer
	prover *prover
	reads  trailv1.ReadServiceClient
}

type mixedStats struct {
	app   *appendStats
	reads [3]*readStats // indexed by op; opAppend unused
	hits  int64
}

func newMixedStats() *mixedStats {
	return &mixedStats{app: newAppendStats(), reads: [3]*readStats{nil, newReadStats(), newReadStats()}}
}

func (w *mixedWorker) pick() int {
	n := w.rng.IntN(w.cfg.mix[0] + w.cfg.mix[1] + w.cfg.mix[2])
	for op, weight := range w.cfg.mix {
		if n < weight {
			return op
		}
		n -= weight
	}
	return opAppend
}

// tenant picks a tenant with eventgen's skew (weight 1/(i+1)), so that
// reads go where the writes go.
func (w *mixedWorker) tenant() string {
	var total float64
	for i := range w.cfg.tenants {
		total += 1 / float64(i+1)
	}
	x := w.rng.Float64() * total
	for i := range w.cfg.tenants {
		if x -= 1 / float64(i+1); x < 0 {
			return eventgen.TenantID(i)
		}
	}
	return eventgen.TenantID(w.cfg.tenants - 1)
}

func (w *mixedWorker) run(ctx, stop context.Context) *mixedStats {
	st := newMixedStats()
	for stop.Err() == nil {
		switch w.pick() {
		case opAppend:
			w.app.call(ctx, st.app, w.cfg.batch, time.Now())
		case opProve:
			tenant := w.tenant()
			if head := w.tr.head(tenant); head.Size > 0 {
				w.prover.prove(ctx, st.reads[opProve], tenant, head)
			}
		case opSearch:
			st.hits += w.search(ctx, st.reads[opSearch])
		}
	}
	return st
}

func (w *mixedWorker) search(ctx context.Context, st *readStats) int64 {
	tenant := w.tenant()
	actors := w.actors[tenant]
	if len(actors) == 0 {
		return 0
	}
	head := w.tr.head(tenant)
	start := time.Now()
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	resp, err := w.reads.Search(cctx, &trailv1.SearchRequest{
		TenantId: tenant, ActorId: actors[w.rng.IntN(len(actors))], NewestFirst: true,
		Limit: uint32(w.cfg.searchLimit), MinIndex: head.Applied,
	})
	cancel()
	st.lat.record(time.Since(start))
	if err != nil {
		st.fail(err)
		return 0
	}
	st.ok++
	return int64(len(resp.GetEntries()))
}

func runMixedWorkers(ctx context.Context, ws []*mixedWorker, d time.Duration) (*mixedStats, time.Duration) {
	stop, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	start := time.Now()
	out := make([]*mixedStats, len(ws))
	var wg sync.WaitGroup
	for i, w := range ws {
		wg.Go(func() { out[i] = w.run(ctx, stop) })
	}
	wg.Wait()
	elapsed := time.Since(start)
	total := newMixedStats()
	for _, s := range out {
		total.app.add(s.app)
		total.reads[opProve].add(s.reads[opProve])
		total.reads[opSearch].add(s.reads[opSearch])
		total.hits += s.hits
	}
	return total, elapsed
}

func printMixed(r *mixedReport) {
	printHeader(r.header)
	fmt.Printf("loaded %d events in %.1f s (%.0f events/s); %d workers, mix append:prove:search = %d:%d:%d, %d node(s), %.1f s\n\n",
		r.Load.Events, r.Load.Seconds, r.Load.EventsPerSec, r.Workers, r.Mix[0], r.Mix[1], r.Mix[2], r.Nodes, r.Seconds)
	fmt.Printf("%-7s %9s %9s %7s %10s %26s %s\n", "op", "calls", "calls/s", "failed", "events/s", "latency ms p50/p90/p99/p999", "notes")
	for _, o := range r.Ops {
		ev, note := "-", ""
		switch o.Op {
		case "append":
			ev = fmt.Sprintf("%.0f", float64(o.Events)/r.Seconds)
		case "prove":
			note = fmt.Sprintf("%d verified", o.Verified)
		case "search":
			note = fmt.Sprintf("%.1f hits/search", float64(o.Hits)/max(float64(o.Calls), 1))
		}
		fmt.Printf("%-7s %9d %9.0f %7d %10s %26s %s\n", o.Op, o.Calls, o.CallsPerS, o.Failed, ev, fmtLatency(o.Latency), note)
		if o.FirstError != "" {
			fmt.Printf("        first error: %s\n", o.FirstError)
		}
	}
	u := r.Total
	fmt.Printf("\npeak RSS %.0f MiB, CPU %.1f s (%.1f s per million appended events), load %.1f-%.1f\n",
		mib(u.PeakRSSBytes), u.CPUSeconds, u.CPUSecPerMEvent, u.LoadAvg[0], u.LoadAvg[1])
	r.nodeRows().print("appended events")
}

// nodeRows are the run's per-node figures: one row.
func (r *mixedReport) nodeRows() *nodeRows {
	var out nodeRows
	out.add("mixed", r.Total.PerNode)
	return &out
}
