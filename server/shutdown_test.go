package server

import (
	"context"
	"fmt"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// TestShutdownDrainsAppends: appends in flight when Shutdown starts
// complete and are durable; later ones are refused UNAVAILABLE, never
// half-done.
func TestShutdownDrainsAppends(t *testing.T) {
	e := newEnv(t, envOptions{})
	const callers, perCall = 4, 3000
	type outcome struct {
		evs  []*trailv1.Event
		resp *trailv1.AppendBatchResponse
		err  error
	}
	out := make(chan outcome, callers)
	for c := range callers {
		evs := events("acme", fmt.Sprintf("drain-%d", c), perCall)
		go func() {
			ctx, cancel := context.WithTimeout(e.ctx(e.admin), 30*time.Second)
			defer cancel()
			resp, err := e.ingest.AppendBatch(ctx, &trailv1.AppendBatchRequest{Events: evs})
			out <- outcome{evs, resp, err}
		}()
	}
	waitFor(t, 10*time.Second, "an append in flight", func() bool {
		var m dto.Metric
		if err := e.srv.metrics.inFlight.WithLabelValues("/trail.v1.IngestService/AppendBatch").Write(&m); err != nil {
			t.Fatal(err)
		}
		return m.GetGauge().GetValue() > 0
	})
	eng := e.node.Engine()
	if err := e.shutdown(); err != nil {
		t.Fatalf("graceful shutdown: %v", err)
	}
	ok := 0
	for range callers {
		o := <-out
		if o.err != nil {
			if c := status.Code(o.err); c != codes.Unavailable {
				t.Errorf("append refused with %v, want Unavailable", o.err)
			}
			continue
		}
		ok++
		for i, r := range o.resp.GetResults() {
			if r.GetError() != nil {
				t.Fatalf("event %d: %v", i, r.GetError())
			}
		}
		for _, ev := range o.evs {
			if _, _, err := eng.EntryByEventID(context.Background(), "acme", ev.GetEventId()); err != nil {
				t.Fatalf("acknowledged event %s not in the log: %v", ev.GetEventId(), err)
			}
		}
	}
	if ok == 0 {
		t.Fatal("no in-flight append completed")
	}
}
