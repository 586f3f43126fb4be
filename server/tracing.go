package server

import (
	"context"
	"net/http"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/grpc"
)

// Tracing is OpenTelemetry's, and only when Config.TracerProvider is set:
// a span per gRPC call and per REST request, each continuing the trace the
// caller sent (W3C traceparent), the REST request's carried on into the
// gateway's gRPC call, and spans of their own around the work that takes
// the time (committing appends through Raft, running a search or an
// aggregation, building a proof). Without a provider no stats handler is
// installed at all, so tracing off costs the hot path nothing.
const tracerName = "github.com/trailaudit/trail/server"

// propagator reads and writes W3C trace context only: baggage from
// callers is not carried into the server's spans.
var propagator = propagation.TraceContext{}

func (s *Server) tracing() bool { return s.cfg.TracerProvider != nil }

func (s *Server) newTracer() trace.Tracer {
	if !s.tracing() {
		return noop.NewTracerProvider().Tracer(tracerName)
	}
	return s.cfg.TracerProvider.Tracer(tracerName)
}

func (s *Server) grpcTracing() []grpc.ServerOption {
	if !s.tracing() {
		return nil
	}
	return []grpc.ServerOption{grpc.StatsHandler(otelgrpc.NewServerHandler(
		otelgrpc.WithTracerProvider(s.cfg.TracerProvider), otelgrpc.WithPropagators(propagator)))}
}

func (s *Server) gatewayTracing() []grpc.DialOption {
	if !s.tracing() {
		return nil
	}
	return []grpc.DialOption{grpc.WithStatsHandler(otelgrpc.NewClientHandler(
		otelgrpc.WithTracerProvider(s.cfg.TracerProvider), otelgrpc.WithPropagators(propagator)))}
}

func (s *Server) httpTracing(h http.Handler) http.Handler {
	if !s.tracing() {
		return h
	}
	return otelhttp.NewHandler(h, "trail.http",
		otelhttp.WithTracerProvider(s.cfg.TracerProvider), otelhttp.WithPropagators(propagator),
		// Probes and scrapes come every few seconds and say nothing about
		// a request's path through the log.
		otelhttp.WithFilter(func(r *http.Request) bool {
			switch r.URL.Path {
			case "/healthz", "/readyz", "/metrics":
				return false
			}
			return true
		}),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return r.Method + " " + r.URL.Path }))
}

// span starts a span of the server's own work; end it with its error.
// With tracing off it costs the hot paths (appends, proofs) nothing.
func (s *Server) span(ctx context.Context, name string, attrs ...attribute.KeyValue) (context.Context, func(error)) {
	if !s.tracing() {
		return ctx, endNothing
	}
	ctx, sp := s.tracer.Start(ctx, name, trace.WithAttributes(attrs...))
	return ctx, func(err error) {
		if err != nil {
			sp.RecordError(err)
			sp.SetStatus(codes.Error, err.Error())
		}
		sp.End()
	}
}

func endNothing(error) {}
