package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
	"github.com/trailaudit/trail/raftnode"
)

// Log lines of the formation decision (formation.go, daemon.go).
const (
	logBootstrapped = "raft: bootstrapped a new cluster"
	logDecideNew    = "bootstrapping a new cluster"
	logDecideJoin   = "joining it instead of bootstrapping a second one"
	logSilentPeers  = "some peers did not answer in time"
)

// formationCluster is three traild nodes laid out as deploy/compose.yml
// lays them out: n1 bootstraps with all three as peers, n2 and n3 join
// through n1; Raft runs over mutual TLS; the log key lives outside the
// data directories (Compose keeps it in the secrets volume), so that a
// node's directory can be wiped without losing it.
type formationCluster struct {
	t     *testing.T
	tmp   string
	raft  []string
	peers string
	cert  string
	key   string
	vkey  string // the log's verifier key file
}

func newFormationCluster(t *testing.T) *formationCluster {
	t.Helper()
	c := &formationCluster{t: t, tmp: t.TempDir(), raft: freeAddrs(t, 3)}
	c.peers = fmt.Sprintf("n1=%s,n2=%s,n3=%s", c.raft[0], c.raft[1], c.raft[2])
	c.cert, c.key = selfSigned(t, c.tmp, "raft")
	keys := filepath.Join(c.tmp, "keys")
	if code, _, stderr := runSync(t, nil, "keygen", "--name", "trail", "--out", keys); code != 0 {
		t.Fatalf("keygen: exit %d: %s", code, stderr)
	}
	c.vkey = filepath.Join(keys, vkeyName)
	return c
}

// probe asks node i about its Raft state, as a node about to bootstrap
// does.
func (c *formationCluster) probe(ctx context.Context, i int) (raftnode.PeerInfo, error) {
	var cfg Config
	cfg.Raft.TLS.CertFile, cfg.Raft.TLS.KeyFile, cfg.Raft.TLS.CAFile = c.cert, c.key, c.cert
	t, err := raftTLS(&cfg)
	if err != nil {
		c.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return raftnode.Probe(ctx, c.raft[i], t)
}

func (c *formationCluster) dir(i int) string { return filepath.Join(c.tmp, fmt.Sprintf("n%d", i+1)) }

// args are node i's settings; n1 bootstraps unless extra says otherwise.
func (c *formationCluster) args(i int, extra ...string) []string {
	a := []string{"--node-id", fmt.Sprintf("n%d", i+1), "--data-dir", c.dir(i), "--cluster-id", "test-cluster",
		"--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--raft-bind", c.raft[i],
		"--raft-tls-cert-file", c.cert, "--raft-tls-key-file", c.key, "--raft-tls-ca-file", c.cert,
		"--log-key-file", filepath.Join(c.tmp, "keys", skeyName), "--log-vkey-file", c.vkey}
	if i == 0 {
		a = append(a, "--bootstrap", "--peers", c.peers)
	} else {
		a = append(a, "--join", c.raft[0])
	}
	// info: the formation decision is logged at info level. A short
	// commit timeout bounds the access-audit writes a node still has
	// queued when the test stops its peers before it.
	a = append(append(a, fastFlags()...), "--log-level", "info", "--bootstrap-probe-timeout", "5s", "--api-commit-timeout", "3s")
	return append(a, extra...)
}

// startAll starts nodes together, as `docker-compose up` does, and waits
// until each listens. The test's cleanup stops them together too.
func (c *formationCluster) startAll(args ...[]string) []*proc {
	c.t.Helper()
	procs := make([]*proc, len(args))
	started := make([]chan addrs, len(args))
	for i, a := range args {
		e, stdout, stderr := testEnv(nil)
		started[i] = make(chan addrs, 1)
		e.started = func(ad addrs) { started[i] <- ad }
		ctx, cancel := context.WithCancel(context.Background())
		p := &proc{t: c.t, cancel: cancel, done: make(chan int, 1), stdout: stdout, stderr: stderr}
		go func() { p.done <- run(ctx, e, a) }()
		procs[i] = p
	}
	c.t.Cleanup(func() {
		for _, p := range procs {
			p.cancel()
		}
		for i, p := range procs {
			p.stop()
			if c.t.Failed() {
				c.t.Logf("log of node %d:\n%s", i+1, p.stderr)
			}
		}
	})
	for i, p := range procs {
		select {
		case p.addrs = <-started[i]:
		case code := <-p.done:
			p.done <- code
			c.t.Fatalf("node %d exited with %d before listening: %s", i+1, code, p.stderr)
		case <-time.After(60 * time.Second):
			c.t.Fatalf("node %d did not start: %s", i+1, p.stderr)
		}
	}
	return procs
}

// checkOneCluster checks that every node sees the same leader, and three
// voters n1, n2, n3.
func checkOneCluster(t *testing.T, ctx context.Context, procs ...*proc) {
	t.Helper()
	var leader string
	deadline := time.Now().Add(30 * time.Second)
	for _, p := range procs {
		for {
			st, err := trailv1.NewAdminServiceClient(p.dial()).ClusterStatus(ctx, &trailv1.ClusterStatusRequest{})
			var ids []string
			voters := 0
			for _, n := range st.GetNodes() {
				ids = append(ids, n.GetId())
				if n.GetVoter() {
					voters++
				}
			}
			slices.Sort(ids)
			ok := err == nil && st.GetLeaderId() != "" && (leader == "" || st.GetLeaderId() == leader) &&
				slices.Equal(ids, []string{"n1", "n2", "n3"}) && voters == 3
			if ok {
				leader = st.GetLeaderId()
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: cluster status %v, %v; want voters n1, n2, n3 and leader %q", st.GetNodeId(), st, err, leader)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// TestFreshClusterBootstrapsOnce starts the three nodes of a new cluster
// together: n1 asks n2 and n3, finds them empty (or not up yet) and
// bootstraps; the cluster is bootstrapped exactly once.
func TestFreshClusterBootstrapsOnce(t *testing.T) {
	c := newFormationCluster(t)
	procs := c.startAll(c.args(0), c.args(1), c.args(2))
	token := procs[0].waitToken()
	ctx, cancel := context.WithTimeout(withToken(context.Background(), token), 60*time.Second)
	defer cancel()
	checkOneCluster(t, ctx, procs...)

	if s := procs[0].stderr.String(); !strings.Contains(s, logDecideNew) {
		t.Errorf("n1 did not log its decision to bootstrap:\n%s", s)
	}
	bootstraps, tokens := 0, 0
	for i, p := range procs {
		bootstraps += strings.Count(p.stderr.String(), logBootstrapped)
		tokens += strings.Count(p.stdout.String(), adminTokenPrefix)
		dir := c.dir(i)
		waitFor(t, "formation finished", func() bool {
			id := readIdentityJSON(t, dir)
			return id["cluster_id"] == "test-cluster" && id["join_pending"] == nil &&
				id["bootstrap_pending"] == nil && id["admin_key_pending"] == nil
		})
	}
	if bootstraps != 1 || tokens != 1 {
		t.Errorf("%d bootstraps and %d admin tokens in the cluster, want 1 and 1", bootstraps, tokens)
	}
}

// TestWipedBootstrapNodeRejoins wipes the data directory of the node that
// bootstrapped the cluster and starts it again with the same settings
// (bootstrap with all three peers), as `docker-compose up` does after its
// volume was removed: it must join the existing cluster, not create a
// second one, and serve the data appended before.
func TestWipedBootstrapNodeRejoins(t *testing.T) {
	c := newFormationCluster(t)
	procs := c.startAll(c.args(0), c.args(1), c.args(2))
	n1, n2, n3 := procs[0], procs[1], procs[2]
	token := n1.waitToken()
	ctx, cancel := context.WithTimeout(withToken(context.Background(), token), 120*time.Second)
	defer cancel()
	checkOneCluster(t, ctx, n1, n2, n3)

	before, err := trailv1.NewIngestServiceClient(n2.dial()).Append(ctx, &trailv1.AppendRequest{Event: testEvent("evt-before")})
	if err != nil {
		t.Fatalf("append before the wipe: %v", err)
	}
	// The cluster records its ID when n1 creates the first admin key;
	// wait until the peers that n1 will probe report it, over the probe
	// protocol and mutual TLS.
	for i := 1; i < 3; i++ {
		waitFor(t, "cluster id replicated", func() bool {
			info, err := c.probe(ctx, i)
			return err == nil && info.HasState() && info.ClusterID == "test-cluster"
		})
	}

	n1.stop()
	if err := os.RemoveAll(c.dir(0)); err != nil {
		t.Fatal(err)
	}

	// Told it belongs to another cluster, the fresh node refuses to start:
	// neither a second cluster next to the peers nor a join of theirs.
	code, _, stderr := runSync(t, nil, append([]string{"serve"}, c.args(0, "--cluster-id", "other")...)...)
	if code != exitError || !strings.Contains(stderr, `already belongs to cluster "test-cluster", not "other"`) {
		t.Errorf("fresh n1 of another cluster: exit %d, stderr %q", code, stderr)
	}
	if _, err := os.Stat(c.dir(0)); !os.IsNotExist(err) {
		t.Errorf("the refused start created its data directory: %v", err)
	}
	// A directory prepared by traild init to bootstrap never joins (init
	// may have made up a log key): it refuses too.
	if code, _, stderr := runSync(t, nil, append([]string{"init"}, c.args(0)...)...); code != 0 {
		t.Fatalf("init: exit %d: %s", code, stderr)
	}
	code, _, stderr = runSync(t, nil, append([]string{"serve"}, c.args(0)...)...)
	if code != exitError || !strings.Contains(stderr, "prepared (traild init) to bootstrap") {
		t.Errorf("n1 initialized to bootstrap next to the cluster: exit %d, stderr %q", code, stderr)
	}
	if err := os.RemoveAll(c.dir(0)); err != nil {
		t.Fatal(err)
	}

	// The same settings as before the wipe: n1 rejoins.
	n1 = startTraild(t, nil, c.args(0)...)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("log of the rejoined node 1:\n%s", n1.stderr)
		}
	})
	if s := n1.stderr.String(); !strings.Contains(s, logDecideJoin) || strings.Contains(s, logBootstrapped) {
		t.Fatalf("wiped n1 did not decide to join:\n%s", s)
	}
	waitFor(t, "n1 rejoined", func() bool {
		id := readIdentityJSON(t, c.dir(0))
		return id["cluster_id"] == "test-cluster" && id["join_pending"] == nil && id["bootstrap_pending"] == nil
	})
	checkOneCluster(t, ctx, n1, n2, n3)
	if strings.Contains(n1.stdout.String(), adminTokenPrefix) {
		t.Errorf("the rejoined node showed an admin token")
	}

	// n1 holds what was appended before the wipe, byte for byte, and
	// proves it against a checkpoint signed with the cluster's key.
	got, err := trailv1.NewReadServiceClient(n1.dial()).GetEvent(ctx, &trailv1.GetEventRequest{
		TenantId: "acme", EventId: "evt-before", MinIndex: before.GetReceipt().GetAppliedIndex(),
	})
	if err != nil {
		t.Fatalf("read evt-before on the rejoined n1: %v", err)
	}
	if !bytes.Equal(got.GetReceipt().GetLeafHash(), before.GetReceipt().GetLeafHash()) {
		t.Errorf("n1's leaf hash of evt-before %x, the cluster's %x", got.GetReceipt().GetLeafHash(), before.GetReceipt().GetLeafHash())
	}
	verifyInclusionOn(t, ctx, n1, c.vkey, "evt-before")

	// Writes through n1 reach the others: one cluster, not two.
	after, err := trailv1.NewIngestServiceClient(n1.dial()).Append(ctx, &trailv1.AppendRequest{Event: testEvent("evt-after")})
	if err != nil {
		t.Fatalf("append through the rejoined n1: %v", err)
	}
	if after.GetReceipt().GetLeafIndex() != before.GetReceipt().GetLeafIndex()+1 {
		t.Errorf("evt-after is leaf %d, want %d (right after evt-before)", after.GetReceipt().GetLeafIndex(), before.GetReceipt().GetLeafIndex()+1)
	}
	if _, err := trailv1.NewReadServiceClient(n3.dial()).GetEvent(ctx, &trailv1.GetEventRequest{
		TenantId: "acme", EventId: "evt-after", MinIndex: after.GetReceipt().GetAppliedIndex(),
	}); err != nil {
		t.Errorf("read evt-after on n3: %v", err)
	}
}

// verifyInclusionOn fetches an inclusion proof of event id from p and
// verifies it offline: entry bytes, leaf hash, audit path, and the
// checkpoint's signature with the log's verifier key.
func verifyInclusionOn(t *testing.T, ctx context.Context, p *proc, vkeyFile, id string) {
	t.Helper()
	resp, err := trailv1.NewProofServiceClient(p.dial()).GetInclusionProof(ctx, &trailv1.GetInclusionProofRequest{TenantId: "acme", EventId: id})
	if err != nil {
		t.Fatalf("inclusion proof of %s: %v", id, err)
	}
	vk, err := os.ReadFile(vkeyFile)
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(strings.TrimSpace(string(vk)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := note.Open([]byte(resp.GetCheckpoint().GetSignedNote()), note.VerifierList(v)); err != nil {
		t.Fatalf("checkpoint of %s: %v", id, err)
	}
	leaf := rfc6962.DefaultHasher.HashLeaf(resp.GetEntryBytes())
	if !bytes.Equal(leaf, resp.GetLeafHash()) {
		t.Fatalf("leaf hash of the entry bytes %x, proof says %x", leaf, resp.GetLeafHash())
	}
	cp := resp.GetCheckpoint()
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, resp.GetLeafIndex(), cp.GetTreeSize(), leaf, resp.GetProof(), cp.GetRootHash()); err != nil {
		t.Fatalf("inclusion proof of %s: %v", id, err)
	}
}

// TestBootstrapWithSilentPeers: peers that never answer do not hold up a
// new cluster for longer than bootstrap_probe_timeout.
func TestBootstrapWithSilentPeers(t *testing.T) {
	c := newFormationCluster(t)
	start := time.Now()
	n1 := startTraild(t, nil, c.args(0, "--bootstrap-probe-timeout", "1s")...)
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("start took %v with a 1s probe timeout", took)
	}
	if s := n1.stderr.String(); !strings.Contains(s, logSilentPeers) || strings.Count(s, logBootstrapped) != 1 {
		t.Errorf("n1 did not bootstrap after its peers stayed silent:\n%s", s)
	}
	if id := readIdentityJSON(t, c.dir(0)); id["bootstrap_pending"] != nil {
		t.Errorf("bootstrap still pending: %v", id)
	}
}

// TestEveryNodeBootstraps starts three nodes together that are all
// configured to bootstrap with the same peers (one manifest for every
// node): whether each bootstraps after its probes or some join the first
// one up, they form one cluster.
func TestEveryNodeBootstraps(t *testing.T) {
	c := newFormationCluster(t)
	var args [][]string
	for i := range 3 {
		a := c.args(i, "--bootstrap-probe-timeout", "2s")
		if i > 0 {
			a = slices.DeleteFunc(a, func(s string) bool { return s == "--join" || s == c.raft[0] })
			a = append(a, "--bootstrap", "--peers", c.peers)
		}
		args = append(args, a)
	}
	procs := c.startAll(args...)
	var token string
	waitFor(t, "an admin token", func() bool {
		for _, p := range procs {
			for line := range strings.SplitSeq(p.stdout.String(), "\n") {
				if tok, ok := strings.CutPrefix(line, adminTokenPrefix); ok {
					token = tok
					return true
				}
			}
		}
		return false
	})
	ctx, cancel := context.WithTimeout(withToken(context.Background(), token), 60*time.Second)
	defer cancel()
	checkOneCluster(t, ctx, procs...)
}
