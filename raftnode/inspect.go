package raftnode

import (
	"context"
	"fmt"

	"github.com/trailaudit/trail/engine"
	"github.com/trailaudit/trail/engine/eventwire"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// Inspector examines a batch of valid events on the leader before it is
// proposed and returns events to append with it. It runs on the leader
// only, so it may keep state and read the clock: what it returns is in
// the log, and the replicas apply the log, not the inspector. It sees the
// events as the write path read them (package eventwire), not decoded:
// decoding every event for it would cost more than the rest of an append.
type Inspector interface {
	Inspect(ctx context.Context, e *engine.Engine, events []*eventwire.Event) ([]*trailv1.Event, error)
}

// submitAppend proposes a chunk on the leader, with the events the
// inspector adds, and returns the chunk's own results.
func (n *Node) submitAppend(ctx context.Context, c chunk) ([]engine.Result, error) {
	p := &proposal{events: c.data, bytes: c.bytes}
	extra := n.inspect(ctx, c.events)
	if len(extra) > 0 {
		p.events = append(c.data[:len(c.data):len(c.data)], extra...)
		for _, b := range extra {
			p.bytes += len(b)
		}
	}
	r, err := n.batch.submit(ctx, "append", p)
	if err != nil {
		return nil, err
	}
	if len(r.results) < len(c.data) {
		return nil, fmt.Errorf("raftnode: append: %d results for %d events", len(r.results), len(c.data))
	}
	n.logInspected(r.results[len(c.data):])
	return r.results[:len(c.data)], nil
}

// inspect runs the inspector and encodes what it returns. An inspector
// failure or an invalid event from it is logged and dropped: the
// producer's events must not fail because a derived record could not be
// made.
func (n *Node) inspect(ctx context.Context, checked []*eventwire.Checked) [][]byte {
	if n.cfg.Inspector == nil {
		return nil
	}
	events := make([]*eventwire.Event, len(checked))
	for i, c := range checked {
		events[i] = &c.Event
	}
	e, release := n.AcquireEngine()
	extra, err := n.cfg.Inspector.Inspect(ctx, e, events)
	release()
	if err != nil {
		n.log.Warn("inspector failed; batch proposed without its records", "err", err)
		return nil
	}
	var out [][]byte
	for _, ev := range extra {
		c, err := checkEvent(ev)
		if err != nil {
			n.log.Warn("inspector returned an invalid event", "event_id", ev.GetEventId(), "err", err)
			continue
		}
		if len(c.Bytes) > n.cfg.Engine.MaxEntryBytes {
			n.log.Warn("inspector returned an event too large for an entry", "event_id", ev.GetEventId(), "bytes", len(c.Bytes))
			continue
		}
		out = append(out, c.Bytes)
	}
	return out
}

func (n *Node) logInspected(results []engine.Result) {
	for _, r := range results {
		if r.Err != nil {
			n.log.Warn("inspector record not appended", "err", r.Err)
		}
	}
}
