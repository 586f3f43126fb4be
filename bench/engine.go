package main

import (
	"context"
	"flag"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/trailaudit/trail/bench/ceiling"
	"github.com/trailaudit/trail/engine"
	"github.com/trailaudit/trail/internal/eventgen"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// engineReport is the result of the engine scenario.
type engineReport struct {
	Machine  machine          `json:"machine"`
	Ceilings ceiling.Ceilings `json:"ceilings"`
	Apply    []applyResult    `json:"apply"`
	Log      []logSizeResult  `json:"log_sizes"`
}

type applyResult struct {
	Batch           int     `json:"batch"`
	Events          int     `json:"events"`
	EventsPerSec    float64 `json:"events_per_sec"`
	EventBytes      float64 `json:"event_bytes"` // mean encoded event size
	OfFsyncCeiling  float64 `json:"of_fsync_ceiling"`
	OfSHA256Ceiling float64 `json:"of_sha256_ceiling"`
	HotDiskPerEvent float64 `json:"hot_disk_bytes_per_event"`
	CPUSecPerMEvent float64 `json:"cpu_sec_per_million_events"`
}

type logSizeResult struct {
	Events           int         `json:"events"`
	RSSBytes         int64       `json:"rss_bytes"`
	HeapInUse        uint64      `json:"heap_in_use"`
	Inclusion        percentiles `json:"inclusion_us"`
	Consistency      percentiles `json:"consistency_us"`
	ProofsPerSec     float64     `json:"inclusion_proofs_per_sec"`
	SealSecPerMEvent float64     `json:"seal_sec_per_million_events,omitempty"`
	SegmentPerEvent  float64     `json:"segment_bytes_per_event,omitempty"`
	SegmentOverJSON  float64     `json:"segment_over_json,omitempty"`
}

type machine struct {
	CPUs      int    `json:"cpus"`
	GoVersion string `json:"go"`
	OS        string `json:"os"`
}

func runEngine(args []string) error {
	fs := flag.NewFlagSet("engine", flag.ExitOnError)
	dir := fs.String("dir", "", "working directory (default: a temporary directory, removed afterwards)")
	applyEvents := fs.Int("apply-events", 300_000, "events per apply run (batch 1 runs a tenth)")
	sizes := fs.String("log-sizes", "1000000", "comma-separated log sizes for the proof, memory and seal runs")
	proofs := fs.Int("proofs", 20_000, "proofs sampled per log size")
	seal := fs.Bool("seal", true, "seal the largest log and measure the segment")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	fs.Parse(args)

	root, cleanup, err := workDir(*dir)
	if err != nil {
		return err
	}
	defer cleanup()
	rep := engineReport{Machine: machine{runtime.NumCPU(), runtime.Version(), runtime.GOOS + "/" + runtime.GOARCH}}
	pool := newPool(8192)
	if rep.Ceilings, err = ceiling.Measure(root, 1000*int(pool.meanBytes), 2*time.Second); err != nil {
		return err
	}
	for _, batch := range []int{1, 100, 1000} {
		n := *applyEvents
		if batch == 1 {
			n /= 10
		}
		r, err := benchApply(filepath.Join(root, "apply-"+strconv.Itoa(batch)), pool, batch, n, rep.Ceilings)
		if err != nil {
			return err
		}
		rep.Apply = append(rep.Apply, r)
	}
	logSizes, err := parseSizes(*sizes)
	if err != nil {
		return err
	}
	if err := benchLogSizes(filepath.Join(root, "log"), pool, logSizes, *proofs, *seal, &rep); err != nil {
		return err
	}
	if *asJSON {
		return printJSON(rep)
	}
	printEngineTable(rep)
	return nil
}

// eventPool is a fixed set of realistic ~512-byte events, kept as
// templates of their canonical encodings (what a Raft entry carries to the
// engine) and stamped with fresh event ids, so that neither generating
// nor encoding events is part of what is measured.
type eventPool struct {
	tmpls     []eventgen.Template
	byTenant  map[string][]eventgen.Template
	events    []*trailv1.Event
	meanBytes float64
	buf       []byte
}

func newPool(n int) *eventPool {
	g := eventgen.New(eventgen.Config{Seed: 42, Tenants: 8, TargetBytes: 512})
	p := &eventPool{events: make([]*trailv1.Event, n), tmpls: make([]eventgen.Template, n), byTenant: map[string][]eventgen.Template{}}
	var total int
	for i := range p.events {
		p.events[i] = g.Next()
		total += proto.Size(p.events[i])
		p.tmpls[i] = mustTemplate(p.events[i])
	}
	p.meanBytes = float64(total) / float64(n)
	return p
}

func mustTemplate(ev *trailv1.Event) eventgen.Template {
	t, err := eventgen.NewTemplate(ev)
	if err != nil {
		panic(fmt.Sprintf("bench: template of a generated event: %v", err)) // a bug in eventgen
	}
	return t
}

// templatesOf returns the pool's templates, with tenant as every event's
// tenant when it is set.
func (p *eventPool) templatesOf(tenant string) []eventgen.Template {
	if tenant == "" {
		return p.tmpls
	}
	if t, ok := p.byTenant[tenant]; ok {
		return t
	}
	out := make([]eventgen.Template, len(p.events))
	for i, ev := range p.events {
		c := proto.CloneOf(ev)
		c.TenantId = tenant
		out[i] = mustTemplate(c)
	}
	p.byTenant[tenant] = out
	return out
}

// fill sets b's events to the next size events, ids from seq on.
func (p *eventPool) fill(b *engine.Batch, size, seq int, tenant string) int {
	tmpls := p.templatesOf(tenant)
	b.EventBytes, p.buf = b.EventBytes[:0], p.buf[:0]
	for range size {
		start := len(p.buf)
		p.buf = tmpls[seq%len(tmpls)].Append(p.buf, "b-"+strconv.Itoa(seq))
		b.EventBytes = append(b.EventBytes, p.buf[start:])
		seq++
	}
	// Appending may have moved p.buf: slice the events again from it.
	at := 0
	for i, ev := range b.EventBytes {
		b.EventBytes[i] = p.buf[at : at+len(ev) : at+len(ev)]
		at += len(ev)
	}
	return seq
}

var benchStart = time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)

func benchApply(dir string, pool *eventPool, batch, n int, c ceiling.Ceilings) (applyResult, error) {
	ctx := context.Background()
	e, err := engine.Open(ctx, engine.Options{Dir: dir, LogName: "bench"})
	if err != nil {
		return applyResult{}, err
	}
	defer e.Close()
	b := &engine.Batch{}
	cpu0 := cpuSeconds()
	start := time.Now()
	seq := 0
	for idx := uint64(1); seq < n; idx++ {
		b.Index, b.Time = idx, benchStart.Add(time.Duration(idx)*time.Millisecond)
		seq = pool.fill(b, batch, seq, "")
		if _, err := e.Apply(ctx, b); err != nil {
			return applyResult{}, err
		}
	}
	elapsed := time.Since(start).Seconds()
	cpu := cpuSeconds() - cpu0
	if err := e.Sync(); err != nil {
		return applyResult{}, err
	}
	rate := float64(seq) / elapsed
	return applyResult{
		Batch: batch, Events: seq, EventsPerSec: rate, EventBytes: pool.meanBytes,
		OfFsyncCeiling:  rate * pool.meanBytes / (c.FsyncWriteMBps * 1e6),
		OfSHA256Ceiling: rate / c.SHA256PerSec,
		HotDiskPerEvent: float64(dirSize(dir)) / float64(seq),
		CPUSecPerMEvent: cpu / float64(seq) * 1e6,
	}, nil
}

// benchLogSizes grows one tenant's partition through each size, measuring
// memory and proof latency at each, then seals it.
func benchLogSizes(dir string, pool *eventPool, sizes []int, proofs int, seal bool, rep *engineReport) error {
	ctx := context.Background()
	e, err := engine.Open(ctx, engine.Options{Dir: dir, LogName: "bench"})
	if err != nil {
		return err
	}
	defer e.Close()
	p := engine.Partition{Tenant: "bench", Month: engine.MonthOf(benchStart)}
	b := &engine.Batch{}
	seq, idx := 0, uint64(0)
	for _, size := range sizes {
		for seq < size {
			idx++
			b.Index, b.Time = idx, benchStart
			seq = pool.fill(b, min(1000, size-seq), seq, "bench")
			if _, err := e.Apply(ctx, b); err != nil {
				return err
			}
		}
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		r := logSizeResult{Events: size, RSSBytes: rssBytes(), HeapInUse: ms.HeapInuse}
		if err := measureProofs(ctx, e, p, size, proofs, &r); err != nil {
			return err
		}
		rep.Log = append(rep.Log, r)
	}
	if !seal || len(rep.Log) == 0 {
		return nil
	}
	return measureSeal(ctx, e, p, dir, idx+1, &rep.Log[len(rep.Log)-1])
}

func measureProofs(ctx context.Context, e *engine.Engine, p engine.Partition, size, n int, r *logSizeResult) error {
	rng := rand.New(rand.NewPCG(7, uint64(size)))
	inc := make([]time.Duration, 0, n)
	start := time.Now()
	for range n {
		t := time.Now()
		if _, _, err := e.InclusionProof(ctx, p, rng.Uint64N(uint64(size)), 0); err != nil {
			return err
		}
		inc = append(inc, time.Since(t))
	}
	r.ProofsPerSec = float64(n) / time.Since(start).Seconds()
	cons := make([]time.Duration, 0, n)
	for range n {
		t := time.Now()
		if _, err := e.ConsistencyProof(ctx, p, 1+rng.Uint64N(uint64(size-1)), 0); err != nil {
			return err
		}
		cons = append(cons, time.Since(t))
	}
	r.Inclusion, r.Consistency = percentilesOf(inc), percentilesOf(cons)
	return nil
}

func measureSeal(ctx context.Context, e *engine.Engine, p engine.Partition, dir string, idx uint64, r *logSizeResult) error {
	info, err := e.PartitionInfo(ctx, p)
	if err != nil {
		return err
	}
	jsonBytes, err := sampledJSONSize(ctx, e, p, info.Size)
	if err != nil {
		return err
	}
	start := time.Now()
	if err := e.Seal(ctx, idx, p, p.Month.Next().Start().Add(time.Hour)); err != nil {
		return err
	}
	r.SealSecPerMEvent = time.Since(start).Seconds() / float64(info.Size) * 1e6
	seg := filepath.Join(dir, "segments", p.Tenant, p.Month.String()+".seg")
	st, err := os.Stat(seg)
	if err != nil {
		return err
	}
	r.SegmentPerEvent = float64(st.Size()) / float64(info.Size)
	r.SegmentOverJSON = float64(st.Size()) / float64(jsonBytes)
	return nil
}

// sampledJSONSize estimates the protojson size of all of p's events from
// one in every ~1000.
func sampledJSONSize(ctx context.Context, e *engine.Engine, p engine.Partition, size uint64) (int64, error) {
	step := max(1, size/1000)
	var total, n int64
	for leaf := uint64(0); leaf < size; leaf += step {
		se, err := e.Entry(ctx, p, leaf)
		if err != nil {
			return 0, err
		}
		var en trailv1.Entry
		if err := proto.Unmarshal(se.Data, &en); err != nil {
			return 0, err
		}
		js, err := protojson.Marshal(en.Event)
		if err != nil {
			return 0, err
		}
		total += int64(len(js))
		n++
	}
	return total * int64(size) / n, nil
}

func dirSize(dir string) int64 {
	var total int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				total += info.Size()
			}
		}
		return nil
	})
	return total
}

func printEngineTable(r engineReport) {
	c := r.Ceilings
	fmt.Printf("machine: %d CPUs, %s, %s\n", r.Machine.CPUs, r.Machine.GoVersion, r.Machine.OS)
	fmt.Printf("ceilings: fsync'd sequential write %.1f MB/s (%.0f fsyncs/s of %d KiB); SHA-256 %.0f MB/s (%.2f M hashes/s of 512 B)\n\n",
		c.FsyncWriteMBps, c.FsyncsPerSec, c.ChunkBytes>>10, c.SHA256MBps, c.SHA256PerSec/1e6)
	fmt.Printf("%-8s %10s %12s %10s %12s %12s %12s %14s\n", "batch", "events", "events/s", "event B", "of fsync", "of sha256", "hot B/event", "CPU s/M event")
	for _, a := range r.Apply {
		fmt.Printf("%-8d %10d %12.0f %10.0f %11.1f%% %11.1f%% %12.0f %14.1f\n", a.Batch, a.Events, a.EventsPerSec, a.EventBytes,
			100*a.OfFsyncCeiling, 100*a.OfSHA256Ceiling, a.HotDiskPerEvent, a.CPUSecPerMEvent)
	}
	fmt.Printf("\n%-10s %9s %9s %28s %28s %10s %8s %8s %8s\n", "log size", "RSS MiB", "heap MiB",
		"inclusion p50/p99/p999 µs", "consistency p50/p99/p999 µs", "proofs/s", "seal s/M", "seg B/ev", "seg/json")
	for _, l := range r.Log {
		fmt.Printf("%-10d %9.1f %9.1f %28s %28s %10.0f %8.2f %8.1f %8.2f\n", l.Events, float64(l.RSSBytes)/(1<<20), float64(l.HeapInUse)/(1<<20),
			fmt.Sprintf("%.0f / %.0f / %.0f", l.Inclusion.P50, l.Inclusion.P99, l.Inclusion.P999),
			fmt.Sprintf("%.0f / %.0f / %.0f", l.Consistency.P50, l.Consistency.P99, l.Consistency.P999),
			l.ProofsPerSec, l.SealSecPerMEvent, l.SegmentPerEvent, l.SegmentOverJSON)
	}
}
