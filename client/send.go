package client

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// batcher cuts the accepted events into batches: at BatchEvents or
// BatchBytes, FlushInterval after a batch's first event, or on Flush.
// When every sender is busy it waits, the buffer fills, and Append blocks.
func (c *Client) batcher(out chan<- []*item) {
	defer c.bg.Done()
	var (
		batch []*item
		size  int
	)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	send := func() bool {
		if len(batch) == 0 {
			return true
		}
		timer.Stop()
		select {
		case out <- batch:
		case <-c.life.Done():
			return false
		}
		batch, size = nil, 0
		return true
	}
	add := func(it *item) bool {
		if len(batch) > 0 && size+it.size > c.cfg.BatchBytes && !send() {
			return false
		}
		if len(batch) == 0 {
			timer.Reset(c.cfg.FlushInterval)
		}
		batch = append(batch, it)
		size += it.size
		if len(batch) >= c.cfg.BatchEvents || size >= c.cfg.BatchBytes {
			return send()
		}
		return true
	}
	for {
		ok := true
		select {
		case it := <-c.in:
			ok = add(it)
		case <-timer.C:
			ok = send()
		case <-c.flush:
			// Everything accepted before the Flush is in c.in by now.
			for n := len(c.in); n > 0 && ok; n-- {
				ok = add(<-c.in)
			}
			ok = ok && send()
		case <-c.life.Done():
			return
		}
		if !ok {
			return
		}
	}
}

func (c *Client) sender(in <-chan []*item) {
	defer c.bg.Done()
	for {
		select {
		case b := <-in:
			c.deliver(b)
		case <-c.life.Done():
			return
		}
	}
}

// deliver sends batch until every event in it is acknowledged or refused
// for good, or the client stops. Every attempt carries the same event ids,
// so an attempt whose answer was lost (a timeout, a node dying after
// commit, Raft's ambiguous "leadership lost") is answered on retry with
// the original receipt marked duplicate, never a second entry.
func (c *Client) deliver(batch []*item) {
	backoff := c.cfg.MinBackoff
	failures := 0
	for len(batch) > 0 {
		node, cc := c.conns.pick()
		resp, err := c.send(cc, batch)
		switch {
		case err == nil:
			batch = c.settle(batch, resp)
			if len(batch) == 0 {
				return
			}
		case c.life.Err() != nil:
			return // Close gave up; the events are abandoned (and kept in the spool)
		case permanent(status.Code(err)):
			c.refused(batch, err)
			return
		default:
			c.cfg.Logger.Warn("client: append batch failed; retrying", "node", c.conns.addrs[node], "events", len(batch), "err", err)
			c.conns.failed(node)
			failures++
			// The first failure at each other node is tried at once: the
			// next node is likely fine when this one is down.
			if failures%len(c.conns.cc) != 0 {
				continue
			}
		}
		if !c.sleep(backoff) {
			return
		}
		backoff = min(2*backoff, c.cfg.MaxBackoff)
	}
}

// send makes one AppendBatch call to one node.
func (c *Client) send(cc grpc.ClientConnInterface, batch []*item) (*trailv1.AppendBatchResponse, error) {
	ctx, cancel := context.WithTimeout(c.life, c.cfg.CallTimeout)
	defer cancel()
	req := &trailv1.AppendBatchRequest{Events: make([]*trailv1.Event, len(batch))}
	for i, it := range batch {
		req.Events[i] = it.ev
	}
	resp, err := trailv1.NewIngestServiceClient(cc).AppendBatch(ctx, req, callOpts(c.cfg.Token)...)
	if err != nil {
		return nil, err
	}
	if got := len(resp.GetResults()); got != len(batch) {
		return nil, status.Errorf(codes.Internal, "server answered %d results for %d events", got, len(batch))
	}
	return resp, nil
}

// settle resolves each event of batch by its result and returns those to
// retry.
func (c *Client) settle(batch []*item, resp *trailv1.AppendBatchResponse) []*item {
	var retry []*item
	for i, res := range resp.GetResults() {
		it := batch[i]
		if r := res.GetReceipt(); r != nil {
			c.resolve(it, r, nil, false)
			continue
		}
		e := res.GetError()
		code := codes.Code(e.GetCode())
		if code == codes.OK {
			code = codes.Unknown // a result with neither receipt nor error
		}
		if permanent(code) {
			c.reject(it, status.Error(code, e.GetMessage()))
			continue
		}
		retry = append(retry, it)
	}
	return retry
}

// refused handles a whole batch refused for good. The refusal may be due
// to one event (a tenant the key may not write names the whole batch
// refused), so a batch of several is split and each half delivered on its
// own, which isolates the culprits in O(log n) calls.
func (c *Client) refused(batch []*item, err error) {
	if len(batch) == 1 {
		c.reject(batch[0], err)
		return
	}
	h := len(batch) / 2
	c.deliver(batch[:h])
	c.deliver(batch[h:])
}

// reject resolves an item the server refused for good.
func (c *Client) reject(it *item, err error) {
	err = fmt.Errorf("client: event %s refused: %w", it.p.eventID, err)
	c.cfg.Logger.Error("client: event refused", "event_id", it.p.eventID, "tenant", it.ev.GetTenantId(), "err", err)
	if c.cfg.OnReject != nil {
		c.cfg.OnReject(it.ev, err)
	}
	c.resolve(it, nil, err, false)
}

// permanent reports whether an answer with code will not change on retry.
// UNAUTHENTICATED is not among them: a key being rotated is fixed by the
// operator, and the events wait (in the spool, if any) rather than being
// dropped.
func permanent(code codes.Code) bool {
	switch code {
	case codes.InvalidArgument, codes.AlreadyExists, codes.PermissionDenied, codes.NotFound,
		codes.FailedPrecondition, codes.OutOfRange, codes.Unimplemented:
		return true
	}
	return false
}

func (c *Client) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-c.life.Done():
		return false
	}
}
