package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/trailaudit/trail/engine"
	"github.com/trailaudit/trail/engine/eventwire"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// ingestService serves trail.v1.IngestService through ingestServiceDesc:
// its methods take requests undecoded (rawcodec.go). The embedded type
// only satisfies the generated interface, which RegisterService checks.
type ingestService struct {
	trailv1.UnimplementedIngestServiceServer
	s *Server
}

// appendOutcome is the result of one event of a call: a receipt or the
// reason it was rejected.
type appendOutcome struct {
	result engine.Receipt
	err    error
}

func (is *ingestService) appendOne(ctx context.Context, req *rawRequest) (any, error) {
	ev, err := singleEvent(req.data)
	if err != nil {
		return nil, err
	}
	out, applied, err := is.s.appendEncoded(ctx, [][]byte{ev})
	if err != nil {
		return nil, err
	}
	if out[0].err != nil {
		return nil, out[0].err
	}
	b := protowire.AppendTag(nil, fieldAppendResponseReceipt, protowire.BytesType)
	b = appendNested(b, func(m []byte) []byte { return appendReceipt(m, out[0].result, applied) })
	return &rawResponse{b}, nil
}

func (is *ingestService) appendBatchRaw(ctx context.Context, req *rawRequest) (any, error) {
	return is.s.appendBatch(ctx, req)
}

// appendStream appends each request as one batch and answers each with its
// durable ack, in order. Batches are appended one at a time, so a stream's
// events keep their order in the log; throughput comes from many streams
// (the cluster group-commits concurrent calls). On shutdown the stream ends
// with UNAVAILABLE after the batch in flight: unacked batches are safe to
// resend elsewhere because appends are idempotent by event_id.
func (is *ingestService) appendStream(stream grpc.ServerStream) error {
	ctx := stream.Context()
	reqs := make(chan *rawRequest)
	recvErr := make(chan error, 1)
	go func() {
		for {
			req := new(rawRequest)
			if err := stream.RecvMsg(req); err != nil {
				recvErr <- err
				return
			}
			select {
			case reqs <- req:
			case <-ctx.Done():
				return
			}
		}
	}()
	for {
		select {
		case <-is.s.life.Done():
			return fmt.Errorf("%w: server shutting down; resend unacknowledged batches to another node", errUnavailable)
		case err := <-recvErr:
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		case req := <-reqs:
			resp, err := is.s.appendBatch(ctx, req)
			if err != nil {
				return err
			}
			if err := stream.SendMsg(resp); err != nil {
				return err
			}
		}
	}
}

func (s *Server) appendBatch(ctx context.Context, req *rawRequest) (*rawResponse, error) {
	events, err := batchEvents(req.data)
	if err != nil {
		return nil, err
	}
	out, applied, err := s.appendEncoded(ctx, events)
	if err != nil {
		return nil, err
	}
	return &rawResponse{appendBatchResponse(out, applied)}, nil
}

// appendEncoded checks limits and permissions, reads and validates each
// encoded event, and hands the valid ones to the cluster in one call. A
// batch that touches a tenant the caller may not append to is refused
// whole: nothing of it is appended. Invalid events are rejected here,
// before they cost a Raft entry; the state machine validates again on
// apply. applied is the index the receipts carry (see visibleIndex).
func (s *Server) appendEncoded(ctx context.Context, events [][]byte) (out []appendOutcome, applied uint64, err error) {
	p, err := principalFrom(ctx)
	if err != nil {
		return nil, 0, err
	}
	if err := s.checkBatchLimits(events); err != nil {
		return nil, 0, err
	}
	out = make([]appendOutcome, len(events))
	valid := make([]eventwire.Checked, 0, len(events))
	pos := make([]int, 0, len(events))
	slices := newEventSlices(len(events))
	for i, raw := range events {
		var c eventwire.Checked
		slices.give(&c.Event, i)
		canon, err := eventwire.Canonicalize(raw, &c.Event)
		if err != nil {
			out[i].err = err
			continue
		}
		tenant := string(c.Event.TenantID)
		if err := checkTenant(tenant); err != nil {
			out[i].err = err
			continue
		}
		if err := p.check(permAppend, tenant); err != nil {
			s.auditDenied(ctx, p, tenant, err)
			return nil, 0, err
		}
		if err := eventwire.Validate(&c.Event); err != nil {
			out[i].err = err
			continue
		}
		c.Bytes = canon
		valid = append(valid, c)
		pos = append(pos, i)
	}
	if valid, pos, err = s.sealValid(ctx, valid, pos, func(at int, err error) { out[at].err = err }); err != nil {
		return nil, 0, err
	}
	if len(valid) == 0 {
		s.countOutcomes(out)
		return out, s.cluster.AppliedIndex(), nil
	}
	// A nearly full disk is refused here, before anything is proposed:
	// inside the replicated state machine a write cannot be refused.
	if err := s.space.check(); err != nil {
		return nil, 0, err
	}
	cctx, end := s.span(ctx, "trail.append.commit", attribute.Int("trail.events", len(valid)), attribute.Int("trail.rejected", len(events)-len(valid)))
	results, err := s.commit(cctx, valid)
	end(err)
	if err != nil {
		return nil, 0, err
	}
	s.settleSealedRetries(ctx, valid, results)
	applied = s.visibleIndex(results)
	for j, r := range results {
		out[pos[j]] = appendOutcome{result: r.Receipt, err: r.Err}
	}
	s.countOutcomes(out)
	return out, applied, nil
}

// sealValid seals the events of valid whose tenants seal subject
// payloads (sealing.go), hands refuse the position and reason of each one
// refused, and returns the rest with their positions, compacted in place.
func (s *Server) sealValid(ctx context.Context, valid []eventwire.Checked, pos []int, refuse func(at int, err error)) ([]eventwire.Checked, []int, error) {
	refused, err := s.sealChecked(ctx, valid)
	if err != nil {
		return nil, nil, err
	}
	n := 0
	for j, err := range refused {
		if err != nil {
			refuse(pos[j], err)
			continue
		}
		valid[n], pos[n] = valid[j], pos[j]
		n++
	}
	return valid[:n], pos[:n], nil
}

// eventSlices backs the small slices a scan fills (attribute keys and
// values, PII fields) for a whole batch: three allocations per batch
// instead of up to three per event, which under load cost more in
// garbage collection than the scan itself.
type eventSlices struct{ keys, values, pii [][]byte }

// perEvent is each event's window in the shared arrays; a scan appends
// past it only for an event with more, and then allocates as before.
const perEvent = 4

func newEventSlices(n int) eventSlices {
	return eventSlices{
		keys:   make([][]byte, n*perEvent),
		values: make([][]byte, n*perEvent),
		pii:    make([][]byte, n*perEvent),
	}
}

// give hands event i its windows, capped so that an append never runs
// into the next event's.
func (es eventSlices) give(ev *eventwire.Event, i int) {
	lo, hi := i*perEvent, (i+1)*perEvent
	ev.AttrKeys, ev.AttrValues, ev.PIIFields = es.keys[lo:lo:hi], es.values[lo:lo:hi], es.pii[lo:lo:hi]
}

// checkOwnEvents encodes and checks events the server makes itself
// (retention and hold records); an invalid one is a bug, and an error.
func checkOwnEvents(events []*trailv1.Event) ([]eventwire.Checked, error) {
	out := make([]eventwire.Checked, len(events))
	for i, ev := range events {
		b, err := eventwire.Marshal(ev, &out[i].Event)
		if err == nil {
			err = eventwire.Validate(&out[i].Event)
		}
		if err != nil {
			return nil, fmt.Errorf("record %s: %w", ev.GetEventId(), err)
		}
		out[i].Bytes = b
	}
	return out, nil
}

// commit appends events through the cluster and times it. The cluster
// retries while no leader is known; CommitTimeout bounds that, so that a
// leaderless cluster answers UNAVAILABLE (retry, with the same event ids)
// rather than holding calls that carry no deadline forever.
func (s *Server) commit(ctx context.Context, events []eventwire.Checked) ([]engine.Result, error) {
	start := time.Now()
	cctx, cancel := context.WithTimeout(ctx, s.cfg.CommitTimeout)
	defer cancel()
	results, err := s.cluster.AppendChecked(cctx, events)
	if err != nil {
		if ctx.Err() == nil && cctx.Err() != nil {
			return nil, fmt.Errorf("%w: batch of %d events not committed within %s; retry with the same event ids: %v",
				errUnavailable, len(events), s.cfg.CommitTimeout, err)
		}
		return nil, fmt.Errorf("append %d events: %w", len(events), err)
	}
	s.metrics.commitSeconds.Observe(time.Since(start).Seconds())
	s.metrics.batchSize.Observe(float64(len(events)))
	if len(results) != len(events) {
		return nil, fmt.Errorf("append %d events: cluster returned %d results", len(events), len(results))
	}
	return results, nil
}

// visibleIndex is the index receipts carry as applied_index: a Raft
// index at which the call's new events are applied, so that a read given
// it as min_index on any node waits until that node has them. The cluster
// answers once the leader has applied them; this node, when it is a
// follower catching up, may not have yet, and then the entry's own index
// is returned without waiting for the local apply: the events are
// committed, and a follower that rejoined after a partition or restart
// must not hold producers while it replays (issue 13, item 2). Calls
// whose events were all duplicates carry this node's applied index: their
// entries were applied before the call.
func (s *Server) visibleIndex(results []engine.Result) uint64 {
	var last uint64
	for _, r := range results {
		if r.Err == nil && !r.Receipt.Duplicate {
			last = max(last, r.Receipt.Index)
		}
	}
	return max(last, s.cluster.AppliedIndex())
}

func (s *Server) checkBatchLimits(events [][]byte) error {
	if len(events) > s.cfg.MaxBatchEvents {
		return fmt.Errorf("%w: %d events in one batch, limit %d", errTooLarge, len(events), s.cfg.MaxBatchEvents)
	}
	size := 0
	for _, ev := range events {
		size += len(ev)
	}
	if size > s.cfg.MaxBatchBytes {
		return fmt.Errorf("%w: %d bytes of events in one batch, limit %d", errTooLarge, size, s.cfg.MaxBatchBytes)
	}
	return nil
}

func (s *Server) countOutcomes(out []appendOutcome) {
	for _, o := range out {
		switch {
		case o.err != nil:
			s.metrics.appended.WithLabelValues("rejected").Inc()
		case o.result.Duplicate:
			s.metrics.appended.WithLabelValues("duplicate").Inc()
		default:
			s.metrics.appended.WithLabelValues("appended").Inc()
		}
	}
}

// auditDenied records a refused append. Successful appends need no access
// record (they are the log itself), but an attempt to write into another
// tenant's log is a security event.
func (s *Server) auditDenied(ctx context.Context, p *principal, tenant string, err error) {
	s.audit.begin(ctx, p, trailv1.Category_CATEGORY_SECURITY, tenant).finish(err)
}
