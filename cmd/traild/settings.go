package main

import (
	"strconv"
	"strings"

	"github.com/trailaudit/trail/engine"
	"github.com/trailaudit/trail/ingest/natsingest"
	"github.com/trailaudit/trail/server"
)

// setting is one configuration value. It has a single name, its key in the
// configuration file ("raft.tls.ca_file" is ca_file in the tls section of
// the raft section); the flag (--raft-tls-ca-file) and the environment
// variable (TRAIL_RAFT_TLS_CA_FILE) are derived from it, so the three can
// never drift apart.
type setting struct {
	key string
	// def is the default as text, parsed like any other source; "" means
	// none, or one computed from other settings, which defDoc describes.
	def    string
	defDoc string
	help   string
	field  func(c *Config) value
}

// flagName is the setting's command-line flag, without dashes.
func (s setting) flagName() string {
	return strings.NewReplacer(".", "-", "_", "-").Replace(s.key)
}

// envName is the setting's environment variable.
func (s setting) envName() string {
	return "TRAIL_" + strings.ToUpper(strings.ReplaceAll(s.key, ".", "_"))
}

func (s setting) defaultDoc() string {
	if s.defDoc != "" {
		return s.defDoc
	}
	return s.def
}

func (s setting) isBool(c *Config) bool {
	_, ok := s.field(c).(boolValue)
	return ok
}

// settings returns every setting, in the order the reference documents
// them. It is a function rather than a package variable so that nothing
// global is mutable.
func settings() []setting {
	itoa := strconv.Itoa
	size := func(n int64) string { return formatSize(n) }
	return []setting{
		// Identity and storage.
		{key: "node_id", defDoc: "the data directory's, else node1",
			help:  "this node's Raft server ID, fixed for the life of its data directory",
			field: func(c *Config) value { return stringValue{&c.NodeID} }},
		{key: "cluster_id", defDoc: "the data directory's, else random at bootstrap",
			help:  "the cluster's ID; a data directory of another cluster is refused. A joining node without one learns it from the cluster",
			field: func(c *Config) value { return stringValue{&c.ClusterID} }},
		{key: "data_dir", def: "./trail-data",
			help:  "holds the node's identity, Raft log, snapshots and storage engine (and by default the log key)",
			field: func(c *Config) value { return stringValue{&c.DataDir} }},
		{key: "log_name", defDoc: "the data directory's, else trail",
			help:  "the log's name: checkpoint origins are <log_name>/<tenant>/<YYYY-MM>, and the log key must carry this name",
			field: func(c *Config) value { return stringValue{&c.LogName} }},
		{key: "log_key_file", defDoc: "<data_dir>/log.skey",
			help:  "the log's signed-note private key (Ed25519), the same on every node; generated at bootstrap when absent together with log_vkey_file",
			field: func(c *Config) value { return stringValue{&c.LogKeyFile} }},
		{key: "log_vkey_file", defDoc: "<data_dir>/log.vkey",
			help:  "the log's public verifier key, what auditors trust; must match log_key_file",
			field: func(c *Config) value { return stringValue{&c.LogVKeyFile} }},
		{key: "sealing_key_file", defDoc: "none: derived from the log key",
			help:  "the sealing secret of crypto-shredding, base64 of at least 32 random bytes (head -c 32 /dev/urandom | base64), the same on every node; set it before any tenant seals, to rotate the log key independently (docs/erasure.md)",
			field: func(c *Config) value { return stringValue{&c.SealingKeyFile} }},
		{key: "sealing_previous_key_files",
			help:  "during a rotation of the sealing secret: the previous secrets' files (log_key for the one derived from the log key), so that data keys wrapped under them still open until trailctl sealing rotate re-wraps them",
			field: func(c *Config) value { return listValue{&c.SealingPreviousKeyFiles} }},

		// Client API.
		{key: "grpc_addr", def: "127.0.0.1:7070",
			help:  "gRPC API listen address",
			field: func(c *Config) value { return stringValue{&c.GRPCAddr} }},
		{key: "http_addr", def: "127.0.0.1:7080",
			help:  "HTTP listen address: REST API, /healthz, /readyz, /metrics, OpenAPI, the web console (/console/)",
			field: func(c *Config) value { return stringValue{&c.HTTPAddr} }},
		{key: "grpc_advertise", defDoc: "grpc_addr; for a wildcard grpc_addr, the raft.advertise host with the grpc_addr port",
			help:  "the gRPC address clients use to reach this node, reported by cluster status",
			field: func(c *Config) value { return stringValue{&c.GRPCAdvertise} }},
		{key: "tls.cert_file",
			help:  "PEM certificate (chain) for the gRPC and HTTP listeners; with tls.key_file enables TLS",
			field: func(c *Config) value { return stringValue{&c.TLS.CertFile} }},
		{key: "tls.key_file",
			help:  "PEM private key of tls.cert_file",
			field: func(c *Config) value { return stringValue{&c.TLS.KeyFile} }},
		{key: "tls.client_ca_file",
			help:  "PEM CA bundle; when set, clients must present a certificate it signed (mTLS), in addition to an API key",
			field: func(c *Config) value { return stringValue{&c.TLS.ClientCAFile} }},
		{key: "debug_addr",
			help:  "loopback address serving Go's runtime profiles at /debug/pprof/ (CPU, heap, goroutines), for operators diagnosing a node; empty: off",
			field: func(c *Config) value { return stringValue{&c.DebugAddr} }},
		{key: "otel.endpoint",
			help:  "OTLP/gRPC collector (host:port) to send OpenTelemetry traces of appends, searches and proofs to; empty: tracing off",
			field: func(c *Config) value { return stringValue{&c.OTel.Endpoint} }},
		{key: "otel.insecure", def: "false",
			help:  "send traces to otel.endpoint without TLS (a collector on loopback or a private network)",
			field: func(c *Config) value { return boolValue{&c.OTel.Insecure} }},
		{key: "otel.sample_percent", def: "100",
			help:  "percent of new traces recorded, 0 to 100; a request whose caller sampled its trace is always recorded",
			field: func(c *Config) value { return percentValue{&c.OTel.SamplePercent} }},
		{key: "console", def: "true",
			help:  "serve the web console at /console/ on the HTTP listener; it is a client of the REST API and calls it with the key its user signs in with",
			field: func(c *Config) value { return boolValue{&c.Console} }},
		{key: "insecure_plaintext", def: "false",
			help:  "allow plaintext on non-loopback listeners that have no TLS configured (API and Raft); plaintext is otherwise allowed only on loopback",
			field: func(c *Config) value { return boolValue{&c.InsecurePlaintext} }},

		// Cluster formation, used only when the data directory is new.
		{key: "bootstrap", def: "false",
			help:  "on a new data directory, create a new cluster whose voters are peers (this node alone when peers is empty). A new data directory with neither bootstrap nor join bootstraps a one-node cluster",
			field: func(c *Config) value { return boolValue{&c.Bootstrap} }},
		{key: "peers",
			help:  "with bootstrap: the initial voters, id=raft_addr,... including this node",
			field: func(c *Config) value { return listValue{&c.Peers} }},
		{key: "join",
			help:  "on a new data directory, ask the member at this Raft address to add this node as a voter (retried until it succeeds)",
			field: func(c *Config) value { return stringValue{&c.Join} }},
		{key: "bootstrap_probe_timeout", def: "10s",
			help:  "with bootstrap and peers, on a new data directory: how long to wait for the other peers to say whether they already form a cluster. If one does, this node joins it instead of bootstrapping a second one; if none does, it bootstraps once every peer has answered or this time has passed",
			field: func(c *Config) value { return durationValue{&c.BootstrapProbeTimeout} }},

		// Raft.
		{key: "raft.bind", def: "127.0.0.1:7000",
			help:  "Raft and forwarding listen address (one port for both)",
			field: func(c *Config) value { return stringValue{&c.Raft.Bind} }},
		{key: "raft.advertise", defDoc: "raft.bind (required when raft.bind is a wildcard address)",
			help:  "the address other nodes dial to reach this node's raft.bind",
			field: func(c *Config) value { return stringValue{&c.Raft.Advertise} }},
		{key: "raft.tls.cert_file",
			help:  "PEM certificate for mutual TLS between nodes; it must be valid for this node's raft.advertise host, for server and client auth",
			field: func(c *Config) value { return stringValue{&c.Raft.TLS.CertFile} }},
		{key: "raft.tls.key_file",
			help:  "PEM private key of raft.tls.cert_file",
			field: func(c *Config) value { return stringValue{&c.Raft.TLS.KeyFile} }},
		{key: "raft.tls.ca_file",
			help:  "PEM CA bundle that signed every node's Raft certificate; required with raft.tls.cert_file",
			field: func(c *Config) value { return stringValue{&c.Raft.TLS.CAFile} }},
		{key: "raft.log_store", def: "wal",
			help:  "the Raft log: wal (raft-wal) or pebble; a node keeps the kind it was created with",
			field: func(c *Config) value { return enumValue{&c.Raft.LogStore, []string{"wal", "pebble"}} }},
		{key: "raft.heartbeat_timeout", def: "1s",
			help:  "how long a follower waits without hearing from the leader before starting an election",
			field: func(c *Config) value { return durationValue{&c.Raft.HeartbeatTimeout} }},
		{key: "raft.election_timeout", def: "1s",
			help:  "how long a candidate waits for votes",
			field: func(c *Config) value { return durationValue{&c.Raft.ElectionTimeout} }},
		{key: "raft.leader_lease_timeout", def: "500ms",
			help:  "how long a leader stays leader without reaching a quorum",
			field: func(c *Config) value { return durationValue{&c.Raft.LeaderLeaseTimeout} }},
		{key: "raft.commit_timeout", def: "20ms",
			help:  "longest delay before the leader sends an AppendEntries heartbeat carrying the commit index",
			field: func(c *Config) value { return durationValue{&c.Raft.CommitTimeout} }},
		{key: "raft.trailing_logs", def: "20480",
			help:  "Raft entries kept after a snapshot, so a lagging follower catches up from the log",
			field: func(c *Config) value { return uintValue{&c.Raft.TrailingLogs} }},
		{key: "raft.snapshot_threshold", def: "16384",
			help:  "new Raft entries that trigger a snapshot",
			field: func(c *Config) value { return uintValue{&c.Raft.SnapshotThreshold} }},
		{key: "raft.snapshot_interval", def: "5m",
			help:  "how often the snapshot threshold is checked",
			field: func(c *Config) value { return durationValue{&c.Raft.SnapshotInterval} }},
		{key: "raft.snapshot_retain", def: "2",
			help:  "snapshots kept on disk",
			field: func(c *Config) value { return intValue{&c.Raft.SnapshotRetain} }},
		{key: "raft.batch_max_events", def: "10000",
			help:  "group commit: most events in one Raft entry",
			field: func(c *Config) value { return intValue{&c.Raft.BatchMaxEvents} }},
		{key: "raft.batch_max_bytes", def: "1MiB",
			help:  "group commit: about the most encoded events in one Raft entry",
			field: func(c *Config) value { return sizeValue{&c.Raft.BatchMaxBytes} }},
		{key: "raft.batch_linger", def: "1ms",
			help:  "group commit: how long the leader waits for more events while entries are in flight",
			field: func(c *Config) value { return durationValue{&c.Raft.BatchLinger} }},
		{key: "raft.max_in_flight", def: "4",
			help:  "group commit: Raft entries proposed and not yet applied",
			field: func(c *Config) value { return intValue{&c.Raft.MaxInFlight} }},

		// API limits.
		{key: "api.max_batch_events", def: itoa(server.DefaultMaxBatchEvents),
			help:  "most events in one AppendBatch or AppendStream message",
			field: func(c *Config) value { return intValue{&c.API.MaxBatchEvents} }},
		{key: "api.max_batch_bytes", def: size(server.DefaultMaxBatchBytes),
			help:  "most encoded events in one AppendBatch or AppendStream message",
			field: func(c *Config) value { return sizeValue{&c.API.MaxBatchBytes} }},
		{key: "api.commit_timeout", def: server.DefaultCommitTimeout.String(),
			help:  "how long one append waits for the cluster to commit it, elections included, before UNAVAILABLE",
			field: func(c *Config) value { return durationValue{&c.API.CommitTimeout} }},
		{key: "api.audit_queue", def: itoa(server.DefaultAuditQueue),
			help:  "access-audit events waiting to be appended; beyond it they are dropped and counted",
			field: func(c *Config) value { return intValue{&c.API.AuditQueue} }},
		{key: "api.tail_buffer", def: itoa(server.DefaultTailBuffer),
			help:  "entries buffered for one Tail stream",
			field: func(c *Config) value { return intValue{&c.API.TailBuffer} }},
		{key: "api.tail_stall", def: server.DefaultTailStall.String(),
			help:  "how long a Tail buffer may stay full before the consumer is cut",
			field: func(c *Config) value { return durationValue{&c.API.TailStall} }},

		// Storage engine.
		{key: "engine.cache_size", def: "256MiB",
			help:  "Pebble block cache",
			field: func(c *Config) value { return sizeValue{&c.Engine.CacheSize} }},
		{key: "engine.max_entry_size", def: size(engine.DefaultMaxEntry),
			help:  "largest encoded entry accepted",
			field: func(c *Config) value { return sizeValue{&c.Engine.MaxEntrySize} }},
		{key: "engine.min_free_space", def: size(engine.DefaultMinFreeBytes),
			help:  "free disk space below which appends are refused",
			field: func(c *Config) value { return sizeValue{&c.Engine.MinFreeSpace} }},
		{key: "engine.open_segments", def: "64",
			help:  "sealed segment files kept open",
			field: func(c *Config) value { return intValue{&c.Engine.OpenSegments} }},

		// Bus ingest (NATS JetStream), off while nats.url is empty.
		{key: "nats.url",
			help:  "NATS servers to consume audit events from (nats://host:4222 or tls://host:4222, comma separated); empty: bus ingest off. Plaintext to a non-loopback host needs nats.tls.ca_file or insecure_plaintext. Prefer nats.creds_file to a password in the URL; traild config shows the URL without its user part",
			field: func(c *Config) value { return urlListValue{&c.NATS.URL} }},
		{key: "nats.stream", def: natsingest.DefaultStream,
			help:  "the JetStream stream to consume; created with nats.subjects and nats.dead_letter_subject (file storage) when it does not exist",
			field: func(c *Config) value { return stringValue{&c.NATS.Stream} }},
		{key: "nats.subjects", def: natsingest.DefaultSubject,
			help:  "subjects of the stream the consumer reads events from, wildcards allowed; one event per message: protobuf (as over gRPC), the REST JSON form, or a CloudEvents 1.0 JSON envelope of either",
			field: func(c *Config) value { return listValue{&c.NATS.Subjects} }},
		{key: "nats.consumer", def: natsingest.DefaultConsumer,
			help:  "the durable pull consumer's name; the nodes of a cluster share it, and so its messages",
			field: func(c *Config) value { return stringValue{&c.NATS.Consumer} }},
		{key: "nats.dead_letter_subject", def: natsingest.DefaultDeadLetterSubject,
			help:  "where messages that can never be appended go (the reason in a Trail-Dead-Letter-Reason header) before they are terminated; a stream must store it, and nats.subjects must not match it",
			field: func(c *Config) value { return stringValue{&c.NATS.DeadLetterSubject} }},
		{key: "nats.tenants",
			help:  "with nats.url, required: the tenants events from the bus may be appended to, or * for every tenant; an event of another tenant is a dead letter",
			field: func(c *Config) value { return listValue{&c.NATS.Tenants} }},
		{key: "nats.batch", def: itoa(natsingest.DefaultBatch),
			help:  "most messages fetched and appended as one batch",
			field: func(c *Config) value { return intValue{&c.NATS.Batch} }},
		{key: "nats.batch_max_bytes", def: size(natsingest.DefaultBatchBytes),
			help:  "about the most message bytes fetched as one batch",
			field: func(c *Config) value { return sizeValue{&c.NATS.BatchMaxBytes} }},
		{key: "nats.ack_wait", def: natsingest.DefaultAckWait.String(),
			help:  "how long JetStream waits for a message's acknowledgement (sent once its event is committed) before redelivering it",
			field: func(c *Config) value { return durationValue{&c.NATS.AckWait} }},
		{key: "nats.creds_file",
			help:  "NATS credentials file (user JWT and NKey seed) to authenticate with",
			field: func(c *Config) value { return stringValue{&c.NATS.CredsFile} }},
		{key: "nats.tls.ca_file",
			help:  "PEM CA bundle the NATS servers' certificates must chain to; enables TLS",
			field: func(c *Config) value { return stringValue{&c.NATS.TLS.CAFile} }},
		{key: "nats.tls.cert_file",
			help:  "PEM client certificate for NATS servers that require one (with nats.tls.key_file)",
			field: func(c *Config) value { return stringValue{&c.NATS.TLS.CertFile} }},
		{key: "nats.tls.key_file",
			help:  "PEM private key of nats.tls.cert_file",
			field: func(c *Config) value { return stringValue{&c.NATS.TLS.KeyFile} }},

		// Integrity verification.
		{key: "integrity_interval", def: "1h",
			help:  "time between scheduled integrity passes, which re-hash this node's stored entries and tiles and compare partition roots with the peers; off disables them (VerifyIntegrity still works)",
			field: func(c *Config) value { return offDurationValue{&c.IntegrityInterval} }},
		{key: "integrity_rate", def: itoa(server.DefaultIntegrityRate),
			help:  "entries per second integrity verification may re-hash on this node",
			field: func(c *Config) value { return intValue{&c.IntegrityRate} }},

		// Retention.
		{key: "retention_interval", def: "1h",
			help:  "time between retention sweeps by the leader, which prune the payloads of expired entries that no legal hold covers; off disables them (RunRetentionSweep still works)",
			field: func(c *Config) value { return offDurationValue{&c.RetentionInterval} }},

		// Witnesses.
		{key: "witnesses",
			help:  "C2SP tlog-witnesses to get every partition's checkpoints cosigned by, each \"VKEY URL\": the witness's cosignature verifier key and its submission prefix (add-checkpoint is posted under it). Cosignatures are replicated and served with the checkpoints they cosign",
			field: func(c *Config) value { return listValue{&c.Witnesses} }},
		{key: "witness_interval", def: "1m",
			help:  "time between two rounds in which the leader submits new checkpoints to the witnesses; off disables them",
			field: func(c *Config) value { return offDurationValue{&c.WitnessInterval} }},

		// Operation.
		{key: "log_level", def: "info",
			help:  "debug, info, warn or error",
			field: func(c *Config) value { return enumValue{&c.LogLevel, []string{"debug", "info", "warn", "error"}} }},
		{key: "log_format", def: "text",
			help:  "text or json (slog), on stderr",
			field: func(c *Config) value { return enumValue{&c.LogFormat, []string{"text", "json"}} }},
		{key: "shutdown_timeout", def: "20s",
			help:  "on SIGINT or SIGTERM, how long in-flight calls may take before they are cut",
			field: func(c *Config) value { return durationValue{&c.ShutdownTimeout} }},
	}
}

// lookupSetting finds a setting by file key.
func lookupSetting(all []setting, key string) (setting, bool) {
	for _, s := range all {
		if s.key == key {
			return s, true
		}
	}
	return setting{}, false
}

// isSection reports whether key names a section of the file: a prefix of
// some setting's key.
func isSection(all []setting, key string) bool {
	for _, s := range all {
		if strings.HasPrefix(s.key, key+".") {
			return true
		}
	}
	return false
}
