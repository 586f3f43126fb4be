package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// bulkFlags configure "append --jsonl".
type bulkFlags struct {
	file       string
	batch      int
	batchBytes int
	window     int
}

func (b *bulkFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&b.file, "jsonl", "", "append every event of the JSON Lines `FILE` (- for stdin) over one AppendStream")
	fs.IntVar(&b.batch, "batch", 500, "events per batch (one durable ack each)")
	fs.IntVar(&b.batchBytes, "batch-bytes", 4<<20, "encoded bytes per batch, at most (the server's limit is 8 MiB)")
	fs.IntVar(&b.window, "window", 4, "batches in flight before waiting for an ack")
}

func (b *bulkFlags) check() error {
	if b.batch < 1 || b.batchBytes < 1 || b.window < 1 {
		return usageErrorf("--batch, --batch-bytes and --window must be positive")
	}
	return nil
}

// sentBatch is what the receiver needs to report a batch's acks.
type sentBatch struct {
	lines    []int
	ids      []string
	consumed int64 // input bytes consumed through this batch
}

// eventSource cuts the input into batches.
type eventSource struct {
	lines *lineReader
	flags *trailv1.Event // fields set by flags, applied to every event
	held  *trailv1.Event // read but not fitting the previous batch
	line  int
}

func (s *eventSource) nextBatch(maxEvents, maxBytes int) ([]*trailv1.Event, sentBatch, error) {
	var evs []*trailv1.Event
	var meta sentBatch
	size := 0
	for len(evs) < maxEvents {
		ev, line, err := s.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, sentBatch{}, err
		}
		n := proto.Size(ev)
		if len(evs) > 0 && size+n > maxBytes {
			s.held, s.line = ev, line
			break
		}
		evs, size = append(evs, ev), size+n
		meta.lines = append(meta.lines, line)
		meta.ids = append(meta.ids, ev.GetEventId())
	}
	meta.consumed = s.lines.bytes
	return evs, meta, nil
}

func (s *eventSource) next() (*trailv1.Event, int, error) {
	if ev := s.held; ev != nil {
		s.held = nil
		return ev, s.line, nil
	}
	b, err := s.lines.next()
	if err != nil {
		return nil, 0, err
	}
	ev, err := decodeEvent(b)
	if err != nil {
		return nil, 0, fmt.Errorf("line %d: %w", s.lines.line, err)
	}
	return overlay(ev, s.flags), s.lines.line, nil
}

// runBulk appends a JSON Lines file over AppendStream.
func runBulk(ctx context.Context, e *env, f *appendFlags, flagged *trailv1.Event) error {
	if err := f.bulk.check(); err != nil {
		return err
	}
	in, total, closeIn, err := openBulkInput(e, f.bulk.file)
	if err != nil {
		return err
	}
	defer closeIn()
	conn, err := f.net.connect(e)
	if err != nil {
		return err
	}
	defer conn.Close()
	b := &bulkAppender{
		client:   trailv1.NewIngestServiceClient(conn),
		cfg:      f.bulk,
		timeout:  f.net.conn.timeout,
		src:      &eventSource{lines: newLineReader(in, maxEventJSONBytes), flags: flagged},
		out:      newReceiptPrinter(e.stdout, f.net.json),
		progress: newProgress(e.stderr, e.stderrTerminal, total, e.now),
	}
	start := e.now()
	err = b.run(ctx)
	b.progress.finish()
	b.out.summary(e.stderr, e.now().Sub(start))
	if err != nil {
		return err
	}
	if b.out.rejected > 0 {
		return fmt.Errorf("%d events were rejected", b.out.rejected)
	}
	return nil
}

func openBulkInput(e *env, path string) (io.Reader, int64, func(), error) {
	if path == "-" {
		return e.stdin, 0, func() {}, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, nil, ioError(err)
	}
	var size int64
	if fi, err := f.Stat(); err == nil {
		size = fi.Size()
	}
	return f, size, func() { f.Close() }, nil
}

// bulkAppender pipelines batches over one stream: a sender goroutine keeps
// up to --window batches in flight while this goroutine reads their acks,
// which arrive in order, one per batch.
type bulkAppender struct {
	client   trailv1.IngestServiceClient
	cfg      bulkFlags
	timeout  time.Duration
	src      *eventSource
	out      *receiptPrinter
	progress *progress
	events   int64
}

type appendStream = grpc.BidiStreamingClient[trailv1.AppendBatchRequest, trailv1.AppendBatchResponse]

var errAckTimeout = errors.New("no acknowledgement from the server within --timeout")

func (b *bulkAppender) run(ctx context.Context) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stream, err := b.client.AppendStream(ctx)
	if err != nil {
		return wrapRPC("AppendStream", err)
	}
	wd := newAckWatchdog(b.timeout, func() { cancel(errAckTimeout) })
	defer wd.stop()
	inflight := make(chan sentBatch, b.cfg.window-1)
	sendErr := make(chan error, 1)
	go func() { sendErr <- b.send(ctx, stream, inflight, wd) }()
	recvErr := b.receive(stream, inflight, wd)
	if recvErr != nil {
		cancel(recvErr) // unblocks the sender
	}
	serr := <-sendErr
	if cause := context.Cause(ctx); errors.Is(cause, errAckTimeout) {
		return ioError(cause)
	}
	if recvErr != nil {
		return recvErr
	}
	return serr
}

// send reads batches and sends them; it closes inflight and the send side
// of the stream when the input ends or fails, so the receiver collects the
// acks of everything already sent.
func (b *bulkAppender) send(ctx context.Context, stream appendStream, inflight chan<- sentBatch, wd *ackWatchdog) error {
	defer close(inflight)
	defer stream.CloseSend()
	for {
		evs, meta, err := b.src.nextBatch(b.cfg.batch, b.cfg.batchBytes)
		if err != nil {
			return fmt.Errorf("stopped reading input: %w", err)
		}
		if len(evs) == 0 {
			return nil
		}
		select {
		case inflight <- meta:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
		wd.sent()
		if err := stream.Send(&trailv1.AppendBatchRequest{Events: evs}); err != nil {
			// The stream failed; Recv reports why.
			return nil
		}
	}
}

func (b *bulkAppender) receive(stream appendStream, inflight <-chan sentBatch, wd *ackWatchdog) error {
	for meta := range inflight {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return ioError(errors.New("AppendStream: the server closed the stream before acknowledging every batch"))
		}
		if err != nil {
			return wrapRPC("AppendStream", err)
		}
		wd.acked()
		if got, want := len(resp.GetResults()), len(meta.ids); got != want {
			return fmt.Errorf("AppendStream: the server acknowledged %d events of a batch of %d", got, want)
		}
		if err := b.out.batch(meta, resp.GetResults()); err != nil {
			return ioError(err)
		}
		b.events += int64(len(meta.ids))
		b.progress.update(b.events, meta.consumed)
	}
	return nil
}

// ackWatchdog fires when batches are in flight and no ack has arrived for
// the timeout: a stream has no overall deadline (a bulk load may take
// hours), but each ack must come within --timeout.
type ackWatchdog struct {
	mu       sync.Mutex
	timer    *time.Timer
	timeout  time.Duration
	inflight int
}

func newAckWatchdog(timeout time.Duration, fire func()) *ackWatchdog {
	t := time.AfterFunc(timeout, fire)
	t.Stop()
	return &ackWatchdog{timer: t, timeout: timeout}
}

func (w *ackWatchdog) sent() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.inflight++; w.inflight == 1 {
		w.timer.Reset(w.timeout)
	}
}

func (w *ackWatchdog) acked() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.inflight--; w.inflight > 0 {
		w.timer.Reset(w.timeout)
	} else {
		w.timer.Stop()
	}
}

func (w *ackWatchdog) stop() { w.timer.Stop() }
