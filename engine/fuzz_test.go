package engine

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"

	"github.com/trailaudit/trail/merkle"
)

// The engine's own record decoders must reject garbage with an error and
// accept only what re-encodes to the same bytes.

func FuzzCatalogRecord(f *testing.F) {
	f.Add((&catalogRecord{Size: 3, RightEdge: []merkle.Hash{{1}, {2}}}).marshal())
	f.Add((&catalogRecord{Sealed: true, Pruned: 9}).marshal())
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := unmarshalCatalog(b)
		if err != nil {
			return
		}
		if got := c.marshal(); !bytes.Equal(got, b) && b[41]&^1 == 0 {
			t.Fatalf("round trip: %x -> %x", b, got)
		}
	})
}

func FuzzHeadRecord(f *testing.F) {
	f.Add((&headRecord{Month: Month{2026, 11}, LastTime: 42}).marshal())
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := unmarshalHead(b)
		if err != nil {
			return
		}
		if got := h.marshal(); !bytes.Equal(got, b) {
			t.Fatalf("round trip: %x -> %x", b, got)
		}
	})
}

func FuzzDedupRecord(f *testing.F) {
	f.Add((&dedupRecord{Month: Month{2026, 1}, Leaf: 5, TreeSize: 6, SeqTime: 7, Digest: 8}).marshal())
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := unmarshalDedup(b)
		if err != nil {
			return
		}
		if got := d.marshal(); !bytes.Equal(got, b) {
			t.Fatalf("round trip: %x -> %x", b, got)
		}
	})
}

func FuzzCursor(f *testing.F) {
	f.Add(encodeCursor(position{Month{2026, 11}, 9, 3}, false), false)
	f.Add(encodeCursor(position{Month{2026, 12}, 0, 0}, true), true)
	f.Fuzz(func(t *testing.T, s string, newest bool) {
		p, err := decodeCursor(s, newest)
		if err != nil {
			return
		}
		if p2, err := decodeCursor(encodeCursor(p, newest), newest); err != nil || p2 != p {
			t.Fatalf("round trip of %q: %+v %v", s, p2, err)
		}
	})
}

func FuzzLeaves(f *testing.F) {
	f.Add(encodeLeaves([]uint64{0, 1, 5, 1 << 40}))
	f.Fuzz(func(t *testing.T, b []byte) {
		leaves, err := decodeLeaves(b)
		if err != nil {
			return
		}
		for i := 1; i < len(leaves); i++ {
			if leaves[i] < leaves[i-1] {
				return // overflowed deltas are not produced by encodeLeaves
			}
		}
		if got, _ := decodeLeaves(encodeLeaves(leaves)); len(got) != len(leaves) {
			t.Fatalf("round trip lost leaves")
		}
	})
}

func FuzzPrevLeafHash(f *testing.F) {
	e := openEngine(f, f.TempDir())
	applyOK(f, e, 1, nov, event("acme", "a"), eventWithEverything())
	for leaf := uint64(0); leaf < 2; leaf++ {
		se, err := e.Entry(context.Background(), mustPartition(f, "acme", "2026-11"), leaf)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(se.Data)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := prevLeafHash(b)
		if err == nil && h == (merkle.Hash{}) && !bytes.Contains(b, make([]byte, 32)) {
			t.Fatalf("zero hash from input without 32 zero bytes: %x", b)
		}
	})
}

func FuzzRestore(f *testing.F) {
	f.Add([]byte("not a tar"))
	f.Fuzz(func(t *testing.T, b []byte) {
		dir := filepath.Join(t.TempDir(), "r")
		if err := Restore(context.Background(), bytes.NewReader(b), dir); err != nil {
			return
		}
		// Whatever was accepted must be confined to dir and openable or
		// refused by Open with an error, never a panic.
		e, err := Open(context.Background(), Options{Dir: dir, CacheBytes: 1 << 20})
		if err == nil {
			e.Close()
		}
	})
}
