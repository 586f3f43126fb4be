package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// The process collector's metrics a remote node is measured by.
const (
	rssMetric = "process_resident_memory_bytes"
	cpuMetric = "process_cpu_seconds_total"
)

// scrapeReader reads a remote node's counters from its Prometheus
// /metrics, which is all the bench can see of a process on another host.
type scrapeReader struct {
	node   string // host:port, what the reports call the node
	url    string
	client *http.Client
}

func (s scrapeReader) name() string { return s.node }

func (s scrapeReader) read(ctx context.Context) (nodeCounters, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return nodeCounters{}, fmt.Errorf("bench: scrape %s: %w", s.url, err)
	}
	// The text format: the only one parsed here, whatever the server prefers.
	req.Header.Set("Accept", string(expfmt.NewFormat(expfmt.TypeTextPlain)))
	resp, err := s.client.Do(req)
	if err != nil {
		return nodeCounters{}, fmt.Errorf("bench: scrape %s: %w", s.url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nodeCounters{}, fmt.Errorf("bench: scrape %s: %s", s.url, resp.Status)
	}
	c, err := parseProcessMetrics(resp.Body)
	if err != nil {
		return nodeCounters{}, fmt.Errorf("bench: scrape %s: %w", s.url, err)
	}
	return c, nil
}

// parseProcessMetrics reads the resident memory and CPU time from a
// Prometheus text exposition.
func parseProcessMetrics(r io.Reader) (nodeCounters, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nodeCounters{}, fmt.Errorf("parse exposition: %w", err)
	}
	rss, err := metricValue(fams, rssMetric)
	if err != nil {
		return nodeCounters{}, err
	}
	cpu, err := metricValue(fams, cpuMetric)
	if err != nil {
		return nodeCounters{}, err
	}
	return nodeCounters{rssBytes: int64(rss), cpuSeconds: cpu}, nil
}

// metricValue is the value of an unlabelled gauge, counter or untyped
// metric. A missing one is an error, never a zero: on a platform without
// the process collector the node's figures are unknown, not nil.
func metricValue(fams map[string]*dto.MetricFamily, name string) (float64, error) {
	f, ok := fams[name]
	if !ok || len(f.GetMetric()) == 0 {
		return 0, fmt.Errorf("no %s in the exposition (is the process collector registered?)", name)
	}
	if len(f.GetMetric()) > 1 {
		return 0, fmt.Errorf("%s has %d series, want one", name, len(f.GetMetric()))
	}
	m := f.GetMetric()[0]
	switch f.GetType() {
	case dto.MetricType_GAUGE:
		return m.GetGauge().GetValue(), nil
	case dto.MetricType_COUNTER:
		return m.GetCounter().GetValue(), nil
	case dto.MetricType_UNTYPED:
		return m.GetUntyped().GetValue(), nil
	}
	return 0, fmt.Errorf("%s is a %s, want a gauge or counter", name, f.GetType())
}

// scrapeReaders makes a reader per -metrics address. An address without a
// path means the node's HTTP listener, whose /metrics is taken; without a
// scheme, http, or https when the gRPC connections use TLS.
func scrapeReaders(list, caFile string, useTLS bool) ([]nodeReader, error) {
	if list == "" {
		return nil, nil
	}
	client := &http.Client{}
	if useTLS || caFile != "" {
		cfg, err := tlsConfig(caFile)
		if err != nil {
			return nil, fmt.Errorf("-metrics: %w", err)
		}
		client.Transport = &http.Transport{TLSClientConfig: cfg}
	}
	var out []nodeReader
	for _, a := range strings.Split(list, ",") {
		u, err := metricsURL(strings.TrimSpace(a), useTLS || caFile != "")
		if err != nil {
			return nil, err
		}
		out = append(out, scrapeReader{node: u.Host, url: u.String(), client: client})
	}
	return out, nil
}

func metricsURL(addr string, secure bool) (*url.URL, error) {
	if !strings.Contains(addr, "://") {
		scheme := "http://"
		if secure {
			scheme = "https://"
		}
		addr = scheme + addr
	}
	u, err := url.Parse(addr)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("-metrics: %q: want http(s)://host:port[/path] or host:port", addr)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/metrics"
	}
	return u, nil
}
