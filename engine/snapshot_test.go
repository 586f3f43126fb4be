package engine

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestSnapshotRestore(t *testing.T) {
	e := openEngine(t, t.TempDir())
	ctx := context.Background()
	novP, decP := fillTwoMonths(t, e, 200)
	sealNovember(t, e, novP)
	snap, err := e.CaptureSnapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Appends after the capture are not in the snapshot.
	applyOK(t, e, e.AppliedIndex()+1, time.Date(2026, 12, 20, 0, 0, 0, 0, time.UTC), event("acme", "late"))
	var buf bytes.Buffer
	if _, err := snap.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	if err := snap.Release(); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "restored")
	if err := Restore(ctx, bytes.NewReader(buf.Bytes()), dir); err != nil {
		t.Fatal(err)
	}
	r := openEngine(t, dir)
	if r.AppliedIndex() != snap.Index {
		t.Fatalf("restored applied %d, snapshot %d", r.AppliedIndex(), snap.Index)
	}
	for _, p := range []Partition{novP, decP} {
		got := checkPartition(t, r, p)
		want, _ := e.PartitionInfo(ctx, p)
		if p == novP && got != want {
			t.Fatalf("%s restored %+v, original %+v", p, got, want)
		}
	}
	if got, _ := r.PartitionInfo(ctx, decP); got.Size != 200 {
		t.Fatalf("restored December size %d, want 200", got.Size)
	}
	verifyTenantChain(t, r, "acme")
	// Restore refuses a non-empty directory and leaves it alone.
	if err := Restore(ctx, bytes.NewReader(buf.Bytes()), dir); err == nil {
		t.Fatal("restore into a non-empty directory succeeded")
	}
}

func TestRestoreRejectsBadArchives(t *testing.T) {
	mk := func(name string, typ byte) []byte {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		tw.WriteHeader(&tar.Header{Name: name, Typeflag: typ, Size: 1, Mode: 0o644, Linkname: "/etc/passwd"})
		tw.Write([]byte("x"))
		tw.Close()
		return buf.Bytes()
	}
	cases := map[string][]byte{
		"not tar":     []byte("hello, world, this is not a tar archive at all......"),
		"escape":      mk("../evil", tar.TypeReg),
		"absolute":    mk("/tmp/evil", tar.TypeReg),
		"other dir":   mk("etc/passwd", tar.TypeReg),
		"symlink":     mk("db/link", tar.TypeSymlink),
		"no database": mk("segments/x.seg", tar.TypeReg),
	}
	for name, b := range cases {
		dir := filepath.Join(t.TempDir(), "r")
		err := Restore(context.Background(), bytes.NewReader(b), dir)
		if !errors.Is(err, ErrBadSnapshot) {
			t.Errorf("%s: %v, want ErrBadSnapshot", name, err)
		}
		if _, statErr := os.Stat(dir); !os.IsNotExist(statErr) {
			t.Errorf("%s: half-restored directory left behind (%v)", name, statErr)
		}
	}
}
