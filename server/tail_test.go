package server

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// TestTailSlowConsumer runs tails under load: a fast consumer sees every
// entry in order while appends continue unhindered; a consumer that stops
// reading is cut with RESOURCE_EXHAUSTED and resumes from its last leaf.
func TestTailSlowConsumer(t *testing.T) {
	e := newEnv(t, envOptions{tune: func(c *Config) {
		c.TailBuffer = 16
		c.TailStall = 300 * time.Millisecond
	}})
	producer := e.key(trailv1.Role_ROLE_PRODUCER, "acme")
	auditor := e.key(trailv1.Role_ROLE_AUDITOR, "acme")
	part := e.appendAll(producer, []*trailv1.Event{event("acme", "first")})[0].GetPartition()
	const batches, perBatch = 15, 100
	const total = 1 + batches*perBatch

	ctx, cancel := context.WithTimeout(e.ctx(auditor), 60*time.Second)
	defer cancel()
	fast, err := e.read.Tail(ctx, &trailv1.TailRequest{TenantId: "acme", Partition: part})
	if err != nil {
		t.Fatal(err)
	}
	// The slow consumer's own connection has the smallest flow-control
	// windows gRPC allows, so that it stalls the server quickly.
	slowConn, err := grpc.NewClient(e.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10))
	if err != nil {
		t.Fatal(err)
	}
	defer slowConn.Close()
	slow, err := trailv1.NewReadServiceClient(slowConn).Tail(ctx, &trailv1.TailRequest{TenantId: "acme", Partition: part})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := slow.Recv(); err != nil {
		t.Fatal(err)
	}

	var wg sync.WaitGroup
	appendErr := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for b := range batches {
			evs := events("acme", fmt.Sprintf("load-%d", b), perBatch)
			for _, ev := range evs {
				ev.Attributes["padding"] = strings.Repeat("p", 3000)
			}
			actx, acancel := context.WithTimeout(e.ctx(producer), 10*time.Second)
			_, err := e.ingest.AppendBatch(actx, &trailv1.AppendBatchRequest{Events: evs})
			acancel()
			if err != nil {
				appendErr <- err
				return
			}
		}
	}()

	for want := uint64(0); want < total; want++ {
		r, err := fast.Recv()
		if err != nil {
			t.Fatalf("fast tail at leaf %d: %v", want, err)
		}
		if got := r.GetEntry().GetLeafIndex(); got != want {
			t.Fatalf("fast tail: leaf %d, want %d", got, want)
		}
	}
	wg.Wait()
	select {
	case err := <-appendErr:
		t.Fatalf("appends stalled or failed while a tail was slow: %v", err)
	default:
	}

	// Without the race detector the appends can all be in before the slow
	// stream has been stalled for TailStall; its cut comes that long after
	// its buffer filled, whatever else happens, so wait for it before
	// reading (reading earlier would make room and avert it).
	waitFor(t, 10*time.Second, "the slow tail to be cut", func() bool {
		return counterValue(t, e.srv.metrics.tailCut) == 1
	})
	// The slow consumer now drains what reached it, then finds it was cut.
	next := uint64(1)
	for {
		r, err := slow.Recv()
		if err != nil {
			wantCode(t, err, codes.ResourceExhausted)
			break
		}
		if r.GetEntry().GetLeafIndex() != next {
			t.Fatalf("slow tail: leaf %d, want %d", r.GetEntry().GetLeafIndex(), next)
		}
		next++
	}
	if next >= total {
		t.Fatalf("slow tail received all %d entries; it was never cut", next)
	}
	if got := counterValue(t, e.srv.metrics.tailCut); got != 1 {
		t.Fatalf("trail_tail_cut_total = %v, want 1", got)
	}

	// Resuming from the last leaf received yields the rest.
	resumed, err := e.read.Tail(ctx, &trailv1.TailRequest{TenantId: "acme", Partition: part, FromLeaf: next})
	if err != nil {
		t.Fatal(err)
	}
	for ; next < total; next++ {
		r, err := resumed.Recv()
		if err != nil || r.GetEntry().GetLeafIndex() != next {
			t.Fatalf("resumed tail: %v, %v; want leaf %d", r, err, next)
		}
	}
}

// TestTailFollowsNewEntries: a tail from the end of the log sees only what
// is appended after it starts, also over REST (newline-delimited JSON), and
// a tail of a tenant with no log yet starts with its first entry.
func TestTailFollowsNewEntries(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.appendAll(e.admin, events("acme", "old", 5))
	ctx, cancel := context.WithTimeout(e.ctx(e.admin), 30*time.Second)
	defer cancel()
	tail, err := e.read.Tail(ctx, &trailv1.TailRequest{TenantId: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	empty, err := e.read.Tail(ctx, &trailv1.TailRequest{TenantId: "newco"})
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(ctx, "GET", e.httpBase+"/api/v1/audit/tenants/acme/tail", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+e.admin)
	restResp := make(chan *http.Response, 1)
	go func() {
		resp, err := e.http.Do(req)
		if err != nil {
			t.Error(err)
			close(restResp)
			return
		}
		restResp <- resp
	}()
	// A tail's start is resolved on the server after the client's call
	// returns; appending before all three have started would race them.
	e.waitTails(3)
	e.appendAll(e.admin, []*trailv1.Event{event("acme", "new-0"), event("newco", "hello")})

	r, err := tail.Recv()
	if err != nil || r.GetEntry().GetEntry().GetEvent().GetEventId() != "new-0" || r.GetEntry().GetLeafIndex() != 5 {
		t.Fatalf("tail from the end: %v, %v", r, err)
	}
	r, err = empty.Recv()
	if err != nil || r.GetEntry().GetEntry().GetEvent().GetEventId() != "hello" || r.GetEntry().GetLeafIndex() != 0 {
		t.Fatalf("tail of a new tenant: %v, %v", r, err)
	}
	resp := <-restResp
	if resp == nil {
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("REST tail: HTTP %d", resp.StatusCode)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	if !sc.Scan() {
		t.Fatalf("REST tail: no line: %v", sc.Err())
	}
	var line struct {
		Result struct {
			Entry struct {
				LeafIndex string `json:"leaf_index"`
				Entry     struct {
					Event struct {
						EventID string `json:"event_id"`
					} `json:"event"`
				} `json:"entry"`
			} `json:"entry"`
		} `json:"result"`
	}
	if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
		t.Fatalf("REST tail line %s: %v", sc.Bytes(), err)
	}
	if line.Result.Entry.Entry.Event.EventID != "new-0" || line.Result.Entry.LeafIndex != "5" {
		t.Fatalf("REST tail line %s", sc.Bytes())
	}
}

// TestTailEndsOnShutdown: open tails do not hold up a graceful shutdown;
// they end UNAVAILABLE so consumers move to another node.
func TestTailEndsOnShutdown(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx, cancel := context.WithTimeout(e.ctx(e.admin), 30*time.Second)
	defer cancel()
	tail, err := e.read.Tail(ctx, &trailv1.TailRequest{TenantId: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	e.waitTails(1)
	stream, err := e.ingest.AppendStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&trailv1.AppendBatchRequest{Events: []*trailv1.Event{event("acme", "s1")}}); err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatal(err)
	}
	if _, err := tail.Recv(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := e.shutdown(); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("shutdown took %s", d)
	}
	_, err = tail.Recv()
	wantCode(t, err, codes.Unavailable)
	_, err = stream.Recv()
	if c := status.Code(err); c != codes.Unavailable {
		t.Fatalf("idle append stream: %v", err)
	}
}

// waitTails waits until n Tail streams are running on the server, their
// start positions resolved.
func (e *env) waitTails(n int) {
	e.t.Helper()
	waitFor(e.t, 10*time.Second, fmt.Sprintf("%d tails", n), func() bool {
		var m dto.Metric
		if err := e.srv.metrics.tailActive.Write(&m); err != nil {
			e.t.Fatal(err)
		}
		return m.GetGauge().GetValue() >= float64(n)
	})
}
