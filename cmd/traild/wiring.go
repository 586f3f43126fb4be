package main

import (
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"net"

	"go.opentelemetry.io/otel/trace"

	"github.com/trailaudit/trail/compliance"
	"github.com/trailaudit/trail/engine"
	"github.com/trailaudit/trail/raftnode"
	"github.com/trailaudit/trail/server"
)

// nodeConfig translates Config into the replication layer's configuration.
func nodeConfig(c *Config, raftLis net.Listener, apiAddr string, t *tls.Config, log *slog.Logger) raftnode.Config {
	r := c.Raft
	return raftnode.Config{
		ID:            c.NodeID,
		Dir:           c.DataDir,
		Listener:      raftLis,
		AdvertiseAddr: r.Advertise,
		APIAddr:       apiAddr,
		TLS:           t,
		Engine: engine.Options{
			LogName:       c.LogName,
			MaxEntryBytes: int(c.Engine.MaxEntrySize),
			CacheBytes:    c.Engine.CacheSize,
			MinFreeBytes:  c.Engine.MinFreeSpace,
			OpenSegments:  c.Engine.OpenSegments,
		},
		LogStore:           raftnode.LogStoreKind(r.LogStore),
		HeartbeatTimeout:   r.HeartbeatTimeout,
		ElectionTimeout:    r.ElectionTimeout,
		LeaderLeaseTimeout: r.LeaderLeaseTimeout,
		CommitTimeout:      r.CommitTimeout,
		TrailingLogs:       r.TrailingLogs,
		SnapshotThreshold:  r.SnapshotThreshold,
		SnapshotInterval:   r.SnapshotInterval,
		SnapshotRetain:     r.SnapshotRetain,
		MaxBatchEvents:     r.BatchMaxEvents,
		MaxBatchBytes:      int(r.BatchMaxBytes),
		Linger:             r.BatchLinger,
		MaxInFlight:        r.MaxInFlight,
		Logger:             log,
		// The anomaly rules run on the leader before each batch is
		// proposed; their records join the batch's Raft entry.
		Inspector: compliance.NewDetector(),
		// Every replica re-checks legal holds on each prune it applies.
		PruneFilter: compliance.FilterHeld,
		// Nodes about to form a cluster probe their peers (formation.go):
		// the answer carries the ID the cluster replicates.
		ClusterID: probedClusterID,
	}
}

// serverConfig translates Config into the API server's configuration.
func serverConfig(c *Config, cluster server.Cluster, key *logKey, api apiTLSConfig, tp trace.TracerProvider, log *slog.Logger) server.Config {
	// Config.check refused a malformed list before anything was built.
	witnesses, _ := parseWitnesses(c.Witnesses)
	return server.Config{
		Cluster:        cluster,
		Signer:         key.signer,
		VerifierKey:    key.vkey,
		Sealing:        key.sealing,
		TLS:            api.tls,
		ClientCAs:      api.clientCAs,
		Plaintext:      api.tls == nil,
		MaxBatchEvents: c.API.MaxBatchEvents,
		MaxBatchBytes:  int(c.API.MaxBatchBytes),
		CommitTimeout:  c.API.CommitTimeout,
		AuditQueue:     c.API.AuditQueue,
		TailBuffer:     c.API.TailBuffer,
		TailStall:      c.API.TailStall,
		Logger:         log,
		Console:        c.Console,
		TracerProvider: tp,

		IntegrityInterval: c.IntegrityInterval,
		IntegrityRate:     float64(c.IntegrityRate),
		RetentionInterval: c.RetentionInterval,
		Witnesses:         witnesses,
		WitnessInterval:   c.WitnessInterval,
	}
}

// grpcAdvertise is the client-facing address this node reports: the
// configured one, else the bound gRPC address, with a wildcard host
// replaced by the host other nodes know this node by.
func grpcAdvertise(c *Config, bound, raftAddr string) string {
	if c.GRPCAdvertise != "" {
		return c.GRPCAdvertise
	}
	host, port, err := net.SplitHostPort(bound)
	if err != nil || !isWildcard(host) {
		return bound
	}
	if rh, _, err := net.SplitHostPort(raftAddr); err == nil && !isWildcard(rh) {
		return net.JoinHostPort(rh, port)
	}
	return bound
}

// apiTLSConfig is the API's transport security: nil tls means plaintext.
type apiTLSConfig struct {
	tls       *tls.Config
	clientCAs *x509.CertPool
}
