package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// exposition is what a traild's /metrics holds about its process, among
// the rest, in the text format.
const exposition = `# HELP go_goroutines Number of goroutines that currently exist.
# TYPE go_goroutines gauge
go_goroutines 42
# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.
# TYPE process_cpu_seconds_total counter
process_cpu_seconds_total 12.34
# HELP process_resident_memory_bytes Resident memory size in bytes.
# TYPE process_resident_memory_bytes gauge
process_resident_memory_bytes 1.23456e+08
# HELP trail_raft_index Raft indexes of this node.
# TYPE trail_raft_index gauge
trail_raft_index{kind="applied"} 17
trail_raft_index{kind="commit"} 17
`

// without drops the lines of a metric from exposition.
func without(metric string) string {
	var keep []string
	for line := range strings.SplitSeq(exposition, "\n") {
		if !strings.Contains(line, metric) {
			keep = append(keep, line)
		}
	}
	return strings.Join(keep, "\n")
}

func TestParseProcessMetrics(t *testing.T) {
	for _, tc := range []struct {
		name    string
		text    string
		want    nodeCounters
		wantErr string
	}{
		{"full exposition", exposition, nodeCounters{rssBytes: 123456000, cpuSeconds: 12.34}, ""},
		{"untyped, no comments", "process_resident_memory_bytes 2048\nprocess_cpu_seconds_total 0.5\n",
			nodeCounters{rssBytes: 2048, cpuSeconds: 0.5}, ""},
		{"no resident memory", without(rssMetric), nodeCounters{}, "no " + rssMetric},
		{"no CPU time", without(cpuMetric), nodeCounters{}, "no " + cpuMetric},
		{"empty", "", nodeCounters{}, "no " + rssMetric},
		{"one metric, two series", "process_resident_memory_bytes{a=\"1\"} 1\nprocess_resident_memory_bytes{a=\"2\"} 2\nprocess_cpu_seconds_total 1\n",
			nodeCounters{}, rssMetric + " has 2 series"},
		{"not the text format", "<html>login</html>", nodeCounters{}, "parse exposition"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseProcessMetrics(strings.NewReader(tc.text))
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("error: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
			case got != tc.want:
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestNodeMeterScrapes measures two "nodes" through the real scrape path:
// one whose /metrics answers, with CPU time growing by a second per
// scrape, and one that never answers, which must come out with no
// figures, an error and a report note rather than zeros.
func TestNodeMeterScrapes(t *testing.T) {
	var scrapes atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			http.NotFound(w, r)
			return
		}
		n := scrapes.Add(1)
		fmt.Fprintf(w, "process_resident_memory_bytes %d\nprocess_cpu_seconds_total %d\n", n<<20, n)
	}))
	defer srv.Close()
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()

	readers, err := scrapeReaders(srv.URL+","+down.URL, "", false)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	m := startNodeMeter(ctx, readers, time.Millisecond)
	time.Sleep(20 * time.Millisecond) // some readings in between; nothing below depends on how many
	use := m.stop(ctx)
	if len(use) != 2 {
		t.Fatalf("%d nodes measured: %+v", len(use), use)
	}
	up, gone := use[0], use[1]
	// Scrape k reports k s of CPU and k MiB: the first is the row's start,
	// so CPU counts every scrape after it. A scrape cut short by stop is
	// not a reading, which is why these are bounds.
	n := scrapes.Load()
	if up.Error != "" || up.Warning != "" || up.Readings < 2 {
		t.Errorf("answering node: %+v", up)
	}
	if up.CPUSeconds < 1 || up.CPUSeconds > float64(n-1) || up.PeakRSSBytes < int64(up.CPUSeconds+1)<<20 || up.PeakRSSBytes > n<<20 {
		t.Errorf("answering node: CPU %.0f s, peak %d B after %d scrapes", up.CPUSeconds, up.PeakRSSBytes, n)
	}
	if gone.Error == "" || gone.PeakRSSBytes != 0 || gone.CPUSeconds != 0 {
		t.Errorf("silent node: %+v", gone)
	}
	notes := nodeNotes("row 1", use)
	if len(notes) != 1 || !strings.Contains(notes[0], gone.Node) || !strings.Contains(notes[0], "not measured") {
		t.Errorf("notes: %q", notes)
	}
}

func TestMetricsURL(t *testing.T) {
	for in, want := range map[string]string{
		"h1:7080":                     "http://h1:7080/metrics",
		"http://h1:7080":              "http://h1:7080/metrics",
		"https://h1:7080/":            "https://h1:7080/metrics",
		"http://h1:7080/node/metrics": "http://h1:7080/node/metrics",
	} {
		u, err := metricsURL(in, false)
		if err != nil || u.String() != want {
			t.Errorf("%q: %v, %v; want %s", in, u, err, want)
		}
	}
	if _, err := metricsURL("ftp://h1", false); err == nil {
		t.Error("ftp accepted")
	}
}
