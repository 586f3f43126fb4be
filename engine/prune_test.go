package engine

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/trailaudit/trail/filter"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

func TestPruneOpenPartition(t *testing.T) {
	e := openEngine(t, t.TempDir())
	ctx := context.Background()
	// Batches of 8: pruned leaves sit inside shared posting lists.
	var batch []*trailv1.Event
	for i := range 40 {
		batch = append(batch, event("acme", ids("e", 40)[i]))
		if len(batch) == 8 {
			applyOK(t, e, uint64(i+1), nov.Add(time.Duration(i)*time.Second), batch...)
			batch = nil
		}
	}
	p := mustPartition(t, "acme", "2026-11")
	before := checkPartition(t, e, p)
	n, err := e.Prune(ctx, 41, p, []uint64{3, 5, 5, 17})
	if err != nil || n != 3 {
		t.Fatalf("Prune: %d, %v", n, err)
	}
	assertPruned(t, e, p, before, []uint64{3, 5, 17})
	// Idempotent: pruning again removes nothing and still advances.
	if n, err := e.Prune(ctx, 42, p, []uint64{3}); err != nil || n != 0 || e.AppliedIndex() != 42 {
		t.Fatalf("second prune: %d, %v, applied %d", n, err, e.AppliedIndex())
	}
	// Appends continue on the pruned partition, with the right catalog.
	applyOK(t, e, 43, nov.Add(time.Hour), event("acme", "after"))
	info := checkPartition(t, e, p)
	if info.Size != 41 || info.Pruned != 3 {
		t.Fatalf("after append: %+v", info)
	}
	if _, err := e.Prune(ctx, 44, p, []uint64{99}); !errors.Is(err, ErrBadSize) {
		t.Fatalf("prune beyond size: %v", err)
	}
}

func assertPruned(t *testing.T, e *Engine, p Partition, before PartitionInfo, pruned []uint64) {
	t.Helper()
	ctx := context.Background()
	after := checkPartition(t, e, p) // every proof still verifies
	if after.Root != before.Root || after.Size != before.Size || after.Pruned != uint64(len(pruned)) {
		t.Fatalf("after prune %+v, before %+v", after, before)
	}
	for _, leaf := range pruned {
		se, err := e.Entry(ctx, p, leaf)
		if err != nil || !se.Pruned || se.Data != nil || se.LeafHash == ([32]byte{}) {
			t.Fatalf("pruned leaf %d: %+v %v", leaf, se, err)
		}
	}
	// Every event of the fixtures is by alice: the index must return
	// exactly the unpruned leaves of p.
	inP := 0
	for _, h := range searchAll(t, e, Query{Tenant: p.Tenant, Filter: filter.Filter{ActorIDs: []string{"alice"}}, Limit: 1000}) {
		if h.Partition != p {
			continue
		}
		inP++
		for _, leaf := range pruned {
			if h.LeafIndex == leaf {
				t.Fatalf("search still finds pruned leaf %d", leaf)
			}
		}
	}
	if want := int(before.Size) - len(pruned); inP != want {
		t.Fatalf("search finds %d entries of %s, want %d", inP, p, want)
	}
	verifyTenantChain(t, e, p.Tenant)
}

func TestPruneSealedPartition(t *testing.T) {
	dir := t.TempDir()
	e := openEngine(t, dir)
	ctx := context.Background()
	novP, _ := fillTwoMonths(t, e, 300)
	sealNovember(t, e, novP)
	before := checkPartition(t, e, novP)
	if n, err := e.Prune(ctx, e.AppliedIndex()+1, novP, []uint64{0, 255, 256, 299}); err != nil || n != 4 {
		t.Fatalf("Prune sealed: %d, %v", n, err)
	}
	assertPruned(t, e, novP, before, []uint64{0, 255, 256, 299})
	// Dedup still answers for a pruned event.
	r := applyOK(t, e, e.AppliedIndex()+1, time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC), event("acme", "nov-0"))[0]
	if !r.Duplicate || r.LeafIndex != 0 {
		t.Fatalf("retry of pruned event: %+v", r)
	}
}

func TestInterruptedSegmentPruneIsFinishedOnOpen(t *testing.T) {
	dir := t.TempDir()
	e := openEngine(t, dir)
	ctx := context.Background()
	novP, _ := fillTwoMonths(t, e, 30)
	sealNovember(t, e, novP)
	before := checkPartition(t, e, novP)
	path := mustSegmentPath(t, dir, novP)
	unpruned, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Prune(ctx, e.AppliedIndex()+1, novP, []uint64{4, 9}); err != nil {
		t.Fatal(err)
	}
	e.Close()
	// Simulate a crash after the Pebble commit but before the rewrite: the
	// old segment is back and the pending record is there.
	if err := os.WriteFile(path, unpruned, 0o644); err != nil {
		t.Fatal(err)
	}
	db := openRawPebble(t, dir)
	if err := db.Set(pendingPruneKey(novP), encodeLeaves([]uint64{4, 9}), nil); err != nil {
		t.Fatal(err)
	}
	db.Close()
	e = openEngine(t, dir)
	assertPruned(t, e, novP, before, []uint64{4, 9})
}
