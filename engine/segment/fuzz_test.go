package segment

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/trailaudit/trail/merkle"
)

// FuzzOpen opens arbitrary bytes and reads everything a Reader offers. Each
// input is tried as is and again with its trailing hash fixed up, because a
// random change almost never keeps the hash valid, and without the second
// try the fuzzer could not reach the header, footer and block parsers.
// Nothing may panic, and Open may fail only with ErrCorrupt.
func FuzzOpen(f *testing.F) {
	f.Add(tinySegment(f))
	f.Add(validSpec(f).bytes())
	f.Add([]byte{})
	f.Add([]byte(magic))
	// Each worker process keeps two files open and rewrites them in place
	// for every input (it runs its inputs one at a time): on this machine
	// that is some 40 times faster than creating a file per input, which
	// matters most while the fuzzer minimizes a new input.
	var files [2]*os.File
	for i := range files {
		fl, err := os.Create(filepath.Join(f.TempDir(), fmt.Sprintf("%d.seg", i)))
		if err != nil {
			f.Fatal(err)
		}
		f.Cleanup(func() { fl.Close() })
		files[i] = fl
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		readAll(t, files[0], b)
		readAll(t, files[1], resign(b))
	})
}

// tinySegment is a Writer-made segment of a few hundred bytes with pruned,
// empty and multi-block entries and two tiles: small, so that the fuzzer's
// minimization of inputs derived from it is quick.
func tinySegment(tb testing.TB) []byte {
	path := filepath.Join(tb.TempDir(), "tiny.seg")
	entries := [][]byte{[]byte("first"), nil, {}, []byte("a longer entry, more than one block"), []byte("last")}
	tiles := []tileKV{{merkle.TileID{Level: 0, Index: 0}, []byte("tile-0-0")}, {merkle.TileID{Level: 1, Index: 0}, []byte("tile-1-0")}}
	writeSegment(tb, path, testHeader(uint64(len(entries))), entries, tiles, WriterOptions{BlockSize: 16})
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func readAll(t *testing.T, fl *os.File, b []byte) {
	if _, err := fl.WriteAt(b, 0); err != nil {
		t.Fatal(err)
	}
	if err := fl.Truncate(int64(len(b))); err != nil {
		t.Fatal(err)
	}
	r, err := Open(fl.Name(), ReaderOptions{CacheBytes: 64 << 10})
	if err != nil {
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Open: %v, want ErrCorrupt", err)
		}
		return
	}
	defer r.Close()
	h := r.Header()
	if err := r.Verify(); err != nil {
		t.Fatalf("Verify after a successful Open: %v", err)
	}
	// Scan stops at the first bad block; Entry tries the ends of every
	// block (bounded: a hostile index may claim billions of leaves).
	var n uint64
	err = r.Scan(0, func(leaf uint64, data []byte) error {
		if leaf != n {
			t.Fatalf("Scan: leaf %d, want %d", leaf, n)
		}
		n++
		return nil
	})
	if err != nil && !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Scan: %v", err)
	}
	for i, bi := range r.ix.blocks {
		if i == 64 {
			break
		}
		for _, leaf := range []uint64{bi.first, bi.first + uint64(bi.count) - 1} {
			if _, err := r.Entry(leaf); err != nil && !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrPruned) {
				t.Fatalf("Entry(%d): %v", leaf, err)
			}
		}
	}
	if _, err := r.Entry(h.Size); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Entry(Size): %v", err)
	}
	for i, id := range r.Tiles() {
		if i == 256 {
			break
		}
		if _, err := r.Tile(id); err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Tile(%s): %v", id, err)
		}
	}
}
