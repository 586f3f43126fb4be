package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/mod/sumdb/note"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"

	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
	"github.com/trailaudit/trail/shred"
)

// Defaults of Config.
const (
	DefaultMaxBatchEvents = 10_000
	DefaultMaxBatchBytes  = 8 << 20
	DefaultAuditQueue     = 10_000
	DefaultTailBuffer     = 1024
	DefaultTailStall      = 5 * time.Second
	DefaultCommitTimeout  = 10 * time.Second
	// DefaultRetentionInterval is how often the leader sweeps retention.
	DefaultRetentionInterval = time.Hour
	// recvSlack is what a request may carry beyond MaxBatchBytes of events:
	// field tags and lengths.
	recvSlack = 64 << 10
)

// Config configures a Server. Cluster and Signer are required, and so is
// one of TLS or Plaintext: the server never falls back to plaintext.
type Config struct {
	// Cluster is the replication layer: writes, settings and the engine.
	Cluster Cluster
	// Signer is the log key; it signs every checkpoint the server serves.
	Signer note.Signer
	// VerifierKey is the log key's public half as note verifier key text
	// ("name+hash+base64key"), carried in export bundles so that they are
	// self-contained. Optional: without it a bundle names the key by name
	// and hash, which identify it as well.
	VerifierKey string

	// Sealing is the cluster's sealing secret (crypto-shredding, package
	// shred): with it this node seals the payloads of tenants that ask for
	// it and opens them for readers. Every node must hold the same one
	// (traild derives it from the log key). Nil: this node neither seals
	// nor opens, and says so.
	Sealing *shred.Keyring

	// TLS, when set, serves gRPC and HTTP over TLS with its certificates.
	TLS *tls.Config
	// ClientCAs, when set (with TLS), requires every client to present a
	// certificate signed by one of these CAs (mTLS). API keys are still
	// required: the certificate proves the machine, the key the role.
	ClientCAs *x509.CertPool
	// TracerProvider, when set, traces gRPC calls, REST requests and the
	// server's own work with OpenTelemetry (see tracing.go); nil: off.
	TracerProvider trace.TracerProvider

	// Plaintext must be true to serve without TLS (loopback, tests, or
	// behind a terminating proxy).
	Plaintext bool

	// MaxBatchEvents and MaxBatchBytes bound one AppendBatch or one
	// AppendStream message (defaults 10000 events, 8 MiB of encoded
	// events). Larger batches fail with INVALID_ARGUMENT naming the limit
	// (REST: 413).
	MaxBatchEvents int
	MaxBatchBytes  int

	// CommitTimeout bounds how long one append call waits for the cluster
	// to commit it, leader elections included (default 10s); past it the
	// call fails with UNAVAILABLE and retry advice.
	CommitTimeout time.Duration

	// AuditQueue bounds the access-audit events waiting to be appended
	// (default 10000); beyond it they are dropped and counted.
	AuditQueue int

	// TailBuffer bounds the entries buffered for one Tail stream (default
	// 1024); TailStall is how long a full buffer may stay full before the
	// consumer is cut with RESOURCE_EXHAUSTED (default 5s).
	TailBuffer int
	TailStall  time.Duration

	// IntegrityInterval is the time between two scheduled integrity
	// passes, which re-hash this node's stored entries and tiles and
	// compare roots with the peers (default 1h; negative disables them,
	// VerifyIntegrity still works). IntegrityRate bounds the entries
	// re-hashed per second (default 50000; negative: no limit).
	IntegrityInterval time.Duration
	IntegrityRate     float64

	// RetentionInterval is how often the leader runs the retention sweep
	// (default 1h; negative disables the background sweep, leaving only
	// RunRetentionSweep).
	RetentionInterval time.Duration
	// Now is the clock of retention: a sweep prunes what expired by Now
	// (default time.Now; tests move it years ahead).
	Now func() time.Time

	// Witnesses are C2SP tlog-witnesses (package witness) the leader
	// submits every partition's new checkpoints to, every WitnessInterval
	// (default 1m; negative: only WitnessNow). Their cosignatures are
	// replicated and served appended to the checkpoint notes they cosign.
	Witnesses       []Witness
	WitnessInterval time.Duration

	// Console serves the web console (package server/console) under
	// /console/ on the HTTP listener. It holds no privileges: it calls
	// this REST API with the key its user signs in with.
	Console bool

	Logger *slog.Logger

	// searchBytes overrides defaultSearchBytes, bodyTimeout
	// bodyReadTimeout, in tests.
	searchBytes int
	bodyTimeout time.Duration
}

func (c *Config) setDefaults() {
	if c.MaxBatchEvents <= 0 {
		c.MaxBatchEvents = DefaultMaxBatchEvents
	}
	if c.MaxBatchBytes <= 0 {
		c.MaxBatchBytes = DefaultMaxBatchBytes
	}
	if c.CommitTimeout <= 0 {
		c.CommitTimeout = DefaultCommitTimeout
	}
	if c.AuditQueue <= 0 {
		c.AuditQueue = DefaultAuditQueue
	}
	if c.TailBuffer <= 0 {
		c.TailBuffer = DefaultTailBuffer
	}
	if c.TailStall <= 0 {
		c.TailStall = DefaultTailStall
	}
	if c.bodyTimeout <= 0 {
		c.bodyTimeout = bodyReadTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.RetentionInterval == 0 {
		c.RetentionInterval = DefaultRetentionInterval
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.WitnessInterval == 0 {
		c.WitnessInterval = DefaultWitnessInterval
	}
	if c.searchBytes <= 0 {
		c.searchBytes = defaultSearchBytes
	}
}

func (c *Config) check() error {
	switch {
	case c.Cluster == nil:
		return errors.New("server: Config.Cluster is required")
	case c.Signer == nil:
		return errors.New("server: Config.Signer is required")
	case c.TLS == nil && !c.Plaintext:
		return errors.New("server: Config.TLS is nil: set it, or set Plaintext to serve without TLS")
	case c.TLS != nil && c.Plaintext:
		return errors.New("server: Config.TLS and Plaintext are both set")
	case c.ClientCAs != nil && c.TLS == nil:
		return errors.New("server: Config.ClientCAs (mTLS) needs Config.TLS")
	}
	if c.VerifierKey != "" {
		v, err := note.NewVerifier(c.VerifierKey)
		if err != nil {
			return fmt.Errorf("server: Config.VerifierKey: %w", err)
		}
		if v.Name() != c.Signer.Name() || v.KeyHash() != c.Signer.KeyHash() {
			return fmt.Errorf("server: Config.VerifierKey is key %s+%08x, the signer is %s+%08x",
				v.Name(), v.KeyHash(), c.Signer.Name(), c.Signer.KeyHash())
		}
	}
	return nil
}

// tlsConfig returns the server TLS configuration, or nil for plaintext.
func (c *Config) tlsConfig() *tls.Config {
	if c.TLS == nil {
		return nil
	}
	t := c.TLS.Clone()
	if t.MinVersion < tls.VersionTLS12 {
		t.MinVersion = tls.VersionTLS12
	}
	if c.ClientCAs != nil {
		t.ClientCAs = c.ClientCAs
		t.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return t
}

// Server serves the Trail API. Create it with New, run it with Serve and
// stop it with Shutdown.
type Server struct {
	cfg        Config
	log        *slog.Logger
	cluster    Cluster
	keys       keyStore
	space      spaceGate
	metrics    *metrics
	tracer     trace.Tracer
	audit      *auditLog
	notify     *notifier
	signs      signCache
	cosigns    signCache
	keyCache   engineCache[shred.DataKey]
	sealsCache engineCache[bool]
	// integrity is set by Serve (integrity.go).
	integrity *integrity

	grpc    *grpc.Server
	http    *http.Server
	gateway *gateway
	mem     *memListener

	// life is cancelled when Shutdown starts; long-lived work (tails,
	// append streams, the notifier) ends with it.
	life     context.Context
	stopLife context.CancelFunc
	bg       sync.WaitGroup

	mu    sync.Mutex
	state serverState
	// caughtUpOnce latches when this node first applied all it knew to be
	// committed (see caughtUp).
	caughtUpOnce atomic.Bool

	// sweepMu runs one retention sweep at a time on this node.
	sweepMu sync.Mutex

	// witnesses are the configured witnesses; witnessMu runs one round
	// of submissions at a time (witnessing.go).
	witnesses []*witnessPeer
	witnessMu sync.Mutex
	witnessed engineCache[[]byte]
}

type serverState int

const (
	stateNew serverState = iota
	stateServing
	stateStopped
)

// New builds a Server from cfg. It listens on nothing until Serve.
func New(cfg Config) (*Server, error) {
	cfg.setDefaults()
	if err := cfg.check(); err != nil {
		return nil, err
	}
	peers, err := newWitnessPeers(cfg.Witnesses)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Logger, cluster: cfg.Cluster, keys: keyStore{cluster: cfg.Cluster, cache: newKeyCache()},
		space: spaceGate{probe: func() error { return cfg.Cluster.Engine().CheckSpace() }, every: spaceCheckEvery}}
	s.witnesses = peers
	s.life, s.stopLife = context.WithCancel(context.Background())
	s.tracer = s.newTracer()
	s.audit = newAuditLog(cfg.Cluster, cfg.Cluster.Status().ID, cfg.AuditQueue, cfg.CommitTimeout, s.log)
	s.metrics = newMetrics(cfg.Cluster, func() float64 { return float64(len(s.audit.queue)) })
	s.audit.metrics = s.metrics
	s.notify = newNotifier(cfg.Cluster, s.log)
	s.grpc = s.newGRPCServer()
	s.mem = newMemListener()
	gw, err := s.newGateway()
	if err != nil {
		return nil, err
	}
	s.gateway = gw
	s.http = &http.Server{
		Handler:           s.httpHandler(),
		TLSConfig:         cfg.tlsConfig(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	return s, nil
}

// maxRecvBytes is the largest gRPC message accepted.
func (s *Server) maxRecvBytes() int { return s.cfg.MaxBatchBytes + recvSlack }

func (s *Server) newGRPCServer() *grpc.Server {
	opts := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(s.maxRecvBytes()),
		grpc.ForceServerCodecV2(newIngestCodec()),
		grpc.ChainUnaryInterceptor(s.unaryInterceptor),
		grpc.ChainStreamInterceptor(s.streamInterceptor),
		// Tails are long-lived; keepalives find dead consumers.
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: time.Minute, Timeout: 20 * time.Second}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
	}
	if t := s.cfg.tlsConfig(); t != nil {
		opts = append(opts, grpc.Creds(gatewayCreds{credentials.NewTLS(t)}))
	}
	opts = append(opts, s.grpcTracing()...)
	g := grpc.NewServer(opts...)
	g.RegisterService(ingestServiceDesc(), &ingestService{s: s})
	trailv1.RegisterReadServiceServer(g, &readService{s: s})
	trailv1.RegisterProofServiceServer(g, &proofService{s: s})
	trailv1.RegisterAdminServiceServer(g, &adminService{s: s})
	trailv1.RegisterComplianceServiceServer(g, &complianceService{s: s})
	return g
}

// Registry is the server's Prometheus registry, served at /metrics.
func (s *Server) Registry() *prometheus.Registry { return s.metrics.reg }

// Serve serves gRPC on grpcLis and HTTP (REST, metrics, health) on
// httpLis until Shutdown, and returns nil once Shutdown has finished, or
// the first error that stopped a listener. Serve may be called once.
func (s *Server) Serve(grpcLis, httpLis net.Listener) error {
	s.mu.Lock()
	if s.state != stateNew {
		s.mu.Unlock()
		return errors.New("server: Serve called twice or after Shutdown")
	}
	s.state = stateServing
	s.bg.Add(2)
	go func() { defer s.bg.Done(); s.notify.run(s.life) }()
	go func() { defer s.bg.Done(); s.audit.run() }()
	s.bg.Add(1)
	go func() { defer s.bg.Done(); s.runRetention(s.life) }()
	s.bg.Add(1)
	go func() { defer s.bg.Done(); s.runWitnessing(s.life) }()
	s.startIntegrity()
	s.mu.Unlock()

	errc := make(chan error, 3)
	go func() { errc <- s.grpc.Serve(grpcLis) }()
	go func() { errc <- s.grpc.Serve(s.mem) }()
	go func() { errc <- s.serveHTTP(httpLis) }()
	s.log.Info("serving", "grpc", grpcLis.Addr().String(), "http", httpLis.Addr().String(),
		"tls", s.cfg.TLS != nil, "mtls", s.cfg.ClientCAs != nil)
	var first error
	for range 3 {
		if err := <-errc; err != nil && first == nil {
			first = err
			// One listener failing takes the server down: a node serving
			// gRPC but not health checks would be routed to and never fixed.
			go s.Shutdown(context.Background())
		}
	}
	s.bg.Wait()
	if first != nil {
		return fmt.Errorf("server: serve: %w", first)
	}
	return nil
}

func (s *Server) serveHTTP(lis net.Listener) error {
	var err error
	if s.http.TLSConfig != nil {
		err = s.http.ServeTLS(lis, "", "")
	} else {
		err = s.http.Serve(lis)
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops the server gracefully: it stops accepting connections,
// ends Tail streams and idle AppendStreams (they would otherwise never
// finish), lets in-flight calls, appends above all, complete, and then
// appends the remaining access-audit events. When ctx ends first, the
// remaining calls are cut and ctx's error is returned.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	prev := s.state
	s.state = stateStopped
	s.mu.Unlock()
	if prev == stateStopped {
		return nil
	}
	s.log.Info("shutting down")
	s.stopLife()
	httpErr := s.http.Shutdown(ctx)
	stopped := make(chan struct{})
	go func() { s.grpc.GracefulStop(); close(stopped) }()
	forced := false
	select {
	case <-stopped:
	case <-ctx.Done():
		forced = true
		s.grpc.Stop()
		<-stopped
	}
	s.gateway.close()
	if prev == stateServing {
		s.audit.close(ctx)
	}
	switch {
	case forced:
		return fmt.Errorf("server: shutdown: in-flight calls cut: %w", ctx.Err())
	case httpErr != nil:
		return fmt.Errorf("server: shutdown: %w", httpErr)
	}
	return nil
}
