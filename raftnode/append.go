package raftnode

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/trailaudit/trail/engine"
	"github.com/trailaudit/trail/engine/eventwire"
	"github.com/trailaudit/trail/merkle"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// chunk is a run of a caller's events that fits one Raft entry.
type chunk struct {
	index  []int // positions in the caller's slice
	events []*eventwire.Checked
	data   [][]byte // their canonical encodings
	bytes  int
}

// prepare cuts events into chunks that each fit one entry. An event too
// large for an entry gets its error in results and goes no further.
func (n *Node) prepare(events []eventwire.Checked) ([]engine.Result, []chunk) {
	results := make([]engine.Result, len(events))
	var chunks []chunk
	var cur chunk
	for i := range events {
		b := events[i].Bytes
		if len(b) > n.cfg.Engine.MaxEntryBytes {
			results[i].Err = fmt.Errorf("%w: event of %d bytes, limit %d", engine.ErrEntryTooLarge, len(b), n.cfg.Engine.MaxEntryBytes)
			continue
		}
		if len(cur.data) > 0 && (len(cur.data) >= n.cfg.MaxBatchEvents || cur.bytes+len(b) > n.cfg.MaxBatchBytes) {
			chunks = append(chunks, cur)
			cur = chunk{}
		}
		cur.index = append(cur.index, i)
		cur.events = append(cur.events, &events[i])
		cur.data = append(cur.data, b)
		cur.bytes += len(b)
	}
	if len(cur.data) > 0 {
		chunks = append(chunks, cur)
	}
	return results, chunks
}

// Append validates and encodes decoded events and appends them as
// AppendChecked does; an invalid event gets its error in the results and
// never reaches the log.
func (n *Node) Append(ctx context.Context, events []*trailv1.Event) ([]engine.Result, error) {
	checked, results, pos := checkEvents(events)
	res, err := n.AppendChecked(ctx, checked)
	if err != nil {
		return nil, err
	}
	for j, r := range res {
		results[pos[j]] = r
	}
	return results, nil
}

// checkEvents encodes and validates decoded events: the valid ones, the
// results with the invalid ones' errors, and where each valid one goes.
func checkEvents(events []*trailv1.Event) ([]eventwire.Checked, []engine.Result, []int) {
	results := make([]engine.Result, len(events))
	checked := make([]eventwire.Checked, 0, len(events))
	pos := make([]int, 0, len(events))
	for i, ev := range events {
		c, err := checkEvent(ev)
		if err != nil {
			results[i].Err = err
			continue
		}
		checked = append(checked, c)
		pos = append(pos, i)
	}
	return checked, results, pos
}

func checkEvent(ev *trailv1.Event) (eventwire.Checked, error) {
	if ev == nil {
		return eventwire.Checked{}, fmt.Errorf("%w: event is empty", engine.ErrInvalidEvent)
	}
	var c eventwire.Checked
	b, err := eventwire.Marshal(ev, &c.Event)
	if err != nil {
		return eventwire.Checked{}, err
	}
	if err := eventwire.Validate(&c.Event); err != nil {
		return eventwire.Checked{}, err
	}
	c.Bytes = b
	return c, nil
}

// AppendChecked commits events, canonical and valid (eventwire.Check),
// through Raft and returns one result per event, in order, once they are
// applied on the leader: a receipt, or why the event was rejected
// (engine.ErrEntryTooLarge, engine.ErrEventIDConflict, or what the state
// machine's own validation says). Any node accepts appends; followers
// forward them to the leader. While no leader is known, AppendChecked
// retries until ctx ends. An *AmbiguousError means some events may have
// been committed: retry with the same event ids. Large calls are committed
// as several entries, in order.
func (n *Node) AppendChecked(ctx context.Context, events []eventwire.Checked) ([]engine.Result, error) {
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
			Append: &trailv1.RaftForwardAppend{Encoded: c.data},
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

// appendOnLeader serves a forwarded append on the leader. The follower
// sends canonical encodings, read here once more for the inspector (a
// node of an older version sends decoded events, encoded here).
func (n *Node) appendOnLeader(ctx context.Context, req *trailv1.RaftForwardAppend) ([]engine.Result, error) {
	var checked []eventwire.Checked
	var results []engine.Result
	var pos []int
	if len(req.GetEvents()) > 0 {
		checked, results, pos = checkEvents(req.GetEvents())
	} else {
		results = make([]engine.Result, len(req.GetEncoded()))
		for i, b := range req.GetEncoded() {
			c, err := eventwire.Check(b)
			if err != nil {
				results[i].Err = err
				continue
			}
			checked = append(checked, c)
			pos = append(pos, i)
		}
	}
	res, chunks := n.prepare(checked)
	for _, c := range chunks {
		r, err := n.submitAppend(ctx, c)
		if err != nil {
			return nil, err
		}
		for j, x := range r {
			res[c.index[j]] = x
		}
	}
	for j, r := range res {
		results[pos[j]] = r
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
		changed := n.health.leaders.wait() // before reading the leader: no change is missed
		addr, id := n.raft.LeaderWithID()
		var err error
		switch {
		case id == "":
			err = fmt.Errorf("raftnode: %s: %w", op, errNoLeader)
		case string(id) == n.cfg.ID:
			err = local(ctx)
		default:
			err = untilClosed(ctx, changed, func(ctx context.Context) error { return remote(ctx, string(addr)) })
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

// untilClosed runs fn with a context cancelled when ch closes. A call
// forwarded to a leader that stopped answering (a paused process, a
// one-way partition) would otherwise wait for the caller's deadline even
// after the others elected a new leader; cancelled, it fails as a
// forwarding error, which onLeader retries on the new leader (appends are
// idempotent by event_id, the other forwarded commands by design).
func untilClosed(ctx context.Context, ch <-chan struct{}, fn func(context.Context) error) error {
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-ch:
			cancel()
		case <-cctx.Done():
		}
	}()
	return fn(cctx)
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
