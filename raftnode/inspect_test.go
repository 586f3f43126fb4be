package raftnode

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/trailaudit/trail/engine"
	"github.com/trailaudit/trail/engine/eventwire"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// echoInspector derives one record from every event whose action is
// "flag", and fails on an event whose action is "inspector-fails".
type echoInspector struct{}

func (echoInspector) Inspect(_ context.Context, _ *engine.Engine, evs []*eventwire.Event) ([]*trailv1.Event, error) {
	var out []*trailv1.Event
	for _, ev := range evs {
		switch string(ev.Action) {
		case "inspector-fails":
			return nil, errors.New("inspector down")
		case "flag":
			d := event(string(ev.TenantID), "derived/"+string(ev.EventID))
			d.Action = "derived"
			out = append(out, d)
		case "flag-invalid":
			out = append(out, &trailv1.Event{TenantId: string(ev.TenantID)})
		}
	}
	return out, nil
}

// TestInspectorRecordsJoinTheEntry checks that the leader's inspector
// records are committed in the same Raft entry right after the events
// that caused them, on every node, whichever node took the append, and
// that callers get results for their own events only. An inspector that
// fails or returns an invalid event never fails the producer's append.
func TestInspectorRecordsJoinTheEntry(t *testing.T) {
	c := newCluster(t, 3, func(cfg *Config) { cfg.Inspector = echoInspector{} })
	c.boot()
	f := c.nodes[c.follower()]

	flagged := event("acme", "e1")
	flagged.Action = "flag"
	plain := event("acme", "e2")
	rs := appendOK(t, f, flagged, plain)
	if len(rs) != 2 {
		t.Fatalf("%d receipts for 2 events", len(rs))
	}
	if rs[0].LeafIndex != 0 || rs[1].LeafIndex != 1 {
		t.Fatalf("caller's events at leaves %d, %d; want 0, 1", rs[0].LeafIndex, rs[1].LeafIndex)
	}

	broken := event("acme", "e3")
	broken.Action = "inspector-fails"
	bad := event("acme", "e4")
	bad.Action = "flag-invalid"
	appendOK(t, c.nodes[c.leader(10*time.Second)], broken, bad)

	logs := c.converge([]string{"acme"})
	pos, ok := logs["acme"].ids["derived/e1"]
	if !ok {
		t.Fatal("the inspector's record is not in the log")
	}
	if pos.leaf != 2 {
		t.Fatalf("record at leaf %d; want 2, right after the caller's batch", pos.leaf)
	}
	for id := range logs["acme"].ids {
		if strings.HasPrefix(id, "derived/") && id != "derived/e1" {
			t.Fatalf("unexpected record %s", id)
		}
	}
	if _, ok := logs["acme"].ids["e3"]; !ok {
		t.Fatal("an append whose inspection failed was lost")
	}
}
