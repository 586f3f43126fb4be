package raftnode

import (
	"context"
	"testing"
	"time"

	"github.com/trailaudit/trail/engine"
)

// TestSealer: once the month is over by the leader's clock, the leader
// seals every partition left open in it, on every node, unasked.
func TestSealer(t *testing.T) {
	clock := newFakeClock(time.Date(2026, 11, 30, 23, 0, 0, 0, time.UTC))
	c := newCluster(t, 3, func(cfg *Config) {
		cfg.Clock = clock.now
		cfg.SealInterval = 50 * time.Millisecond
	})
	c.boot()
	l := c.nodes[c.leader(10*time.Second)]
	rs := appendOK(t, l, event("acme", "a1"), event("beta", "b1"))
	parts := []engine.Partition{{Tenant: "acme", Month: rs[0].Partition}, {Tenant: "beta", Month: rs[1].Partition}}
	time.Sleep(200 * time.Millisecond) // several ticks: nothing is due yet
	for _, p := range parts {
		if info, err := l.Engine().PartitionInfo(context.Background(), p); err != nil || info.Sealed {
			t.Fatalf("%s sealed before its month ended: %+v %v", p, info, err)
		}
	}
	clock.set(time.Date(2026, 12, 1, 0, 0, 1, 0, time.UTC))
	for _, n := range c.nodes {
		for _, p := range parts {
			deadline := time.Now().Add(20 * time.Second)
			for {
				info, err := n.Engine().PartitionInfo(context.Background(), p)
				if err == nil && info.Sealed && info.Size == 1 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s: %s not sealed: %+v %v", n.ID(), p, info, err)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
	}
}
