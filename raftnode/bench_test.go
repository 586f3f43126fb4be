package raftnode

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trailaudit/trail/internal/eventgen"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// benchRun numbers benchmark invocations so that event ids never repeat
// across them (a repeat would be deduplicated, not appended).
var benchRun atomic.Uint64

// BenchmarkAppend measures acknowledged appends: 64 producers, one 512-byte
// event per Append call, so throughput comes from group commit. Reported:
// events/s acknowledged, p50/p99 commit latency of one call, and events per
// Raft entry.
func BenchmarkAppend(b *testing.B) {
	for _, tc := range []struct {
		name  string
		nodes int
		via   string // "leader": every call to the leader; "any": round-robin over nodes
	}{
		{"nodes=3/via=leader", 3, "leader"},
		{"nodes=3/via=any", 3, "any"},
		{"nodes=1", 1, "leader"},
	} {
		b.Run(tc.name, func(b *testing.B) { benchAppend(b, tc.nodes, tc.via) })
	}
}

func benchAppend(b *testing.B, nodes int, via string) {
	const producers = 64
	c := newCluster(b, nodes, func(cfg *Config) {
		// Production-like timing: a loaded two-core box must not flap.
		cfg.HeartbeatTimeout = time.Second
		cfg.ElectionTimeout = time.Second
		cfg.LeaderLeaseTimeout = 500 * time.Millisecond
		cfg.CommitTimeout = 20 * time.Millisecond
		cfg.Engine.CacheBytes = 64 << 20
	})
	c.boot()
	l := c.leader(10 * time.Second)
	run := benchRun.Add(1)
	gens := make([]*eventgen.Generator, producers)
	for g := range gens {
		gens[g] = eventgen.New(eventgen.Config{Seed: run<<16 | uint64(g), Tenants: 8, TargetBytes: 512})
	}
	firstIndex := c.nodes[l].raft.LastIndex()
	var next, retries atomic.Int64
	lat := make([][]time.Duration, producers)
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for g := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; ; k++ {
				if next.Add(1) > int64(b.N) {
					return
				}
				ev := gens[g].Next()
				n := c.nodes[l]
				if via == "any" {
					n = c.nodes[(g+k)%nodes]
				}
				t0 := time.Now()
				// A leadership change under load is possible: retry with
				// the same event, as a producer would, and count it.
				for {
					_, err := n.Append(context.Background(), []*trailv1.Event{ev})
					if err == nil {
						break
					}
					if !errors.Is(err, ErrAmbiguous) || retries.Add(1) > 1000 {
						b.Error(err)
						return
					}
				}
				lat[g] = append(lat[g], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	all := slices.Concat(lat...)
	slices.Sort(all)
	if len(all) == 0 {
		return
	}
	entries := c.nodes[l].raft.LastIndex() - firstIndex
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "events/s")
	b.ReportMetric(ms(all[len(all)/2]), "p50-ms")
	b.ReportMetric(ms(all[len(all)*99/100]), "p99-ms")
	b.ReportMetric(float64(len(all))/float64(max(entries, 1)), "events/entry")
	b.ReportMetric(float64(retries.Load()), "retries")
	b.ReportMetric(0, "ns/op") // per-event time is meaningless with 64 producers
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
