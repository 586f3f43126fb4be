package main

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// progress draws a one-line progress bar on a terminal. It stays silent
// for the first second, so short inputs print nothing, and redraws at most
// five times a second.
type progress struct {
	w       io.Writer
	enabled bool
	total   int64 // input bytes, 0 when unknown (stdin)
	now     func() time.Time
	start   time.Time
	last    time.Time
	width   int // length of the last line drawn, to erase it
}

const (
	progressDelay  = time.Second
	progressPeriod = 200 * time.Millisecond
	progressBar    = 30
)

func newProgress(w io.Writer, enabled bool, total int64, now func() time.Time) *progress {
	return &progress{w: w, enabled: enabled, total: total, now: now, start: now()}
}

// update redraws the bar for events sent and input bytes consumed.
func (p *progress) update(events, consumed int64) {
	if !p.enabled {
		return
	}
	t := p.now()
	if t.Sub(p.start) < progressDelay || t.Sub(p.last) < progressPeriod {
		return
	}
	p.last = t
	line := p.render(events, consumed, t.Sub(p.start))
	pad := max(0, p.width-len(line))
	fmt.Fprintf(p.w, "\r%s%s", line, strings.Repeat(" ", pad))
	p.width = len(line)
}

func (p *progress) render(events, consumed int64, elapsed time.Duration) string {
	rate := float64(events) / elapsed.Seconds()
	if p.total <= 0 {
		return fmt.Sprintf("%d events  %.0f/s", events, rate)
	}
	frac := min(1, float64(consumed)/float64(p.total))
	done := int(frac * progressBar)
	return fmt.Sprintf("[%s%s] %3.0f%%  %d events  %.0f/s",
		strings.Repeat("#", done), strings.Repeat(".", progressBar-done), frac*100, events, rate)
}

// finish erases the bar so the summary line starts clean.
func (p *progress) finish() {
	if p.width > 0 {
		fmt.Fprintf(p.w, "\r%s\r", strings.Repeat(" ", p.width))
		p.width = 0
	}
}
