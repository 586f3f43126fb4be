package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/trailaudit/trail/bench/ceiling"
	"github.com/trailaudit/trail/internal/eventgen"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// appendConfig is the append scenario: producers appending realistic
// events as fast as acks come, or at an offered rate.
type appendConfig struct {
	run        runFlags
	target     targetFlags
	producers  []int
	batch      int
	stream     bool
	window     int
	eventBytes int
	tenants    int
	seal       bool
	rates      []float64
	warmup     time.Duration
}

func parseAppend(args []string) (appendConfig, error) {
	var c appendConfig
	fs := flag.NewFlagSet("append", flag.ContinueOnError)
	c.run.register(fs, 20*time.Second)
	c.target.register(fs)
	producers := fs.String("producers", "1,16,64", "comma-separated producer counts, one row each")
	fs.IntVar(&c.batch, "batch", 1, "events per call: 1 = unary Append, more = AppendBatch")
	fs.BoolVar(&c.stream, "stream", false, "send batches on one AppendStream per producer instead of AppendBatch calls")
	fs.IntVar(&c.window, "window", 4, "with -stream, batches in flight per stream")
	fs.IntVar(&c.eventBytes, "event-bytes", 512, "approximate encoded event size")
	fs.IntVar(&c.tenants, "tenants", 8, "tenants (skewed: tenant i gets weight 1/(i+1))")
	fs.BoolVar(&c.seal, "seal", false, "turn on sealing of subject payloads (crypto-shredding) for every tenant before the load")
	rates := fs.String("rate", "0", "comma-separated offered events/s over all producers, one row each per producer count (0: each producer sends its next call when the last is acknowledged)")
	fs.DurationVar(&c.warmup, "warmup", 2*time.Second, "unmeasured load before each row")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	var err error
	if c.producers, err = parseCounts("producers", *producers); err != nil {
		return c, err
	}
	switch {
	case c.batch < 1:
		return c, fmt.Errorf("-batch %d: want at least 1", c.batch)
	case c.stream && c.window < 1:
		return c, fmt.Errorf("-window %d: want at least 1", c.window)
	}
	for _, f := range strings.Split(*rates, ",") {
		r, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil || r < 0 {
			return c, fmt.Errorf("-rate: bad rate %q", f)
		}
		c.rates = append(c.rates, r)
	}
	return c, c.target.check()
}

type appendReport struct {
	header
	Rows []appendRow `json:"rows"`
}

type appendRow struct {
	Nodes       int     `json:"nodes"`
	Producers   int     `json:"producers"`
	Batch       int     `json:"batch"`
	Mode        string  `json:"mode"`
	OfferedRate float64 `json:"offered_events_per_sec,omitempty"`
	EventBytes  float64 `json:"event_bytes"`
	Seconds     float64 `json:"seconds"`
	Calls       int64   `json:"calls"`
	Sent        int64   `json:"events_sent"`
	Acked       int64   `json:"events_acked"`
	Duplicates  int64   `json:"duplicates"`
	Failed      int64   `json:"events_failed"`
	Retries     int64   `json:"retries"`
	FirstError  string  `json:"first_error,omitempty"`
	// Elections is how far the Raft term moved during the row (local only).
	Elections    uint64      `json:"elections"`
	EventsPerSec float64     `json:"events_per_sec"`
	Latency      percentiles `json:"call_latency_us"`
	// Fractions of the machine ceilings: every local node writes its own
	// Raft log to the same disk, so the fsync fraction counts each event
	// once per node.
	OfFsyncCeiling  float64 `json:"of_fsync_ceiling"`
	OfSHA256Ceiling float64 `json:"of_sha256_ceiling"`
	resourceUse
}

func (c appendConfig) mode() string {
	m := "batch"
	switch {
	case c.stream:
		m = "stream"
	case c.batch == 1:
		m = "unary"
	}
	if c.seal {
		m += "+seal"
	}
	return m
}

// sealTenants turns on sealing of subject payloads for the run's tenants.
func (c appendConfig) sealTenants(ctx context.Context, tgt *target) error {
	if !c.seal {
		return nil
	}
	comp := trailv1.NewComplianceServiceClient(tgt.conn(0))
	for i := range c.tenants {
		req := &trailv1.SetPrivacySettingsRequest{Settings: &trailv1.PrivacySettings{TenantId: eventgen.TenantID(i), SealSubjectPayloads: true}}
		if _, err := comp.SetPrivacySettings(ctx, req); err != nil {
			return fmt.Errorf("seal tenant %s: %w", eventgen.TenantID(i), err)
		}
	}
	return nil
}

func runAppend(args []string) error {
	return runScenario(args, parseAppend, func(c appendConfig) runFlags { return c.run }, benchAppend, printAppend)
}

func benchAppend(ctx context.Context, c appendConfig) (*appendReport, error) {
	rep := &appendReport{header: newHeader()}
	root, cleanup, err := prepare(c.run, &rep.header)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	run := &appendRun{
		cfg: c, id: runID(), tmpl: newTemplates(4096, c.eventBytes, c.tenants),
		ceil: rep.Ceilings, prof: newProfiler(c.run, len(c.producers)*len(c.rates)),
	}
	for _, p := range c.producers {
		for _, rate := range c.rates {
			dir := filepath.Join(root, fmt.Sprintf("append-%d", len(rep.Rows)))
			row, desc, err := run.row(ctx, dir, p, rate)
			if err != nil {
				return nil, fmt.Errorf("%d producers: %w", p, err)
			}
			rep.Target = desc
			rep.Rows = append(rep.Rows, row)
		}
	}
	rep.Notes = append(rep.Notes, c.target.resourceNotes()...)
	rep.Notes = append(rep.Notes, rep.nodeRows().notes()...)
	return rep, nil
}

// nodeRows are the rows' per-node figures, each labelled by its load.
func (r *appendReport) nodeRows() *nodeRows {
	var out nodeRows
	for _, w := range r.Rows {
		label := fmt.Sprintf("%s %dx%d", w.Mode, w.Producers, w.Batch)
		if w.OfferedRate > 0 {
			label += fmt.Sprintf(" @%.0f/s", w.OfferedRate)
		}
		out.add(label, w.PerNode)
	}
	return &out
}

// appendRun is what the rows of one append run share.
type appendRun struct {
	cfg  appendConfig
	id   string // makes event ids unique to the run
	tmpl *templates
	ceil ceiling.Ceilings
	prof *profiler
}

// row measures one producer count at one offered rate, on a fresh cluster
// in dir when local, so that every row starts from an empty log.
func (r *appendRun) row(ctx context.Context, dir string, n int, rate float64) (row appendRow, desc string, err error) {
	c, tmpl, prof := r.cfg, r.tmpl, r.prof
	tgt, err := openTarget(ctx, c.target, dir, c.run.verbose)
	if err != nil {
		return row, "", err
	}
	defer func() {
		err = errors.Join(err, tgt.close(ctx), tgt.remove())
	}()
	if err := c.sealTenants(ctx, tgt); err != nil {
		return row, "", err
	}
	ps := make([]*producer, n)
	for i := range ps {
		ps[i] = &producer{
			conn: tgt.conn(i), src: tmpl.source(r.id+"-"+filepath.Base(dir), i, c.batch, ""),
			batch: c.batch, stream: c.stream, window: c.window,
		}
		if rate > 0 {
			// Each producer offers its share; calls carry batch events.
			ps[i].interval = time.Duration(float64(time.Second) * float64(c.batch) * float64(n) / rate)
			ps[i].phase = ps[i].interval * time.Duration(i) / time.Duration(n)
		}
	}
	warm, _ := runProducers(ctx, ps, c.warmup)
	if warm.failed > 0 {
		return row, "", fmt.Errorf("warm-up: %d events failed: %s", warm.failed, warm.firstErr)
	}
	if err := prof.start(); err != nil {
		return row, "", err
	}
	term := tgt.term()
	m := tgt.startMeter(ctx)
	st, elapsed := runProducers(ctx, ps, c.run.duration)
	use := m.stop(ctx)
	elections := tgt.term() - term
	if err := prof.stop(); err != nil {
		return row, "", err
	}
	row = appendRow{
		Nodes: tgt.nodes, Producers: n, Batch: c.batch, Mode: c.mode(), OfferedRate: rate, EventBytes: tmpl.meanBytes,
		Seconds: elapsed.Seconds(), Calls: st.calls, Sent: st.sent, Acked: st.acked, Duplicates: st.dups,
		Failed: st.failed, Retries: st.retries, FirstError: st.firstErr, Latency: st.lat.percentiles(), Elections: elections,
	}
	row.EventsPerSec = float64(st.acked) / elapsed.Seconds()
	diskCopies := 1
	if tgt.local != nil {
		diskCopies = tgt.nodes
	}
	row.OfFsyncCeiling = row.EventsPerSec * tmpl.meanBytes * float64(diskCopies) / (r.ceil.FsyncWriteMBps * 1e6)
	row.OfSHA256Ceiling = row.EventsPerSec / r.ceil.SHA256PerSec
	desc = tgt.describe()
	if err := tgt.close(ctx); err != nil {
		return row, "", err
	}
	use.perEvent(tgt.disk(), warm.acked+st.acked, st.acked)
	row.resourceUse = use
	return row, desc, nil
}

// runProducers runs every producer for d and returns their merged counts
// and the time until the last call in flight finished.
func runProducers(ctx context.Context, ps []*producer, d time.Duration) (*appendStats, time.Duration) {
	stop, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	start := time.Now()
	out := make([]*appendStats, len(ps))
	var wg sync.WaitGroup
	for i, p := range ps {
		wg.Go(func() { out[i] = p.run(ctx, stop) })
	}
	wg.Wait()
	elapsed := time.Since(start)
	total := newAppendStats()
	for _, s := range out {
		total.add(s)
	}
	return total, elapsed
}

func printAppend(r *appendReport) {
	printHeader(r.header)
	fmt.Printf("%-5s %-6s %5s %5s %9s %10s %10s %7s %26s %7s %7s %8s %8s %8s %9s %7s\n",
		"nodes", "mode", "prod", "batch", "offered", "acked", "events/s", "failed", "latency ms p50/p90/p99/p999",
		"ev B", "disk B", "raft B", "of fsync", "of sha", "RSS MiB", "CPU s/M")
	for _, w := range r.Rows {
		offered := "-"
		if w.OfferedRate > 0 {
			offered = fmt.Sprintf("%.0f", w.OfferedRate)
		}
		fmt.Printf("%-5d %-6s %5d %5d %9s %10d %10.0f %7d %26s %7.0f %7.0f %8.0f %7.1f%% %7.2f%% %9.0f %7.1f\n",
			w.Nodes, w.Mode, w.Producers, w.Batch, offered, w.Acked, w.EventsPerSec, w.Failed, fmtLatency(w.Latency),
			w.EventBytes, w.DiskPerEvent, w.RaftPerEvent, 100*w.OfFsyncCeiling, 100*w.OfSHA256Ceiling, mib(w.PeakRSSBytes), w.CPUSecPerMEvent)
		if w.FirstError != "" || w.Retries > 0 || w.Elections > 0 {
			fmt.Printf("      %d retried calls, %d elections; first error: %s\n", w.Retries, w.Elections, w.FirstError)
		}
	}
	fmt.Println("\nlatency is per call (a batch's events share it); ev B is the mean encoded event; disk B (of which raft B is the Raft log)\n" +
		"is what each node's files hold per event stored, preallocated space left out")
	r.nodeRows().print("events acknowledged")
}
