package server

import (
	"context"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
	"github.com/trailaudit/trail/raftnode"
)

// TestBadInput sends malformed and impossible requests and checks each gets
// the right code.
func TestBadInput(t *testing.T) {
	const maxEvents = 50
	e := newEnv(t, envOptions{
		tune: func(c *Config) {
			c.MaxBatchEvents = maxEvents
			c.MaxBatchBytes = 256 << 10
		},
		tuneNode: func(c *raftnode.Config) { c.Engine.MaxEntryBytes = 128 << 10 },
	})
	admin := e.admin
	seed := e.appendAll(admin, []*trailv1.Event{event("acme", "seed")})[0]
	part := seed.GetPartition()
	conflicting := event("acme", "seed") // same id, other content

	noAction := event("acme", "x1")
	noAction.Action = ""
	hugeAttr := event("acme", "x3")
	hugeAttr.Attributes["blob"] = strings.Repeat("z", 200<<10)
	badTime := event("acme", "x4")
	badTime.OccurredAt = &timestamppb.Timestamp{Seconds: 1, Nanos: -5}

	for _, tc := range []struct {
		name string
		do   func(context.Context) error
		want codes.Code
	}{
		{"event without action", func(ctx context.Context) error {
			_, err := e.ingest.Append(ctx, &trailv1.AppendRequest{Event: noAction})
			return err
		}, codes.InvalidArgument},
		{"no event", func(ctx context.Context) error {
			_, err := e.ingest.Append(ctx, &trailv1.AppendRequest{})
			return err
		}, codes.InvalidArgument},
		{"invalid occurred_at", func(ctx context.Context) error {
			_, err := e.ingest.Append(ctx, &trailv1.AppendRequest{Event: badTime})
			return err
		}, codes.InvalidArgument},
		{"reserved tenant name", func(ctx context.Context) error {
			_, err := e.ingest.Append(ctx, &trailv1.AppendRequest{Event: event("_acme", "x")})
			return err
		}, codes.InvalidArgument},
		{"event_id reused for other content", func(ctx context.Context) error {
			_, err := e.ingest.Append(ctx, &trailv1.AppendRequest{Event: conflicting})
			return err
		}, codes.AlreadyExists},
		{"too many events", func(ctx context.Context) error {
			_, err := e.ingest.AppendBatch(ctx, &trailv1.AppendBatchRequest{Events: events("acme", "many", maxEvents+1)})
			return err
		}, codes.InvalidArgument},
		{"too many bytes", func(ctx context.Context) error {
			evs := events("acme", "fat", 2)
			for _, ev := range evs {
				ev.Attributes["blob"] = strings.Repeat("y", 150<<10)
			}
			_, err := e.ingest.AppendBatch(ctx, &trailv1.AppendBatchRequest{Events: evs})
			return err
		}, codes.InvalidArgument},
		{"message beyond the gRPC limit", func(ctx context.Context) error {
			ev := event("acme", "giant")
			ev.Attributes["blob"] = strings.Repeat("g", 1<<20)
			_, err := e.ingest.Append(ctx, &trailv1.AppendRequest{Event: ev})
			return err
		}, codes.ResourceExhausted},
		{"unknown event", func(ctx context.Context) error {
			_, err := e.read.GetEvent(ctx, &trailv1.GetEventRequest{TenantId: "acme", EventId: "nope"})
			return err
		}, codes.NotFound},
		{"leaf beyond the tree", func(ctx context.Context) error {
			_, err := e.read.GetEvent(ctx, &trailv1.GetEventRequest{TenantId: "acme", Partition: part, LeafIndex: 99})
			return err
		}, codes.NotFound},
		{"event id and leaf both", func(ctx context.Context) error {
			_, err := e.read.GetEvent(ctx, &trailv1.GetEventRequest{TenantId: "acme", EventId: "seed", Partition: part})
			return err
		}, codes.InvalidArgument},
		{"neither event id nor leaf", func(ctx context.Context) error {
			_, err := e.read.GetEvent(ctx, &trailv1.GetEventRequest{TenantId: "acme"})
			return err
		}, codes.InvalidArgument},
		{"missing tenant", func(ctx context.Context) error {
			_, err := e.read.GetEvent(ctx, &trailv1.GetEventRequest{EventId: "seed"})
			return err
		}, codes.InvalidArgument},
		{"malformed partition", func(ctx context.Context) error {
			_, err := e.proofs.GetCheckpoint(ctx, &trailv1.GetCheckpointRequest{TenantId: "acme", Partition: "2026-13"})
			return err
		}, codes.InvalidArgument},
		{"unknown partition", func(ctx context.Context) error {
			_, err := e.proofs.GetCheckpoint(ctx, &trailv1.GetCheckpointRequest{TenantId: "acme", Partition: "2001-01"})
			return err
		}, codes.NotFound},
		{"checkpoint beyond the tree", func(ctx context.Context) error {
			_, err := e.proofs.GetCheckpoint(ctx, &trailv1.GetCheckpointRequest{TenantId: "acme", Partition: part, TreeSize: 5})
			return err
		}, codes.InvalidArgument},
		{"inclusion beyond the tree", func(ctx context.Context) error {
			_, err := e.proofs.GetInclusionProof(ctx, &trailv1.GetInclusionProofRequest{TenantId: "acme", EventId: "seed", TreeSize: 7})
			return err
		}, codes.InvalidArgument},
		{"consistency from zero", func(ctx context.Context) error {
			_, err := e.proofs.GetConsistencyProof(ctx, &trailv1.GetConsistencyProofRequest{TenantId: "acme", Partition: part})
			return err
		}, codes.InvalidArgument},
		{"consistency backwards", func(ctx context.Context) error {
			_, err := e.proofs.GetConsistencyProof(ctx, &trailv1.GetConsistencyProofRequest{TenantId: "acme", Partition: part, FromSize: 1, ToSize: 3})
			return err
		}, codes.InvalidArgument},
		{"search limit too high", func(ctx context.Context) error {
			_, err := e.read.Search(ctx, &trailv1.SearchRequest{TenantId: "acme", Limit: 5000})
			return err
		}, codes.InvalidArgument},
		{"search cursor forged", func(ctx context.Context) error {
			_, err := e.read.Search(ctx, &trailv1.SearchRequest{TenantId: "acme", Cursor: "garbage!"})
			return err
		}, codes.InvalidArgument},
		{"search empty time range", func(ctx context.Context) error {
			now := timestamppb.Now()
			_, err := e.read.Search(ctx, &trailv1.SearchRequest{TenantId: "acme", From: now, To: now})
			return err
		}, codes.InvalidArgument},
		{"tail from a malformed partition", func(ctx context.Context) error {
			st, err := e.read.Tail(ctx, &trailv1.TailRequest{TenantId: "acme", Partition: "26-1"})
			if err != nil {
				return err
			}
			_, err = st.Recv()
			return err
		}, codes.InvalidArgument},
		{"key without role", func(ctx context.Context) error {
			_, err := e.adm.CreateAPIKey(ctx, &trailv1.CreateAPIKeyRequest{Tenants: []string{"acme"}})
			return err
		}, codes.InvalidArgument},
		{"auditor key without tenants", func(ctx context.Context) error {
			_, err := e.adm.CreateAPIKey(ctx, &trailv1.CreateAPIKeyRequest{Role: trailv1.Role_ROLE_AUDITOR})
			return err
		}, codes.InvalidArgument},
		{"admin key with tenants", func(ctx context.Context) error {
			_, err := e.adm.CreateAPIKey(ctx, &trailv1.CreateAPIKeyRequest{Role: trailv1.Role_ROLE_ADMIN, Tenants: []string{"acme"}})
			return err
		}, codes.InvalidArgument},
		{"revoke malformed key id", func(ctx context.Context) error {
			_, err := e.adm.RevokeAPIKey(ctx, &trailv1.RevokeAPIKeyRequest{Id: "../x"})
			return err
		}, codes.InvalidArgument},
		{"remove unknown node", func(ctx context.Context) error {
			_, err := e.adm.TransferLeadership(ctx, &trailv1.TransferLeadershipRequest{Id: "n9"})
			return err
		}, codes.NotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantCode(t, tc.do(e.ctx(admin)), tc.want)
		})
	}

	t.Run("per-event errors in a batch", func(t *testing.T) {
		fresh := event("acme", "fresh")
		resp, err := e.ingest.AppendBatch(e.ctx(admin), &trailv1.AppendBatchRequest{Events: []*trailv1.Event{
			fresh, noAction, conflicting, hugeAttr, event("", "no-tenant"), fresh,
		}})
		if err != nil {
			t.Fatal(err)
		}
		want := []codes.Code{codes.OK, codes.InvalidArgument, codes.AlreadyExists, codes.InvalidArgument, codes.InvalidArgument, codes.OK}
		for i, r := range resp.GetResults() {
			got := codes.OK
			if r.GetError() != nil {
				got = codes.Code(r.GetError().GetCode())
			}
			if got != want[i] {
				t.Errorf("result %d: %v (%v), want %v", i, got, r.GetError().GetMessage(), want[i])
			}
		}
		if r := resp.GetResults(); !r[5].GetReceipt().GetDuplicate() || r[5].GetReceipt().GetLeafIndex() != r[0].GetReceipt().GetLeafIndex() {
			t.Errorf("an event repeated in its batch got %v, first %v", r[5].GetReceipt(), r[0].GetReceipt())
		}
	})

	t.Run("REST status codes", func(t *testing.T) {
		for _, tc := range []struct {
			method, path string
			body         *trailv1.Event
			want         int
		}{
			{"POST", "/api/v1/audit/events", noAction, http.StatusBadRequest},
			{"POST", "/api/v1/audit/events", conflicting, http.StatusConflict},
			{"GET", "/api/v1/audit/events/nope?tenant_id=acme", nil, http.StatusNotFound},
			{"GET", "/api/v1/audit/tenants/acme/partitions/2026-1/checkpoint", nil, http.StatusBadRequest},
			{"GET", "/api/v1/audit/tenants/acme/partitions/" + part + "/checkpoint?tree_size=-1", nil, http.StatusBadRequest},
			{"GET", "/api/v1/audit/search?tenant_id=acme&limit=99999", nil, http.StatusBadRequest},
		} {
			code, body, _ := e.rest(tc.method, tc.path, admin, tc.body)
			if code != tc.want {
				t.Errorf("%s %s: HTTP %d, want %d: %s", tc.method, tc.path, code, tc.want, body)
			}
		}
	})
}

// TestUnavailable: with the cluster gone, calls fail UNAVAILABLE with
// retry advice, and REST adds Retry-After.
func TestUnavailable(t *testing.T) {
	e := newEnv(t, envOptions{})
	if err := e.node.Close(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(e.ctx(e.admin), 10*time.Second)
	defer cancel()
	_, err := e.ingest.Append(ctx, &trailv1.AppendRequest{Event: event("acme", "late")})
	wantCode(t, err, codes.Unavailable)
	if !hasRetryInfo(err) {
		t.Fatalf("no RetryInfo in %v", err)
	}
	code, body, hdr := e.rest("GET", "/api/v1/audit/tenants/acme/partitions", e.admin, nil)
	if code != http.StatusServiceUnavailable || hdr.Get("Retry-After") == "" {
		t.Fatalf("REST: HTTP %d, Retry-After %q: %s", code, hdr.Get("Retry-After"), body)
	}
	if code, _, _ := e.rest("GET", "/readyz", "", nil); code != http.StatusServiceUnavailable {
		t.Fatalf("readyz: HTTP %d with the cluster closed", code)
	}
}

// TestNoLeader: when the cluster loses quorum, appends fail UNAVAILABLE
// with retry advice after CommitTimeout, reads keep working, and the node
// reports not ready.
func TestNoLeader(t *testing.T) {
	e := newEnv(t, envOptions{tune: func(c *Config) { c.CommitTimeout = time.Second }})
	e.appendAll(e.admin, []*trailv1.Event{event("acme", "before")})
	// A second voter that never answers leaves one vote of two: no quorum.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ghost := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	e.node.Join(ctx, "ghost", ghost) // cannot commit; the outcome does not matter
	cancel()
	waitFor(t, 15*time.Second, "leadership to be lost", func() bool { return e.node.Status().LeaderID == "" })

	start := time.Now()
	_, err = e.ingest.Append(e.ctx(e.admin), &trailv1.AppendRequest{Event: event("acme", "after")})
	wantCode(t, err, codes.Unavailable)
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("append took %s to fail", d)
	}
	if !hasRetryInfo(err) {
		t.Fatalf("no RetryInfo in %v", err)
	}
	if _, err := e.read.GetEvent(e.ctx(e.admin), &trailv1.GetEventRequest{TenantId: "acme", EventId: "before"}); err != nil {
		t.Fatalf("read without a leader: %v", err)
	}
	if code, body, _ := e.rest("GET", "/readyz", "", nil); code != http.StatusServiceUnavailable {
		t.Fatalf("readyz without a leader: HTTP %d: %s", code, body)
	}
}

func hasRetryInfo(err error) bool {
	for _, d := range status.Convert(err).Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok && ri.GetRetryDelay().AsDuration() > 0 {
			return true
		}
	}
	return false
}

// behindCluster reports a commit index ahead of what this node applied
// while behind is set, as a restarted node does until it has replayed.
// With leaderless set it knows no leader, as a node cut off by a
// partition.
type behindCluster struct {
	Cluster
	behind, leaderless *atomic.Bool
}

func (b behindCluster) Status() raftnode.Status {
	st := b.Cluster.Status()
	if b.behind.Load() {
		st.CommitIndex = st.RaftApplied + 10
	}
	if b.leaderless.Load() {
		st.LeaderID = ""
	}
	return st
}

// TestReadyWaitsForCatchUp: a node that knows a leader but has not applied
// what it knows to be committed is not ready; once it has caught up it
// stays ready while applying lags a little.
func TestReadyWaitsForCatchUp(t *testing.T) {
	var behind, leaderless atomic.Bool
	behind.Store(true)
	e := newEnv(t, envOptions{tune: func(c *Config) {
		c.Cluster = behindCluster{Cluster: c.Cluster, behind: &behind, leaderless: &leaderless}
	}})
	if code, body, _ := e.rest("GET", "/readyz", "", nil); code != http.StatusServiceUnavailable || !strings.Contains(string(body), "catching up") {
		t.Fatalf("readyz while behind: HTTP %d: %s", code, body)
	}
	behind.Store(false)
	if code, body, _ := e.rest("GET", "/readyz", "", nil); code != http.StatusOK {
		t.Fatalf("readyz caught up: HTTP %d: %s", code, body)
	}
	behind.Store(true)
	if code, body, _ := e.rest("GET", "/readyz", "", nil); code != http.StatusOK {
		t.Fatalf("readyz lagging after catching up once: HTTP %d: %s", code, body)
	}
	// A partition cuts it off; when it heals, the node must catch up again
	// before it is ready (issue 13, item 2).
	leaderless.Store(true)
	if code, body, _ := e.rest("GET", "/readyz", "", nil); code != http.StatusServiceUnavailable {
		t.Fatalf("readyz cut off from the leader: HTTP %d: %s", code, body)
	}
	leaderless.Store(false)
	if code, body, _ := e.rest("GET", "/readyz", "", nil); code != http.StatusServiceUnavailable || !strings.Contains(string(body), "catching up") {
		t.Fatalf("readyz behind after the partition healed: HTTP %d: %s", code, body)
	}
	behind.Store(false)
	if code, body, _ := e.rest("GET", "/readyz", "", nil); code != http.StatusOK {
		t.Fatalf("readyz caught up after the partition: HTTP %d: %s", code, body)
	}
}

// laggingCluster is a node that has applied nothing the leader has: a
// follower replaying after a restart or a healed partition.
type laggingCluster struct{ Cluster }

func (laggingCluster) AppliedIndex() uint64 { return 0 }

func (laggingCluster) WaitApplied(ctx context.Context, _ uint64) error {
	<-ctx.Done()
	return ctx.Err()
}

// TestAppendDoesNotWaitForLocalApply: an append through a node that lags
// is answered as soon as the leader committed it, with the entry's index
// for read-your-writes, instead of waiting for the node to catch up
// (issue 13, item 2).
func TestAppendDoesNotWaitForLocalApply(t *testing.T) {
	e := newEnv(t, envOptions{tune: func(c *Config) { c.Cluster = laggingCluster{c.Cluster} }})
	ctx, cancel := context.WithTimeout(e.ctx(e.admin), 2*time.Second)
	defer cancel()
	start := time.Now()
	resp, err := e.ingest.Append(ctx, &trailv1.AppendRequest{Event: event("acme", "lagging-1")})
	if err != nil {
		t.Fatalf("append through a lagging node: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("append took %s", d)
	}
	// The entry's own index: a read given it as min_index on any node
	// waits until that node holds the event.
	if resp.GetReceipt().GetAppliedIndex() == 0 {
		t.Fatal("receipt without an index to read it at")
	}
}
