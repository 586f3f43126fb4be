package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
	"github.com/trailaudit/trail/siem"
)

// siemFlags configure "trailctl siem".
type siemFlags struct {
	net       netCommand
	sink      string
	format    string
	state     string
	hmacFile  string
	sinkCA    string
	fromStart bool
	batch     int
	flush     time.Duration
}

func cmdSIEM(ctx context.Context, e *env, args []string) error {
	var f siemFlags
	fs := newFlagSet("siem")
	f.net.register(fs)
	fs.StringVar(&f.sink, "sink", "", "where records go: tcp://HOST:PORT or tls://HOST:PORT (syslog, octet-counted) or https://URL (webhook)")
	fs.StringVar(&f.format, "format", "ocsf", "record format: ocsf (JSON) or cef")
	fs.StringVar(&f.state, "state", "", "keep the forwarding position in `FILE`, to resume where the last run stopped")
	fs.StringVar(&f.hmacFile, "hmac-key-file", "", "sign webhook bodies with the key in `FILE` (required for a webhook)")
	fs.StringVar(&f.sinkCA, "sink-ca", "", "verify a tls:// or https:// sink with the PEM CA bundle in `FILE` instead of the system roots")
	fs.BoolVar(&f.fromStart, "from-start", false, "with no saved position, start at the tenant's first entry (default: at the end of the log)")
	fs.IntVar(&f.batch, "batch", 100, "records per delivery, at most")
	fs.DurationVar(&f.flush, "flush", time.Second, "deliver a partial batch after this long")
	pos, err := parseCommand(e, "siem", fs, args, 1, 1)
	if err != nil {
		return err
	}
	fw, err := f.forwarder(pos[0])
	if err != nil {
		return err
	}
	sink, err := siem.Open(ctx, f.sink, fw.sinkOpts)
	if err != nil {
		return ioError(err)
	}
	defer sink.Close()
	fw.sink = sink
	conn, err := f.net.connect(e)
	if err != nil {
		return err
	}
	defer conn.Close()
	fw.read = trailv1.NewReadServiceClient(conn)
	fw.proofs = grpcSource{client: trailv1.NewProofServiceClient(conn), timeout: f.net.conn.timeout}
	fw.stderr = e.stderr
	return fw.run(ctx)
}

func (f *siemFlags) forwarder(tenant string) (*forwarder, error) {
	if err := validTenant(tenant); err != nil {
		return nil, usageErrorf("%v", err)
	}
	format, err := siem.ParseFormat(f.format)
	if err != nil {
		return nil, usageErrorf("--format: %v", err)
	}
	switch {
	case f.sink == "":
		return nil, usageErrorf("--sink is required")
	case f.state == "":
		return nil, usageErrorf("--state FILE is required: without it a restart would skip or repeat records")
	case f.batch < 1 || f.batch > 10000:
		return nil, usageErrorf("--batch must be 1 to 10000")
	case f.flush <= 0:
		return nil, usageErrorf("--flush must be positive")
	}
	opts := siem.SinkOptions{Format: format}
	if f.hmacFile != "" {
		key, err := readFileLimit(f.hmacFile, 4096)
		if err != nil {
			return nil, err
		}
		if opts.HMACKey = []byte(strings.TrimSpace(string(key))); len(opts.HMACKey) < 16 {
			return nil, usageErrorf("--hmac-key-file: the key must be at least 16 bytes")
		}
	}
	if f.sinkCA != "" {
		pem, err := readFileLimit(f.sinkCA, 1<<20)
		if err != nil {
			return nil, err
		}
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, usageErrorf("--sink-ca %s: no PEM certificate in it", f.sinkCA)
		}
		opts.TLS = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	}
	st, err := loadSIEMState(f.state, tenant)
	if err != nil {
		return nil, err
	}
	return &forwarder{tenant: tenant, format: format, statePath: f.state, state: st, fromStart: f.fromStart,
		batch: f.batch, flush: f.flush, sinkOpts: opts}, nil
}

// siemState is where forwarding resumes: the next entry to deliver.
type siemState struct {
	Tenant    string `json:"tenant"`
	Partition string `json:"partition"`
	NextLeaf  uint64 `json:"next_leaf"`
}

func loadSIEMState(path, tenant string) (*siemState, error) {
	b, err := readFileLimit(path, 4096)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var st siemState
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, ioError(fmt.Errorf("siem state %s: %w", path, err))
	}
	if st.Tenant != tenant {
		return nil, usageErrorf("siem state %s is tenant %q's, not %q's: give each tenant its own state file", path, st.Tenant, tenant)
	}
	if err := validPartition(st.Partition); err != nil {
		return nil, ioError(fmt.Errorf("siem state %s: %w", path, err))
	}
	return &st, nil
}

// forwarder delivers a tenant's entries to a sink in log order, at least
// once: it saves its position only after a delivery succeeds, so a crash
// between the two resends one batch (each record carries its event id and
// leaf for the SIEM to drop the repeat), and nothing is ever skipped.
type forwarder struct {
	tenant    string
	format    siem.Format
	statePath string
	state     *siemState
	fromStart bool
	batch     int
	flush     time.Duration
	sinkOpts  siem.SinkOptions
	sink      siem.Sink
	read      trailv1.ReadServiceClient
	proofs    grpcSource
	stderr    io.Writer
}

// run forwards until ctx ends (a normal stop) or an error that retrying
// cannot fix.
func (fw *forwarder) run(ctx context.Context) error {
	req, err := fw.start(ctx)
	if err != nil {
		return err
	}
	failures := 0
	for {
		progressed, err := fw.stream(ctx, req)
		if ctx.Err() != nil {
			return nil
		}
		if progressed {
			failures = 0
		}
		if _, isRPC := status.FromError(err); !isRPC {
			return err // rendering or saving the position: retrying cannot help
		}
		code := status.Code(err)
		if code != codes.ResourceExhausted && code != codes.Unavailable {
			return wrapRPC("Tail", err)
		}
		failures++
		fmt.Fprintf(fw.stderr, "trailctl siem: %v; resuming at %s leaf %d\n", err, req.GetPartition(), req.GetFromLeaf())
		if !sleepCtx(ctx, backoff(failures)) {
			return nil
		}
	}
}

// start is the Tail request for the saved position, the tenant's first
// entry, or the end of the log.
func (fw *forwarder) start(ctx context.Context) (*trailv1.TailRequest, error) {
	req := &trailv1.TailRequest{TenantId: fw.tenant}
	switch {
	case fw.state != nil:
		req.Partition, req.FromLeaf = fw.state.Partition, fw.state.NextLeaf
	case fw.fromStart:
		parts, err := fw.proofs.Partitions(ctx, fw.tenant)
		if err != nil {
			return nil, err
		}
		if len(parts) > 0 {
			req.Partition = parts[0]
		}
	}
	return req, nil
}

// stream runs one Tail stream, delivering batches and advancing req past
// each delivered one. It reports whether anything was delivered.
func (fw *forwarder) stream(ctx context.Context, req *trailv1.TailRequest) (bool, error) {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := fw.read.Tail(sctx, req)
	if err != nil {
		return false, err
	}
	entries := make(chan *trailv1.StoredEntry, fw.batch)
	recvErr := make(chan error, 1)
	go func() {
		defer close(entries)
		for {
			resp, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				err = status.Error(codes.Unavailable, "server ended the stream")
			}
			if err != nil {
				recvErr <- err
				return
			}
			select {
			case entries <- resp.GetEntry():
			case <-sctx.Done():
				return
			}
		}
	}()
	progressed := false
	var pending []*trailv1.StoredEntry
	timer := time.NewTimer(fw.flush)
	defer timer.Stop()
	deliver := func() error {
		if len(pending) == 0 {
			return nil
		}
		if err := fw.deliver(ctx, pending); err != nil {
			return err
		}
		last := pending[len(pending)-1]
		req.Partition, req.FromLeaf = last.GetPartition(), last.GetLeafIndex()+1
		pending = pending[:0]
		progressed = true
		return nil
	}
	for {
		select {
		case se, ok := <-entries:
			if !ok {
				if err := deliver(); err != nil {
					return progressed, err
				}
				select {
				case err := <-recvErr:
					return progressed, err
				default:
					return progressed, ctx.Err()
				}
			}
			if len(pending) == 0 {
				timer.Reset(fw.flush)
			}
			if pending = append(pending, se); len(pending) >= fw.batch {
				if err := deliver(); err != nil {
					return progressed, err
				}
			}
		case <-timer.C:
			if err := deliver(); err != nil {
				return progressed, err
			}
		case <-ctx.Done():
			// A stop delivers nothing more; what is pending is
			// delivered by the next run, from the saved position.
			return progressed, nil
		}
	}
}

// deliver renders and sends one batch, retrying the sink until it takes
// it or ctx ends, then saves the position after it.
func (fw *forwarder) deliver(ctx context.Context, batch []*trailv1.StoredEntry) error {
	records := make([]siem.Record, 0, len(batch))
	for _, se := range batch {
		if se.GetPruned() || se.GetEntry().GetEvent() == nil {
			continue // pruned by retention: nothing left to forward
		}
		rec, err := siem.RecordOf(fw.format, se, siem.DefaultProduct)
		if err != nil {
			return ioError(err)
		}
		records = append(records, rec)
	}
	for attempt := 1; len(records) > 0; attempt++ {
		// A stop lets the delivery in flight finish (the sink bounds it
		// by its timeout) so that its position is saved: cut short, the
		// SIEM could have taken the batch without the forwarder knowing,
		// and the next run would send it again.
		err := fw.sink.Send(context.WithoutCancel(ctx), records)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		fmt.Fprintf(fw.stderr, "trailctl siem: %v; retrying\n", err)
		if !sleepCtx(ctx, backoff(attempt)) {
			return ctx.Err()
		}
	}
	last := batch[len(batch)-1]
	st := siemState{Tenant: fw.tenant, Partition: last.GetPartition(), NextLeaf: last.GetLeafIndex() + 1}
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(fw.statePath, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("siem state: %w", err)
	}
	fw.state = &st
	return nil
}

// backoff doubles from half a second up to 30 seconds.
func backoff(attempt int) time.Duration {
	d := 500 * time.Millisecond << min(attempt-1, 6)
	return min(d, 30*time.Second)
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
