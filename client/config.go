package client

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"google.golang.org/grpc"

	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// Defaults of Config. The batch limits stay well below the server's
// (10000 events, 8 MiB) so that a batch is never refused for its size.
const (
	DefaultBatchEvents   = 500
	DefaultBatchBytes    = 1 << 20
	DefaultFlushInterval = 50 * time.Millisecond
	DefaultBufferEvents  = 10_000
	DefaultSenders       = 4
	DefaultCallTimeout   = 15 * time.Second
	DefaultMinBackoff    = 50 * time.Millisecond
	DefaultMaxBackoff    = 5 * time.Second
	DefaultSegmentBytes  = 16 << 20
)

// Config configures a Client. Addrs and one of TLS or Plaintext are
// required.
type Config struct {
	// Addrs are gRPC addresses (host:port) of any nodes of one cluster.
	// Every node accepts appends and forwards them to the leader; the
	// client uses one at a time and moves to the next when a call fails
	// in a way another node may not (UNAVAILABLE, a timeout, a refused
	// connection).
	Addrs []string
	// Token is the API key sent with appends (a producer key).
	Token string
	// ReadToken is the API key Prove sends (a key with read permission,
	// e.g. an auditor's, since producer keys may only append). Default:
	// Token.
	ReadToken string
	// TLS, when set, is the client's TLS configuration. Plaintext must be
	// true to connect without TLS: the client never falls back to it.
	TLS       *tls.Config
	Plaintext bool

	// Tenant fills in tenant_id of events that have none.
	Tenant string
	// Source fills in source_service of events that have none.
	Source string

	// BatchEvents and BatchBytes bound one batch: a batch is sent when it
	// reaches either, or FlushInterval after its first event arrived.
	BatchEvents   int
	BatchBytes    int
	FlushInterval time.Duration
	// BufferEvents bounds the events accepted and not yet acknowledged.
	// When it is reached, Append waits for room until its context ends:
	// this is the backpressure a producer feels when Trail is slow or down.
	BufferEvents int
	// Senders is how many batches are in flight at once. Events of
	// different batches may reach the log in either order.
	Senders int
	// CallTimeout bounds one append call to one node; past it the batch is
	// resent, with the same event ids, to the next node.
	CallTimeout time.Duration
	// MinBackoff and MaxBackoff bound the exponential wait between
	// attempts to deliver one batch.
	MinBackoff, MaxBackoff time.Duration

	// SpoolDir, when set, makes accepted events durable on local disk: an
	// Append returns only after the event is written and fsync'd to an
	// append-only segment file in this directory. Segments are replayed
	// by the next client opened on the directory and deleted once every
	// event in them is acknowledged. A segment whose tail is torn (a
	// crash in mid-write, before any Append returned for that record) is
	// replayed up to the tear and logged; a segment corrupt before its
	// end fails New with ErrSpoolCorrupt, naming the file.
	SpoolDir string
	// SpoolSegmentBytes is the size at which a segment is closed and a
	// new one started.
	SpoolSegmentBytes int64

	// OnReject is called, from a sender goroutine, for each event the
	// server refused for good (invalid, or its event_id already used for
	// a different event). Appends whose Pending nobody waits on (replayed
	// spool events, the audit middleware's) are reported only here. Such
	// an event is not retried and leaves the spool. It must not block,
	// nor Append to this client: a sender waits for it.
	OnReject func(ev *trailv1.Event, err error)

	// DialOptions are added to the client's own when dialing each node.
	DialOptions []grpc.DialOption
	// Logger receives retries, refusals and spool repairs (default
	// slog.Default()).
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	if c.BatchEvents <= 0 {
		c.BatchEvents = DefaultBatchEvents
	}
	if c.BatchBytes <= 0 {
		c.BatchBytes = DefaultBatchBytes
	}
	if c.FlushInterval <= 0 {
		c.FlushInterval = DefaultFlushInterval
	}
	if c.BufferEvents <= 0 {
		c.BufferEvents = DefaultBufferEvents
	}
	if c.Senders <= 0 {
		c.Senders = DefaultSenders
	}
	if c.CallTimeout <= 0 {
		c.CallTimeout = DefaultCallTimeout
	}
	if c.MinBackoff <= 0 {
		c.MinBackoff = DefaultMinBackoff
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = DefaultMaxBackoff
	}
	c.MaxBackoff = max(c.MaxBackoff, c.MinBackoff)
	if c.SpoolSegmentBytes <= 0 {
		c.SpoolSegmentBytes = DefaultSegmentBytes
	}
	if c.ReadToken == "" {
		c.ReadToken = c.Token
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

func (c *Config) check() error {
	switch {
	case len(c.Addrs) == 0:
		return errors.New("client: config: Addrs is empty")
	case c.TLS == nil && !c.Plaintext:
		return errors.New("client: config: set TLS, or Plaintext to connect without TLS")
	case c.TLS != nil && c.Plaintext:
		return errors.New("client: config: TLS and Plaintext contradict each other")
	}
	for i, a := range c.Addrs {
		if a == "" {
			return fmt.Errorf("client: config: Addrs[%d] is empty", i)
		}
	}
	return nil
}
