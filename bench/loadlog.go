package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// treeHead is the newest partition of a tenant a client has seen, and the
// largest tree size a receipt reported in it.
type treeHead struct {
	Partition string
	Size      uint64
	// Applied is a Raft index at which that size was applied; a read
	// passes it as min_index so that a follower waits for it.
	Applied uint64
}

// treeTracker follows receipts, so that readers ask for proofs of leaves
// that exist and can wait (min_index) for a follower to have applied them.
type treeTracker struct {
	mu    sync.Mutex
	heads map[string]treeHead
}

func newTreeTracker() *treeTracker { return &treeTracker{heads: make(map[string]treeHead)} }

func (t *treeTracker) observe(r *trailv1.Receipt) {
	t.mu.Lock()
	defer t.mu.Unlock()
	h := t.heads[r.GetTenantId()]
	// Partitions are "YYYY-MM": a later month sorts later.
	if p := r.GetPartition(); p > h.Partition {
		h = treeHead{Partition: p}
	} else if p < h.Partition {
		return
	}
	if r.GetTreeSize() > h.Size {
		h.Size, h.Applied = r.GetTreeSize(), max(h.Applied, r.GetAppliedIndex())
	}
	t.heads[r.GetTenantId()] = h
}

func (t *treeTracker) head(tenant string) treeHead {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.heads[tenant]
}

// loadResult is what loading a log took.
type loadResult struct {
	Events       int64   `json:"events"`
	Seconds      float64 `json:"seconds"`
	EventsPerSec float64 `json:"events_per_sec"`
}

// loadLog appends n events through the fast path, AppendBatch calls of
// 1000 from several connections at once, into tenant (or eventgen's skewed
// tenants when empty), reporting every receipt to tr.
func loadLog(ctx context.Context, tgt *target, tmpl *templates, run, tenant string, n, loaders int, tr *treeTracker) (loadResult, error) {
	const batch = 1000
	b := newBudget(int64(n))
	ps := make([]*producer, loaders)
	for i := range ps {
		ps[i] = &producer{
			conn: tgt.conn(i), src: tmpl.source(run+"-load", i, batch, tenant),
			batch: batch, budget: b, onReceipt: tr.observe,
		}
	}
	// The budget ends the run; the duration only bounds a stuck one.
	st, elapsed := runProducers(ctx, ps, 24*time.Hour)
	res := loadResult{Events: st.acked, Seconds: elapsed.Seconds(), EventsPerSec: float64(st.acked) / elapsed.Seconds()}
	if st.failed > 0 || st.acked != int64(n) {
		return res, fmt.Errorf("load: %d of %d events acknowledged, %d failed: %s", st.acked, n, st.failed, st.firstErr)
	}
	return res, nil
}
