package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/trailaudit/trail/ingest/natsingest"
	"github.com/trailaudit/trail/raftnode"
	"github.com/trailaudit/trail/server"
)

// daemon is one running traild: a Raft node with the API server in front.
type daemon struct {
	cfg   *Config
	env   *env
	log   *slog.Logger
	id    *identity // owned by the reconcile goroutine once running
	key   *logKey
	lis   *listeners
	bound addrs
	api   string // the gRPC address this node advertises
	tls   apiTLSConfig
	node  *raftnode.Node
	srv   *server.Server
	// tracer exports the server's spans; nil when tracing is off.
	tracer *sdktrace.TracerProvider
	// ingest consumes events from NATS JetStream; nil when it is off.
	ingest *natsingest.Ingester
	// unlock releases the data directory once the node is closed.
	unlock func()
}

// startDaemon does everything that can refuse to start, in an order that
// leaves nothing behind when it does: read-only checks of the data
// directory, key and certificates; then the ports; then, for a new node
// that is to bootstrap, the question to its peers whether a cluster
// already exists; then the first writes (key, identity); then the node
// and the server.
func startDaemon(ctx context.Context, e *env, cfg *Config, log *slog.Logger) (_ *daemon, err error) {
	d := &daemon{cfg: cfg, env: e, log: log}
	p, err := planDataDir(cfg, e.rand, e.now())
	if err != nil {
		return nil, err
	}
	d.id = p.id
	if !p.genKey {
		if d.key, err = loadLogKey(cfg.LogKeyFile, cfg.LogVKeyFile, cfg.LogName, log); err != nil {
			return nil, err
		}
		if err := loadSealingKey(cfg.SealingKeyFile, cfg.SealingPreviousKeyFiles, d.key, log); err != nil {
			return nil, err
		}
	}
	if d.tls, err = apiTLS(cfg); err != nil {
		return nil, err
	}
	raftTLSConf, err := raftTLS(cfg)
	if err != nil {
		return nil, err
	}
	natsOpts, err := natsOptions(cfg)
	if err != nil {
		return nil, err
	}
	if d.lis, err = listenAll(ctx, cfg); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			d.lis.close()
		}
	}()
	d.bound = d.lis.addrs()
	// A new node configured to bootstrap first asks its peers whether they
	// already form a cluster, and joins it if so (formation.go). Read-only,
	// like everything above: a refusal leaves the directory as it was.
	if err := d.decideFormation(ctx, p, raftTLSConf); err != nil {
		return nil, err
	}
	if d.unlock, err = lockDataDir(cfg.DataDir); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			d.unlock()
		}
	}()
	if p.fresh {
		if err := d.initialize(p); err != nil {
			return nil, err
		}
	}
	d.api = grpcAdvertise(cfg, d.bound.GRPC, firstNonEmpty(cfg.Raft.Advertise, d.bound.Raft))
	if err := d.openNode(ctx, raftTLSConf); err != nil {
		return nil, err
	}
	if d.tracer, err = newTracerProvider(ctx, cfg.OTel, d.id.NodeID); err != nil {
		d.node.Close()
		return nil, err
	}
	var tp trace.TracerProvider
	if d.tracer != nil {
		tp = d.tracer
	}
	if d.srv, err = server.New(serverConfig(cfg, d.node, d.key, d.tls, tp, log)); err != nil {
		d.node.Close()
		return nil, fmt.Errorf("server: %w", err)
	}
	// Bus ingest's metrics are served with the server's at /metrics.
	if d.ingest, err = newIngester(cfg, natsOpts, d.node, d.srv, d.srv.Registry(), log); err != nil {
		d.node.Close()
		return nil, err
	}
	return d, nil
}

// initialize writes a new data directory: the log key when this node
// creates the cluster's, then the identity.
func (d *daemon) initialize(p *plan) error {
	vkey, err := p.commit(d.cfg, d.env.rand)
	if err != nil {
		return err
	}
	if vkey != "" {
		d.log.Info("generated the log key", "private", d.cfg.LogKeyFile, "public", d.cfg.LogVKeyFile, "vkey", vkey)
		if d.key, err = loadLogKey(d.cfg.LogKeyFile, d.cfg.LogVKeyFile, d.cfg.LogName, d.log); err != nil {
			return err
		}
		if err := loadSealingKey(d.cfg.SealingKeyFile, d.cfg.SealingPreviousKeyFiles, d.key, d.log); err != nil {
			return err
		}
	}
	d.log.Info("initialized the data directory", "dir", d.cfg.DataDir, "node", d.id.NodeID,
		"cluster", d.id.ClusterID, "bootstrap", d.id.BootstrapPending, "join", d.id.JoinPending)
	return nil
}

// openNode starts the Raft node, checks it belongs to the cluster the data
// directory says, and bootstraps Raft when that is still pending.
func (d *daemon) openNode(ctx context.Context, t *tls.Config) error {
	ck, err := loadCosignKey(d.cfg.DataDir, d.cfg.LogName, d.id.NodeID, d.env.rand)
	if err != nil {
		return err
	}
	cfg := nodeConfig(d.cfg, d.lis.raft, d.api, t, d.log)
	cfg.Cosigner, cfg.CosignerKey = ck.signer, ck.vkey
	d.log.Info("checkpoint cosigning key of this node (publish it with the log's)", "vkey", ck.vkey,
		"file", filepath.Join(d.cfg.DataDir, cosignVKeyFile))
	node, err := raftnode.Open(ctx, cfg)
	if err != nil {
		return err
	}
	d.node = node
	if err := d.checkReplicatedClusterID(); err != nil {
		node.Close()
		return err
	}
	if !d.id.BootstrapPending {
		return nil
	}
	if err := d.bootstrapRaft(ctx); err != nil {
		node.Close()
		return err
	}
	return nil
}

func (d *daemon) bootstrapRaft(ctx context.Context) error {
	for _, p := range d.id.Peers {
		if p.ID == d.id.NodeID && p.Address != d.node.Addr() {
			return fmt.Errorf("peers list this node %s at %s, but it advertises %s (raft.advertise)", p.ID, p.Address, d.node.Addr())
		}
	}
	err := d.node.Bootstrap(ctx, d.id.Peers)
	switch {
	case errors.Is(err, raftnode.ErrAlreadyBootstrapped):
		d.log.Info("raft: already bootstrapped")
	case err != nil:
		return err
	default:
		d.log.Info("raft: bootstrapped a new cluster", "voters", max(len(d.id.Peers), 1))
	}
	d.id.BootstrapPending = false
	return writeIdentity(d.cfg.DataDir, d.id)
}

// run serves until ctx ends (SIGINT, SIGTERM) or something fails, then
// shuts down: the server first, so in-flight appends finish while the node
// can still commit them, then the node.
func (d *daemon) run(ctx context.Context) error {
	d.log.Info("traild started", "node", d.id.NodeID, "cluster", d.cfg.ClusterID, "log", d.cfg.LogName,
		"key", d.key.id(), "data_dir", d.cfg.DataDir, "raft", d.bound.Raft, "raft_advertise", d.node.Addr(),
		"grpc", d.bound.GRPC, "http", d.bound.HTTP, "tls", d.tls.tls != nil, "mtls", d.tls.clientCAs != nil)
	serveErr := make(chan error, 1)
	go func() { serveErr <- d.srv.Serve(d.lis.grpc, d.lis.http) }()
	if d.env.started != nil {
		d.env.started(d.bound)
	}
	if d.lis.debug != nil {
		dctx, stopDebug := context.WithCancel(ctx)
		defer stopDebug()
		go func() {
			if err := serveDebug(dctx, d.lis.debug); err != nil {
				d.log.Warn("debug listener stopped", "err", err)
			}
		}()
		d.log.Info("serving runtime profiles", "debug_addr", d.lis.debug.Addr().String())
	}
	rctx, stopReconcile := context.WithCancel(ctx)
	defer stopReconcile()
	reconcileErr := make(chan error, 1)
	go func() { reconcileErr <- d.reconcile(rctx) }()
	// Bus ingest stops first on shutdown, finishing the batch it is
	// appending, while the server and node still run.
	ictx, stopIngest := context.WithCancel(ctx)
	defer stopIngest()
	var ingestErr chan error
	if d.ingest != nil {
		ingestErr = make(chan error, 1)
		go func() { ingestErr <- d.ingest.Run(ictx) }()
	}

	var failure error
	serving := true
	for failure == nil && ctx.Err() == nil {
		select {
		case <-ctx.Done():
			d.log.Info("shutting down: signal received")
		case err := <-serveErr:
			serving = false
			failure = fmt.Errorf("server stopped: %w", err)
			if err == nil {
				failure = errors.New("server stopped unexpectedly")
			}
		case err := <-reconcileErr:
			reconcileErr = nil // done; nil channels block forever
			failure = err
		case err := <-ingestErr:
			ingestErr = nil
			if err != nil {
				failure = fmt.Errorf("nats ingest: %w", err)
			}
		}
	}
	stopIngest()
	if ingestErr != nil {
		<-ingestErr
	}
	stopReconcile()
	if reconcileErr != nil {
		<-reconcileErr
	}
	return errors.Join(failure, d.shutdown(ctx, serving, serveErr))
}

// shutdown stops the server within shutdown_timeout, then closes the node.
func (d *daemon) shutdown(ctx context.Context, serving bool, serveErr <-chan error) error {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.cfg.ShutdownTimeout)
	defer cancel()
	start := time.Now()
	var errs []error
	if err := d.srv.Shutdown(sctx); err != nil {
		errs = append(errs, err)
	}
	if serving {
		if err := <-serveErr; err != nil {
			errs = append(errs, err)
		}
	}
	if err := d.node.Close(); err != nil {
		errs = append(errs, err)
	}
	if d.tracer != nil {
		// The last spans go out before traild does; a collector that
		// does not answer costs at most what is left of the timeout.
		if err := d.tracer.Shutdown(sctx); err != nil {
			d.log.Warn("traces not flushed", "err", err)
		}
	}
	d.unlock()
	d.log.Info("traild stopped", "took", time.Since(start).Round(time.Millisecond))
	return errors.Join(errs...)
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
