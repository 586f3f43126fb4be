package raftnode

import (
	"context"
	"errors"
	"time"

	"github.com/trailaudit/trail/engine"
)

// runSealer seals months that have ended (docs/architecture.md "Storage engine"). It
// runs on every node but proposes only while this node leads, so a seal is
// a Raft command like any other and every replica seals the same partition
// at the same index. A seal the engine refuses (already sealed by a
// concurrent proposal, month not ended by the sequencer's clock) is
// harmless and retried at the next tick if still due.
func (n *Node) runSealer(done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(n.cfg.SealInterval)
	defer t.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
		}
		if n.isLeader() {
			n.sealDue(n.ctx)
		}
	}
}

// sealDue proposes a seal for every partition whose month is over.
func (n *Node) sealDue(ctx context.Context) {
	e, release := n.AcquireEngine()
	due, err := e.UnsealedBefore(ctx, engine.MonthOf(n.cfg.Clock()))
	release()
	if err != nil {
		n.log.Warn("sealer: list partitions", "err", err)
		return
	}
	for _, p := range due {
		sctx, cancel := context.WithTimeout(ctx, time.Minute)
		err := n.sealLocal(sctx, p.Tenant, p.Month.String())
		cancel()
		switch {
		case err == nil:
			n.log.Info("sealer: sealed", "partition", p.String())
		case errors.Is(err, engine.ErrSealed), errors.Is(err, engine.ErrMonthNotEnded), ctx.Err() != nil:
		default:
			n.log.Warn("sealer: seal", "partition", p.String(), "err", err)
		}
	}
}
