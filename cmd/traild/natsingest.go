package main

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/trailaudit/trail/ingest/natsingest"
	"github.com/trailaudit/trail/raftnode"
)

// natsSettings translates Config into bus ingest's settings.
func natsSettings(c *Config) natsingest.Settings {
	n := c.NATS
	return natsingest.Settings{
		URL:               n.URL,
		Stream:            n.Stream,
		Subjects:          n.Subjects,
		Consumer:          n.Consumer,
		DeadLetterSubject: n.DeadLetterSubject,
		Tenants:           n.Tenants,
		Batch:             n.Batch,
		BatchBytes:        int(n.BatchMaxBytes),
		AckWait:           n.AckWait,
	}
}

// natsOptions reads bus ingest's credentials and TLS files, so that a
// missing or bad one refuses the start rather than failing every
// reconnection later. nil when bus ingest is off.
func natsOptions(c *Config) ([]nats.Option, error) {
	n := c.NATS
	if n.URL == "" {
		return nil, nil
	}
	var opts []nats.Option
	if n.CredsFile != "" {
		if _, err := os.ReadFile(n.CredsFile); err != nil {
			return nil, fmt.Errorf("nats.creds_file: %w", err)
		}
		opts = append(opts, nats.UserCredentials(n.CredsFile))
	}
	if n.TLS.CAFile == "" && n.TLS.CertFile == "" {
		return opts, nil
	}
	t := &tls.Config{MinVersion: tls.VersionTLS12}
	if n.TLS.CAFile != "" {
		pool, err := loadCertPool(n.TLS.CAFile)
		if err != nil {
			return nil, fmt.Errorf("nats.tls.ca_file: %w", err)
		}
		t.RootCAs = pool
	}
	if n.TLS.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(n.TLS.CertFile, n.TLS.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("nats.tls: load %s and %s: %w", n.TLS.CertFile, n.TLS.KeyFile, err)
		}
		t.Certificates = []tls.Certificate{cert}
	}
	return append(opts, nats.Secure(t)), nil
}

// newIngester is this node's bus ingester, appending through the node as
// the API does; nil when bus ingest is off.
func newIngester(c *Config, opts []nats.Option, node *raftnode.Node, appender natsingest.Cluster, reg prometheus.Registerer, log *slog.Logger) (*natsingest.Ingester, error) {
	if c.NATS.URL == "" {
		return nil, nil
	}
	in, err := natsingest.New(natsingest.Config{
		Settings:      natsSettings(c),
		Cluster:       appender,
		Space:         func() error { return node.Engine().CheckSpace() },
		Options:       opts,
		CommitTimeout: c.API.CommitTimeout,
		Logger:        log,
		Registerer:    reg,
	})
	if err != nil {
		return nil, err
	}
	return in, nil
}
