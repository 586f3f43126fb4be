package client_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/trailaudit/trail/client"
	"github.com/trailaudit/trail/internal/testnode"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

var errLostAnswer = status.Error(codes.Unavailable, "test: the answer was lost on the way back")

// TestBatching checks that batches are cut by count, by bytes and by time,
// and that Flush sends a partial batch at once.
func TestBatching(t *testing.T) {
	n := startNode(t)
	tok := key(t, n, trailv1.Role_ROLE_PRODUCER)
	// The byte limit fits three of these events and not four.
	sized := event("batch-bytes", 10)
	sized.TenantId = tenant
	evSize := proto.Size(sized)
	byteLimit := 3*evSize + evSize/2
	for _, tc := range []struct {
		name     string
		cfg      client.Config
		events   int
		flush    bool
		wantFull int // batches of exactly this size before the rest
	}{
		{name: "count", cfg: client.Config{BatchEvents: 10, FlushInterval: time.Hour}, events: 25, flush: true, wantFull: 10},
		{name: "bytes", cfg: client.Config{BatchEvents: 1000, BatchBytes: byteLimit, FlushInterval: time.Hour}, events: 12, flush: true},
		{name: "interval", cfg: client.Config{BatchEvents: 1000, FlushInterval: 20 * time.Millisecond}, events: 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var cs calls
			cfg := tc.cfg
			cfg.Addrs, cfg.Token, cfg.Senders = []string{n.Addr}, tok, 1
			cfg.DialOptions = append(cfg.DialOptions, cs.option())
			c := newClient(t, cfg)
			before := size(t, n)
			var ps []*client.Pending
			for i := range tc.events {
				p, err := c.Append(ctxFor(t), event("batch-"+tc.name, i))
				if err != nil {
					t.Fatal(err)
				}
				ps = append(ps, p)
			}
			if tc.wantFull > 0 {
				full := tc.events / tc.wantFull * tc.wantFull
				waitAll(t, ps[:full]) // sent without a flush: the batches filled
				select {
				case <-ps[full].Done():
					t.Fatalf("event %d of a partial batch was sent before Flush", full)
				case <-time.After(50 * time.Millisecond):
				}
			}
			if tc.flush {
				if err := c.Flush(ctxFor(t)); err != nil {
					t.Fatal(err)
				}
			}
			rs := waitAll(t, ps)
			if got := size(t, n) - before; got != uint64(tc.events) {
				t.Fatalf("log grew by %d entries, want %d", got, tc.events)
			}
			leaves := map[uint64]bool{}
			for _, r := range rs {
				if r.GetDuplicate() || leaves[r.GetLeafIndex()] {
					t.Fatalf("receipt %v is a duplicate", r)
				}
				leaves[r.GetLeafIndex()] = true
			}
			batches, _ := cs.snapshot()
			total := 0
			for i, b := range batches {
				total += b
				switch {
				case tc.wantFull > 0 && i < tc.events/tc.wantFull && b != tc.wantFull:
					t.Errorf("batch %d has %d events, want %d", i, b, tc.wantFull)
				case tc.name == "bytes" && b > 3:
					t.Errorf("batch %d has %d events of about %d bytes, above the %d byte limit", i, b, evSize, byteLimit)
				}
			}
			if total != tc.events {
				t.Errorf("batches %v carry %d events, want %d", batches, total, tc.events)
			}
		})
	}
}

// TestFailover checks that a dead first address costs only a retry: the
// batch is delivered through the next node, and the client stays there.
func TestFailover(t *testing.T) {
	n := startNode(t)
	var cs calls
	dead := deadAddr(t)
	c := newClient(t, client.Config{
		Addrs: []string{dead, n.Addr}, Token: key(t, n, trailv1.Role_ROLE_PRODUCER),
		DialOptions: []grpc.DialOption{cs.option()},
	})
	for i := range 2 {
		r, err := c.AppendWait(ctxFor(t), event("failover", i))
		if err != nil {
			t.Fatal(err)
		}
		if r.GetDuplicate() {
			t.Fatalf("receipt %v marked duplicate", r)
		}
	}
	_, targets := cs.snapshot()
	if len(targets) == 0 || targets[len(targets)-1] != n.Addr {
		t.Fatalf("calls went to %v; the last should be the live node %s", targets, n.Addr)
	}
	if targets[0] != dead {
		t.Fatalf("calls went to %v; the first should be the dead node %s", targets, dead)
	}
	if got := size(t, n); got != 2 {
		t.Fatalf("log has %d entries, want 2", got)
	}
}

// TestRetryKeepsIDs loses the answers of calls that did commit, so the
// client resends the same events: the log holds each once, and the
// receipts of the retries are the originals, marked duplicate.
func TestRetryKeepsIDs(t *testing.T) {
	n := startNode(t)
	cs := calls{fail: func(n int) bool { return n <= 2 }} // the first two answers are lost
	c := newClient(t, client.Config{
		Addrs: []string{n.Addr, n.Addr}, Token: key(t, n, trailv1.Role_ROLE_PRODUCER),
		BatchEvents: 5, FlushInterval: time.Hour, Senders: 1, MinBackoff: time.Millisecond,
		DialOptions: []grpc.DialOption{cs.option()},
	})
	var ps []*client.Pending
	for i := range 5 {
		p, err := c.Append(ctxFor(t), event("retry", i))
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	rs := waitAll(t, ps)
	batches, _ := cs.snapshot()
	if len(batches) != 3 {
		t.Fatalf("%d calls (%v), want 3: two lost answers and the retry", len(batches), batches)
	}
	for i, r := range rs {
		if !r.GetDuplicate() || r.GetEventId() != ps[i].EventID() || r.GetLeafIndex() != uint64(i) {
			t.Errorf("receipt %d = %v, want the original leaf %d marked duplicate", i, r, i)
		}
	}
	if got := size(t, n); got != 5 {
		t.Fatalf("log has %d entries after retries, want 5", got)
	}
	// Appending the same ids again through a new client changes nothing.
	c2 := newClient(t, client.Config{Addrs: []string{n.Addr}, Token: key(t, n, trailv1.Role_ROLE_PRODUCER)})
	r, err := c2.AppendWait(ctxFor(t), event("retry", 3))
	if err != nil {
		t.Fatal(err)
	}
	if !r.GetDuplicate() || r.GetLeafIndex() != 3 {
		t.Fatalf("re-append answered %v, want leaf 3 marked duplicate", r)
	}
	if got := size(t, n); got != 5 {
		t.Fatalf("log has %d entries, want 5", got)
	}
}

// TestRejected checks that events the server refuses for good fail alone:
// an invalid event and one for a tenant the key may not write are
// reported (Pending and OnReject) while the rest of their batch lands.
func TestRejected(t *testing.T) {
	n := startNode(t)
	var mu sync.Mutex
	rejected := map[string]codes.Code{}
	c := newClient(t, client.Config{
		Addrs: []string{n.Addr}, Token: key(t, n, trailv1.Role_ROLE_PRODUCER), BatchEvents: 4, FlushInterval: time.Hour,
		OnReject: func(ev *trailv1.Event, err error) {
			mu.Lock()
			defer mu.Unlock()
			rejected[ev.GetEventId()] = status.Code(err)
		},
	})
	invalid := event("rej", 1)
	invalid.Action = ""
	foreign := event("rej", 2)
	foreign.TenantId = "other"
	evs := []*trailv1.Event{event("rej", 0), invalid, foreign, event("rej", 3)}
	var ps []*client.Pending
	for _, ev := range evs {
		p, err := c.Append(ctxFor(t), ev)
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	want := map[string]codes.Code{"rej-1": codes.InvalidArgument, "rej-2": codes.PermissionDenied}
	for _, p := range ps {
		r, err := p.Wait(ctxFor(t))
		code, bad := want[p.EventID()]
		switch {
		case bad && status.Code(err) != code:
			t.Errorf("%s: got %v, %v; want %v", p.EventID(), r, err, code)
		case !bad && err != nil:
			t.Errorf("%s: %v", p.EventID(), err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(rejected) != 2 || rejected["rej-1"] != codes.InvalidArgument || rejected["rej-2"] != codes.PermissionDenied {
		t.Errorf("OnReject saw %v, want %v", rejected, want)
	}
	if got := size(t, n); got != 2 {
		t.Fatalf("log has %d entries, want the 2 valid events", got)
	}
}

// TestBackpressure fills the buffer while no node answers: Append then
// waits for room and gives up with its context's error, accepting nothing.
func TestBackpressure(t *testing.T) {
	c, err := client.New(client.Config{
		Addrs: []string{deadAddr(t)}, Plaintext: true, Tenant: tenant,
		BufferEvents: 2, MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	var ps []*client.Pending
	for i := range 2 {
		p, err := c.Append(ctxFor(t), event("bp", i))
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := c.Append(ctx, event("bp", 2)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Append into a full buffer: %v, want a deadline error", err)
	}
	cctx, ccancel := context.WithCancel(context.Background())
	ccancel()
	if _, err := c.Append(cctx, event("bp", 3)); !errors.Is(err, context.Canceled) {
		t.Fatalf("Append into a full buffer with a cancelled context: %v, want context.Canceled", err)
	}
	if err := c.Flush(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Flush with no node up: %v, want a deadline error", err)
	}
	if err := c.Close(cctx); err == nil {
		t.Fatal("Close with undelivered events and an ended context succeeded")
	}
	for _, p := range ps {
		if _, err := p.Wait(ctxFor(t)); !errors.Is(err, client.ErrClosed) {
			t.Fatalf("undelivered event after Close: %v, want ErrClosed", err)
		}
	}
	if _, err := c.Append(ctxFor(t), event("bp", 4)); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("Append after Close: %v, want ErrClosed", err)
	}
}

// TestConfig checks that a configuration that cannot work is refused.
func TestConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  client.Config
	}{
		{"no addresses", client.Config{Plaintext: true}},
		{"empty address", client.Config{Addrs: []string{""}, Plaintext: true}},
		{"no transport choice", client.Config{Addrs: []string{"127.0.0.1:1"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if c, err := client.New(tc.cfg); err == nil {
				c.Close(context.Background())
				t.Fatal("New accepted the configuration")
			}
		})
	}
	c := newClient(t, client.Config{Addrs: []string{deadAddr(t)}, BatchBytes: 200})
	big := event("big", 0)
	big.Attributes = map[string]string{"blob": string(make([]byte, 300))}
	if _, err := c.Append(ctxFor(t), big); !errors.Is(err, client.ErrTooLarge) {
		t.Fatalf("Append of an event above BatchBytes: %v, want ErrTooLarge", err)
	}
	if _, err := c.Append(ctxFor(t), nil); err == nil {
		t.Fatal("Append(nil) succeeded")
	}
}

// TestAppendFillsDefaults checks the fields Append fills in, and that the
// caller's event is left as it was.
func TestAppendFillsDefaults(t *testing.T) {
	n := startNode(t)
	c := newClient(t, client.Config{Addrs: []string{n.Addr}, Token: key(t, n, trailv1.Role_ROLE_PRODUCER), Source: "billing"})
	ev := event("", 0)
	ev.EventId, ev.OccurredAt = "", nil
	// The producer's request was traced: the event records its trace.
	traceID, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	spanID, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	ctx := trace.ContextWithSpanContext(ctxFor(t), trace.NewSpanContext(trace.SpanContextConfig{TraceID: traceID, SpanID: spanID}))
	r, err := c.AppendWait(ctx, ev)
	if err != nil {
		t.Fatal(err)
	}
	if ev.EventId != "" || ev.TenantId != "" || ev.OccurredAt != nil {
		t.Fatalf("Append modified the caller's event: %v", ev)
	}
	evs, err := n.Events(ctxFor(t), tenant)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 {
		t.Fatalf("%d events, want 1", len(evs))
	}
	got := evs[0]
	if got.GetEventId() != r.GetEventId() || len(got.GetEventId()) < 20 || got.GetSourceService() != "billing" || got.GetOccurredAt() == nil ||
		got.GetTraceId() != traceID.String() {
		t.Fatalf("stored event %v lacks the filled-in fields (receipt %v)", got, r)
	}
}

// TestLeaderLoss stops the leader of a real three-node cluster while a
// producer appends through it. The client fails over to the followers,
// which forward to the new leader; batches whose answers were lost with
// the leader are resent with the same ids, and the log ends up holding
// every accepted event exactly once.
func TestLeaderLoss(t *testing.T) {
	nodes, err := testnode.StartCluster(3)
	if err != nil {
		t.Fatal(err)
	}
	// Cleanups run last first: the survivor the test reads from closes
	// while the third node still gives it a quorum, so its server can
	// append its last access records instead of waiting out commit
	// timeouts.
	for _, n := range slices.Backward(nodes) {
		t.Cleanup(n.Close)
	}
	leader, survivor := nodes[0], nodes[1]
	tok, err := leader.Key(ctxFor(t), trailv1.Role_ROLE_PRODUCER, tenant)
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t, client.Config{
		Addrs: []string{leader.Addr, nodes[1].Addr, nodes[2].Addr}, Token: tok,
		BatchEvents: 20, MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
	})
	const total = 300
	var ps []*client.Pending
	for i := range total {
		if i == total/3 {
			// Stop the leader once some events are acknowledged and
			// others are in flight.
			waitAll(t, ps[:total/6])
			leader.Close()
		}
		p, err := c.Append(ctxFor(t), event("leader-loss", i))
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	rs := waitAll(t, ps)
	var applied uint64
	for _, r := range rs {
		applied = max(applied, r.GetAppliedIndex())
	}
	if err := survivor.Raft.WaitApplied(ctxFor(t), applied); err != nil {
		t.Fatal(err)
	}
	ids := eventIDs(t, survivor)
	if len(ids) != total {
		t.Fatalf("the log holds %d events, want %d", len(ids), total)
	}
	for i := 1; i < len(ids); i++ {
		if ids[i] == ids[i-1] {
			t.Fatalf("event %s is in the log twice", ids[i])
		}
	}
}
