package raftnode

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/trailaudit/trail/engine"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// TestPeerRoots asks each node of a three-node cluster for its peers'
// roots: every replica holds the same root at every size, a size beyond
// what a peer holds gets a prompt answer saying so, and a dead peer is
// reported rather than waited for.
func TestPeerRoots(t *testing.T) {
	c := newCluster(t, 3, nil)
	c.boot()
	var evs []*trailv1.Event
	for i := range 300 {
		evs = append(evs, event("acme", fmt.Sprintf("e-%d", i)))
	}
	r := appendOK(t, c.nodes[c.follower()], evs...)
	p := engine.Partition{Tenant: "acme", Month: r[0].Partition}
	c.converge([]string{"acme"})

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, size := range []uint64{1, 255, 256, 300} {
		want, err := c.nodes[0].LocalRoot(ctx, p, size)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range c.nodes {
			peers := n.PeerRoots(ctx, p, size)
			if len(peers) != 2 {
				t.Fatalf("%s: %d peer answers: %+v", n.ID(), len(peers), peers)
			}
			for _, pr := range peers {
				if pr.Err != nil || pr.Root != want || pr.NodeID == n.ID() {
					t.Fatalf("%s asking %s at %d: %+v, want root %s", n.ID(), pr.NodeID, size, pr, want)
				}
			}
		}
	}

	cases := []struct {
		name string
		p    engine.Partition
		size uint64
		want string
	}{
		{"beyond the peer's size", p, 301, "has only 300 entries"},
		{"unknown partition", engine.Partition{Tenant: "ghost", Month: p.Month}, 1, "has only 0 entries"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			for _, pr := range c.nodes[0].PeerRoots(ctx, tc.p, tc.size) {
				if !errors.Is(pr.Err, engine.ErrBadSize) || !strings.Contains(pr.Err.Error(), tc.want) {
					t.Fatalf("%s: %v, want ErrBadSize saying %q", pr.NodeID, pr.Err, tc.want)
				}
			}
			if d := time.Since(start); d > PeerRootWait+3*time.Second {
				t.Fatalf("answer took %s", d)
			}
		})
	}

	// A peer that is down: its answer is an error, the other still counts.
	c.kill(2)
	short, cancel2 := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel2()
	peers := c.nodes[0].PeerRoots(short, p, 300)
	if len(peers) != 2 || peers[0].Err != nil || peers[1].Err == nil || peers[1].NodeID != "n2" {
		t.Fatalf("with n2 down: %+v", peers)
	}
}
