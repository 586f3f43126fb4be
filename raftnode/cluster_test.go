package raftnode

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/trailaudit/trail/engine"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// TestClusterAppend bootstraps three nodes and appends through the leader
// and through both followers: every node ends with identical, verified
// logs; receipts from followers match the leader's view; duplicates return
// the original receipt; invalid events never reach the log.
func TestClusterAppend(t *testing.T) {
	c := newCluster(t, 3, nil)
	c.boot()
	tenants := tenantsN(2)
	l := c.leader(10 * time.Second)
	want := make(map[string]engine.Receipt)
	for i, n := range c.nodes {
		var evs []*trailv1.Event
		for k := range 20 {
			evs = append(evs, event(tenants[k%2], fmt.Sprintf("via%d-%d", i, k)))
		}
		for _, r := range appendOK(t, n, evs...) {
			want[r.EventID] = r
		}
	}

	// A retry of the same events through a follower: original receipts.
	f := (l + 1) % 3
	again := appendOK(t, c.nodes[f], event(tenants[0], "via0-0"), event(tenants[1], "via0-1"))
	for _, r := range again {
		if !r.Duplicate || r.LeafIndex != want[r.EventID].LeafIndex || r.LeafHash != want[r.EventID].LeafHash {
			t.Fatalf("retried %s: got %+v, want duplicate of %+v", r.EventID, r, want[r.EventID])
		}
	}

	// Invalid events are answered locally, valid ones in the same call go on.
	bad := event(tenants[0], "bad")
	bad.Actor = nil
	res, err := c.nodes[f].Append(context.Background(), []*trailv1.Event{bad, event(tenants[0], "good")})
	if err != nil || !errors.Is(res[0].Err, engine.ErrInvalidEvent) || res[1].Err != nil {
		t.Fatalf("mixed append: %v, %+v", err, res)
	}

	logs := c.converge(tenants)
	for id, r := range want {
		if pos := logs[r.Tenant].ids[id]; pos != (position{r.Partition, r.LeafIndex}) {
			t.Fatalf("%s: receipt %v, log %v", id, r, pos)
		}
	}
	if _, ok := logs[tenants[0]].ids["bad"]; ok {
		t.Fatal("invalid event reached the log")
	}

	// Followers serve read-your-writes with WaitApplied.
	idx := c.nodes[c.leader(10*time.Second)].AppliedIndex()
	for _, n := range c.nodes {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := n.WaitApplied(ctx, idx); err != nil {
			t.Fatal(err)
		}
		cancel()
	}
	// The leader's status (retried: under -race an election may intervene).
	waitFor(t, 10*time.Second, func() bool {
		l := c.leader(10 * time.Second)
		st := c.nodes[l].Status()
		return st.State == "Leader" && st.LeaderID == c.ids[l] && len(st.Nodes) == 3 &&
			st.AppliedIndex >= idx && st.CommitIndex >= st.AppliedIndex
	})
}

// TestClusterAdmin covers the control commands and membership through a
// follower: settings, seal (with a controlled clock), prune, leadership
// transfer, remove and re-join.
func TestClusterAdmin(t *testing.T) {
	clock := newFakeClock(time.Date(2026, 11, 30, 23, 0, 0, 0, time.UTC))
	c := newCluster(t, 3, func(cfg *Config) { cfg.Clock = clock.now })
	c.boot()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	f := c.follower()
	fn := c.nodes[f]

	if err := fn.ApplySettings(ctx, []engine.SettingOp{{Key: "k", Value: []byte("v")}}); err != nil {
		t.Fatal(err)
	}
	if err := fn.ApplySettings(ctx, []engine.SettingOp{{Key: ""}}); !errors.Is(err, engine.ErrBadSetting) {
		t.Fatalf("bad setting through follower: %v", err)
	}

	rs := appendOK(t, fn, event("acme", "a1"), event("acme", "a2"), event("acme", "a3"))
	nov := rs[0].Partition
	p := engine.Partition{Tenant: "acme", Month: nov}
	if err := fn.Seal(ctx, p); !errors.Is(err, engine.ErrMonthNotEnded) {
		t.Fatalf("seal before month end: %v", err)
	}
	if n, err := fn.Prune(ctx, p, []uint64{1}); err != nil || n != 1 {
		t.Fatalf("prune: %d, %v", n, err)
	}
	clock.set(time.Date(2026, 12, 1, 0, 0, 1, 0, time.UTC))
	if err := fn.Seal(ctx, p); err != nil {
		t.Fatal(err)
	}
	rs = appendOK(t, fn, event("acme", "d1"))
	if rs[0].Partition == nov {
		t.Fatalf("append after seal landed in %v", nov)
	}
	for _, n := range c.nodes {
		c.waitEvent(n, "acme", "d1")
		v, err := n.Engine().Setting("k")
		if err != nil || string(v) != "v" {
			t.Fatalf("%s: setting: %q, %v", n.ID(), v, err)
		}
		info, err := n.Engine().PartitionInfo(ctx, p)
		if err != nil || !info.Sealed || info.Pruned != 1 {
			t.Fatalf("%s: sealed partition: %+v, %v", n.ID(), info, err)
		}
	}

	// Leadership transfer to a named follower, requested via another node.
	l := c.leader(10 * time.Second)
	to := (l + 1) % 3
	via := (l + 2) % 3
	if err := c.nodes[via].TransferLeadership(ctx, c.ids[to]); err != nil {
		t.Fatal(err)
	}
	if got := c.leader(10 * time.Second); got != to {
		t.Fatalf("leader is %s after transfer to %s", c.ids[got], c.ids[to])
	}
	// Asking again is a request already met, not an error.
	if err := c.nodes[via].TransferLeadership(ctx, c.ids[to]); err != nil {
		t.Fatalf("transfer to the current leader: %v", err)
	}
	if err := c.nodes[via].TransferLeadership(ctx, "n9"); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("transfer to a stranger: %v", err)
	}

	// Remove a follower through another follower, then let it ask to join
	// back through a member.
	l = c.leader(10 * time.Second)
	victim, via := (l+1)%3, (l+2)%3
	if err := c.nodes[via].Remove(ctx, c.ids[victim]); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, func() bool { return len(c.nodes[l].Status().Nodes) == 2 })
	c.kill(victim) // ShutdownOnRemove stopped its Raft; reopen it
	n := c.start(victim)
	if err := n.RequestJoin(ctx, c.addrs[via]); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, func() bool { return len(c.nodes[l].Status().Nodes) == 3 })
	c.converge([]string{"acme"})
}

func waitFor(t testing.TB, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s", timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestDiskFull: when the leader's disk is below its reserve, appends are
// refused before they are proposed (engine.ErrDiskFull, through a
// follower too) and nothing reaches the log; control commands still pass.
func TestDiskFull(t *testing.T) {
	c := newCluster(t, 3, func(cfg *Config) { cfg.Engine.MinFreeBytes = 1 << 62 })
	c.boot()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// The new leader's no-op entry must be in before we measure.
	leader := c.nodes[c.leader(time.Second)]
	if err := leader.raft.Barrier(5 * time.Second).Error(); err != nil {
		t.Fatal(err)
	}
	before := leader.raft.LastIndex()
	for _, n := range c.nodes {
		if _, err := n.Append(ctx, []*trailv1.Event{event("acme", "x")}); !errors.Is(err, engine.ErrDiskFull) {
			t.Fatalf("append via %s on a full disk: %v", n.ID(), err)
		}
	}
	l := c.leader(time.Second)
	if after := c.nodes[l].raft.LastIndex(); after != before {
		t.Fatalf("refused appends reached the log: last index %d -> %d", before, after)
	}
	if err := c.nodes[(l+1)%3].ApplySettings(ctx, []engine.SettingOp{{Key: "k", Value: []byte("v")}}); err != nil {
		t.Fatal(err)
	}
}
