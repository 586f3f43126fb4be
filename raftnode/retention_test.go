package raftnode

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/trailaudit/trail/compliance"
	"github.com/trailaudit/trail/engine"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// The state machine's prune guard and DropSegment on a three-node cluster:
// a prune command naming held leaves prunes none of them on any node, and
// a drop is refused while a held payload remains, then applied everywhere,
// with every replica ending on the same catalog.
func TestRetentionGuardAndDropOnCluster(t *testing.T) {
	clock := newFakeClock(time.Date(2026, 10, 20, 9, 0, 0, 0, time.UTC))
	c := newCluster(t, 3, func(cfg *Config) {
		cfg.Clock = clock.now
		cfg.PruneFilter = compliance.FilterHeld
	})
	c.boot()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var evs []*trailv1.Event
	for i := range 10 {
		ev := event("acme", fmt.Sprint("oct-", i))
		ev.SubjectId = fmt.Sprint("s", i%2) // held: s1, the odd leaves
		evs = append(evs, ev)
	}
	follower := c.nodes[c.follower()]
	appendOK(t, follower, evs...)
	clock.set(time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC))
	oct := engine.Partition{Tenant: "acme", Month: engine.Month{Year: 2026, Month: time.October}}
	if err := follower.Seal(ctx, oct); err != nil {
		t.Fatal(err)
	}
	hold := &trailv1.LegalHold{Id: "h1", TenantId: "acme", SubjectId: "s1", CaseReference: "C-1", Reason: "litigation"}
	retentionStoreHold(ctx, t, follower, hold)

	all := []uint64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}
	if n, err := follower.Prune(ctx, oct, all); err != nil || n != 5 {
		t.Fatalf("prune naming held leaves: %d, %v", n, err)
	}
	c.retentionConverge(ctx, t)
	for _, n := range c.live() {
		for leaf := range uint64(10) {
			se, err := n.Engine().Entry(ctx, oct, leaf)
			if err != nil || se.Pruned != (leaf%2 == 0) {
				t.Fatalf("%s leaf %d: pruned=%v, %v", n.ID(), leaf, se.Pruned, err)
			}
		}
	}
	// Held payloads remain: the drop is refused, through a follower too.
	if err := follower.DropSegment(ctx, oct); err == nil {
		t.Fatal("drop with held payloads accepted")
	}
	leader := c.nodes[c.leader(10*time.Second)]
	if err := leader.DropSegment(ctx, oct); !errors.Is(err, engine.ErrNotDroppable) {
		t.Fatalf("drop on the leader: %v", err)
	}

	retentionStoreHold(ctx, t, follower, compliance.Released(hold, "test", "closed", clock.now()))
	if n, err := follower.Prune(ctx, oct, all); err != nil || n != 5 {
		t.Fatalf("prune after release: %d, %v", n, err)
	}
	if err := follower.DropSegment(ctx, oct); err != nil {
		t.Fatalf("drop: %v", err)
	}
	c.retentionConverge(ctx, t)
	var first engine.PartitionInfo
	for i, n := range c.live() {
		info, err := n.Engine().PartitionInfo(ctx, oct)
		if err != nil || !info.Dropped || info.Pruned != 10 || info.Size != 10 {
			t.Fatalf("%s: %+v, %v", n.ID(), info, err)
		}
		if i == 0 {
			first = info
		} else if info != first {
			t.Fatalf("%s: %+v, %s: %+v", n.ID(), info, c.live()[0].ID(), first)
		}
		if _, err := n.Engine().Entry(ctx, oct, 3); !errors.Is(err, engine.ErrDropped) {
			t.Fatalf("%s: reading a dropped entry: %v", n.ID(), err)
		}
	}
	// Appends go on into November, linked to October's final root.
	r := appendOK(t, follower, event("acme", "nov-0"))[0]
	if r.LeafIndex != 0 || r.Partition != (engine.Month{Year: 2026, Month: time.November}) {
		t.Fatalf("first November receipt %+v", r)
	}
}

// retentionStoreHold stores hold h through n.
func retentionStoreHold(ctx context.Context, t *testing.T, n *Node, h *trailv1.LegalHold) {
	t.Helper()
	ops, err := compliance.HoldOps(h)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.ApplySettings(ctx, ops); err != nil {
		t.Fatal(err)
	}
}

// retentionConverge waits until every live node has applied what the leader
// has.
func (c *cluster) retentionConverge(ctx context.Context, t *testing.T) {
	t.Helper()
	target := c.nodes[c.leader(10*time.Second)].AppliedIndex()
	for _, n := range c.live() {
		if err := n.WaitApplied(ctx, target); err != nil {
			t.Fatalf("%s did not apply %d: %v", n.ID(), target, err)
		}
	}
}
