package main

import (
	"context"
	"fmt"
	"runtime"
	"time"

	"github.com/trailaudit/trail/bench/ceiling"
)

// rssNote says what the RSS column is, so nobody reads it as one node's.
const rssNoteLocal = "in-process cluster: peak RSS is the whole process (every node plus the load generator), sampled every 100 ms"

const cpuNoteLocal = "CPU is this process's user+system time: every node plus the load generator"

// header is what every networked report starts with.
type header struct {
	Machine   machine          `json:"machine"`
	Ceilings  ceiling.Ceilings `json:"ceilings"`
	Target    string           `json:"target"`
	Notes     []string         `json:"notes,omitempty"`
	StartedAt time.Time        `json:"started_at"`
}

func newHeader() header {
	return header{
		Machine:   machine{runtime.NumCPU(), runtime.Version(), runtime.GOOS + "/" + runtime.GOARCH},
		StartedAt: time.Now().UTC().Truncate(time.Second),
	}
}

// resourceUse is what one measured row cost the machine.
type resourceUse struct {
	PeakRSSBytes int64      `json:"peak_rss_bytes,omitempty"`
	CPUSeconds   float64    `json:"cpu_seconds"`
	LoadAvg      [2]float64 `json:"load_avg_start_end"`
	DiskPerNode  []nodeDisk `json:"disk_per_node,omitempty"`
	DiskPerEvent float64    `json:"disk_bytes_per_event_per_node,omitempty"`
	// AllocatedPerEvent is du's view: preallocated log segments included.
	AllocatedPerEvent float64 `json:"allocated_bytes_per_event_per_node,omitempty"`
	RaftPerEvent      float64 `json:"raft_log_bytes_per_event_per_node,omitempty"`
	EnginePerEvent    float64 `json:"engine_bytes_per_event_per_node,omitempty"`
	CPUSecPerMEvent   float64 `json:"cpu_sec_per_million_events,omitempty"`
	// PerNode is each node's own peak RSS and CPU, when the nodes are
	// processes the bench can measure apart (-traild, -metrics).
	PerNode []nodeUse `json:"per_node,omitempty"`
}

// meter measures a row's process CPU, peak RSS and load average, and
// those of each node it can measure apart (target.startMeter).
type meter struct {
	cpu0  float64
	load0 float64
	rss   *rssPeak
	nodes *nodeMeter
}

func (m *meter) stop(ctx context.Context) resourceUse {
	return resourceUse{CPUSeconds: cpuSeconds() - m.cpu0, PeakRSSBytes: m.rss.Stop(), LoadAvg: [2]float64{m.load0, loadAvg()},
		PerNode: m.nodes.stop(ctx)}
}

// perEvent fills the per-event figures: CPU per measured event, and disk
// per event stored (warm-up included) per node, from the bytes the nodes'
// files hold once closed. Written bytes leave out space preallocated for
// log segments; allocated bytes (du) are reported beside them.
func (r *resourceUse) perEvent(disk []nodeDisk, stored, measured int64) {
	r.CPUSecPerMEvent = perMillion(r.CPUSeconds, measured)
	for i := range r.PerNode {
		n := &r.PerNode[i]
		n.CPUSecPerMEvent = perMillion(n.CPUSeconds, measured)
		for _, d := range disk {
			if d.Node == n.Node && stored > 0 {
				n.DiskPerEvent = float64(d.Raft.Written+d.Engine.Written) / float64(stored)
			}
		}
	}
	r.DiskPerNode = disk
	if stored <= 0 || len(disk) == 0 {
		return
	}
	var raft, eng diskUse
	for _, d := range disk {
		raft.add(d.Raft)
		eng.add(d.Engine)
	}
	n := float64(stored) * float64(len(disk))
	r.RaftPerEvent, r.EnginePerEvent = float64(raft.Written)/n, float64(eng.Written)/n
	r.DiskPerEvent = r.RaftPerEvent + r.EnginePerEvent
	r.AllocatedPerEvent = float64(raft.Allocated+eng.Allocated) / n
}

func printHeader(h header) {
	c := h.Ceilings
	fmt.Printf("machine: %d CPUs, %s, %s; target: %s; started %s\n", h.Machine.CPUs, h.Machine.GoVersion, h.Machine.OS,
		h.Target, h.StartedAt.Format(time.RFC3339))
	fmt.Printf("ceilings: fsync'd sequential write %.1f MB/s (%.0f fsyncs/s of %d KiB); SHA-256 %.0f MB/s (%.2f M hashes/s of 512 B)\n",
		c.FsyncWriteMBps, c.FsyncsPerSec, c.ChunkBytes>>10, c.SHA256MBps, c.SHA256PerSec/1e6)
	for _, n := range h.Notes {
		fmt.Println("note:", n)
	}
	fmt.Println()
}

// fmtLatency prints p50/p90/p99/p99.9 in milliseconds.
func fmtLatency(p percentiles) string {
	return fmt.Sprintf("%s/%s/%s/%s", fmtMs(p.P50), fmtMs(p.P90), fmtMs(p.P99), fmtMs(p.P999))
}

// fmtMs prints a latency in microseconds as milliseconds with about two
// significant digits.
func fmtMs(us float64) string {
	ms := us / 1000
	switch {
	case ms < 1:
		return fmt.Sprintf("%.2f", ms)
	case ms < 100:
		return fmt.Sprintf("%.1f", ms)
	}
	return fmt.Sprintf("%.0f", ms)
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// runScenario parses a networked scenario's flags, runs it, and prints its
// report as a table or, with -json, as JSON.
func runScenario[C, R any](args []string, parse func([]string) (C, error), flags func(C) runFlags,
	bench func(context.Context, C) (R, error), print func(R)) error {
	c, err := parse(args)
	if err != nil {
		return err
	}
	rep, err := bench(context.Background(), c)
	if err != nil {
		return err
	}
	if flags(c).asJSON {
		return printJSON(rep)
	}
	print(rep)
	return nil
}

// prepare makes the run's work directory and measures the machine's
// ceilings in it, into h, before any load: the ceilings are what the
// results are read against. The caller runs cleanup when done.
func prepare(f runFlags, h *header) (root string, cleanup func(), err error) {
	root, cleanup, err = workDir(f.dir)
	if err != nil {
		return "", nil, err
	}
	if h.Ceilings, err = ceiling.Measure(root, 1<<20, f.ceilingTime); err != nil {
		cleanup()
		return "", nil, err
	}
	return root, cleanup, nil
}
