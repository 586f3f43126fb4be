package raftnode

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/trailaudit/trail/engine"
	"github.com/trailaudit/trail/merkle"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// chunk is a run of a caller's valid events that fits one Raft entry.
type chunk struct {
	index  []int // positions in the caller's slice
	events []*trailv1.Event
	data   [][]byte // marshalled events
	bytes  int
}

// prepare validates and encodes events. Invalid events get their error in
// results and go no further, so they never reach the log; valid ones are
// cut into chunks that each fit one entry.
func (n *Node) prepare(events []*trailv1.Event) ([]engine.Result, []chunk) {
	results := make([]engine.Result, len(events))
	var chunks []chunk
	var cur chunk
	for i, ev := range events {
		if err := engine.ValidateEvent(ev); err != nil {
			results[i].Err = err
			continue
		}
		b, err := marshalEvent(ev)
		if err != nil {
			results[i].Err = fmt.Errorf("%w: encode: %v", engine.ErrInvalidEvent, err)
			continue
		}
		if len(b) > n.cfg.Engine.MaxEntryBytes {
			results[i].Err = fmt.Errorf("%w: event of %d bytes, limit %d", engine.ErrEntryTooLarge, len(b), n.cfg.Engine.MaxEntryBytes)
			continue
		}
		if len(cur.data) > 0 && (len(cur.data) >= n.cfg.MaxBatchEvents || cur.bytes+len(b) > n.cfg.MaxBatchBytes) {
			chunks = append(chunks, cur)
			cur = chunk{}
		}
		cur.index = append(cur.index, i)
		cur.events = append(cur.events, ev)
		cur.data = append(cur.data, b)
		cur.bytes += len(b)
	}
	if len(cur.data) > 0 {
		chunks = append(chunks, cur)
	}
	return results, chunks
}

// Append commits events through Raft and returns one result per event, in
// order, once they are applied on the leader: a receipt, or why the event
// was rejected (engine.ErrInvalidEvent, engine.ErrEntryTooLarge,
// engine.ErrEventIDConflict). Any node accepts appends; followers forward
// them to the leader. While no leader is known, Append retries until ctx
// ends. An *AmbiguousError means some events may have been committed:
// retry with the same event ids. Large calls are committed as several
// entries, in order.
func (n *Node) Append(ctx context.Context, events []*trailv1.Event) ([]engine.Result, error) {
	if n.closed.Load() {
		return nil, ErrClosed
	}
	results, chunks := n.prepare(events)
	for _, c := range chunks {
		res, err := n.appendChunk(ctx, c)
		if err != nil {
			return nil, err
		}
		for j, r := range res {
			results[c.index[j]] = r
		}
	}
	return results, nil
}

func (n *Node) appendChunk(ctx context.Context, c chunk) ([]engine.Result, error) {
	var out []engine.Result
	local := func(ctx context.Context) error {
		r, err := n.submitAppend(ctx, c)
		if err == nil {
			out = r
		}
		return err
	}
	remote := func(ctx context.Context, addr string) error {
		req := &trailv1.RaftForwardRequest{Op: &trailv1.RaftForwardRequest_Append{
			Append: &trailv1.RaftForwardAppend{Events: c.events},
		}}
		resp, err := n.forward(ctx, "append", addr, req)
		if err != nil {
			return err
		}
		if out, err = decodeResults(resp.GetResults()); err != nil {
			return err
		}
		if len(out) != len(c.data) {
			return fmt.Errorf("raftnode: append: leader returned %d results for %d events", len(out), len(c.data))
		}
		return nil
	}
	if err := n.onLeader(ctx, "append", local, remote); err != nil {
		return nil, err
	}
	return out, nil
}

// appendOnLeader serves a forwarded append on the leader: the same
// validation as Append, then straight into the batcher.
func (n *Node) appendOnLeader(ctx context.Context, events []*trailv1.Event) ([]engine.Result, error) {
	results, chunks := n.prepare(events)
	for _, c := range chunks {
		r, err := n.submitAppend(ctx, c)
		if err != nil {
			return nil, err
		}
		for j, res := range r {
			results[c.index[j]] = res
		}
	}
	return results, nil
}

// forward sends req to the node at addr and turns a request-level error in
// the response back into an error matching the leader's sentinel.
func (n *Node) forward(ctx context.Context, op, addr string, req *trailv1.RaftForwardRequest) (*trailv1.RaftForwardResponse, error) {
	resp, err := n.fwd.call(ctx, addr, req)
	if err != nil {
		return nil, fmt.Errorf("raftnode: %s: forward to %s: %w", op, addr, err)
	}
	if err := decodeError(op, resp.GetError()); err != nil {
		return nil, err
	}
	return resp, nil
}

// Retry back-off while no leader is reachable: about a tenth of an
// election at first, capped near one election timeout.
const (
	minBackoff = 10 * time.Millisecond
	maxBackoff = 500 * time.Millisecond
)

// onLeader runs an operation on the leader: local when this node leads,
// remote (forwarded to addr) otherwise. Attempts that failed without effect
// (no leader, not leader, leader unreachable) are retried with back-off
// until ctx ends; other errors, including ambiguous ones, are returned.
func (n *Node) onLeader(ctx context.Context, op string,
	local func(ctx context.Context) error, remote func(ctx context.Context, addr string) error) error {
	backoff := minBackoff
	maybeSent := false
	var last error
	for {
		if n.closed.Load() {
			return ErrClosed
		}
		addr, id := n.raft.LeaderWithID()
		var err error
		switch {
		case id == "":
			err = fmt.Errorf("raftnode: %s: %w", op, errNoLeader)
		case string(id) == n.cfg.ID:
			err = local(ctx)
		default:
			err = remote(ctx, string(addr))
		}
		if err == nil || !retryable(err) {
			return err
		}
		maybeSent = maybeSent || errors.Is(err, errForwardIO)
		last = err
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			err := fmt.Errorf("raftnode: %s: %w (last attempt: %w)", op, ctx.Err(), last)
			if maybeSent {
				return ambiguous(op, err)
			}
			return err
		case <-n.ctx.Done():
			t.Stop()
			return ErrClosed
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

func encodeResults(rs []engine.Result) []*trailv1.RaftEventResult {
	out := make([]*trailv1.RaftEventResult, len(rs))
	for i, r := range rs {
		if r.Err != nil {
			out[i] = &trailv1.RaftEventResult{Error: encodeError(r.Err)}
			continue
		}
		rc := r.Receipt
		out[i] = &trailv1.RaftEventResult{Receipt: &trailv1.RaftReceipt{
			Tenant: rc.Tenant, EventId: rc.EventID, Partition: rc.Partition.String(),
			LeafIndex: rc.LeafIndex, LeafHash: rc.LeafHash[:], TreeSize: rc.TreeSize,
			SequencerTimeUnixNano: rc.SequencerTime.UnixNano(), Duplicate: rc.Duplicate, Index: rc.Index,
		}}
	}
	return out
}

func decodeResults(rs []*trailv1.RaftEventResult) ([]engine.Result, error) {
	out := make([]engine.Result, len(rs))
	for i, r := range rs {
		if r.GetError() != nil {
			out[i].Err = decodeError("append", r.GetError())
			continue
		}
		rc := r.GetReceipt()
		m, err := engine.ParseMonth(rc.GetPartition())
		if err != nil {
			return nil, fmt.Errorf("raftnode: forwarded receipt %d: %w", i, err)
		}
		if len(rc.GetLeafHash()) != merkle.HashSize {
			return nil, fmt.Errorf("raftnode: forwarded receipt %d: leaf hash of %d bytes", i, len(rc.GetLeafHash()))
		}
		out[i].Receipt = engine.Receipt{
			Tenant: rc.GetTenant(), EventID: rc.GetEventId(), Partition: m,
			LeafIndex: rc.GetLeafIndex(), LeafHash: merkle.Hash(rc.GetLeafHash()), TreeSize: rc.GetTreeSize(),
			SequencerTime: time.Unix(0, rc.GetSequencerTimeUnixNano()).UTC(), Duplicate: rc.GetDuplicate(),
			Index: rc.GetIndex(),
		}
	}
	return out, nil
}
