// Package server is Trail's API layer. It owns everything between a client
// and the replicated log: the gRPC services of trail.v1 (ingest, read,
// proofs, admin), their REST mapping through grpc-gateway, API-key
// authentication and tenant-scoped authorization, the audit of every read
// into the system tenant, live tails of a tenant's log, transport security,
// request limits, and the server's metrics and health endpoints.
//
// The server holds no log state of its own. Writes go through a [Cluster]
// (the Raft replication layer), which commits them on a quorum and applies
// them to the local storage engine; reads and proofs are served from that
// engine's applied state. Checkpoints are signed here, with the log key
// passed in [Config], because the engine holds no keys.
//
// # Transport
//
// gRPC is served on one listener; REST (grpc-gateway), /metrics, /healthz,
// /readyz and the OpenAPI document share a second, HTTP listener. The
// gateway does not call the service implementations directly: it is a gRPC
// client of this same server over an in-memory connection, so every REST
// call passes through exactly the interceptors (authentication, limits,
// metrics) a gRPC call does, and server streams such as Tail work over REST.
//
// # Errors
//
// Handlers return plain Go errors wrapping engine, Raft or server sentinels;
// the interceptors log them and map them onto gRPC codes in one place
// (errors.go), so no handler invents its own mapping and internal details
// of Internal errors reach the log but never the client.
// # Authentication and authorization
//
// Every call carries an API key, "authorization: Bearer trail_<id>_<secret>"
// in gRPC metadata or the HTTP Authorization header. Keys live in the
// replicated engine settings ("apikey/<id>"), holding only the SHA-256 of
// the secret, and carry a role and a tenant scope: producers append to
// their tenants, auditors read and prove them, privacy officers may also
// search by data subject or PII field, admins do everything including keys
// and membership. Nobody appends to the system tenant. The interceptors
// authenticate; each handler authorizes the tenant its request names.
//
// # Access audit
//
// Reads, searches, tails, proofs and admin calls are recorded as events in
// the system tenant (engine.SystemTenant), asynchronously through a bounded
// queue (see audit.go): auditing never blocks or fails a caller, and what
// overflows is counted.
//
// # Tails
//
// Tail streams are woken by one notifier goroutine blocked in
// Cluster.WaitApplied rather than by polling, and read entries from the
// engine into a bounded per-stream buffer; a consumer that lets it stay
// full is cut (see tail.go).
package server
