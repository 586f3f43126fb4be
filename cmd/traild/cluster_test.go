package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trailaudit/trail/internal/loopback"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// freeAddrs returns n loopback addresses that were free a moment ago; the
// bootstrap peers list needs Raft addresses before the nodes start.
func freeAddrs(t *testing.T, n int) []string {
	t.Helper()
	var out []string
	for range n {
		addr, err := loopback.Addr()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, addr)
	}
	return out
}

// TestThreeNodeCluster forms a cluster the way deploy/compose.yml does:
// node1 bootstraps with all three as peers and creates the log key; the
// others are given that key and join through node1, and learn the cluster
// ID from the cluster. Raft runs over mutual TLS (one self-signed
// certificate serves every node here).
func TestThreeNodeCluster(t *testing.T) {
	tmp := t.TempDir()
	raft := freeAddrs(t, 3)
	peers := fmt.Sprintf("n1=%s,n2=%s,n3=%s", raft[0], raft[1], raft[2])
	dir1 := filepath.Join(tmp, "n1")
	cert, key := selfSigned(t, tmp, "raft")
	args := func(i int, extra ...string) []string {
		a := []string{"--node-id", fmt.Sprintf("n%d", i+1), "--data-dir", filepath.Join(tmp, fmt.Sprintf("n%d", i+1)),
			"--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--raft-bind", raft[i],
			"--raft-tls-cert-file", cert, "--raft-tls-key-file", key, "--raft-tls-ca-file", cert}
		return append(append(a, fastFlags()...), extra...)
	}
	shared := []string{"--log-key-file", filepath.Join(dir1, skeyName), "--log-vkey-file", filepath.Join(dir1, vkeyName)}

	// n2 and n3 start after n1 here: n1 waits only a second for them to
	// say whether they already form a cluster (formation.go).
	n1 := startTraild(t, nil, args(0, "--bootstrap", "--peers", peers, "--cluster-id", "test-cluster", "--bootstrap-probe-timeout", "1s")...)
	n2 := startTraild(t, nil, args(1, append(shared, "--join", raft[0])...)...)
	n3 := startTraild(t, nil, args(2, append(shared, "--join", raft[0])...)...)
	token := n1.waitToken()

	ctx, cancel := context.WithTimeout(withToken(context.Background(), token), 30*time.Second)
	defer cancel()
	// A node that joined knows the admin key once it has caught up with
	// the log: until then it rightly answers that it knows no such key.
	waitFor(t, "n3 to know the admin key", func() bool {
		_, err := trailv1.NewAdminServiceClient(n3.dial()).WhoAmI(ctx, &trailv1.WhoAmIRequest{})
		return err == nil
	})
	// A write through a follower is forwarded to the leader and readable
	// on every node.
	resp, err := trailv1.NewIngestServiceClient(n3.dial()).Append(ctx, &trailv1.AppendRequest{Event: testEvent("evt-c")})
	if err != nil {
		t.Fatalf("append via n3: %v", err)
	}
	for _, p := range []*proc{n1, n2, n3} {
		_, err := trailv1.NewReadServiceClient(p.dial()).GetEvent(ctx, &trailv1.GetEventRequest{
			TenantId: "acme", EventId: "evt-c", MinIndex: resp.GetReceipt().GetAppliedIndex(),
		})
		if err != nil {
			t.Errorf("read on %s: %v", p.addrs.GRPC, err)
		}
	}
	st, err := trailv1.NewAdminServiceClient(n2.dial()).ClusterStatus(ctx, &trailv1.ClusterStatusRequest{})
	if err != nil || len(st.GetNodes()) != 3 {
		t.Fatalf("cluster status: %v, %v", st, err)
	}
	// The joiners learned the cluster ID, finished joining, and showed no
	// admin token.
	for i, p := range []*proc{n2, n3} {
		dir := filepath.Join(tmp, fmt.Sprintf("n%d", i+2))
		waitFor(t, "cluster id learned", func() bool {
			id := readIdentityJSON(t, dir)
			return id["cluster_id"] == "test-cluster" && id["join_pending"] == nil
		})
		if strings.Contains(p.stdout.String(), adminTokenPrefix) {
			t.Errorf("a joining node showed an admin token")
		}
	}

	// A node restarted with another cluster's ID is refused before it
	// starts anything.
	n3.stop()
	code, _, stderr := runSync(t, nil, append([]string{"serve"}, args(2, append(shared, "--cluster-id", "other")...)...)...)
	if code != exitError || !strings.Contains(stderr, `belongs to cluster "test-cluster", not "other"`) {
		t.Errorf("restart with another cluster id: exit %d, stderr %q", code, stderr)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
