package segment

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/trailaudit/trail/merkle"
)

// tileKV is a tile in the order a test adds it.
type tileKV struct {
	id   merkle.TileID
	data []byte
}

func testHeader(size uint64) Header {
	return Header{Tenant: "tenant-01", Partition: "2026-11", Size: size, Root: merkle.LeafHash([]byte("root"))}
}

// entryMix says how genEntries draws entries.
type entryMix struct {
	pruned, empty, big int // percent of entries pruned (nil), empty ([]byte{}), and larger than bigSize
	bigSize            int
}

// genEntries returns n entries drawn from mix: the rest are small (1..64
// bytes) or medium (64..1024 bytes), half text-like and half random, so that
// blocks neither compress to nothing nor fail to compress.
func genEntries(seed uint64, n int, mix entryMix) [][]byte {
	rng := rand.New(rand.NewPCG(seed, 0x5e6))
	out := make([][]byte, n)
	for i := range out {
		k := rng.IntN(100)
		var size int
		switch {
		case k < mix.pruned:
			continue // nil
		case k < mix.pruned+mix.empty:
			out[i] = []byte{}
			continue
		case k < mix.pruned+mix.empty+mix.big:
			size = mix.bigSize + 1 + rng.IntN(mix.bigSize+1)
		case k < 50:
			size = 1 + rng.IntN(64)
		default:
			size = 64 + rng.IntN(960)
		}
		b := make([]byte, 0, size)
		for len(b) < size {
			if rng.IntN(2) == 0 {
				b = fmt.Appendf(b, "leaf=%d actor=user-%04d action=record.view ", i, rng.IntN(50))
			} else {
				for range 16 {
					b = append(b, byte(rng.Uint32()))
				}
			}
		}
		out[i] = b[:size]
	}
	return out
}

// genTiles returns n tiles with distinct ids over several levels, of
// varied sizes, in random order.
func genTiles(seed uint64, n int) []tileKV {
	rng := rand.New(rand.NewPCG(seed, 0x711e))
	seen := make(map[merkle.TileID]bool)
	var out []tileKV
	for len(out) < n {
		id := merkle.TileID{Level: uint8(rng.IntN(4)), Index: uint64(rng.IntN(4 * n))}
		if rng.IntN(20) == 0 {
			id.Index = rng.Uint64() // far indexes must sort and encode too
		}
		if seen[id] {
			continue
		}
		seen[id] = true
		b := make([]byte, 1+rng.IntN(2000))
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		out = append(out, tileKV{id, b})
	}
	return out
}

// writeSegment writes entries and tiles (tiles after the entries) to path.
func writeSegment(t testing.TB, path string, h Header, entries [][]byte, tiles []tileKV, opts WriterOptions) {
	t.Helper()
	w, err := Create(path, h, opts)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range entries {
		if err := w.AddEntry(uint64(i), e); err != nil {
			t.Fatal(err)
		}
	}
	for _, tk := range tiles {
		if err := w.AddTile(tk.id, tk.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
}

// smallSegment returns the bytes of a small valid segment (about 2 KB, so
// that tests can damage every byte of it) with several blocks, pruned and
// empty entries, an entry larger than a block, and tiles.
func smallSegment(t testing.TB) []byte {
	t.Helper()
	rng := rand.New(rand.NewPCG(7, 7))
	entries := make([][]byte, 30)
	for i := range entries {
		switch {
		case i%7 == 0: // pruned
		case i%7 == 1:
			entries[i] = []byte{}
		case i == 12:
			entries[i] = bytes.Repeat([]byte("big entry "), 30)
		default:
			entries[i] = fmt.Appendf(nil, "entry %d %x", i, rng.Uint64())
		}
	}
	tiles := []tileKV{
		{merkle.TileID{Level: 0, Index: 0}, bytes.Repeat([]byte{0xaa}, 64)},
		{merkle.TileID{Level: 1, Index: 0}, bytes.Repeat([]byte{0xbb}, 32)},
		{merkle.TileID{Level: 0, Index: 1}, []byte{0xcc}},
	}
	path := filepath.Join(t.TempDir(), "small.seg")
	writeSegment(t, path, testHeader(uint64(len(entries))), entries, tiles, WriterOptions{BlockSize: 200})
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// resign replaces the trailing hash of b with the SHA-256 of the rest, so
// a test can build files whose damage the hash does not catch.
func resign(b []byte) []byte {
	b = slices.Clone(b)
	if len(b) < sha256.Size {
		return b
	}
	sum := sha256.Sum256(b[:len(b)-sha256.Size])
	copy(b[len(b)-sha256.Size:], sum[:])
	return b
}

// checkSegment opens path and checks every way of reading it against
// entries and tiles.
func checkSegment(t *testing.T, path string, h Header, entries [][]byte, tiles []tileKV) {
	t.Helper()
	r, err := Open(path, ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if got := r.Header(); got != h {
		t.Fatalf("Header() = %+v, want %+v", got, h)
	}
	for leaf, want := range entries {
		got, err := r.Entry(uint64(leaf))
		checkEntry(t, fmt.Sprintf("Entry(%d)", leaf), got, err, want)
	}
	for _, leaf := range []uint64{h.Size, h.Size + 1, ^uint64(0)} {
		if _, err := r.Entry(leaf); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Entry(%d) past size %d: err = %v, want ErrNotFound", leaf, h.Size, err)
		}
	}
	for _, from := range scanStarts(r, h.Size) {
		next := from
		err := r.Scan(from, func(leaf uint64, data []byte) error {
			if leaf != next {
				return fmt.Errorf("leaf %d, want %d", leaf, next)
			}
			next++
			if e := entries[leaf]; (data == nil) != (e == nil) || !bytes.Equal(data, e) {
				return fmt.Errorf("leaf %d: %d bytes (nil %v), want %d (nil %v)", leaf, len(data), data == nil, len(e), e == nil)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("Scan(%d): %v", from, err)
		}
		if next != h.Size {
			t.Fatalf("Scan(%d) stopped at %d, want %d", from, next, h.Size)
		}
	}
	if err := r.Scan(h.Size+1, func(uint64, []byte) error { return nil }); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Scan past size: err = %v, want ErrNotFound", err)
	}

	want := make([]merkle.TileID, 0, len(tiles))
	for _, tk := range tiles {
		want = append(want, tk.id)
		got, err := r.Tile(tk.id)
		if err != nil || !bytes.Equal(got, tk.data) {
			t.Fatalf("Tile(%s) = %d bytes, %v; want %d bytes", tk.id, len(got), err, len(tk.data))
		}
	}
	slices.SortFunc(want, tileCompare)
	if got := r.Tiles(); !slices.Equal(got, want) {
		t.Fatalf("Tiles() = %v, want %v", got, want)
	}
	if _, err := r.Tile(merkle.TileID{Level: 200, Index: 1}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Tile(absent): err = %v, want ErrNotFound", err)
	}
	if err := r.Verify(); err != nil {
		t.Fatalf("Verify: %v", err)
	}
}

func checkEntry(t *testing.T, what string, got []byte, err error, want []byte) {
	t.Helper()
	if want == nil {
		if !errors.Is(err, ErrPruned) || got != nil {
			t.Fatalf("%s = %d bytes, %v; want ErrPruned", what, len(got), err)
		}
		return
	}
	if err != nil || got == nil || !bytes.Equal(got, want) {
		t.Fatalf("%s = %d bytes (nil %v), %v; want %d bytes", what, len(got), got == nil, err, len(want))
	}
}

// scanStarts returns interesting Scan starting points: the ends, the
// middle, and the first leaves of blocks and the leaves right after them.
func scanStarts(r *Reader, size uint64) []uint64 {
	starts := []uint64{0, size / 2, size}
	if size > 0 {
		starts = append(starts, 1, size-1)
	}
	// A few blocks spread over the file: each start is a full scan.
	for k := 1; k <= 4 && len(r.ix.blocks) > 1; k++ {
		b := r.ix.blocks[k*(len(r.ix.blocks)-1)/4]
		starts = append(starts, b.first, b.first+1)
	}
	slices.Sort(starts)
	starts = slices.Compact(starts)
	for len(starts) > 0 && starts[len(starts)-1] > size {
		starts = starts[:len(starts)-1]
	}
	return starts
}

// dirEmpty fails the test if dir holds anything: no segment, no temp file.
func dirEmpty(t *testing.T, dir string) {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range des {
		t.Errorf("%s left in %s", de.Name(), dir)
	}
}
