package segment

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/trailaudit/trail/merkle"
)

// openBytes writes b to a file and opens it.
func openBytes(t *testing.T, b []byte) (*Reader, string, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "x.seg")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := Open(path, ReaderOptions{})
	return r, path, err
}

// wantCorrupt checks that opening b fails with ErrCorrupt naming the path
// and, if want is not empty, saying want.
func wantCorrupt(t *testing.T, b []byte, want string) {
	t.Helper()
	r, path, err := openBytes(t, b)
	if err == nil {
		r.Close()
		t.Fatalf("Open succeeded, want ErrCorrupt (%s)", want)
	}
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), want) {
		t.Fatalf("Open = %v; want ErrCorrupt naming the path and saying %q", err, want)
	}
}

// Every single-byte change anywhere in the file (header, blocks, tiles,
// footer, footer length, trailing hash) is caught by Open.
func TestFlipEveryByte(t *testing.T) {
	good := smallSegment(t)
	if r, _, err := openBytes(t, good); err != nil {
		t.Fatal(err)
	} else {
		r.Close()
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "x.seg")
	for i := range good {
		// A single-bit change everywhere, plus whole-byte changes.
		for _, mask := range []byte{0x01 << (i % 8), 0xff} {
			b := bytes.Clone(good)
			b[i] ^= mask
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
			r, err := Open(path, ReaderOptions{})
			if err == nil {
				r.Close()
				t.Fatalf("byte %d ^ %#x: Open succeeded", i, mask)
			}
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), path) {
				t.Fatalf("byte %d ^ %#x: %v, want ErrCorrupt naming the path", i, mask, err)
			}
		}
	}
}

func TestDamagedFiles(t *testing.T) {
	good := smallSegment(t)
	n := len(good)
	tests := []struct {
		name string
		b    []byte
		want string
	}{
		{"zero-length", nil, "empty file"},
		{"one byte", good[:1], "shorter"},
		{"magic only", good[:8], "shorter"},
		{"preamble only", good[:12], "shorter"},
		{"truncated to the minimum", good[:minFileSize], "SHA-256"},
		{"truncated by half", good[:n/2], "SHA-256"},
		{"last byte missing", good[:n-1], "SHA-256"},
		{"trailing hash missing", good[:n-32], "SHA-256"},
		{"byte appended", append(bytes.Clone(good), 0), "SHA-256"},
		{"segment appended", append(bytes.Clone(good), good...), "SHA-256"},
		{"wrong magic", append([]byte("PK\x03\x04\x14\x00\x00\x00"), good[8:]...), "bad magic"},
		{"text file", []byte(strings.Repeat("this is not a segment\n", 10)), "bad magic"},
		{"CRLF conversion", bytes.ReplaceAll(good, []byte("\r\n"), []byte("\n")), "bad magic"},
		{"zeros", make([]byte, 4096), "bad magic"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wantCorrupt(t, tc.b, tc.want)
		})
	}
}

// specFile builds a file from the byte-level description in doc.go,
// independently of the Writer, so that tests can express files the Writer
// never produces. bytes() appends a correct trailing hash.
type specFile struct {
	version   uint32
	tenant    string
	partition string
	size      uint64
	data      []byte // the data region
	blocks    []blockInfo
	tiles     []tileInfo
	// overrides of the footer counts and length (nil: computed)
	blockCount, tileCount, footerLen *uint64
}

func (s *specFile) headerLen() uint64 { return uint64(12 + 1 + len(s.tenant) + 7 + 8 + 32) }

func (s *specFile) bytes() []byte {
	var b []byte
	b = append(b, "\x89TSG\r\n\x1a\n"...)
	b = binary.BigEndian.AppendUint32(b, s.version)
	b = append(b, byte(len(s.tenant)))
	b = append(b, s.tenant...)
	b = append(b, s.partition...)
	b = binary.BigEndian.AppendUint64(b, s.size)
	b = append(b, bytes.Repeat([]byte{0xab}, 32)...)
	b = append(b, s.data...)
	footerStart := len(b)
	nb, nt := uint64(len(s.blocks)), uint64(len(s.tiles))
	if s.blockCount != nil {
		nb = *s.blockCount
	}
	if s.tileCount != nil {
		nt = *s.tileCount
	}
	b = binary.BigEndian.AppendUint64(b, nb)
	b = binary.BigEndian.AppendUint64(b, nt)
	for _, bi := range s.blocks {
		b = binary.BigEndian.AppendUint64(b, bi.first)
		b = binary.BigEndian.AppendUint64(b, bi.off)
		b = binary.BigEndian.AppendUint32(b, bi.length)
		b = binary.BigEndian.AppendUint32(b, bi.raw)
		b = binary.BigEndian.AppendUint32(b, bi.count)
	}
	for _, ti := range s.tiles {
		b = append(b, ti.id.Level)
		b = binary.BigEndian.AppendUint64(b, ti.id.Index)
		b = binary.BigEndian.AppendUint64(b, ti.off)
		b = binary.BigEndian.AppendUint32(b, ti.length)
		b = binary.BigEndian.AppendUint32(b, ti.crc)
	}
	fl := uint64(len(b) - footerStart)
	if s.footerLen != nil {
		fl = *s.footerLen
	}
	b = binary.BigEndian.AppendUint64(b, fl)
	return resign(append(b, make([]byte, 32)...))
}

// addBlock appends a block holding payload (already encoded entries) to
// the data region.
func (s *specFile) addBlock(t testing.TB, payload []byte, count uint32) {
	t.Helper()
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	s.addRawBlock(enc.EncodeAll(payload, nil), uint32(len(payload)), count)
}

// addRawBlock appends comp as a block claiming raw and count.
func (s *specFile) addRawBlock(comp []byte, raw, count uint32) {
	var first uint64
	if n := len(s.blocks); n > 0 {
		first = s.blocks[n-1].first + uint64(s.blocks[n-1].count)
	}
	s.blocks = append(s.blocks, blockInfo{first: first, off: s.headerLen() + uint64(len(s.data)), length: uint32(len(comp)), raw: raw, count: count})
	s.data = append(s.data, comp...)
}

func (s *specFile) addTile(id merkle.TileID, tile []byte) {
	s.tiles = append(s.tiles, tileInfo{id: id, off: s.headerLen() + uint64(len(s.data)), length: uint32(len(tile)), crc: crc32.Checksum(tile, crc32.MakeTable(crc32.Castagnoli))})
	s.data = append(s.data, tile...)
}

// payload encodes entries as a block payload: tag 0 for nil, len+1 else.
func payload(entries ...[]byte) []byte {
	var b []byte
	for _, e := range entries {
		if e == nil {
			b = binary.AppendUvarint(b, 0)
			continue
		}
		b = binary.AppendUvarint(b, uint64(len(e))+1)
		b = append(b, e...)
	}
	return b
}

// specEntries are the entries of validSpec, in leaf order.
var specEntries = [][]byte{[]byte("zero"), nil, {}, bytes.Repeat([]byte("four"), 100), []byte("three")}

// validSpec is a well-formed file: specEntries in blocks of 3, 1 and 1
// entries (the split a Writer with BlockSize 8 makes), then 2 tiles.
func validSpec(t testing.TB) *specFile {
	s := &specFile{version: 1, tenant: "acme", partition: "2026-02", size: 5}
	s.addBlock(t, payload(specEntries[:3]...), 3)
	s.addBlock(t, payload(specEntries[3]), 1)
	s.addBlock(t, payload(specEntries[4]), 1)
	s.addTile(merkle.TileID{Level: 0, Index: 0}, []byte("tile 0/0"))
	s.addTile(merkle.TileID{Level: 1, Index: 0}, []byte("tile 1/0"))
	return s
}

// The reader agrees with the spec as written in doc.go, and the Writer
// writes exactly what the spec says.
func TestSpecFile(t *testing.T) {
	spec := validSpec(t).bytes()
	r, _, err := openBytes(t, spec)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for leaf, w := range specEntries {
		got, err := r.Entry(uint64(leaf))
		checkEntry(t, fmt.Sprintf("Entry(%d)", leaf), got, err, w)
	}
	if h := r.Header(); h.Tenant != "acme" || h.Partition != "2026-02" || h.Size != 5 || h.Root[0] != 0xab {
		t.Fatalf("Header() = %+v", h)
	}
	if b, err := r.Tile(merkle.TileID{Level: 1}); err != nil || string(b) != "tile 1/0" {
		t.Fatalf("Tile(1/0) = %q, %v", b, err)
	}

	path := filepath.Join(t.TempDir(), "w.seg")
	h := Header{Tenant: "acme", Partition: "2026-02", Size: 5}
	for i := range h.Root {
		h.Root[i] = 0xab
	}
	writeSegment(t, path, h, specEntries, []tileKV{{merkle.TileID{}, []byte("tile 0/0")}, {merkle.TileID{Level: 1}, []byte("tile 1/0")}}, WriterOptions{BlockSize: 8})
	written, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(written, spec) {
		t.Fatalf("Writer output differs from the spec:\n got %x\nwant %x", written, spec)
	}
}

func u64(v uint64) *uint64 { return &v }

// Files with a valid trailing hash whose structure lies: Open must reject
// each with ErrCorrupt, without panicking or allocating what the lie says.
func TestMaliciousFiles(t *testing.T) {
	tests := []struct {
		name string
		edit func(s *specFile)
		want string
	}{
		{"version 0", func(s *specFile) { s.version = 0 }, "version 0"},
		{"version 2", func(s *specFile) { s.version = 2 }, "version 2"},
		{"empty tenant", func(s *specFile) { s.tenant = "" }, "tenant"},
		{"bad partition", func(s *specFile) { s.partition = "2026-13" }, "partition"},
		{"size too large", func(s *specFile) { s.size = 6 }, "header says 6"},
		{"size too small", func(s *specFile) { s.size = 4 }, "past size"},
		{"size zero with blocks", func(s *specFile) { s.size = 0 }, "3 blocks for 0 leaves"},
		{"no blocks", func(s *specFile) { s.blocks = nil }, "0 blocks for 5 leaves"},
		{"footer length max", func(s *specFile) { s.footerLen = u64(^uint64(0)) }, "footer length"},
		{"footer length 2^63", func(s *specFile) { s.footerLen = u64(1 << 63) }, "footer length"},
		{"footer length zero", func(s *specFile) { s.footerLen = u64(0) }, "footer"},
		{"footer length short", func(s *specFile) { s.footerLen = u64(15) }, "footer"},
		{"footer length one more", func(s *specFile) { s.footerLen = u64(16 + 3*28 + 2*25 + 1) }, "cannot hold"},
		{"footer length into header", func(s *specFile) { s.footerLen = u64(16 + 3*28 + 2*25 + uint64(len(s.data)) + 10) }, "footer length"},
		{"block count huge", func(s *specFile) { s.blockCount = u64(1 << 60) }, "cannot hold"},
		{"block count max", func(s *specFile) { s.blockCount = u64(^uint64(0)) }, "cannot hold"},
		{"tile count huge", func(s *specFile) { s.tileCount = u64(1 << 62) }, "cannot hold"},
		{"counts swapped", func(s *specFile) { s.blockCount, s.tileCount = u64(4), u64(1) }, "cannot hold"},
		{"first leaf wrong", func(s *specFile) { s.blocks[1].first = 2 }, "starts at leaf 2"},
		{"no entries", func(s *specFile) { s.blocks[1].count = 0 }, "no entries"},
		{"count max", func(s *specFile) { s.blocks[1].count = ^uint32(0) }, "past size"},
		{"raw below count", func(s *specFile) { s.blocks[0].raw = 2 }, "payload of 2 bytes"},
		{"raw huge", func(s *specFile) { s.blocks[0].raw = ^uint32(0) }, "payload of"},
		{"compressed zero", func(s *specFile) { s.blocks[0].length = 0 }, "compressed"},
		{"compressed huge", func(s *specFile) { s.blocks[0].length = ^uint32(0) }, "compressed"},
		{"block offset past end", func(s *specFile) { s.blocks[2].off = 1 << 40 }, "outside the data region"},
		{"block offset max", func(s *specFile) { s.blocks[2].off = ^uint64(0) }, "outside the data region"},
		{"block in header", func(s *specFile) { s.blocks[0].off = 3 }, "outside the data region"},
		{"block into footer", func(s *specFile) { s.blocks[2].length += uint32(20) }, "outside the data region"},
		{"blocks out of order", func(s *specFile) { s.blocks[0].off, s.blocks[1].off = s.blocks[1].off, s.blocks[0].off }, "not after"},
		{"blocks overlap", func(s *specFile) { s.blocks[1].off-- }, "overlap"},
		{"gap", func(s *specFile) {
			s.data = append(s.data, "smuggled"...)
		}, "belong to no block or tile"},
		{"gap in the middle", func(s *specFile) { s.blocks[1].off++; s.blocks[1].length-- }, "belong to no block or tile"},
		{"tile empty", func(s *specFile) { s.tiles[0].length = 0 }, "0 bytes"},
		{"tile huge", func(s *specFile) { s.tiles[0].length = ^uint32(0) }, "bytes"},
		{"tile past end", func(s *specFile) { s.tiles[1].off = ^uint64(0) - 3 }, "outside the data region"},
		{"tile overlaps block", func(s *specFile) { s.tiles[0].off = s.blocks[1].off }, "overlap"},
		{"tiles unsorted", func(s *specFile) { s.tiles[0].id, s.tiles[1].id = s.tiles[1].id, s.tiles[0].id }, "out of order"},
		{"tiles duplicated", func(s *specFile) { s.tiles[1].id = s.tiles[0].id }, "duplicated"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := validSpec(t)
			tc.edit(s)
			wantCorrupt(t, s.bytes(), tc.want)
		})
	}
}

// Files whose index is sound but whose block payloads lie: Open accepts
// them (it does not decompress), every read of the block fails with
// ErrCorrupt, and the other blocks stay readable.
func TestMaliciousBlocks(t *testing.T) {
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	tests := []struct {
		name  string
		comp  []byte
		raw   uint32
		count uint32
		want  string
	}{
		{"not zstd", []byte("definitely not a zstd frame"), 30, 3, ""},
		{"payload longer than claimed", enc.EncodeAll(payload([]byte("abc"), []byte("def")), nil), 5, 2, ""},
		{"payload shorter than claimed", enc.EncodeAll(payload([]byte("abc"), []byte("def")), nil), 100, 2, "payload of 8 bytes"},
		{"bomb", enc.EncodeAll(make([]byte, 8<<20), nil), 1000, 3, ""},
		{"fewer entries", enc.EncodeAll(payload([]byte("abc"), []byte("def")), nil), 8, 3, "entry tag"},
		{"more entries", enc.EncodeAll(payload([]byte("abc"), []byte("def"), nil), nil), 9, 2, "after the last entry"},
		{"length past the block", enc.EncodeAll(append(binary.AppendUvarint(nil, 1000), "xy"...), nil), 4, 1, "entry of 999 bytes"},
		{"huge length", enc.EncodeAll(append(binary.AppendUvarint(nil, ^uint64(0)), "xy"...), nil), 12, 1, "bytes with 2 left"},
		{"bad varint", enc.EncodeAll(bytes.Repeat([]byte{0xff}, 12), nil), 12, 1, "entry tag"},
		{"empty frame", enc.EncodeAll(nil, nil), 1, 1, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := &specFile{version: 1, tenant: "acme", partition: "2026-02", size: 1 + uint64(tc.count)}
			s.addBlock(t, payload([]byte("good")), 1)
			s.addRawBlock(tc.comp, tc.raw, tc.count)
			r, _, err := openBytes(t, s.bytes())
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer r.Close()
			if got, err := r.Entry(0); err != nil || string(got) != "good" {
				t.Fatalf("Entry(0) = %q, %v", got, err)
			}
			for leaf := uint64(1); leaf <= uint64(tc.count); leaf++ {
				_, err := r.Entry(leaf)
				if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "block 1") {
					t.Fatalf("Entry(%d) = %v, want ErrCorrupt in block 1 saying %q", leaf, err, tc.want)
				}
			}
			// Scan checks a whole block before handing out any of it.
			var seen []uint64
			err = r.Scan(0, func(leaf uint64, _ []byte) error { seen = append(seen, leaf); return nil })
			if !errors.Is(err, ErrCorrupt) || fmt.Sprint(seen) != "[0]" {
				t.Fatalf("Scan = %v after leaves %v, want ErrCorrupt after [0]", err, seen)
			}
		})
	}
}

// Bytes that change on disk after Open are caught when read: blocks by
// their zstd checksum, tiles by their CRC, the whole file by Verify.
func TestModifiedAfterOpen(t *testing.T) {
	s := &specFile{version: 1, tenant: "acme", partition: "2026-02", size: 1}
	random := genTiles(99, 1)[0].data // incompressible, so stored raw
	s.addBlock(t, payload(random), 1)
	s.addTile(merkle.TileID{}, []byte("a tile of some length"))
	path := filepath.Join(t.TempDir(), "x.seg")
	if err := os.WriteFile(path, s.bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := Open(path, ReaderOptions{CacheBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	flip := func(off uint64) {
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		b := make([]byte, 1)
		if _, err := f.ReadAt(b, int64(off)); err != nil {
			t.Fatal(err)
		}
		b[0] ^= 0x10
		if _, err := f.WriteAt(b, int64(off)); err != nil {
			t.Fatal(err)
		}
	}
	bi, ti := s.blocks[0], s.tiles[0]
	flip(bi.off + uint64(bi.length)/2)
	if _, err := r.Entry(0); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Entry after block change = %v, want ErrCorrupt", err)
	}
	if err := r.Scan(0, func(uint64, []byte) error { return nil }); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Scan after block change = %v, want ErrCorrupt", err)
	}
	flip(ti.off + 3)
	if _, err := r.Tile(ti.id); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Tile after change = %v, want ErrCorrupt", err)
	}
	if err := r.Verify(); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Verify after change = %v, want ErrCorrupt", err)
	}
	// A change that also fixes the trailing hash is still caught: Verify
	// compares with the hash seen at Open.
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, resign(b), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := r.Verify(); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "at open") {
		t.Fatalf("Verify after re-signed change = %v, want ErrCorrupt", err)
	}
	// Truncation after Open.
	if err := os.Truncate(path, int64(bi.off)+2); err != nil {
		t.Fatal(err)
	}
	if err := r.Verify(); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Verify after truncation = %v, want ErrCorrupt", err)
	}
	if _, err := r.Tile(ti.id); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Tile after truncation = %v, want ErrCorrupt", err)
	}
}
