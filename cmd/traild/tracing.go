package main

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// newTracerProvider returns the OpenTelemetry provider that exports the
// server's spans to c.Endpoint over OTLP/gRPC, or nil when tracing is off.
// Spans are batched in memory and sent in the background: a slow or absent
// collector drops spans, it never slows a request.
func newTracerProvider(ctx context.Context, c OTelConfig, nodeID string) (*sdktrace.TracerProvider, error) {
	if c.Endpoint == "" {
		return nil, nil
	}
	opts := []otlptracegrpc.Option{otlptracegrpc.WithEndpoint(c.Endpoint)}
	if c.Insecure {
		opts = append(opts, otlptracegrpc.WithInsecure())
	}
	exp, err := otlptracegrpc.New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("otel: exporter for %s: %w", c.Endpoint, err)
	}
	res := resource.NewSchemaless(
		attribute.String("service.name", "traild"),
		attribute.String("service.instance.id", nodeID),
	)
	sampler := sdktrace.ParentBased(sdktrace.TraceIDRatioBased(float64(c.SamplePercent) / 100))
	return sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res), sdktrace.WithSampler(sampler)), nil
}
