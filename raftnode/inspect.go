package raftnode

import (
	"context"
	"fmt"

	"github.com/trailaudit/trail/engine"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// Inspector examines a batch of valid events on the leader before it is
// proposed and returns events to append with it. It runs on the leader
// only, so it may keep state and read the clock: what it returns is in
// the log, and the replicas apply the log, not the inspector.
type Inspector interface {
	Inspect(ctx context.Context, e *engine.Engine, events []*trailv1.Event) ([]*trailv1.Event, error)
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
func (n *Node) inspect(ctx context.Context, events []*trailv1.Event) [][]byte {
	if n.cfg.Inspector == nil {
		return nil
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
		if err := engine.ValidateEvent(ev); err != nil {
			n.log.Warn("inspector returned an invalid event", "event_id", ev.GetEventId(), "err", err)
			continue
		}
		b, err := marshalEvent(ev)
		if err != nil || len(b) > n.cfg.Engine.MaxEntryBytes {
			n.log.Warn("inspector returned an unencodable event", "event_id", ev.GetEventId(), "err", err, "bytes", len(b))
			continue
		}
		out = append(out, b)
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
