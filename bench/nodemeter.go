package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// nodeCounters are one reading of a node's resource counters.
type nodeCounters struct {
	// rssBytes is the resident set: the current value when scraped, the
	// kernel's high-water mark when read from /proc.
	rssBytes int64
	// cpuSeconds is the user+system time the node's process has used
	// since it started.
	cpuSeconds float64
}

// nodeReader reads one node's counters: from its process (traild started
// by the bench) or from its /metrics (a remote node).
type nodeReader interface {
	name() string
	read(ctx context.Context) (nodeCounters, error)
}

// peakResetter is a nodeReader whose peak RSS is kept by the kernel, so
// that it must be reset at the start of a row to cover that row alone.
type peakResetter interface {
	resetPeak() error
}

// nodeSampleEvery is how often a node is read during a row: often enough
// that a scraped RSS peak is not far below the real one, rarely enough
// that scraping costs the node nothing measurable.
const nodeSampleEvery = 200 * time.Millisecond

// nodeReadTimeout bounds one reading, so that a node that stopped
// answering is reported instead of holding the row.
const nodeReadTimeout = 2 * time.Second

// nodeUse is what one measured row cost one node.
type nodeUse struct {
	Node         string  `json:"node"`
	PeakRSSBytes int64   `json:"peak_rss_bytes"`
	CPUSeconds   float64 `json:"cpu_seconds"`
	// CPUSecPerMEvent is per million events acknowledged in the row
	// (append, mixed); CPUSecPerMProof per million proofs (prove).
	CPUSecPerMEvent float64 `json:"cpu_sec_per_m_event,omitempty"`
	CPUSecPerMProof float64 `json:"cpu_sec_per_m_proof,omitempty"`
	// DiskPerEvent is what this node's files hold per event stored,
	// preallocated space left out (local clusters only).
	DiskPerEvent float64 `json:"disk_bytes_per_event,omitempty"`
	Readings     int     `json:"readings"`
	// Error says why the node has no figures; they are all zero then.
	Error string `json:"error,omitempty"`
	// Warning says why the figures are less than they claim to be.
	Warning string `json:"warning,omitempty"`
}

// nodeMeter follows every node of a target through one measured row.
type nodeMeter struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	tracks []*nodeTrack
}

// nodeTrack is what the meter knows of one node; one goroutine owns it
// until the meter stops.
type nodeTrack struct {
	r        nodeReader
	base     nodeCounters
	baseErr  error
	resetErr error
	peak     int64
	readings int
	failed   int
	firstErr error
}

// startNodeMeter takes each node's starting reading now, so that the row's
// CPU is counted from here, then reads every node every interval until
// stop.
func startNodeMeter(ctx context.Context, readers []nodeReader, every time.Duration) *nodeMeter {
	ctx, cancel := context.WithCancel(ctx)
	m := &nodeMeter{cancel: cancel}
	for _, r := range readers {
		t := &nodeTrack{r: r}
		t.begin(ctx)
		m.tracks = append(m.tracks, t)
	}
	for _, t := range m.tracks {
		m.wg.Go(func() { t.follow(ctx, every) })
	}
	return m
}

// stop ends the readings, takes each node's last one and returns what
// every node used; nil when the target has no node readers.
func (m *nodeMeter) stop(ctx context.Context) []nodeUse {
	m.cancel()
	m.wg.Wait()
	var out []nodeUse
	for _, t := range m.tracks {
		out = append(out, t.finish(ctx))
	}
	return out
}

func (t *nodeTrack) begin(ctx context.Context) {
	if p, ok := t.r.(peakResetter); ok {
		t.resetErr = p.resetPeak()
	}
	t.base, t.baseErr = t.readOnce(ctx)
	if t.baseErr == nil {
		t.peak = t.base.rssBytes
	}
}

func (t *nodeTrack) follow(ctx context.Context, every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if c, err := t.readOnce(ctx); err == nil {
				t.peak = max(t.peak, c.rssBytes)
			}
		}
	}
}

// readOnce reads the node and counts the outcome; a reading cut short by
// stop is neither a reading nor the node's failure.
func (t *nodeTrack) readOnce(ctx context.Context) (nodeCounters, error) {
	rctx, cancel := context.WithTimeout(ctx, nodeReadTimeout)
	defer cancel()
	c, err := t.r.read(rctx)
	if err != nil && ctx.Err() != nil {
		return c, err
	}
	t.readings++
	if err != nil {
		t.failed++
		if t.firstErr == nil {
			t.firstErr = err
		}
	}
	return c, err
}

// finish takes the last reading and turns the track into figures, or into
// an error: a node read at only one end of the row has no CPU delta, and
// numbers are never made up for it.
func (t *nodeTrack) finish(ctx context.Context) nodeUse {
	u := nodeUse{Node: t.r.name()}
	end, endErr := t.readOnce(ctx)
	u.Readings = t.readings
	switch {
	case t.baseErr != nil:
		u.Error = fmt.Sprintf("no reading at the start of the row: %v", t.baseErr)
		return u
	case endErr != nil:
		u.Error = fmt.Sprintf("no reading at the end of the row: %v", endErr)
		return u
	case end.cpuSeconds < t.base.cpuSeconds:
		u.Error = fmt.Sprintf("CPU time went from %.2f s to %.2f s: the process restarted during the row", t.base.cpuSeconds, end.cpuSeconds)
		return u
	}
	u.PeakRSSBytes = max(t.peak, end.rssBytes)
	u.CPUSeconds = end.cpuSeconds - t.base.cpuSeconds
	var warn []error
	if t.resetErr != nil {
		warn = append(warn, fmt.Errorf("the peak RSS could not be reset, so it covers the process's whole life: %w", t.resetErr))
	}
	if t.failed > 0 {
		warn = append(warn, fmt.Errorf("%d of %d readings failed, the peak is of the others; first: %w", t.failed, t.readings, t.firstErr))
	}
	if err := errors.Join(warn...); err != nil {
		u.Warning = oneLine(err)
	}
	return u
}

// oneLine joins a joined error's lines for a report note.
func oneLine(err error) string { return strings.ReplaceAll(err.Error(), "\n", "; ") }

// perMillion is seconds per million of n, 0 when there were none.
func perMillion(seconds float64, n int64) float64 {
	if n <= 0 {
		return 0
	}
	return seconds / float64(n) * 1e6
}

// nodeNotes are the report notes for the nodes of one row that have no
// figures or partial ones: the reader must not take a blank for a zero.
func nodeNotes(row string, nodes []nodeUse) []string {
	var out []string
	for _, n := range nodes {
		if n.Error != "" {
			out = append(out, fmt.Sprintf("%s, node %s: not measured: %s", row, n.Node, n.Error))
		}
		if n.Warning != "" {
			out = append(out, fmt.Sprintf("%s, node %s: %s", row, n.Node, n.Warning))
		}
	}
	return out
}

// nodeRows are the per-node figures of a report's rows, each with the
// label that tells the rows apart.
type nodeRows struct {
	labels []string
	nodes  [][]nodeUse
}

func (r *nodeRows) add(label string, nodes []nodeUse) {
	r.labels = append(r.labels, label)
	r.nodes = append(r.nodes, nodes)
}

// notes are nodeNotes of every row.
func (r *nodeRows) notes() []string {
	var out []string
	for i, l := range r.labels {
		out = append(out, nodeNotes(l, r.nodes[i])...)
	}
	return out
}

// print prints the per-node sub-table; per says what CPU s/M counts. It
// prints nothing when no row measured its nodes.
func (r *nodeRows) print(per string) {
	measured, withDisk := false, false
	for _, ns := range r.nodes {
		measured = measured || len(ns) > 0
		for _, n := range ns {
			withDisk = withDisk || n.DiskPerEvent > 0
		}
	}
	if !measured {
		return
	}
	caption := "CPU s/M: per million " + per
	if withDisk {
		caption += "; disk B: what the node's files hold per event stored, preallocated space left out"
	}
	fmt.Printf("\nper node (%s):\n", caption)
	fmt.Printf("%-24s %-24s %12s %9s %9s %8s\n", "row", "node", "peak RSS MiB", "CPU s", "CPU s/M", "disk B")
	for i, ns := range r.nodes {
		for _, n := range ns {
			disk := "-"
			if n.DiskPerEvent > 0 {
				disk = fmt.Sprintf("%.0f", n.DiskPerEvent)
			}
			if n.Error != "" {
				fmt.Printf("%-24s %-24s %12s %9s %9s %8s   not measured, see the notes\n", r.labels[i], n.Node, "-", "-", "-", disk)
				continue
			}
			fmt.Printf("%-24s %-24s %12.0f %9.2f %9.1f %8s\n", r.labels[i], n.Node, mib(n.PeakRSSBytes),
				n.CPUSeconds, n.CPUSecPerMEvent+n.CPUSecPerMProof, disk)
		}
	}
}
