package main

import (
	"time"
)

// Config is traild's complete configuration. Every field is a setting in
// settings(), which gives its names in the file, the environment and on
// the command line, its default and its documentation.
type Config struct {
	NodeID      string
	ClusterID   string
	DataDir     string
	LogName     string
	LogKeyFile  string
	LogVKeyFile string
	// SealingKeyFile holds the sealing secret of crypto-shredding; empty:
	// derived from the log key.
	SealingKeyFile string
	// SealingPreviousKeyFiles are the secrets a rotation moves away from
	// ("log_key": the one derived from the log key).
	SealingPreviousKeyFiles []string

	GRPCAddr          string
	HTTPAddr          string
	GRPCAdvertise     string
	InsecurePlaintext bool
	TLS               struct{ CertFile, KeyFile, ClientCAFile string }

	Raft RaftConfig

	Bootstrap bool
	Peers     []string
	Join      string
	// BootstrapProbeTimeout bounds how long a new bootstrapping node waits
	// for its peers to say whether they already form a cluster.
	BootstrapProbeTimeout time.Duration

	API    APIConfig
	Engine EngineConfig
	// NATS is bus ingest from NATS JetStream, off while its URL is empty.
	NATS NATSConfig

	// IntegrityInterval is the time between scheduled integrity passes,
	// negative when they are off; IntegrityRate bounds the entries they
	// re-hash per second.
	IntegrityInterval time.Duration
	IntegrityRate     int

	// RetentionInterval is the time between two retention sweeps by the
	// leader, negative when the background sweep is off.
	RetentionInterval time.Duration

	// Witnesses are "VKEY URL" items: C2SP tlog-witnesses the leader
	// submits new checkpoints to every WitnessInterval (negative: off).
	Witnesses       []string
	WitnessInterval time.Duration

	LogLevel        string
	LogFormat       string
	ShutdownTimeout time.Duration
	// DebugAddr, when set, serves Go's runtime profiles (/debug/pprof/).
	DebugAddr string
	// Console serves the web console under /console/ on the HTTP listener.
	Console bool
	// OTel configures OpenTelemetry tracing; off unless OTel.Endpoint is set.
	OTel OTelConfig

	// set records where each explicitly configured setting came from
	// ("file", "env" or "flag"), by file key. Settings absent from it have
	// their defaults; some (node_id, cluster_id, log_name) then follow the
	// data directory instead.
	set map[string]string
}

// RaftConfig is the replication layer's part of Config.
type RaftConfig struct {
	Bind      string
	Advertise string
	TLS       struct{ CertFile, KeyFile, CAFile string }
	LogStore  string

	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	CommitTimeout      time.Duration

	TrailingLogs      uint64
	SnapshotThreshold uint64
	SnapshotInterval  time.Duration
	SnapshotRetain    int

	BatchMaxEvents int
	BatchMaxBytes  int64
	BatchLinger    time.Duration
	MaxInFlight    int
}

// APIConfig holds the API server's limits.
type APIConfig struct {
	MaxBatchEvents int
	MaxBatchBytes  int64
	CommitTimeout  time.Duration
	AuditQueue     int
	TailBuffer     int
	TailStall      time.Duration
}

// EngineConfig holds the storage engine's limits.
type EngineConfig struct {
	CacheSize    int64
	MaxEntrySize int64
	MinFreeSpace int64
	OpenSegments int
}

// NATSConfig is bus ingest's part of Config (package natsingest).
type NATSConfig struct {
	URL               string
	Stream            string
	Subjects          []string
	Consumer          string
	DeadLetterSubject string
	Tenants           []string
	Batch             int
	BatchMaxBytes     int64
	AckWait           time.Duration
	CredsFile         string
	TLS               struct{ CAFile, CertFile, KeyFile string }
}

// explicit reports whether the setting with file key key was configured
// rather than left at its default.
func (c *Config) explicit(key string) bool {
	_, ok := c.set[key]
	return ok
}

// OTelConfig is where traces go: an OTLP/gRPC collector.
type OTelConfig struct {
	// Endpoint is the collector's host:port; empty: tracing off.
	Endpoint string
	// Insecure sends to the collector without TLS.
	Insecure bool
	// SamplePercent is the share of new traces recorded (0-100); a trace
	// a caller started is recorded when the caller's was.
	SamplePercent int
}
