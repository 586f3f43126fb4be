package main

import (
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// maxLatencyMicros bounds what a histogram records; a call slower than a
// minute is recorded as a minute (it has failed by any standard anyway).
const maxLatencyMicros = 60_000_000

// latencyHist records call latencies in microseconds with three significant
// digits. Each worker owns one and they are merged at the end, so that
// recording takes no lock on the measured path.
type latencyHist struct {
	h *hdrhistogram.Histogram
}

func newLatencyHist() *latencyHist {
	return &latencyHist{h: hdrhistogram.New(1, maxLatencyMicros, 3)}
}

func (l *latencyHist) record(d time.Duration) {
	us := min(max(d.Microseconds(), 1), maxLatencyMicros)
	_ = l.h.RecordValue(us) // in range by construction
}

func (l *latencyHist) merge(o *latencyHist) { l.h.Merge(o.h) }

func (l *latencyHist) count() int64 { return l.h.TotalCount() }

func (l *latencyHist) percentiles() percentiles {
	if l.h.TotalCount() == 0 {
		return percentiles{}
	}
	at := func(q float64) float64 { return float64(l.h.ValueAtQuantile(q)) }
	return percentiles{at(50), at(90), at(99), at(99.9)}
}

func mergeHists(hs []*latencyHist) *latencyHist {
	out := newLatencyHist()
	for _, h := range hs {
		out.merge(h)
	}
	return out
}
