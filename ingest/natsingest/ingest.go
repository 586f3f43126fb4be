package natsingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/trailaudit/trail/engine"
	"github.com/trailaudit/trail/engine/eventwire"
)

// Cluster appends canonical, validated events and answers, per event, a
// receipt (Duplicate when the event_id was logged before) or why the event
// was refused. raftnode.Node is one: it is the path every API append
// takes.
type Cluster interface {
	AppendChecked(ctx context.Context, events []eventwire.Checked) ([]engine.Result, error)
}

// Config is an Ingester's configuration.
type Config struct {
	Settings
	// Cluster appends the events. Required.
	Cluster Cluster
	// Space, when set, is asked before each append whether the disk may
	// take more (engine.Engine.CheckSpace). Inside the replicated state
	// machine a write cannot be refused, so a full disk is refused here:
	// the batch waits on the bus.
	Space func() error
	// Options configure the NATS connection: TLS, credentials.
	Options []nats.Option
	// CommitTimeout bounds one append, elections included (default 30s).
	CommitTimeout time.Duration
	// RetryDelay is how long JetStream holds back a message whose append
	// failed for a reason that may pass (no leader, node closing, full
	// disk) before it redelivers it (default 1s).
	RetryDelay time.Duration
	// IdleWait is how long one fetch waits for a first message (default
	// 5s); FillWait how long it then waits for the batch to fill (default
	// 5ms): the latency a lone event pays for batching.
	IdleWait time.Duration
	FillWait time.Duration
	Logger   *slog.Logger
	// Registerer, when set, registers the ingester's metrics
	// (trail_nats_messages_total, trail_nats_dead_letters_total).
	Registerer prometheus.Registerer
}

// Ingester consumes events from JetStream and appends them.
type Ingester struct {
	cfg     Config
	scope   scope
	log     *slog.Logger
	metrics *metrics
}

// New checks cfg and returns an Ingester; Run starts it.
func New(cfg Config) (*Ingester, error) {
	if cfg.Cluster == nil {
		return nil, errors.New("natsingest: no cluster")
	}
	if err := cfg.Settings.Check(); err != nil {
		return nil, fmt.Errorf("natsingest: %w", err)
	}
	cfg.Settings = cfg.Settings.withDefaults()
	sc, err := newScope(cfg.Tenants)
	if err != nil {
		return nil, fmt.Errorf("natsingest: %w", err)
	}
	if cfg.CommitTimeout <= 0 {
		cfg.CommitTimeout = 30 * time.Second
	}
	if cfg.RetryDelay <= 0 {
		cfg.RetryDelay = time.Second
	}
	if cfg.IdleWait <= 0 {
		cfg.IdleWait = 5 * time.Second
	}
	if cfg.FillWait <= 0 {
		cfg.FillWait = 5 * time.Millisecond
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	log = log.With("component", "nats-ingest")
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, fmt.Errorf("natsingest: metrics: %w", err)
	}
	return &Ingester{cfg: cfg, scope: sc, log: log, metrics: m}, nil
}

// Back-off between attempts to set the stream and consumer up again
// after a failure (server down, stream missing its dead-letter subject).
const (
	minSetupBackoff = 250 * time.Millisecond
	maxSetupBackoff = 10 * time.Second
)

// Run connects and consumes until ctx ends, then returns nil. The
// connection reconnects by itself; a failure to set up the stream or
// consumer, or to fetch from it, is logged and retried with back-off, so
// that a bus that is down or misconfigured never stops the node. A batch
// being appended when ctx ends is finished first (within CommitTimeout),
// so that its messages are settled rather than left to AckWait.
func (in *Ingester) Run(ctx context.Context) error {
	opts := append([]nats.Option{
		nats.Name("traild"),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
	}, in.cfg.Options...)
	nc, err := nats.Connect(in.cfg.URL, opts...)
	if err != nil {
		return fmt.Errorf("natsingest: connect: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("natsingest: %w", err)
	}
	backoff := minSetupBackoff
	for ctx.Err() == nil {
		cons, err := in.setup(ctx, js)
		if err == nil {
			in.log.Info("consuming", "stream", in.cfg.Stream, "consumer", in.cfg.Consumer,
				"subjects", in.cfg.Subjects, "dead_letter_subject", in.cfg.DeadLetterSubject)
			backoff = minSetupBackoff
			err = in.consume(ctx, js, cons)
		}
		if ctx.Err() != nil {
			break
		}
		in.log.Warn("bus ingest interrupted; retrying", "err", err, "in", backoff)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
		}
		backoff = min(2*backoff, maxSetupBackoff)
	}
	return nil
}

// setup finds or creates the stream, checks that dead letters have a
// stream to go to, and creates or updates the durable consumer.
func (in *Ingester) setup(ctx context.Context, js jetstream.JetStream) (jetstream.Consumer, error) {
	s := in.cfg.Settings
	_, err := js.Stream(ctx, s.Stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		_, err = js.CreateStream(ctx, jetstream.StreamConfig{
			Name:     s.Stream,
			Subjects: append(append([]string(nil), s.Subjects...), s.DeadLetterSubject),
			Storage:  jetstream.FileStorage,
		})
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			err = nil // another node created it first
		} else if err == nil {
			in.log.Info("created stream", "stream", s.Stream)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", s.Stream, err)
	}
	// A poison message is terminated only once its dead letter is
	// stored; without a stream for them, none could ever be.
	if _, err := js.StreamNameBySubject(ctx, s.DeadLetterSubject); err != nil {
		return nil, fmt.Errorf("dead-letter subject %s: no stream stores it: %w", s.DeadLetterSubject, err)
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, s.Stream, jetstream.ConsumerConfig{
		Durable:        s.Consumer,
		FilterSubjects: s.Subjects,
		DeliverPolicy:  jetstream.DeliverAllPolicy,
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        s.AckWait,
		// Never give up on a message: one that fails for a passing
		// reason is retried until it is appended, and one that can
		// never be appended is dead-lettered, not dropped.
		MaxDeliver:    -1,
		MaxAckPending: max(1000, 4*s.Batch),
	})
	if err != nil {
		return nil, fmt.Errorf("consumer %s: %w", s.Consumer, err)
	}
	return cons, nil
}

// consume fetches and handles batches until ctx ends or a fetch fails.
func (in *Ingester) consume(ctx context.Context, js jetstream.JetStream, cons jetstream.Consumer) error {
	for ctx.Err() == nil {
		msgs, err := in.fetch(ctx, cons)
		if len(msgs) > 0 {
			in.handle(ctx, js, msgs)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// fetch waits up to IdleWait for one message, then takes what else is
// there up to Batch messages and BatchBytes, waiting at most FillWait:
// an idle bus costs one request per IdleWait, and a lone event is not
// held back for a batch that is not coming.
func (in *Ingester) fetch(ctx context.Context, cons jetstream.Consumer) ([]jetstream.Msg, error) {
	fctx, cancel := context.WithTimeout(ctx, in.cfg.IdleWait)
	defer cancel()
	first, err := cons.Fetch(1, jetstream.FetchContext(fctx))
	if err != nil {
		return nil, idle(ctx, err)
	}
	msgs, err := drain(first)
	if len(msgs) == 0 || in.cfg.Batch == 1 {
		return msgs, idle(ctx, err)
	}
	rest, err := cons.Fetch(in.cfg.Batch-1, jetstream.FetchMaxBytes(in.cfg.BatchBytes), jetstream.FetchMaxWait(in.cfg.FillWait))
	if err != nil {
		return msgs, nil // the next round fetches again
	}
	more, _ := drain(rest) // a refused or cut-short fill costs nothing
	return append(msgs, more...), nil
}

func drain(b jetstream.MessageBatch) ([]jetstream.Msg, error) {
	var msgs []jetstream.Msg
	for m := range b.Messages() {
		msgs = append(msgs, m)
	}
	return msgs, b.Error()
}

// idle filters the errors of a fetch that ended without a message because
// none came: they are not failures.
func idle(ctx context.Context, err error) error {
	if err == nil || ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) {
		return nil
	}
	return fmt.Errorf("fetch: %w", err)
}

// handle decodes a batch, dead-letters what can never be appended,
// appends the rest in one call and settles every message by its result.
func (in *Ingester) handle(ctx context.Context, js jetstream.JetStream, msgs []jetstream.Msg) {
	events := make([]eventwire.Checked, 0, len(msgs))
	held := make([]jetstream.Msg, 0, len(msgs))
	for _, m := range msgs {
		c, err := Decode(m.Headers(), m.Data())
		if err == nil {
			err = in.scope.check(string(c.Event.TenantID))
		}
		if err != nil {
			in.deadLetter(ctx, js, m, err)
			continue
		}
		events = append(events, c)
		held = append(held, m)
	}
	if len(events) == 0 {
		return
	}
	if in.cfg.Space != nil {
		if err := in.cfg.Space(); err != nil {
			in.log.Warn("not appending: disk space", "err", err, "events", len(events))
			in.retry(ctx, held)
			return
		}
	}
	// The append is not cut short by ctx: a shutdown lets the batch in
	// flight finish, so its messages are settled now rather than
	// redelivered after AckWait.
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), in.cfg.CommitTimeout)
	defer cancel()
	results, err := in.cfg.Cluster.AppendChecked(actx, events)
	if err == nil && len(results) != len(events) {
		err = fmt.Errorf("cluster returned %d results for %d events", len(results), len(events))
	}
	if err != nil {
		// Nothing is known of these events: some may be committed.
		// Redelivery is safe, since appends are idempotent by event_id.
		in.log.Warn("append failed; messages will be redelivered", "err", err, "events", len(events))
		in.retry(ctx, held)
		return
	}
	var appended, dups int
	for j, r := range results {
		m := held[j]
		switch {
		case r.Err == nil:
			if r.Receipt.Duplicate {
				dups++
			} else {
				appended++
			}
			if err := m.Ack(); err != nil {
				// The event is in the log: a lost ack costs a
				// redelivery, which is answered as a duplicate.
				in.log.Warn("ack", "subject", m.Subject(), "err", err)
			}
		case permanent(r.Err):
			in.deadLetter(ctx, js, m, r.Err)
		default:
			in.log.Warn("append refused an event; it will be redelivered", "subject", m.Subject(), "err", r.Err)
			in.retry(ctx, []jetstream.Msg{m})
		}
	}
	in.metrics.messages.WithLabelValues(resultAppended).Add(float64(appended))
	in.metrics.messages.WithLabelValues(resultDuplicate).Add(float64(dups))
	in.log.Debug("batch", "messages", len(msgs), "appended", appended, "duplicates", dups)
}

// permanent reports whether an append's refusal of one event will be
// the same however often it is retried.
func permanent(err error) bool {
	return errors.Is(err, engine.ErrInvalidEvent) || errors.Is(err, engine.ErrEntryTooLarge) ||
		errors.Is(err, engine.ErrEventIDConflict)
}

// retry hands messages back for redelivery: after RetryDelay, or at once
// when shutting down, so that another node's consumer takes them without
// waiting for AckWait.
func (in *Ingester) retry(ctx context.Context, msgs []jetstream.Msg) {
	in.metrics.messages.WithLabelValues(resultRetried).Add(float64(len(msgs)))
	for _, m := range msgs {
		var err error
		if ctx.Err() != nil {
			err = m.Nak()
		} else {
			err = m.NakWithDelay(in.cfg.RetryDelay)
		}
		if err != nil {
			// Unacknowledged all the same: redelivered after AckWait.
			in.log.Debug("nak", "subject", m.Subject(), "err", err)
		}
	}
}
