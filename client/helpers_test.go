package client_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/trailaudit/trail/client"
	"github.com/trailaudit/trail/internal/loopback"
	"github.com/trailaudit/trail/internal/testnode"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

const tenant = "acme"

// startNode runs a real single-node Trail for one test.
func startNode(t *testing.T) *testnode.Node {
	t.Helper()
	n, err := testnode.Start(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	return n
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// key creates an API key of role for the test tenant.
func key(t *testing.T, n *testnode.Node, role trailv1.Role) string {
	t.Helper()
	tok, err := n.Key(ctxFor(t), role, tenant)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// deadAddr is an address nothing listens on: connecting is refused.
func deadAddr(t *testing.T) string {
	t.Helper()
	ln, err := loopback.Listen()
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// newClient opens a client and closes it at the end of the test unless
// the test did.
func newClient(t *testing.T, cfg client.Config) *client.Client {
	t.Helper()
	cfg.Plaintext = true
	if cfg.Tenant == "" {
		cfg.Tenant = tenant
	}
	c, err := client.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c.Close(ctx)
	})
	return c
}

// event returns a valid event with id "<prefix>-<i>".
func event(prefix string, i int) *trailv1.Event {
	return &trailv1.Event{
		EventId:    fmt.Sprintf("%s-%d", prefix, i),
		Category:   trailv1.Category_CATEGORY_DATA_ACCESS,
		Action:     "record.view",
		Outcome:    trailv1.Outcome_OUTCOME_SUCCESS,
		Actor:      &trailv1.Actor{Id: "alice", Type: "user"},
		Target:     &trailv1.Target{Type: "record", Id: fmt.Sprint(i)},
		OccurredAt: timestamppb.New(time.Date(2026, 12, 1, 10, 0, i, 0, time.UTC)),
	}
}

// calls counts AppendBatch calls as they leave the client: the size of each
// batch and the node it went to. It observes the real client's traffic;
// nothing is simulated.
type calls struct {
	mu      sync.Mutex
	batches []int
	targets []string
	// fail, when set, is consulted after each call reached the server:
	// true replaces the answer with UNAVAILABLE, as if the response were
	// lost on the way back.
	fail func(n int) bool
}

func (c *calls) option() grpc.DialOption {
	return grpc.WithChainUnaryInterceptor(func(ctx context.Context, method string, req, reply any,
		cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		err := invoker(ctx, method, req, reply, cc, opts...)
		if !strings.HasSuffix(method, "/AppendBatch") {
			return err
		}
		c.mu.Lock()
		c.batches = append(c.batches, len(req.(*trailv1.AppendBatchRequest).GetEvents()))
		c.targets = append(c.targets, cc.Target())
		n := len(c.batches)
		fail := c.fail
		c.mu.Unlock()
		if err == nil && fail != nil && fail(n) {
			return errLostAnswer
		}
		return err
	})
}

func (c *calls) snapshot() ([]int, []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]int(nil), c.batches...), append([]string(nil), c.targets...)
}

// size returns how many entries the test tenant's log holds.
func size(t *testing.T, n *testnode.Node) uint64 {
	t.Helper()
	s, err := n.Size(ctxFor(t), tenant)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// waitAll waits for every receipt and fails on any error.
func waitAll(t *testing.T, ps []*client.Pending) []*trailv1.Receipt {
	t.Helper()
	out := make([]*trailv1.Receipt, len(ps))
	for i, p := range ps {
		r, err := p.Wait(ctxFor(t))
		if err != nil {
			t.Fatalf("event %s: %v", p.EventID(), err)
		}
		out[i] = r
	}
	return out
}
