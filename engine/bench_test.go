package engine

import (
	"context"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/trailaudit/trail/internal/eventgen"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// eventPool is a fixed set of realistic ~512-byte events; benchmarks give
// each use a fresh event_id so that every append is a new leaf.
func eventPool(n int) []*trailv1.Event {
	g := eventgen.New(eventgen.Config{Seed: 7, Tenants: 4, TargetBytes: 512})
	pool := make([]*trailv1.Event, n)
	for i := range pool {
		pool[i] = g.Next()
	}
	return pool
}

// BenchmarkApply measures Apply per batch size. With encoded=true the
// batch carries the events' canonical encodings, as the state machine
// passes them from a Raft entry (stamped from templates, so no marshalling
// runs in the benchmark's process); with encoded=false Apply encodes
// decoded events itself.
func BenchmarkApply(b *testing.B) {
	for _, size := range []int{1, 100, 1000} {
		for _, encoded := range []bool{false, true} {
			b.Run(fmt.Sprintf("batch=%d/encoded=%t", size, encoded), func(b *testing.B) { benchApply(b, size, encoded) })
		}
	}
}

func benchApply(b *testing.B, size int, encoded bool) {
	dir := b.TempDir()
	e := openEngine(b, dir)
	pool := eventPool(4096)
	tmpls := templates(b, pool)
	ctx := context.Background()
	var n, index int
	batch := &Batch{}
	var buf []byte
	b.ResetTimer()
	for b.Loop() {
		index++
		batch.Index, batch.Time = uint64(index), nov.Add(time.Duration(index)*time.Millisecond)
		batch.Events, batch.EventBytes, buf = batch.Events[:0], batch.EventBytes[:0], buf[:0]
		for range size {
			id := "bench-" + strconv.Itoa(n)
			if encoded {
				start := len(buf)
				buf = tmpls[n%len(tmpls)].Append(buf, id)
				batch.EventBytes = append(batch.EventBytes, buf[start:len(buf):len(buf)])
			} else {
				ev := pool[n%len(pool)]
				ev.EventId = id
				batch.Events = append(batch.Events, ev)
			}
			n++
		}
		if !encoded {
			batch.EventBytes = nil
		}
		if _, err := e.Apply(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
	if err := e.Sync(); err == nil && n > 10000 {
		b.ReportMetric(float64(dirSize(dir))/float64(n), "disk-B/event")
	}
}

// templates encodes the pool once, for stamping with fresh event ids.
func templates(b *testing.B, pool []*trailv1.Event) []eventgen.Template {
	out := make([]eventgen.Template, len(pool))
	for i, ev := range pool {
		t, err := eventgen.NewTemplate(ev)
		if err != nil {
			b.Fatal(err)
		}
		out[i] = t
	}
	return out
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

// proofBenchSize is the partition size of the proof benchmarks; set
// TRAIL_BENCH_LOG_SIZE=1000000 (or 10000000) for the RESULTS.md runs.
func proofBenchSize() int {
	if s, err := strconv.Atoi(os.Getenv("TRAIL_BENCH_LOG_SIZE")); err == nil && s > 0 {
		return s
	}
	return 1 << 16
}

// loadedEngine appends n events to one tenant's November partition.
func loadedEngine(b *testing.B, n int) (*Engine, Partition) {
	b.Helper()
	e := openEngine(b, b.TempDir())
	pool := eventPool(4096)
	ctx := context.Background()
	batch := &Batch{Events: make([]*trailv1.Event, 1000)}
	for done, index := 0, 1; done < n; index++ {
		k := min(1000, n-done)
		batch.Index, batch.Time, batch.Events = uint64(index), nov, batch.Events[:k]
		for i := range k {
			ev := pool[(done+i)%len(pool)]
			ev.TenantId, ev.EventId = "bench", "p-"+strconv.Itoa(done+i)
			batch.Events[i] = ev
		}
		if _, err := e.Apply(ctx, batch); err != nil {
			b.Fatal(err)
		}
		done += k
	}
	return e, Partition{Tenant: "bench", Month: Month{2026, 11}}
}

func reportPercentiles(b *testing.B, lat []time.Duration) {
	slices.Sort(lat)
	pct := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))].Microseconds()) }
	b.ReportMetric(pct(0.5), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
}

func BenchmarkProofs(b *testing.B) {
	n := proofBenchSize()
	e, p := loadedEngine(b, n)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 1))
	b.Run(fmt.Sprintf("inclusion/size=%d", n), func(b *testing.B) {
		var lat []time.Duration
		for b.Loop() {
			start := time.Now()
			if _, _, err := e.InclusionProof(ctx, p, rng.Uint64N(uint64(n)), 0); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(start))
		}
		reportPercentiles(b, lat)
	})
	b.Run(fmt.Sprintf("consistency/size=%d", n), func(b *testing.B) {
		var lat []time.Duration
		for b.Loop() {
			start := time.Now()
			if _, err := e.ConsistencyProof(ctx, p, 1+rng.Uint64N(uint64(n-1)), 0); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(start))
		}
		reportPercentiles(b, lat)
	})
}

func BenchmarkSeal(b *testing.B) {
	n := proofBenchSize()
	for b.Loop() {
		b.StopTimer()
		e, p := loadedEngine(b, n)
		jsonBytes := jsonSize(b, e, p, n)
		b.StartTimer()
		if err := e.Seal(context.Background(), e.AppliedIndex()+1, p, time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		st, err := os.Stat(mustSegmentPath(b, e.opts.Dir, p))
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(st.Size())/float64(n), "segment-B/event")
		b.ReportMetric(float64(st.Size())/float64(jsonBytes), "segment/json")
		e.Close()
		b.StartTimer()
	}
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N)/float64(n)*1e6, "s/Mevent")
}

// jsonSize is the protojson size of the events of p, sampled.
func jsonSize(b *testing.B, e *Engine, p Partition, n int) int64 {
	var total int64
	step := max(1, n/1000)
	for leaf := 0; leaf < n; leaf += step {
		se, err := e.Entry(context.Background(), p, uint64(leaf))
		if err != nil {
			b.Fatal(err)
		}
		js, err := protojson.Marshal(decodeEntry(b, se.Data).GetEvent())
		if err != nil {
			b.Fatal(err)
		}
		total += int64(len(js))
	}
	return total * int64(step)
}
