package main

import (
	"context"
	"encoding/hex"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/timestamppb"

	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// collector is an OTLP/gRPC trace receiver: what traild exports to.
type collector struct {
	collectortrace.UnimplementedTraceServiceServer
	mu    sync.Mutex
	spans map[string][]string // trace id -> span names
	svc   []string            // service.name of each resource
}

func (c *collector) Export(_ context.Context, req *collectortrace.ExportTraceServiceRequest) (*collectortrace.ExportTraceServiceResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		for _, a := range rs.GetResource().GetAttributes() {
			if a.GetKey() == "service.name" {
				c.svc = append(c.svc, a.GetValue().GetStringValue())
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, sp := range ss.GetSpans() {
				id := hex.EncodeToString(sp.GetTraceId())
				c.spans[id] = append(c.spans[id], sp.GetName())
			}
		}
	}
	return &collectortrace.ExportTraceServiceResponse{}, nil
}

// TestTracesReachTheCollector: with otel.endpoint set, an append's spans
// go to the collector in the producer's trace, and the last ones are
// flushed when traild stops.
func TestTracesReachTheCollector(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	col := &collector{spans: map[string][]string{}}
	g := grpc.NewServer()
	collectortrace.RegisterTraceServiceServer(g, col)
	go g.Serve(ln)
	defer g.Stop()

	dir := filepath.Join(t.TempDir(), "data")
	p := startTraild(t, nil, append(loopbackFlags(dir), append(fastFlags(),
		"--otel-endpoint", ln.Addr().String(), "--otel-insecure=true", "--otel-sample-percent", "0")...)...)
	token := p.waitToken()
	const traceID = "0af7651916cd43dd8448eb211c80319c"
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ctx = metadata.AppendToOutgoingContext(withToken(ctx, token), "traceparent", "00-"+traceID+"-b7ad6b7169203331-01")
	ev := &trailv1.Event{TenantId: "acme", EventId: "traced-1", Category: trailv1.Category_CATEGORY_AUTHENTICATION, Action: "user.login",
		Outcome: trailv1.Outcome_OUTCOME_SUCCESS, Actor: &trailv1.Actor{Id: "alice"}, OccurredAt: timestamppb.Now(), TraceId: traceID}
	if _, err := trailv1.NewIngestServiceClient(p.dial()).Append(ctx, &trailv1.AppendRequest{Event: ev}); err != nil {
		t.Fatal(err)
	}
	// Sampling at 0% records only traces a caller sampled: this one, not
	// the server's own untraced calls.
	if code := p.stop(); code != 0 {
		t.Fatalf("traild exit %d: %s", code, p.stderr)
	}
	col.mu.Lock()
	defer col.mu.Unlock()
	names := col.spans[traceID]
	for _, want := range []string{"trail.v1.IngestService/Append", "trail.append.commit"} {
		if !slices.Contains(names, want) {
			t.Errorf("span %q not exported in the producer's trace; got %q (all traces: %v)", want, names, col.spans)
		}
	}
	if len(col.spans) != 1 {
		t.Errorf("traces of unsampled calls exported: %v", col.spans)
	}
	if !slices.Contains(col.svc, "traild") {
		t.Errorf("service.name %q", col.svc)
	}
}

func TestOTelSettingsAreChecked(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	for _, tc := range []struct{ flags []string }{
		{[]string{"--otel-endpoint", "collector"}},
		{[]string{"--otel-sample-percent", "101"}},
	} {
		code, _, stderr := runSync(t, nil, append(append(loopbackFlags(dir), fastFlags()...), tc.flags...)...)
		if code == 0 {
			t.Errorf("%v accepted", tc.flags)
		}
		if !strings.Contains(stderr, "otel.endpoint") && !strings.Contains(stderr, "otel-sample-percent") {
			t.Errorf("%v: stderr %q does not name the setting", tc.flags, stderr)
		}
	}
}
