package server

import (
	"context"

	"github.com/trailaudit/trail/engine"
	"github.com/trailaudit/trail/engine/eventwire"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
	"github.com/trailaudit/trail/raftnode"
)

// Cluster is what the server needs from the replication layer: writes go
// through it to a Raft quorum, reads go to its local engine.
// *raftnode.Node implements it; the interface lives here, where it is
// used, and names only what the server calls.
type Cluster interface {
	// Append commits events on a quorum, forwarding to the leader when
	// needed, and returns one result per event, in order. AppendChecked
	// does the same for events already read and checked (eventwire), as
	// the ingest path has them; Append encodes and checks decoded ones.
	Append(ctx context.Context, events []*trailv1.Event) ([]engine.Result, error)
	AppendChecked(ctx context.Context, events []eventwire.Checked) ([]engine.Result, error)
	// ApplySettings commits setting operations (API keys) through Raft, so
	// that every node holds the same settings at the same index.
	ApplySettings(ctx context.Context, ops []engine.SettingOp) error
	// Prune removes the payloads of leaves of p through Raft (retention)
	// and returns how many it removed; DropSegment deletes the segment
	// file of a sealed partition whose every payload is pruned.
	Prune(ctx context.Context, p engine.Partition, leaves []uint64) (int, error)
	DropSegment(ctx context.Context, p engine.Partition) error

	// Engine is this node's current storage engine, for short reads.
	// AcquireEngine holds it open (across a snapshot restore that
	// replaces it) until release is called, for long ones.
	Engine() *engine.Engine
	AcquireEngine() (e *engine.Engine, release func())
	// AppliedIndex is the last Raft index applied on this node.
	AppliedIndex() uint64
	// WaitApplied blocks until this node has applied index, or ctx ends.
	WaitApplied(ctx context.Context, index uint64) error
	// WaitFor blocks until cond holds on this node's engine, re-evaluating
	// it after each apply, or ctx ends.
	WaitFor(ctx context.Context, cond func(*engine.Engine) (bool, error)) error

	// Status is this node's view of the cluster.
	Status() raftnode.Status
	// Join adds a voter; Remove removes a server; TransferLeadership hands
	// leadership to id, or to a server Raft picks when id is empty.
	Join(ctx context.Context, id, raftAddr string) error
	Remove(ctx context.Context, id string) error
	TransferLeadership(ctx context.Context, id string) error

	// PeerRoots asks every other server for its root of p at size, for
	// integrity comparison between replicas; one answer per peer.
	PeerRoots(ctx context.Context, p engine.Partition, size uint64) []raftnode.PeerRoot
	// Cosign asks every server, this one included, to cosign the
	// checkpoint body of p with its own key (raftnode/cosign.go).
	Cosign(ctx context.Context, p engine.Partition, body []byte) []raftnode.Cosignature
}

var _ Cluster = (*raftnode.Node)(nil)
