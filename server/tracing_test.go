package server

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"google.golang.org/grpc/metadata"

	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// A producer's trace continues through the server: the gRPC call's span,
// the commit's, a search's, a proof's and a REST request's all carry the
// trace id the caller sent in traceparent.
func TestTracingContinuesTheCallersTrace(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer tp.Shutdown(t.Context())
	e := newEnv(t, envOptions{tune: func(c *Config) { c.TracerProvider = tp }})

	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	traceparent := "00-" + traceID + "-00f067aa0ba902b7-01"
	ctx := metadata.AppendToOutgoingContext(e.ctx(e.admin), "traceparent", traceparent)
	if _, err := e.ingest.AppendBatch(ctx, &trailv1.AppendBatchRequest{Events: []*trailv1.Event{event("acme", "t-1"), event("acme", "t-2")}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.read.Search(ctx, &trailv1.SearchRequest{TenantId: "acme", Filter: &trailv1.Filter{Query: "category:data_access"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.proofs.GetInclusionProof(ctx, &trailv1.GetInclusionProofRequest{TenantId: "acme", EventId: "t-1"}); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", e.httpBase+"/api/v1/audit/aggregate?tenant_id=acme&group_by=actor", nil)
	req.Header.Set("Authorization", "Bearer "+e.admin)
	req.Header.Set("traceparent", traceparent)
	resp, err := e.http.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("REST aggregate: %v %v", resp, err)
	}
	resp.Body.Close()

	byName := map[string][]string{}
	for _, s := range rec.Ended() {
		byName[s.Name()] = append(byName[s.Name()], s.SpanContext().TraceID().String())
	}
	for _, name := range []string{
		"trail.v1.IngestService/AppendBatch", "trail.append.commit", "trail.v1.ReadService/Search", "trail.search",
		"trail.v1.ProofService/GetInclusionProof", "trail.proof.inclusion", "GET /api/v1/audit/aggregate", "trail.aggregate",
	} {
		ids := byName[name]
		if !slices.Contains(ids, traceID) {
			var names []string
			for n := range byName {
				names = append(names, n)
			}
			t.Errorf("no span %q in the caller's trace (spans: %s)", name, strings.Join(names, ", "))
		}
	}
}

// Without a provider the server installs no stats handler and its spans
// are no-ops.
func TestTracingOffByDefault(t *testing.T) {
	e := newEnv(t, envOptions{})
	if e.srv.tracing() || e.srv.grpcTracing() != nil {
		t.Fatal("tracing on without a provider")
	}
	_, sp := e.srv.tracer.Start(t.Context(), "x")
	if sp.SpanContext().IsValid() {
		t.Error("a real span without a provider")
	}
}
