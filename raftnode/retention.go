package raftnode

import (
	"context"
	"fmt"

	"github.com/trailaudit/trail/engine"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// Retention goes through Raft like every other change (invariant
// 9): the leader proposes which payloads to prune and which segment files
// to drop, and every replica applies the same commands at the same index.

// PruneFilter returns the leaves of p that may be pruned out of leaves.
// See Config.PruneFilter.
type PruneFilter func(ctx context.Context, e *engine.Engine, p engine.Partition, leaves []uint64) ([]uint64, error)

// filterPrune applies the configured PruneFilter to a prune command.
func (f *fsm) filterPrune(e *engine.Engine, p engine.Partition, leaves []uint64) ([]uint64, error) {
	if f.pruneFilter == nil || len(leaves) == 0 {
		return leaves, nil
	}
	kept, err := f.pruneFilter(context.Background(), e, p, leaves)
	if err != nil {
		return nil, fmt.Errorf("raftnode: prune filter of %s: %w", p, err)
	}
	if held := len(leaves) - len(kept); held > 0 {
		f.log.Info("raftnode: prune skips held leaves", "partition", p.String(), "held", held)
	}
	return kept, nil
}

func (f *fsm) applyDropSegment(e *engine.Engine, index uint64, c *trailv1.RaftDropSegment) (refusal, err error) {
	m, perr := engine.ParseMonth(c.GetPartition())
	if perr != nil {
		return f.refuse(e, index, fmt.Errorf("%w: %v", errBadRequest, perr))
	}
	p := engine.Partition{Tenant: c.GetTenant(), Month: m}
	return f.run(e, index, func() error { return e.DropSegment(context.Background(), index, p) })
}

// DropSegment proposes deleting the segment file of sealed partition p,
// whose every payload retention has pruned. The engine refuses a partition
// that is open or still holds a payload (engine.ErrNotDroppable), an
// unknown one (engine.ErrNotFound) and one already dropped
// (engine.ErrDropped). The catalog record stays: the partition is still
// listed with its final size and root.
func (n *Node) DropSegment(ctx context.Context, p engine.Partition) error {
	cmd := &trailv1.RaftDropSegment{Tenant: p.Tenant, Partition: p.Month.String()}
	req := &trailv1.RaftForwardRequest{Op: &trailv1.RaftForwardRequest_DropSegment{DropSegment: cmd}}
	return n.adminOnLeader(ctx, "drop segment", req, func(ctx context.Context) error {
		return n.dropSegmentLocal(ctx, cmd)
	})
}

func (n *Node) dropSegmentLocal(ctx context.Context, c *trailv1.RaftDropSegment) error {
	_, err := n.batch.submit(ctx, "drop segment", &proposal{control: func(int64) ([]byte, error) {
		return encodeCommand(&trailv1.RaftCommand{Command: &trailv1.RaftCommand_DropSegment{DropSegment: c}})
	}})
	return err
}
