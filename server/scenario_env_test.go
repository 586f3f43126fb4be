package server

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/trailaudit/trail/compliance"
	"github.com/trailaudit/trail/engine"
	"github.com/trailaudit/trail/raftnode"
)

// scenarioNodes is the size of the cluster the product scenarios run on.
const scenarioNodes = 3

// newScenarioEnv is the running deployment the product scenarios of the
// compliance issue are tested against: three Raft nodes over loopback TCP,
// each with its own Pebble engine and its own gRPC/REST server, all
// holding the one log key. The returned env talks to the first node's
// server, which leads; the followers replicate every append and serve the
// same reads (see scenarioFollower).
func newScenarioEnv(t *testing.T) *env {
	t.Helper()
	return newClusterEnv(t, nil)
}

// newClusterEnv is newScenarioEnv with a hook to adjust every node's
// configuration (a test clock, a prune filter, an event inspector).
func newClusterEnv(t *testing.T, tuneNode func(*raftnode.Config)) *env {
	t.Helper()
	listeners := make([]net.Listener, scenarioNodes)
	servers := make([]raftnode.Server, scenarioNodes)
	for i := range listeners {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		listeners[i] = ln
		servers[i] = raftnode.Server{ID: nodeName(i), Address: ln.Addr().String()}
	}
	nodes := make([]*raftnode.Node, scenarioNodes)
	for i := range nodes {
		cfg := raftnode.Config{
			ID: servers[i].ID, Dir: t.TempDir(), Listener: listeners[i],
			HeartbeatTimeout: 300 * time.Millisecond, ElectionTimeout: 300 * time.Millisecond,
			LeaderLeaseTimeout: 200 * time.Millisecond, CommitTimeout: 5 * time.Millisecond,
			Engine: engine.Options{LogName: testLogName, CacheBytes: 4 << 20},
			Logger: testLogger(),
			// As traild wires it.
			Inspector: compliance.NewDetector(),
		}
		if tuneNode != nil {
			tuneNode(&cfg)
		}
		node, err := raftnode.Open(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { node.Close() })
		nodes[i] = node
	}
	if err := nodes[0].Bootstrap(context.Background(), servers); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "a leader", func() bool { return nodes[0].Status().LeaderID != "" })
	if nodes[0].Status().State != "Leader" {
		// The scenarios read their own writes from the env's node without
		// min_index; make it the leader so they need not.
		if err := nodes[0].TransferLeadership(context.Background(), nodes[0].ID()); err != nil {
			t.Fatalf("transfer leadership to %s: %v", nodes[0].ID(), err)
		}
		waitFor(t, 20*time.Second, "leadership on n1", func() bool { return nodes[0].Status().State == "Leader" })
	}
	signer, verifier, err := generateTestKey()
	if err != nil {
		t.Fatal(err)
	}
	admin, err := Bootstrap(context.Background(), nodes[0], "scenario admin")
	if err != nil {
		t.Fatal(err)
	}
	var first *env
	for i, node := range nodes {
		srv, err := New(Config{Cluster: node, Signer: signer, Sealing: testSealing(t), Logger: testLogger(), Plaintext: true})
		if err != nil {
			t.Fatal(err)
		}
		e := &env{t: t, node: node, srv: srv, admin: admin, verifier: verifier, serveErr: make(chan error, 1)}
		e.listen(nil)
		if i == 0 {
			first = e
		} else {
			first.peers = append(first.peers, e)
		}
	}
	return first
}

func nodeName(i int) string { return "n" + string(rune('1'+i)) }

// scenarioFollower returns an env on a follower of e's cluster, after it
// has applied everything e's node has: what an auditor connected to
// another node sees.
func scenarioFollower(t *testing.T, e *env) *env {
	t.Helper()
	if len(e.peers) == 0 {
		t.Fatal("not a cluster env")
	}
	f := e.peers[0]
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := f.node.WaitApplied(ctx, e.node.AppliedIndex()); err != nil {
		t.Fatalf("follower %s catching up: %v", f.node.ID(), err)
	}
	return f
}
