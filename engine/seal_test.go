package engine

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"
)

// fillTwoMonths appends n events per month to tenant acme in November and
// December 2026 and returns the two partitions.
func fillTwoMonths(t *testing.T, e *Engine, n int) (Partition, Partition) {
	t.Helper()
	idx := e.AppliedIndex()
	for i := range n {
		idx++
		applyOK(t, e, idx, nov.Add(time.Duration(i)*time.Minute), event("acme", ids("nov", n)[i]))
	}
	dec := time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)
	for i := range n {
		idx++
		applyOK(t, e, idx, dec.Add(time.Duration(i)*time.Minute), event("acme", ids("dec", n)[i]))
	}
	return mustPartition(t, "acme", "2026-11"), mustPartition(t, "acme", "2026-12")
}

func TestSealServesFromSegment(t *testing.T) {
	e := openEngine(t, t.TempDir())
	ctx := context.Background()
	novP, decP := fillTwoMonths(t, e, 300)
	before := checkPartition(t, e, novP)
	entries := make([][]byte, before.Size)
	for i := range entries {
		se, _ := e.Entry(ctx, novP, uint64(i))
		entries[i] = se.Data
	}
	at := time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)
	if err := e.Seal(ctx, e.AppliedIndex()+1, novP, at); err != nil {
		t.Fatal(err)
	}
	after := checkPartition(t, e, novP)
	if !after.Sealed || after.Size != before.Size || after.Root != before.Root {
		t.Fatalf("sealed partition %+v, before %+v", after, before)
	}
	for i := range entries {
		se, err := e.Entry(ctx, novP, uint64(i))
		if err != nil || !bytes.Equal(se.Data, entries[i]) {
			t.Fatalf("leaf %d after seal: %v", i, err)
		}
	}
	// The partition's files are gone: reads really come from the segment.
	if dir, _ := partitionDir(e.opts.Dir, novP); dirExists(dir) {
		t.Fatalf("%s still exists after the seal", dir)
	}
	if _, _, err := e.EntryByEventID(ctx, "acme", "nov-7"); err != nil {
		t.Fatalf("by event id from segment: %v", err)
	}
	// The chain crosses the sealed partition into December.
	if n := verifyTenantChain(t, e, "acme"); n != 600 {
		t.Fatalf("chain covered %d entries", n)
	}
	// A retry of a sealed event still deduplicates.
	r := applyOK(t, e, e.AppliedIndex()+1, at, event("acme", "nov-1"))[0]
	if !r.Duplicate || r.Partition != novP.Month {
		t.Fatalf("retry after seal: %+v", r)
	}
	// Survives reopen.
	dir := e.opts.Dir
	e.Close()
	e = openEngine(t, dir)
	checkPartition(t, e, novP)
	checkPartition(t, e, decP)
}

func TestSealRefusals(t *testing.T) {
	e := openEngine(t, t.TempDir())
	ctx := context.Background()
	novP, decP := fillTwoMonths(t, e, 5)
	idx := e.AppliedIndex()
	cases := []struct {
		name string
		p    Partition
		at   time.Time
		want error
	}{
		{"month not ended", decP, time.Date(2026, 12, 31, 23, 0, 0, 0, time.UTC), ErrMonthNotEnded},
		{"unknown partition", mustPartition(t, "acme", "2025-01"), time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC), ErrNotFound},
		{"unknown tenant", mustPartition(t, "ghost", "2026-11"), time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC), ErrNotFound},
	}
	for _, c := range cases {
		idx++
		if err := e.Seal(ctx, idx, c.p, c.at); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
		if e.AppliedIndex() != idx {
			t.Errorf("%s: a refused seal must still advance the applied index", c.name)
		}
	}
	idx++
	if err := e.Seal(ctx, idx, novP, time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	idx++
	if err := e.Seal(ctx, idx, novP, time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC)); !errors.Is(err, ErrSealed) {
		t.Fatalf("second seal: %v", err)
	}
}

func TestCorruptSegmentIsRefused(t *testing.T) {
	dir := t.TempDir()
	e := openEngine(t, dir)
	ctx := context.Background()
	novP, _ := fillTwoMonths(t, e, 50)
	sealNovember(t, e, novP)
	e.Close()
	flipSegmentByte(t, dir, novP)
	e = openEngine(t, dir)
	if _, err := e.Entry(ctx, novP, 3); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("read from corrupt segment: %v", err)
	}
	if _, _, err := e.InclusionProof(ctx, novP, 3, 0); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("proof from corrupt segment: %v", err)
	}
}

func TestUnsealedBefore(t *testing.T) {
	e := openEngine(t, t.TempDir())
	ctx := context.Background()
	novP, decP := fillTwoMonths(t, e, 3)
	applyOK(t, e, e.AppliedIndex()+1, nov, event("other", "o-1"))
	got, err := e.UnsealedBefore(ctx, Month{2027, 1})
	if err != nil {
		t.Fatal(err)
	}
	want := map[Partition]bool{novP: true, decP: true, mustPartition(t, "other", "2026-11"): true}
	if len(got) != len(want) {
		t.Fatalf("UnsealedBefore(2027-01) = %v", got)
	}
	for _, p := range got {
		if !want[p] {
			t.Fatalf("unexpected %s in %v", p, got)
		}
	}
	if err := e.Seal(ctx, e.AppliedIndex()+1, novP, time.Date(2026, 12, 9, 0, 0, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	got, _ = e.UnsealedBefore(ctx, Month{2026, 12})
	if len(got) != 1 || got[0] != mustPartition(t, "other", "2026-11") {
		t.Fatalf("after sealing acme/2026-11, UnsealedBefore(2026-12) = %v", got)
	}
}
