package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/grpc"

	"github.com/trailaudit/trail/engine"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// errSlowConsumer cuts a Tail whose consumer let its buffer stay full.
var errSlowConsumer = errors.New("tail consumer too slow: resume from the last leaf received")

// notifier wakes Tail streams when the engine applies a Raft command.
//
// One goroutine per server waits on Cluster.WaitApplied for the index after
// the current one and then wakes every waiter by closing a channel, so a
// burst of applies costs one wake-up per waiter, not one per apply, and
// nothing in the apply path knows tails exist: a tail can never slow
// ingestion. A waiter takes the channel before it reads the engine, so an
// apply between its read and its wait still wakes it.
type notifier struct {
	cluster Cluster
	log     *slog.Logger

	mu sync.Mutex
	ch chan struct{}
}

func newNotifier(c Cluster, log *slog.Logger) *notifier {
	return &notifier{cluster: c, log: log, ch: make(chan struct{})}
}

// wait returns a channel closed at the next apply.
func (n *notifier) wait() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.ch
}

func (n *notifier) broadcast() {
	n.mu.Lock()
	defer n.mu.Unlock()
	close(n.ch)
	n.ch = make(chan struct{})
}

func (n *notifier) run(ctx context.Context) {
	failing := false
	for ctx.Err() == nil {
		next := n.cluster.AppliedIndex() + 1
		err := n.cluster.WaitApplied(ctx, next)
		switch {
		case err == nil:
			failing = false
			n.broadcast()
			continue
		case ctx.Err() != nil:
			return
		case !failing:
			// The cluster closing under the server, say. Logged once per
			// streak; retried slowly rather than spun on.
			n.log.Warn("tail notifier: waiting for applied index", "index", next, "err", err)
			failing = true
		}
		select {
		case <-ctx.Done():
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// Tail streams a tenant's new entries, across partition boundaries, from
// the given position (default: the current end of the log). A reader
// goroutine fills a bounded buffer from the engine and a sender drains it
// into the stream; when the buffer stays full for TailStall, the consumer
// is cut with RESOURCE_EXHAUSTED. Entries are read from storage, never held
// for slow consumers, so ingestion never waits for a tail.
func (rs *readService) Tail(req *trailv1.TailRequest, stream grpc.ServerStreamingServer[trailv1.TailResponse]) error {
	ctx := stream.Context()
	tenant := req.GetTenantId()
	if err := checkTenant(tenant); err != nil {
		return err
	}
	ac, err := rs.s.authorize(ctx, permRead, trailv1.Category_CATEGORY_DATA_ACCESS, tenant)
	if err != nil {
		return err
	}
	t := &tail{s: rs.s, eng: rs.s.cluster.Engine(), tenant: tenant, buf: make(chan *trailv1.StoredEntry, rs.s.cfg.TailBuffer)}
	err = t.start(ctx, req.GetPartition(), req.GetFromLeaf())
	ac.set("partition", req.GetPartition())
	ac.setUint("from_leaf", req.GetFromLeaf())
	// Recorded when the tail starts: a stream can last for days.
	ac.finish(err)
	if err != nil {
		return err
	}
	rs.s.metrics.tailActive.Inc()
	defer rs.s.metrics.tailActive.Dec()
	err = t.run(ctx, stream)
	if errors.Is(err, errSlowConsumer) {
		rs.s.metrics.tailCut.Inc()
	}
	return err
}

// tail is the state of one Tail stream. Its position is the next leaf to
// send: (month, leaf), or none yet when the tenant has no partition.
type tail struct {
	s      *Server
	eng    *engine.Engine // the cluster's engine as of the last wake-up
	tenant string
	buf    chan *trailv1.StoredEntry

	month engine.Month
	leaf  uint64
	known bool // month names a partition the tenant has, or will have
}

func (t *tail) start(ctx context.Context, partition string, fromLeaf uint64) error {
	if partition != "" {
		p, err := parsePartition(t.tenant, partition)
		if err != nil {
			return err
		}
		t.month, t.leaf, t.known = p.Month, fromLeaf, true
		return nil
	}
	parts, err := t.eng.Partitions(ctx, t.tenant)
	if err != nil {
		return err
	}
	if n := len(parts); n > 0 {
		t.month, t.leaf, t.known = parts[n-1].Month, parts[n-1].Size, true
	}
	return nil
}

// run reads and sends until the stream ends, the consumer is cut or the
// server shuts down. The reader is waited for before returning: it reads
// the engine, which must not be closed under it. The sender is not: on a
// stalled stream it is blocked in Send, and returning from the handler is
// the only way to end the call. It then ends when gRPC closes the stream
// (the status goes out behind the unsent data, so when the client drains
// it or the connection dies), holding nothing but the buffered entries.
func (t *tail) run(ctx context.Context, stream grpc.ServerStreamingServer[trailv1.TailResponse]) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stopOnShutdown := context.AfterFunc(t.s.life, func() {
		cancel(fmt.Errorf("%w: server shutting down; resume on another node", errUnavailable))
	})
	defer stopOnShutdown()

	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		cancel(t.read(ctx))
	}()
	go func() { cancel(t.send(ctx, stream)) }()
	<-ctx.Done()
	cancel(nil)
	<-readerDone
	return context.Cause(ctx)
}

func (t *tail) send(ctx context.Context, stream grpc.ServerStreamingServer[trailv1.TailResponse]) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case e := <-t.buf:
			if err := stream.Send(&trailv1.TailResponse{Entry: e}); err != nil {
				return err
			}
		}
	}
}

func (t *tail) read(ctx context.Context) error {
	for {
		wake := t.s.notify.wait()
		if err := t.catchUp(ctx); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-wake:
		}
	}
}

// catchUp pushes every entry from the position to the end of the log.
func (t *tail) catchUp(ctx context.Context) error {
	// Taken afresh on every wake-up, and held while reading: a snapshot
	// restore replaces the cluster's engine, and a tail outlives any one.
	eng, release := t.s.cluster.AcquireEngine()
	defer release()
	t.eng = eng
	for {
		if !t.known {
			moved, err := t.advance(ctx)
			if err != nil || !moved {
				return err
			}
		}
		info, err := t.eng.PartitionInfo(ctx, engine.Partition{Tenant: t.tenant, Month: t.month})
		switch {
		case errors.Is(err, engine.ErrNotFound):
			// Not started yet, or the caller named a month the tenant
			// skipped: the next partition that exists is where to go.
			info.Size = 0
		case err != nil:
			return err
		}
		for ; t.leaf < info.Size; t.leaf++ {
			if err := t.pushLeaf(ctx, t.leaf); err != nil {
				return err
			}
		}
		// Sequencer time is monotonic per tenant, so once a later partition
		// exists nothing more lands in this one; but entries may have landed
		// since info was read, so the size is read again before moving on.
		moved, err := t.advance(ctx)
		if err != nil || !moved {
			return err
		}
	}
}

// advance moves the position to the start of the tenant's first partition
// after the current month (or its first partition at all), once this
// month holds no more than has been sent. It reports whether it moved.
func (t *tail) advance(ctx context.Context) (bool, error) {
	parts, err := t.eng.Partitions(ctx, t.tenant)
	if err != nil {
		return false, err
	}
	for _, pi := range parts {
		if t.known && !t.month.Before(pi.Month) {
			if pi.Month == t.month && pi.Size > t.leaf {
				return true, nil // more to send here first: catchUp loops
			}
			continue
		}
		t.month, t.leaf, t.known = pi.Month, 0, true
		return true, nil
	}
	return false, nil
}

func (t *tail) pushLeaf(ctx context.Context, leaf uint64) error {
	se, err := t.eng.Entry(ctx, engine.Partition{Tenant: t.tenant, Month: t.month}, leaf)
	if err != nil {
		return err
	}
	e, err := t.s.storedEntryProto(se)
	if err != nil {
		return err
	}
	return t.push(ctx, e)
}

// push buffers e, waiting at most TailStall for room.
func (t *tail) push(ctx context.Context, e *trailv1.StoredEntry) error {
	select {
	case t.buf <- e:
		return nil
	default:
	}
	timer := time.NewTimer(t.s.cfg.TailStall)
	defer timer.Stop()
	select {
	case t.buf <- e:
		return nil
	case <-timer.C:
		return fmt.Errorf("%w (%d entries buffered for %s)", errSlowConsumer, cap(t.buf), t.s.cfg.TailStall)
	case <-ctx.Done():
		return ctx.Err()
	}
}
