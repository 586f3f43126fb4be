package engine

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"testing"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

// sealAndPruneAll seals novP and prunes every one of its leaves.
func sealAndPruneAll(t *testing.T, e *Engine, novP Partition) PartitionInfo {
	t.Helper()
	ctx := context.Background()
	sealNovember(t, e, novP)
	info, err := e.PartitionInfo(ctx, novP)
	if err != nil {
		t.Fatal(err)
	}
	all := make([]uint64, info.Size)
	for i := range all {
		all[i] = uint64(i)
	}
	if n, err := e.Prune(ctx, e.AppliedIndex()+1, novP, all); err != nil || n != len(all) {
		t.Fatalf("prune all: %d, %v", n, err)
	}
	return info
}

// A refused drop is a deterministic result: it names its reason and still
// advances the applied index.
func TestDropSegmentRefusals(t *testing.T) {
	e := openEngine(t, t.TempDir())
	ctx := context.Background()
	novP, decP := fillTwoMonths(t, e, 20)
	sealNovember(t, e, novP)
	if _, err := e.Prune(ctx, e.AppliedIndex()+1, novP, []uint64{0, 1, 2}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		p    Partition
		want error
	}{
		{"unpruned payloads left", novP, ErrNotDroppable},
		{"open partition", decP, ErrNotDroppable},
		{"unknown partition", mustPartition(t, "acme", "2020-01"), ErrNotFound},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			index := e.AppliedIndex() + 1
			err := e.DropSegment(ctx, index, c.p)
			if !errors.Is(err, c.want) {
				t.Fatalf("DropSegment: %v, want %v", err, c.want)
			}
			if e.AppliedIndex() != index {
				t.Fatalf("applied index %d after refusal at %d", e.AppliedIndex(), index)
			}
		})
	}
	if _, err := os.Stat(mustSegmentPath(t, e.opts.Dir, novP)); err != nil {
		t.Fatalf("refused drop touched the segment: %v", err)
	}
	if err := e.DropSegment(ctx, e.AppliedIndex(), novP); !errors.Is(err, ErrAlreadyApplied) {
		t.Fatalf("replayed index: %v", err)
	}
}

// After a drop the partition is listed with its final size and root, its
// final checkpoint is unchanged, the next month's link to it still matches,
// and reads needing its payloads or tiles say they were dropped.
func TestDropSegment(t *testing.T) {
	dir := t.TempDir()
	e := openEngine(t, dir)
	ctx := context.Background()
	novP, decP := fillTwoMonths(t, e, 300)
	final := sealAndPruneAll(t, e, novP)
	if err := e.DropSegment(ctx, e.AppliedIndex()+1, novP); err != nil {
		t.Fatalf("DropSegment: %v", err)
	}
	if _, err := os.Stat(mustSegmentPath(t, dir, novP)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("segment file still there: %v", err)
	}
	checkDropped(t, e, novP, decP, final)

	// Again: refused as already dropped, applied index advanced.
	index := e.AppliedIndex() + 1
	if err := e.DropSegment(ctx, index, novP); !errors.Is(err, ErrDropped) || e.AppliedIndex() != index {
		t.Fatalf("second drop: %v, applied %d", err, e.AppliedIndex())
	}
	// Pruning a dropped partition finds nothing left to prune.
	if n, err := e.Prune(ctx, e.AppliedIndex()+1, novP, []uint64{0, 7}); err != nil || n != 0 {
		t.Fatalf("prune of dropped partition: %d, %v", n, err)
	}
	// The log goes on after its dropped month, and a producer retrying an
	// event of that month gets its original receipt, minus the leaf hash
	// that went with the tiles, without failing the batch.
	rs := applyOK(t, e, e.AppliedIndex()+1, dec5.AddDate(0, 1, 0), event("acme", "jan-0"), event("acme", "nov-3"))
	if r := rs[1]; !r.Duplicate || r.Partition != novP.Month || r.LeafIndex != 3 || r.LeafHash != ([32]byte{}) {
		t.Fatalf("retry of a dropped event: %+v", r)
	}
	e.Close()
	checkDropped(t, openEngine(t, dir), novP, decP, final)
}

func checkDropped(t *testing.T, e *Engine, novP, decP Partition, final PartitionInfo) {
	t.Helper()
	ctx := context.Background()
	info, err := e.PartitionInfo(ctx, novP)
	if err != nil {
		t.Fatal(err)
	}
	if !info.Dropped || !info.Sealed || info.Size != final.Size || info.Root != final.Root || info.Pruned != final.Size {
		t.Fatalf("dropped partition info %+v, final %+v", info, final)
	}
	parts, err := e.Partitions(ctx, "acme")
	if err != nil || len(parts) < 2 || parts[0] != info {
		t.Fatalf("Partitions: %+v, %v", parts, err)
	}
	cp, err := e.Checkpoint(ctx, novP, 0)
	if err != nil || cp.Size != final.Size || cp.Root != final.Root {
		t.Fatalf("final checkpoint of a dropped partition: %+v, %v", cp, err)
	}
	for name, read := range map[string]func() error{
		"entry":        func() error { _, err := e.Entry(ctx, novP, 3); return err },
		"inclusion":    func() error { _, _, err := e.InclusionProof(ctx, novP, 3, 0); return err },
		"consistency":  func() error { _, err := e.ConsistencyProof(ctx, novP, 10, 0); return err },
		"checkpoint@5": func() error { _, err := e.Checkpoint(ctx, novP, 5); return err },
		"by event id":  func() error { _, _, err := e.EntryByEventID(ctx, "acme", "nov-3"); return err },
	} {
		if err := read(); !errors.Is(err, ErrDropped) {
			t.Errorf("%s of a dropped partition: %v, want ErrDropped", name, err)
		}
	}
	// December's leaf 0 records November's final size and root.
	se, err := e.Entry(ctx, decP, 0)
	if err != nil {
		t.Fatal(err)
	}
	link := decodeEntry(t, se.Data).GetPrevPartition()
	if link.GetPartition() != "2026-11" || link.GetSize() != final.Size || !bytes.Equal(link.GetRoot(), final.Root[:]) {
		t.Fatalf("December's link %v, November's final size %d root %s", link, final.Size, final.Root)
	}
	dec := checkPartition(t, e, decP)
	pr, size, err := e.InclusionProof(ctx, decP, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, 0, size, se.LeafHash[:], toBytes(pr), dec.Root[:]); err != nil {
		t.Fatalf("December leaf 0: %v", err)
	}
	// A search over the whole tenant skips the dropped month.
	for _, h := range searchAll(t, e, Query{Tenant: "acme", Limit: 1000}) {
		if h.Partition == novP {
			t.Fatalf("search found leaf %d of the dropped partition", h.LeafIndex)
		}
	}
}

// A crash after the drop's catalog commit but before the file deletion is
// finished by Open.
func TestInterruptedDropIsFinishedOnOpen(t *testing.T) {
	dir := t.TempDir()
	e := openEngine(t, dir)
	ctx := context.Background()
	novP, decP := fillTwoMonths(t, e, 30)
	final := sealAndPruneAll(t, e, novP)
	path := mustSegmentPath(t, dir, novP)
	seg, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.DropSegment(ctx, e.AppliedIndex()+1, novP); err != nil {
		t.Fatal(err)
	}
	e.Close()
	// The file and the pending record are back, as if the deletion never ran.
	if err := os.WriteFile(path, seg, 0o644); err != nil {
		t.Fatal(err)
	}
	db := openRawPebble(t, dir)
	if err := db.Set(pendingDropKey(novP), nil, nil); err != nil {
		t.Fatal(err)
	}
	db.Close()
	e = openEngine(t, dir)
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Open left the dropped segment: %v", err)
	}
	if _, closer, err := e.db.Get(pendingDropKey(novP)); err == nil {
		closer.Close()
		t.Fatal("pending drop record survived Open")
	}
	checkDropped(t, e, novP, decP, final)
}

// A snapshot taken after a drop restores into an engine that knows the
// partition as dropped.
func TestDroppedPartitionSnapshot(t *testing.T) {
	e := openEngine(t, t.TempDir())
	ctx := context.Background()
	novP, decP := fillTwoMonths(t, e, 30)
	final := sealAndPruneAll(t, e, novP)
	if err := e.DropSegment(ctx, e.AppliedIndex()+1, novP); err != nil {
		t.Fatal(err)
	}
	snap, err := e.CaptureSnapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Release()
	var buf bytes.Buffer
	if _, err := snap.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir() + "/restored"
	if err := Restore(ctx, &buf, dir); err != nil {
		t.Fatal(err)
	}
	checkDropped(t, openEngine(t, dir), novP, decP, final)
}
