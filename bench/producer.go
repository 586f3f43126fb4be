package main

import (
	"context"
	"errors"
	"io"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// callTimeout bounds one call; a durable append on a healthy cluster takes
// milliseconds, so a call this slow is a failure worth counting.
const callTimeout = 30 * time.Second

// appendStats are one producer's counts for one phase.
type appendStats struct {
	// acked counts events with a receipt, dups those of them whose receipt
	// was a duplicate's.
	sent, acked, dups, failed, calls int64
	// retries are calls repeated, with the same event ids, after the
	// cluster answered UNAVAILABLE (no leader, or leadership lost while
	// committing): what invariant 8 asks of producers.
	retries  int64
	firstErr string
	lat      *latencyHist
}

func newAppendStats() *appendStats { return &appendStats{lat: newLatencyHist()} }

func (s *appendStats) fail(err error, events int) {
	s.failed += int64(events)
	if s.firstErr == "" {
		s.firstErr = err.Error()
	}
}

func (s *appendStats) add(o *appendStats) {
	s.sent += o.sent
	s.acked += o.acked
	s.dups += o.dups
	s.failed += o.failed
	s.calls += o.calls
	s.retries += o.retries
	if s.firstErr == "" {
		s.firstErr = o.firstErr
	}
	s.lat.merge(o.lat)
}

// producer appends events in one of three ways: unary Append (batch 1),
// AppendBatch, or batches on one AppendStream with several in flight.
type producer struct {
	conn     grpc.ClientConnInterface
	src      *eventSource
	batch    int
	stream   bool
	window   int           // stream batches in flight
	interval time.Duration // between calls for an offered rate; 0 = next call as soon as the ack comes
	// phase delays the first call: producers of one offered rate are
	// spread over the interval, or they would all call at the same
	// instants and offer bursts instead of a rate.
	phase time.Duration
	// onReceipt, when set, sees every receipt (loaders and the mixed
	// scenario learn tree sizes from it). It runs on the producer's goroutine.
	onReceipt func(*trailv1.Receipt)
	// budget, when set, is shared by producers that together append a
	// fixed number of events (loading a log) instead of running for a time.
	budget *budget
}

// budget is a number of events left to append, shared by producers.
type budget struct{ left atomic.Int64 }

func newBudget(n int64) *budget {
	b := &budget{}
	b.left.Store(n)
	return b
}

// take claims up to n events; 0 means the budget is spent.
func (b *budget) take(n int) int {
	for {
		left := b.left.Load()
		if left <= 0 {
			return 0
		}
		k := min(int64(n), left)
		if b.left.CompareAndSwap(left, left-k) {
			return int(k)
		}
	}
}

// next is how many events the next call carries; 0 ends the run.
func (p *producer) next() int {
	if p.budget == nil {
		return p.batch
	}
	return p.budget.take(p.batch)
}

// run appends until stop ends, then waits for the calls in flight; ctx
// cancels those too. Latency is measured from when a call was due, not
// from when it was sent, so that a server that falls behind an offered
// rate is charged for the queueing it causes (no coordinated omission).
func (p *producer) run(ctx, stop context.Context) *appendStats {
	if p.stream {
		return p.runStream(ctx, stop)
	}
	st := newAppendStats()
	sched := newSchedule(p.interval, p.phase)
	for {
		due, ok := sched.wait(stop)
		n := p.next()
		if !ok || n == 0 {
			return st
		}
		p.call(ctx, st, n, due)
	}
}

// call makes one append call of n events, due at due, retrying it with
// the same events while the cluster answers UNAVAILABLE.
func (p *producer) call(ctx context.Context, st *appendStats, n int, due time.Time) {
	req := &rawMessage{p.src.request(n)}
	st.sent += int64(n)
	st.calls++
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	for attempt := 0; ; attempt++ {
		var err error
		if p.batch == 1 {
			resp := new(trailv1.AppendResponse)
			if err = p.conn.Invoke(cctx, trailv1.IngestService_Append_FullMethodName, req, resp, sendRaw()); err == nil {
				p.receipt(st, resp.GetReceipt())
			}
		} else if p.onReceipt == nil {
			resp := new(rawMessage)
			if err = p.conn.Invoke(cctx, trailv1.IngestService_AppendBatch_FullMethodName, req, resp, sendRaw()); err == nil {
				p.tally(st, resp.b, n, nil)
			}
		} else {
			resp := new(trailv1.AppendBatchResponse)
			if err = p.conn.Invoke(cctx, trailv1.IngestService_AppendBatch_FullMethodName, req, resp, sendRaw()); err == nil {
				p.results(st, resp, n, nil)
			}
		}
		if err == nil {
			break
		}
		if status.Code(err) != codes.Unavailable || !backoff(cctx, attempt) {
			st.fail(err, n)
			break
		}
		st.retries++
	}
	st.lat.record(time.Since(due))
}

// backoff sleeps before retry attempt+1: 10 ms doubling to 640 ms. It
// returns false when ctx ends first.
func backoff(ctx context.Context, attempt int) bool {
	t := time.NewTimer(10 * time.Millisecond << min(attempt, 6))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// receipt counts an acknowledged event. A duplicate receipt acknowledges
// it too: event ids are unique per run, so a duplicate means a retried
// call had in fact been committed the first time, and this is the
// original receipt.
func (p *producer) receipt(st *appendStats, r *trailv1.Receipt) {
	st.acked++
	if r.GetDuplicate() {
		st.dups++
	}
	if p.onReceipt != nil {
		p.onReceipt(r)
	}
}

// tally counts a batch's outcomes from the response's encoding.
func (p *producer) tally(st *appendStats, resp []byte, n int, err error) {
	receipts, dups, failed := 0, 0, 0
	firstErr := ""
	if err == nil {
		receipts, dups, failed, firstErr, err = tallyResults(resp)
	}
	if err == nil && receipts+failed != n {
		err = errors.New("append batch: result count differs from event count")
	}
	if err != nil {
		st.fail(err, n)
		return
	}
	if failed > 0 {
		st.fail(errors.New(firstErr), failed)
	}
	st.acked += int64(receipts)
	st.dups += int64(dups)
}

func (p *producer) results(st *appendStats, resp *trailv1.AppendBatchResponse, n int, err error) {
	if err == nil && len(resp.GetResults()) != n {
		err = errors.New("append batch: result count differs from event count")
	}
	if err != nil {
		st.fail(err, n)
		return
	}
	for _, r := range resp.GetResults() {
		if e := r.GetError(); e != nil {
			st.fail(errors.New(e.GetMessage()), 1)
			continue
		}
		p.receipt(st, r.GetReceipt())
	}
}

// runStream sends batches on an AppendStream, keeping up to window of
// them unacknowledged; acks come back in order. A stream that breaks is
// reopened; its unacknowledged batches are counted as failed rather than
// resent (a production client would resend them with the same ids).
func (p *producer) runStream(ctx, stop context.Context) *appendStats {
	total := newAppendStats()
	sched := newSchedule(p.interval, p.phase)
	for attempt := 0; stop.Err() == nil; attempt++ {
		st, broken := p.stream1(ctx, stop, sched)
		total.add(st)
		if !broken || !backoff(stop, attempt) {
			break
		}
		total.retries++
	}
	return total
}

// stream1 runs one stream until stop ends or the stream breaks.
func (p *producer) stream1(ctx, stop context.Context, sched *schedule) (_ *appendStats, broken bool) {
	sent := newAppendStats() // the sender's counts
	acks := newAppendStats() // the receiver's
	stream, err := p.conn.NewStream(ctx, &trailv1.IngestService_ServiceDesc.Streams[0], trailv1.IngestService_AppendStream_FullMethodName, sendRaw())
	if err != nil {
		sent.fail(err, 0)
		return sent, true
	}
	type inFlight struct {
		due time.Time
		n   int
	}
	// The channel's capacity and the batch the receiver holds make the
	// window: a send blocks while window batches are unacknowledged.
	pending := make(chan inFlight, max(p.window, 1)-1)
	failed := make(chan struct{}) // closed when the receiver sees an error
	recvDone := make(chan struct{})
	go func() {
		defer close(recvDone)
		var brokenErr error
		for f := range pending {
			if brokenErr != nil {
				acks.fail(brokenErr, f.n)
				continue
			}
			var err error
			if p.onReceipt == nil {
				resp := new(rawMessage)
				if err = stream.RecvMsg(resp); err == io.EOF {
					err = errors.New("append stream: closed with batches unacknowledged")
				}
				p.tally(acks, resp.b, f.n, err)
			} else {
				resp := new(trailv1.AppendBatchResponse)
				if err = stream.RecvMsg(resp); err == io.EOF {
					err = errors.New("append stream: closed with batches unacknowledged")
				}
				p.results(acks, resp, f.n, err)
			}
			acks.lat.record(time.Since(f.due))
			if err != nil {
				brokenErr = err
				close(failed)
			}
		}
	}()
	for !broken {
		due, ok := sched.wait(stop)
		n := p.next()
		if !ok || n == 0 {
			break
		}
		req := &rawMessage{p.src.request(n)}
		select {
		case pending <- inFlight{due, n}:
		case <-failed:
			broken = true
			continue
		}
		sent.sent += int64(n)
		sent.calls++
		if err := stream.SendMsg(req); err != nil {
			broken = true // the receiver sees the stream's real error
		}
	}
	close(pending)
	<-recvDone
	stream.CloseSend()
	for {
		if err := stream.RecvMsg(new(trailv1.AppendBatchResponse)); err != nil {
			break
		}
	}
	select {
	case <-failed:
		broken = true
	default:
	}
	sent.add(acks)
	return sent, broken
}

// schedule paces calls for an offered rate: call k is due at
// start+phase+k*interval whether or not call k-1 was late.
type schedule struct {
	interval time.Duration
	next     time.Time
}

func newSchedule(interval, phase time.Duration) *schedule {
	return &schedule{interval: interval, next: time.Now().Add(phase)}
}

// wait returns when the next call is due, or false once stop ends.
func (s *schedule) wait(stop context.Context) (time.Time, bool) {
	if stop.Err() != nil {
		return time.Time{}, false
	}
	if s.interval <= 0 {
		return time.Now(), true
	}
	due := s.next
	s.next = s.next.Add(s.interval)
	if d := time.Until(due); d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-stop.Done():
			return time.Time{}, false
		case <-t.C:
		}
	}
	return due, true
}
