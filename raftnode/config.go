package raftnode

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"golang.org/x/mod/sumdb/note"

	"github.com/trailaudit/trail/engine"
)

// Config describes one node. ID, Dir and one of BindAddr or Listener are
// required; every other zero field takes the default documented on it.
type Config struct {
	// ID names the node in the Raft configuration, for all time.
	ID string
	// Dir holds the Raft log ("raft/wal" or "raft/log"), Raft snapshots
	// ("raft/snapshots")
	// and the engine ("engine-NNNNNN"; the number grows with each snapshot
	// restore).
	Dir string

	// BindAddr is the TCP address to listen on, shared by Raft and
	// forwarding. Ignored when Listener is set.
	BindAddr string
	// Listener, when set, is used instead of listening on BindAddr.
	Listener net.Listener
	// AdvertiseAddr is the address other nodes dial; by default the
	// listener's address.
	AdvertiseAddr string
	// APIAddr is this node's client-facing address, reported by Status.
	APIAddr string
	// Cosigner, when set, is this node's own checkpoint key: the node
	// cosigns a checkpoint a peer shows it only if the root is the one it
	// computes from its own copy (cosign.go). CosignerKey is its verifier
	// key, reported by Status.
	Cosigner    note.Signer
	CosignerKey string
	// TLS, when set, wraps every Raft and forwarding connection. It serves
	// as both server and client configuration: set Certificates, RootCAs,
	// and for mutual TLS ClientCAs and ClientAuth. ServerName defaults to
	// the host of the dialled address.
	TLS *tls.Config
	// Dial opens outgoing TCP connections (default net.Dialer). Tests use it
	// to inject network faults.
	Dial func(ctx context.Context, addr string) (net.Conn, error)

	// Engine is the template for the engine's options; Dir is set by the
	// node.
	Engine engine.Options
	// LogStore selects the Raft log: LogStoreWAL (default) or
	// LogStorePebble. A node keeps the kind it was created with.
	LogStore LogStoreKind
	// FS, when set, is the filesystem of the engine's Pebble and of the
	// Pebble log store. Tests use a crashable in-memory FS to drop unsynced
	// writes. Snapshots need the real filesystem, so leave FS nil where
	// they matter.
	FS vfs.FS

	// Raft timing; defaults suit a LAN: 1s heartbeat and election timeout,
	// 500ms leader lease, 20ms commit timeout.
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	CommitTimeout      time.Duration

	// TrailingLogs is how many entries stay in the Raft log after a
	// snapshot, so that a follower that fell behind catches up from the
	// log rather than from a full snapshot. SnapshotThreshold is how many
	// new entries trigger a snapshot, checked every SnapshotInterval.
	//
	// Defaults: 20480, 16384 and 5 minutes. At peak ingest the batcher
	// fills entries to MaxBatchBytes (1 MiB); ~50 MiB/s of events is ~50
	// entries/s, so 20480 entries keep ~7 minutes of history, and the log
	// holds at most TrailingLogs+SnapshotThreshold entries, ~36 GiB in the
	// worst case of full entries. At lower rates entries are small and the
	// same count costs little disk. A snapshot streams the whole engine,
	// so snapshots are kept rare.
	TrailingLogs      uint64
	SnapshotThreshold uint64
	SnapshotInterval  time.Duration
	// SnapshotRetain is how many snapshots stay on disk (default 2).
	SnapshotRetain int

	// Group commit. An entry carries at most MaxBatchEvents events (default
	// 10000) and about MaxBatchBytes of encoded events (default 1 MiB); the
	// batcher waits at most Linger (default 1ms) for more callers while
	// entries are in flight, and flushes at once when none is. At most
	// MaxInFlight entries (default 4) are proposed and not yet applied.
	MaxBatchEvents int
	MaxBatchBytes  int
	Linger         time.Duration
	MaxInFlight    int

	// RetiredEngineGrace is how long an engine replaced by a snapshot
	// restore stays open for readers that got it from Engine() without a
	// reference (default 1 minute). Readers that use AcquireEngine or View
	// are safe for as long as they hold it.
	RetiredEngineGrace time.Duration

	// Logger receives the node's and Raft's logs (default: discarded).
	Logger *slog.Logger

	// SealInterval is how often the leader looks for partitions whose month
	// has ended and proposes their seal (default 1 minute).
	SealInterval time.Duration
	// Clock is the sequencer's clock: it stamps each Raft entry's sequencer
	// time (kept monotonic whatever it returns) and tells the sealer when a
	// month has ended. Default time.Now; tests and simulations replace it.
	Clock func() time.Time

	// PruneFilter, when set, is applied by the state machine to the leaves
	// of every prune command before the engine prunes them, and returns the
	// leaves that may go (legal holds: compliance.FilterHeld). It runs on
	// every replica at the command's index, so it must be deterministic:
	// read only e, never the clock. Its errors are handled like the
	// engine's (refusals such as engine.ErrNotFound reject the command).
	PruneFilter PruneFilter

	// ClusterID, when set, returns the cluster's ID as the engine's
	// replicated state records it ("" when it does not), for the answers
	// to other nodes' probes (Probe). Trail keeps the ID in a setting that
	// only traild knows; raftnode just reports it.
	ClusterID func(e *engine.Engine) string

	// Inspector, when set, examines every batch of events on the leader
	// before it is proposed; the events it returns (anomaly records) are
	// proposed in the same Raft entry, after the batch.
	Inspector Inspector
}

// LogStoreKind names a Raft log implementation. Both fsync every append.
type LogStoreKind string

const (
	// LogStoreWAL is hashicorp/raft-wal: segment files written once and
	// fsync'd. It is the default: about 2-3x cheaper per fsync'd append
	// than Pebble for 1 MiB entries (see the package benchmarks).
	LogStoreWAL LogStoreKind = "wal"
	// LogStorePebble is a dedicated Pebble instance; it has no dependency
	// beyond Pebble and runs on any vfs.FS.
	LogStorePebble LogStoreKind = "pebble"
)

func (c *Config) setDefaults() error {
	if c.ID == "" {
		return errors.New("raftnode: Config.ID is required")
	}
	if c.Dir == "" {
		return errors.New("raftnode: Config.Dir is required")
	}
	if c.Listener == nil && c.BindAddr == "" {
		return errors.New("raftnode: Config.BindAddr or Config.Listener is required")
	}
	switch c.LogStore {
	case "":
		c.LogStore = LogStoreWAL
	case LogStoreWAL, LogStorePebble:
	default:
		return fmt.Errorf("raftnode: unknown Config.LogStore %q", c.LogStore)
	}
	setDuration(&c.HeartbeatTimeout, time.Second)
	setDuration(&c.ElectionTimeout, time.Second)
	setDuration(&c.LeaderLeaseTimeout, 500*time.Millisecond)
	setDuration(&c.CommitTimeout, 20*time.Millisecond)
	setDuration(&c.SnapshotInterval, 5*time.Minute)
	setDuration(&c.Linger, time.Millisecond)
	setDuration(&c.RetiredEngineGrace, time.Minute)
	if c.TrailingLogs == 0 {
		c.TrailingLogs = 20480
	}
	if c.SnapshotThreshold == 0 {
		c.SnapshotThreshold = 16384
	}
	setInt(&c.SnapshotRetain, 2)
	setInt(&c.MaxBatchEvents, 10000)
	setInt(&c.MaxBatchBytes, 1<<20)
	setInt(&c.MaxInFlight, 4)
	if c.Engine.MaxEntryBytes <= 0 {
		c.Engine.MaxEntryBytes = engine.DefaultMaxEntry
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.Dial == nil {
		var d net.Dialer
		c.Dial = func(ctx context.Context, addr string) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) }
	}
	if c.SealInterval <= 0 {
		c.SealInterval = time.Minute
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	return nil
}

func setDuration(d *time.Duration, def time.Duration) {
	if *d <= 0 {
		*d = def
	}
}

func setInt(v *int, def int) {
	if *v <= 0 {
		*v = def
	}
}
