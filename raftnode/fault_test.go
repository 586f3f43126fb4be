package raftnode

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/trailaudit/trail/engine"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// minAcked fails the test if too few appends went through for the run to
// mean anything.
func minAcked(t *testing.T, h *history, n int) {
	t.Helper()
	if got := len(h.acked()); got < n {
		t.Fatalf("only %d appends acknowledged, want at least %d", got, n)
	}
	t.Logf("%d appends acknowledged; failed attempts (retried): %d ambiguous, %d other",
		len(h.acked()), h.ambiguous.Load(), h.failed.Load())
}

// TestCrash kills the leader, or a follower, without any graceful step
// while producers append concurrently (retrying with the same event_id),
// restarts it, and checks that every acknowledged event is on every node
// exactly once, at the position its receipt names, in real-time order,
// with identical roots and verified chains everywhere.
func TestCrash(t *testing.T) {
	for _, victim := range []string{"leader", "follower"} {
		t.Run(victim, func(t *testing.T) {
			c := newCluster(t, 3, nil)
			c.boot()
			tenants := tenantsN(3)
			var h history
			stop := make(chan struct{})
			wg := producers(c, &h, "p", 8, tenants, stop)
			time.Sleep(500 * time.Millisecond)
			i := c.leader(10 * time.Second)
			if victim == "follower" {
				i = c.follower()
			}
			c.kill(i)
			time.Sleep(time.Second)
			c.start(i)
			time.Sleep(500 * time.Millisecond)
			close(stop)
			wg.Wait()
			minAcked(t, &h, 50)
			h.check(t, c.converge(tenants))
		})
	}
}

// TestPartitionLeader cuts the leader off the network. The isolated side
// must not acknowledge anything; the majority elects a new leader and
// goes on; after healing, every node converges.
func TestPartitionLeader(t *testing.T) {
	c := newCluster(t, 3, nil)
	c.boot()
	tenants := tenantsN(2)
	var h history
	stop := make(chan struct{})
	wg := producers(c, &h, "p", 6, tenants, stop)
	time.Sleep(500 * time.Millisecond)

	old := c.leader(10 * time.Second)
	c.net.isolate(c.addrs[old])
	// Taken once every connection is cut: a call begun before that may
	// have reached a quorum and be acknowledged after it, legitimately.
	cut := time.Now()
	// A write sent to the isolated node cannot be acknowledged.
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	if res, err := c.nodes[old].Append(ctx, []*trailv1.Event{event(tenants[0], "minority")}); err == nil {
		t.Fatalf("isolated node acknowledged an append: %+v", res)
	}
	cancel()
	waitFor(t, 10*time.Second, func() bool {
		for i, n := range c.nodes {
			if i != old && n.isLeader() {
				return true
			}
		}
		return false
	})
	time.Sleep(time.Second)
	healed := time.Now()
	c.net.heal()
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()

	for _, o := range h.acked() {
		if o.via == c.ids[old] && o.attempt.After(cut) && o.ret.Before(healed) {
			t.Fatalf("%s acknowledged %s while isolated", o.via, o.id)
		}
	}
	minAcked(t, &h, 50)
	h.check(t, c.converge(tenants))
}

// TestRestartAll loses power on all three nodes at once: both Pebble
// instances of every node (engine, and the Pebble Raft log) run on a
// crashable in-memory FS, which is cloned
// with only its synced data while the cluster is under load. Restarted
// from the clones, the cluster must hold every append acknowledged before
// the crash (the engine's unsynced writes are replayed from the fsync'd
// Raft log, invariant 10).
func TestRestartAll(t *testing.T) {
	c := newCluster(t, 3, func(cfg *Config) { cfg.LogStore = LogStorePebble })
	mems := make([]*vfs.MemFS, 3)
	for i := range mems {
		mems[i] = vfs.NewCrashableMem()
		c.fss[i] = mems[i]
	}
	c.boot()
	tenants := tenantsN(2)
	var h history
	stop := make(chan struct{})
	wg := producers(c, &h, "pre", 8, tenants, stop)
	time.Sleep(time.Second)

	crash := time.Now()
	for i := range mems {
		c.fss[i] = mems[i].CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 0})
	}
	for i := range c.nodes {
		c.kill(i)
	}
	close(stop)
	wg.Wait()
	// An acknowledgment after the crash instant never happened in the
	// world where power went out at crash.
	for _, o := range h.acked() {
		if !o.ret.Before(crash) {
			o.acked = false
		}
	}
	minAcked(t, &h, 50)

	for i := range c.nodes {
		n := c.start(i)
		t.Logf("%s restarted: engine applied index %d (Raft replays the rest)", n.ID(), n.Engine().AppliedIndex())
	}
	stop = make(chan struct{})
	wg = producers(c, &h, "post", 4, tenants, stop)
	time.Sleep(500 * time.Millisecond)
	close(stop)
	wg.Wait()
	h.check(t, c.converge(tenants))
}

// TestWipeRejoin wipes a follower's whole data directory while appends go
// on. With a short log the leader has truncated what the node missed, so
// it catches up by snapshot install, which swaps its engine; a reader
// holding the old engine finishes on it, and the old directory is removed.
func TestWipeRejoin(t *testing.T) {
	c := newCluster(t, 3, func(cfg *Config) {
		cfg.SnapshotThreshold = 64
		cfg.TrailingLogs = 16
		cfg.SnapshotInterval = 100 * time.Millisecond
		cfg.RetiredEngineGrace = 50 * time.Millisecond
		cfg.MaxBatchEvents = 4 // many small entries, so the log moves on
	})
	c.boot()
	tenants := tenantsN(2)
	var h history
	stop := make(chan struct{})
	wg := producers(c, &h, "p", 6, tenants, stop)
	time.Sleep(500 * time.Millisecond)

	f := c.follower()
	c.kill(f)
	if err := os.RemoveAll(c.dirs[f]); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	n := c.start(f)
	old, release := n.AcquireEngine()
	t.Cleanup(release) // if the test fails early; release is idempotent
	oldDir := n.engines.current().dir
	waitFor(t, 30*time.Second, func() bool { return n.engines.current().gen > 1 })
	// The reader's engine is retired but still open for it.
	if _, err := old.Partitions(context.Background(), tenants[0]); err != nil {
		t.Fatalf("read on retired engine: %v", err)
	}
	release()
	waitFor(t, 10*time.Second, func() bool { return !dirExists(oldDir) })

	time.Sleep(500 * time.Millisecond)
	close(stop)
	wg.Wait()
	minAcked(t, &h, 50)
	h.check(t, c.converge(tenants))
	// The restored engine is what reads see.
	if _, err := n.Engine().Partitions(context.Background(), tenants[0]); err != nil {
		t.Fatal(err)
	}
	if n.AppliedIndex() == 0 || n.Engine().AppliedIndex() == 0 {
		t.Fatalf("rejoined node applied %d / engine %d", n.AppliedIndex(), n.Engine().AppliedIndex())
	}
	var _ engine.Options
}

// TestRecoverLostQuorum destroys two of three nodes for good: the survivor
// cannot elect itself, Recover rewrites its membership offline, and it
// comes back as a one-node cluster holding every acknowledged append, takes
// new appends, and brings a fresh node up to identical state.
func TestRecoverLostQuorum(t *testing.T) {
	c := newCluster(t, 3, nil)
	c.boot()
	tenants := tenantsN(2)
	var h history
	stop := make(chan struct{})
	wg := producers(c, &h, "pre", 4, tenants, stop)
	time.Sleep(time.Second)
	// The leader holds every committed entry: it is the copy to recover.
	survivor := c.leader(10 * time.Second)
	close(stop)
	wg.Wait()
	for i := range c.nodes {
		c.kill(i)
	}
	for i := range c.nodes {
		if i != survivor {
			if err := os.RemoveAll(c.dirs[i]); err != nil {
				t.Fatal(err)
			}
		}
	}
	ctx := context.Background()
	self := []Server{{ID: c.ids[survivor], Address: c.addrs[survivor]}}
	for _, tc := range []struct {
		name    string
		cfg     Config
		servers []Server
	}{
		{"no servers", c.config(survivor), nil},
		{"node not among the servers", c.config(survivor), []Server{{ID: "elsewhere", Address: "127.0.0.1:1"}}},
		{"no Raft state", c.config((survivor + 1) % 3), []Server{{ID: c.ids[(survivor+1)%3], Address: "127.0.0.1:1"}}},
	} {
		if err := Recover(ctx, tc.cfg, tc.servers); err == nil {
			t.Errorf("%s: Recover succeeded", tc.name)
		}
	}
	if err := Recover(ctx, c.config(survivor), self); err != nil {
		t.Fatal(err)
	}
	n := c.start(survivor)
	if got := c.leader(10 * time.Second); got != survivor {
		t.Fatalf("leader %d, want the recovered node %d", got, survivor)
	}
	if _, err := n.Append(ctx, []*trailv1.Event{event(tenants[0], "after-recovery")}); err != nil {
		t.Fatalf("append after recovery: %v", err)
	}
	// A fresh node joins and receives the whole state.
	fresh := (survivor + 1) % 3
	c.start(fresh)
	if err := n.Join(ctx, c.ids[fresh], c.addrs[fresh]); err != nil {
		t.Fatal(err)
	}
	minAcked(t, &h, 20)
	h.check(t, c.converge(tenants))
}

// TestForwardToFrozenLeader pauses the leader the way SIGSTOP does: its
// connections stay open and go silent. An append forwarded to it from a
// follower must be re-routed to the leader the others elect, well before
// the caller's deadline, instead of waiting for it (issue 13, item 3).
func TestForwardToFrozenLeader(t *testing.T) {
	c := newCluster(t, 3, nil)
	c.boot()
	old := c.leader(10 * time.Second)
	f := (old + 1) % 3
	// A forward first, so the follower holds a pooled connection to it.
	appendOK(t, c.nodes[f], event("acme", "warm"))
	c.net.freeze(c.addrs[old])
	defer c.net.thaw()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	res, err := c.nodes[f].Append(ctx, []*trailv1.Event{event("acme", "during-freeze")})
	if err != nil || res[0].Err != nil {
		t.Fatalf("append through %s while the leader is frozen: %v %v", c.ids[f], err, res)
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Fatalf("append took %s: it waited for the frozen leader", d)
	}
	if leader, _ := c.nodes[f].Leader(); leader == c.ids[old] {
		t.Fatalf("the frozen node %s is still the leader", leader)
	}
}
