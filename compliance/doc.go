// Package compliance owns Trail's compliance rules: retention policies
// (how long each tenant keeps the payloads of each category, and which
// entries have outlived theirs), legal holds (which entries retention must
// never touch), and the anomaly rules evaluated on ingest.
//
// Rules are stored as engine settings, so they are replicated through Raft
// and every node holds the same rules at the same applied index. The
// package depends only on the engine and the API types: the server decides
// when to act on the rules and the replication layer carries the actions.
// FilterHeld is the one function that runs inside the state machine; like
// everything there it reads only the engine's state (invariant 6).
package compliance
