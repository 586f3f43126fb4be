package raftnode

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// proposal is one caller's request to the batcher: a run of encoded events
// to append, or a control command proposed in an entry of its own.
type proposal struct {
	events [][]byte // marshalled Events
	bytes  int
	// control, when set, builds a non-append command at sequencer time t.
	control func(t int64) ([]byte, error)
	resp    chan *applyResult // buffered; receives exactly once
}

func (p *proposal) reply(r *applyResult) { p.resp <- r }

// batcher is the leader's group commit. Concurrent callers' events are
// packed into one Raft entry, bounded by maxEvents, maxBytes and a short
// linger; several entries are kept in flight so that batching and Raft's
// own pipelining overlap. It runs on every node; on a follower Raft refuses
// its proposals with ErrNotLeader and the caller re-routes.
type batcher struct {
	propose func(cmd []byte) raft.ApplyFuture
	now     func() time.Time
	floor   func() int64 // largest sequencer time applied so far
	// admit, when set, is asked before an append entry is proposed; its
	// error fails the entry's callers with nothing written (a full disk
	// must be refused before the log, not inside the state machine).
	admit     func() error
	maxEvents int
	maxBytes  int
	linger    time.Duration
	inflight  int // limit

	reqs      chan *proposal
	completed chan struct{}
	quit      chan struct{}
	stopOnce  sync.Once
	wg        sync.WaitGroup

	last int64 // last sequencer time proposed; touched only by run
}

func newBatcher(cfg *Config, propose func([]byte) raft.ApplyFuture, floor func() int64) *batcher {
	return &batcher{
		propose:   propose,
		now:       cfg.Clock,
		floor:     floor,
		maxEvents: cfg.MaxBatchEvents,
		maxBytes:  cfg.MaxBatchBytes,
		linger:    cfg.Linger,
		inflight:  cfg.MaxInFlight,
		reqs:      make(chan *proposal),
		completed: make(chan struct{}),
		quit:      make(chan struct{}),
	}
}

func (b *batcher) start() {
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		b.run()
	}()
}

// stop ends the loop. Queued proposals fail with ErrClosed (they were never
// proposed); proposals in flight are answered by Raft's shutdown.
func (b *batcher) stop() {
	b.stopOnce.Do(func() { close(b.quit) })
	b.wg.Wait()
}

// submit hands p to the batcher and waits for its entry to be applied. If
// ctx ends after p may have been proposed, the outcome is ambiguous.
func (b *batcher) submit(ctx context.Context, op string, p *proposal) (*applyResult, error) {
	p.resp = make(chan *applyResult, 1)
	select {
	case b.reqs <- p:
	case <-ctx.Done():
		return nil, fmt.Errorf("raftnode: %s: %w", op, ctx.Err())
	case <-b.quit:
		return nil, ErrClosed
	}
	select {
	case r := <-p.resp:
		return answer(op, r)
	case <-ctx.Done():
		return nil, ambiguous(op, ctx.Err())
	case <-b.quit:
		// The node is closing. Raft answers the entries it is working
		// on as it shuts down, but not those still waiting in its
		// buffered apply channel: their futures never complete. An answer
		// already given wins; otherwise the entry may or may not have
		// been committed.
		select {
		case r := <-p.resp:
			return answer(op, r)
		default:
			return nil, ambiguous(op, ErrClosed)
		}
	}
}

func answer(op string, r *applyResult) (*applyResult, error) {
	if r.err != nil {
		return nil, proposalError(op, r.err)
	}
	return r, nil
}

// queue is the batcher loop's pending proposals and their totals.
type queue struct {
	ps            []*proposal
	events, bytes int
}

func (q *queue) push(p *proposal) {
	q.ps = append(q.ps, p)
	q.events += len(p.events)
	q.bytes += p.bytes
}

// take removes the proposals of the next entry: a control proposal alone,
// or appends up to the bounds (at least one, whatever its size).
func (q *queue) take(maxEvents, maxBytes int) []*proposal {
	if q.ps[0].control != nil {
		p := q.ps[0]
		q.ps = q.ps[1:]
		return []*proposal{p}
	}
	n, events, bytes := 0, 0, 0
	for _, p := range q.ps {
		if p.control != nil || (n > 0 && (events+len(p.events) > maxEvents || bytes+p.bytes > maxBytes)) {
			break
		}
		n, events, bytes = n+1, events+len(p.events), bytes+p.bytes
	}
	out := q.ps[:n:n]
	q.ps = q.ps[n:]
	q.events -= events
	q.bytes -= bytes
	return out
}

func (q *queue) full(maxEvents, maxBytes int) bool {
	return q.events >= maxEvents || q.bytes >= maxBytes || (len(q.ps) > 0 && q.ps[0].control != nil)
}

func (b *batcher) run() {
	var q queue
	inflight := 0
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	lingered := false
	for {
		for len(q.ps) > 0 && inflight < b.inflight {
			// Nothing in flight: flush now, with whatever is already queued.
			if inflight == 0 {
				b.drain(&q)
			} else if !lingered && !q.full(b.maxEvents, b.maxBytes) {
				break
			}
			b.flush(q.take(b.maxEvents, b.maxBytes))
			inflight++
			lingered = false
			if len(q.ps) > 0 {
				linger.Reset(b.linger)
			}
		}
		select {
		case p := <-b.reqs:
			if len(q.ps) == 0 {
				linger.Reset(b.linger)
				lingered = false
			}
			q.push(p)
		case <-b.completed:
			inflight--
		case <-linger.C:
			lingered = true
		case <-b.quit:
			for _, p := range q.ps {
				p.reply(&applyResult{err: ErrClosed})
			}
			return
		}
	}
}

// drain moves already-waiting proposals into q without blocking.
func (b *batcher) drain(q *queue) {
	for !q.full(b.maxEvents, b.maxBytes) {
		select {
		case p := <-b.reqs:
			q.push(p)
		default:
			return
		}
	}
}

// flush proposes one entry. The sequencer time is assigned here, once per
// entry, as max(now, last proposed, last applied): monotonic even if the
// wall clock steps back or leadership moves to a node with a slower clock.
func (b *batcher) flush(ps []*proposal) {
	var err error
	if ps[0].control == nil && b.admit != nil {
		err = b.admit()
	}
	t := max(b.now().UnixNano(), b.last, b.floor())
	b.last = t
	var cmd []byte
	if err == nil {
		cmd, err = b.encode(t, ps)
	}
	if err != nil {
		for _, p := range ps {
			p.reply(&applyResult{err: err})
		}
		b.complete()
		return
	}
	fut := b.propose(cmd)
	go func() {
		defer b.complete()
		b.deliver(ps, fut)
	}()
}

// complete tells the loop an entry left the pipeline; the loop may be gone.
func (b *batcher) complete() {
	go func() {
		select {
		case b.completed <- struct{}{}:
		case <-b.quit:
		}
	}()
}

func (b *batcher) encode(t int64, ps []*proposal) ([]byte, error) {
	if ps[0].control != nil {
		return ps[0].control(t)
	}
	n := 0
	for _, p := range ps {
		n += len(p.events)
	}
	events := make([][]byte, 0, n)
	for _, p := range ps {
		events = append(events, p.events...)
	}
	return encodeAppend(t, events), nil
}

// deliver waits for the entry and hands each proposal its own results.
func (b *batcher) deliver(ps []*proposal, fut raft.ApplyFuture) {
	if err := fut.Error(); err != nil {
		for _, p := range ps {
			p.reply(&applyResult{err: err})
		}
		return
	}
	res, _ := fut.Response().(*applyResult)
	if res == nil {
		res = &applyResult{err: fmt.Errorf("raftnode: entry %d applied without a result", fut.Index())}
	}
	if res.err != nil || ps[0].control != nil {
		for _, p := range ps {
			p.reply(res)
		}
		return
	}
	off := 0
	for _, p := range ps {
		n := len(p.events)
		if off+n > len(res.results) {
			p.reply(&applyResult{err: fmt.Errorf("raftnode: entry %d: %d results for %d events", fut.Index(), len(res.results), off+n)})
			continue
		}
		p.reply(&applyResult{results: res.results[off : off+n : off+n]})
		off += n
	}
}
