package segment

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/trailaudit/trail/merkle"
)

func TestRoundTrip(t *testing.T) {
	varied := entryMix{pruned: 5, empty: 5, big: 2, bigSize: 512}
	tests := []struct {
		name    string
		entries [][]byte
		tiles   []tileKV
		opts    WriterOptions
	}{
		{name: "empty partition"},
		{name: "empty partition with tiles", tiles: genTiles(1, 3)},
		{name: "single entry", entries: [][]byte{[]byte("hello")}, tiles: genTiles(2, 1)},
		{name: "single pruned entry", entries: [][]byte{nil}},
		{name: "single empty entry", entries: [][]byte{{}}},
		{name: "empty and pruned alternate", entries: [][]byte{{}, nil, {}, nil, nil, {}, {}}, opts: WriterOptions{BlockSize: 2}},
		{name: "all pruned", entries: make([][]byte, 1000), opts: WriterOptions{BlockSize: 100}},
		{name: "small blocks, entries larger than a block", entries: genEntries(3, 3000, varied), tiles: genTiles(3, 40), opts: WriterOptions{BlockSize: 512}},
		{name: "one entry per block", entries: genEntries(4, 300, varied), tiles: genTiles(4, 5), opts: WriterOptions{BlockSize: 1}},
		{name: "default block size", entries: genEntries(5, 4000, entryMix{pruned: 3, empty: 3, big: 1, bigSize: DefaultBlockSize}), tiles: genTiles(5, 30)},
		{name: "fastest level", entries: genEntries(6, 1000, varied), opts: WriterOptions{BlockSize: 4096, Level: zstd.SpeedFastest}},
		{name: "best compression", entries: genEntries(7, 1000, varied), opts: WriterOptions{BlockSize: 4096, Level: zstd.SpeedBestCompression}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "2026-11.seg")
			h := testHeader(uint64(len(tc.entries)))
			writeSegment(t, path, h, tc.entries, tc.tiles, tc.opts)
			checkSegment(t, path, h, tc.entries, tc.tiles)
			checkBlockSizes(t, path, tc.opts.BlockSize)
			dirHolds(t, filepath.Dir(path), "2026-11.seg")
		})
	}
}

// checkBlockSizes checks the writer's promise: a block stays within the
// target size unless it holds one entry larger than the target.
func checkBlockSizes(t *testing.T, path string, target int) {
	t.Helper()
	if target == 0 {
		target = DefaultBlockSize
	}
	r, err := Open(path, ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for i, b := range r.ix.blocks {
		if int(b.raw) > target && b.count != 1 {
			t.Errorf("block %d: %d entries in %d bytes, target %d", i, b.count, b.raw, target)
		}
	}
}

func dirHolds(t *testing.T, dir string, names ...string) {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, de := range des {
		got = append(got, de.Name())
	}
	if fmt.Sprint(got) != fmt.Sprint(names) {
		t.Fatalf("%s holds %v, want %v", dir, got, names)
	}
}

// Tiles may be added before, between and after entries; the data region is
// then interleaved and must still read back (and pass the coverage check).
func TestTilesInterleaved(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.seg")
	entries := genEntries(11, 500, entryMix{pruned: 5, empty: 5, big: 2, bigSize: 300})
	tiles := genTiles(11, 50)
	h := testHeader(uint64(len(entries)))
	w, err := Create(path, h, WriterOptions{BlockSize: 300})
	if err != nil {
		t.Fatal(err)
	}
	next := 0
	for i, e := range entries {
		if i%10 == 0 && next < len(tiles) {
			if err := w.AddTile(tiles[next].id, tiles[next].data); err != nil {
				t.Fatal(err)
			}
			next++
		}
		if err := w.AddEntry(uint64(i), e); err != nil {
			t.Fatal(err)
		}
	}
	for ; next < len(tiles); next++ {
		if err := w.AddTile(tiles[next].id, tiles[next].data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	checkSegment(t, path, h, entries, tiles)
}

func TestDeterministic(t *testing.T) {
	entries := genEntries(12, 2000, entryMix{pruned: 5, empty: 5, big: 1, bigSize: 4096})
	tiles := genTiles(12, 20)
	h := testHeader(uint64(len(entries)))
	dir := t.TempDir()
	var files [][]byte
	for i := range 2 {
		path := filepath.Join(dir, fmt.Sprintf("%d.seg", i))
		writeSegment(t, path, h, entries, tiles, WriterOptions{BlockSize: 4096})
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, b)
	}
	if !bytes.Equal(files[0], files[1]) {
		t.Fatal("two writes of the same input differ")
	}
}

// The engine rewrites a segment in place (to prune) while a reader of the
// old file is open: the old reader keeps reading the old file.
func TestReplaceWhileOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.seg")
	entries := genEntries(13, 300, entryMix{bigSize: 100})
	tiles := genTiles(13, 5)
	h := testHeader(uint64(len(entries)))
	writeSegment(t, path, h, entries, tiles, WriterOptions{BlockSize: 1000})
	old, err := Open(path, ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()

	pruned := make([][]byte, len(entries))
	copy(pruned, entries)
	w, err := Create(path, old.Header(), WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	err = old.Scan(0, func(leaf uint64, data []byte) error {
		if leaf%3 == 0 {
			data, pruned[leaf] = nil, nil
		}
		return w.AddEntry(leaf, data)
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range old.Tiles() {
		b, err := old.Tile(id)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.AddTile(id, b); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	checkSegment(t, path, h, pruned, tiles)
	for leaf, want := range entries {
		got, err := old.Entry(uint64(leaf))
		checkEntry(t, fmt.Sprintf("old Entry(%d)", leaf), got, err, want)
	}
	if err := old.Verify(); err != nil {
		t.Fatalf("old Verify: %v", err)
	}
	dirHolds(t, filepath.Dir(path), "s.seg")
}

func TestScanError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.seg")
	entries := genEntries(14, 100, entryMix{})
	writeSegment(t, path, testHeader(100), entries, nil, WriterOptions{BlockSize: 256})
	r, err := Open(path, ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	stop := errors.New("stop")
	calls := 0
	err = r.Scan(10, func(leaf uint64, _ []byte) error {
		calls++
		if leaf == 42 {
			return stop
		}
		return nil
	})
	if err != stop || calls != 33 {
		t.Fatalf("Scan = %v after %d calls, want stop after 33", err, calls)
	}
}

// Entry hands out copies: changing one must not change the cached block.
func TestEntryIsACopy(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.seg")
	entries := [][]byte{[]byte("abc"), []byte("def")}
	writeSegment(t, path, testHeader(2), entries, nil, WriterOptions{})
	r, err := Open(path, ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	b, _ := r.Entry(0)
	b[0] = 'X'
	_ = append(b, "zzz"...)
	for leaf, want := range entries {
		got, err := r.Entry(uint64(leaf))
		checkEntry(t, fmt.Sprintf("Entry(%d)", leaf), got, err, want)
	}
}

func TestCreateInvalid(t *testing.T) {
	good := testHeader(1)
	with := func(f func(*Header)) Header { h := good; f(&h); return h }
	tests := []struct {
		name string
		h    Header
		opts WriterOptions
		dir  string // relative to the test dir
		want string
	}{
		{name: "empty tenant", h: with(func(h *Header) { h.Tenant = "" }), want: "tenant"},
		{name: "long tenant", h: with(func(h *Header) { h.Tenant = strings.Repeat("t", MaxTenantLen+1) }), want: "tenant"},
		{name: "short partition", h: with(func(h *Header) { h.Partition = "2026-1" }), want: "partition"},
		{name: "month 00", h: with(func(h *Header) { h.Partition = "2026-00" }), want: "partition"},
		{name: "month 13", h: with(func(h *Header) { h.Partition = "2026-13" }), want: "partition"},
		{name: "slash", h: with(func(h *Header) { h.Partition = "2026/11" }), want: "partition"},
		{name: "letters", h: with(func(h *Header) { h.Partition = "abcd-11" }), want: "partition"},
		{name: "negative block size", h: good, opts: WriterOptions{BlockSize: -1}, want: "block size"},
		{name: "huge block size", h: good, opts: WriterOptions{BlockSize: MaxBlockSize + 1}, want: "block size"},
		{name: "bad level", h: good, opts: WriterOptions{Level: 99}, want: "level"},
		{name: "missing directory", h: good, dir: "nope", want: "no such file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			w, err := Create(filepath.Join(dir, tc.dir, "s.seg"), tc.h, tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Create = %v, %v; want error containing %q", w, err, tc.want)
			}
			dirEmpty(t, dir)
		})
	}
}

func TestWriterMisuse(t *testing.T) {
	tile := []byte("tile")
	tests := []struct {
		name string
		size uint64
		do   func(w *Writer) error // returns the first error
		want string
	}{
		{"out of order", 3, func(w *Writer) error { return w.AddEntry(1, nil) }, "want leaf 0"},
		{"repeated leaf", 3, func(w *Writer) error {
			return errors.Join(w.AddEntry(0, nil), w.AddEntry(0, nil))
		}, "want leaf 1"},
		{"past size", 1, func(w *Writer) error {
			return errors.Join(w.AddEntry(0, []byte("a")), w.AddEntry(1, []byte("b")))
		}, "has 1 leaves"},
		{"entry too large", 1, func(w *Writer) error { return w.AddEntry(0, make([]byte, MaxEntrySize+1)) }, "exceeds"},
		{"duplicate tile", 0, func(w *Writer) error {
			id := merkle.TileID{Level: 1, Index: 2}
			return errors.Join(w.AddTile(id, tile), w.AddTile(id, tile))
		}, "added twice"},
		{"empty tile", 0, func(w *Writer) error { return w.AddTile(merkle.TileID{}, nil) }, "0 bytes"},
		{"tile too large", 0, func(w *Writer) error { return w.AddTile(merkle.TileID{}, make([]byte, MaxTileSize+1)) }, "bytes, want"},
		{"missing entries", 3, func(w *Writer) error {
			return errors.Join(w.AddEntry(0, nil), w.AddEntry(1, nil), w.Commit())
		}, "2 of 3 entries"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "s.seg")
			w, err := Create(path, testHeader(tc.size), WriterOptions{})
			if err != nil {
				t.Fatal(err)
			}
			err = tc.do(w)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want error containing %q", err, tc.want)
			}
			// Nothing is left on disk even before Abort, and the writer
			// stays failed: a later Commit cannot succeed.
			dirEmpty(t, dir)
			if err := w.Commit(); err == nil {
				t.Fatal("Commit after misuse succeeded")
			}
			if err := w.Abort(); err != nil {
				t.Fatalf("Abort after misuse: %v", err)
			}
			dirEmpty(t, dir)
		})
	}
}

func TestAbort(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "s.seg")
	w, err := Create(path, testHeader(10000), WriterOptions{BlockSize: 128})
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range genEntries(15, 5000, entryMix{}) {
		if err := w.AddEntry(uint64(i), e); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.AddTile(merkle.TileID{}, []byte("t")); err != nil {
		t.Fatal(err)
	}
	if err := w.Abort(); err != nil {
		t.Fatal(err)
	}
	dirEmpty(t, dir)
	if err := w.Abort(); err != nil {
		t.Fatalf("second Abort: %v", err)
	}
	if err := w.AddEntry(5000, nil); err == nil {
		t.Fatal("AddEntry after Abort succeeded")
	}
	if err := w.Commit(); err == nil {
		t.Fatal("Commit after Abort succeeded")
	}
	dirEmpty(t, dir)
}

func TestCommitTwice(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "s.seg")
	w, err := Create(path, testHeader(1), WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(w.AddEntry(0, []byte("x")), w.Commit()); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); err == nil {
		t.Fatal("second Commit succeeded")
	}
	if err := w.Abort(); err != nil {
		t.Fatal(err)
	}
	checkSegment(t, path, testHeader(1), [][]byte{[]byte("x")}, nil)
	dirHolds(t, dir, "s.seg")
}

func TestOpenMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "none.seg")
	_, err := Open(path, ReaderOptions{})
	if !errors.Is(err, os.ErrNotExist) || errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), path) {
		t.Fatalf("Open(missing) = %v, want a not-exist error naming the path", err)
	}
}

// Concurrent readers of one Reader, with a cache small enough to churn;
// run with -race.
func TestConcurrentReads(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.seg")
	entries := genEntries(16, 5000, entryMix{pruned: 5, empty: 5, big: 1, bigSize: 1024})
	tiles := genTiles(16, 40)
	writeSegment(t, path, testHeader(uint64(len(entries))), entries, tiles, WriterOptions{BlockSize: 1024})
	for _, cache := range []int{-1, 8 << 10, 0} {
		t.Run(fmt.Sprintf("cache=%d", cache), func(t *testing.T) {
			r, err := Open(path, ReaderOptions{CacheBytes: cache})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			var wg sync.WaitGroup
			errs := make(chan error, 16)
			for g := range 6 {
				wg.Go(func() {
					rng := rand.New(rand.NewPCG(uint64(g), 0))
					for range 1500 {
						leaf := rng.IntN(len(entries))
						got, err := r.Entry(uint64(leaf))
						want := entries[leaf]
						if want == nil && errors.Is(err, ErrPruned) {
							continue
						}
						if err != nil || !bytes.Equal(got, want) {
							errs <- fmt.Errorf("Entry(%d) = %d bytes, %v; want %d bytes", leaf, len(got), err, len(want))
							return
						}
						tk := tiles[rng.IntN(len(tiles))]
						if b, err := r.Tile(tk.id); err != nil || !bytes.Equal(b, tk.data) {
							errs <- fmt.Errorf("Tile(%s): %v", tk.id, err)
							return
						}
					}
				})
			}
			wg.Go(func() {
				err := r.Scan(0, func(leaf uint64, data []byte) error {
					if !bytes.Equal(data, entries[leaf]) {
						return fmt.Errorf("Scan: leaf %d differs", leaf)
					}
					return nil
				})
				if err != nil {
					errs <- err
				}
			})
			wg.Go(func() {
				if err := r.Verify(); err != nil {
					errs <- err
				}
			})
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
		})
	}
}

func TestCacheBudget(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.seg")
	entries := genEntries(17, 2000, entryMix{})
	writeSegment(t, path, testHeader(uint64(len(entries))), entries, nil, WriterOptions{BlockSize: 1024})
	r, err := Open(path, ReaderOptions{CacheBytes: 4096})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for leaf := range entries {
		if _, err := r.Entry(uint64(leaf)); err != nil {
			t.Fatal(err)
		}
		if r.cache.used > 4096 {
			t.Fatalf("cache holds %d bytes, budget 4096", r.cache.used)
		}
	}
	if r.cache.lru.Len() == 0 {
		t.Fatal("cache never used")
	}
}
