package segment

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"

	"github.com/trailaudit/trail/merkle"
)

// Version is the segment format version this package writes and reads.
const Version = 1

// Limits of format version 1. They bound every length read from a file, so a
// corrupt or hostile file can cost at most this much memory per read.
const (
	// MaxTenantLen is the longest tenant name a header can hold.
	MaxTenantLen = 255
	// MaxEntrySize is the largest entry payload a segment can hold.
	MaxEntrySize = 16 << 20
	// MaxTileSize is the largest tile a segment can hold; merkle tiles are
	// about 16 KiB, the margin keeps tiles opaque to this package.
	MaxTileSize = 1 << 20
	// MaxBlockSize is the largest WriterOptions.BlockSize.
	MaxBlockSize = 16 << 20
	// DefaultBlockSize is the target uncompressed block size: large enough
	// for zstd to find the repetition between entries, small enough that a
	// random read decompresses little.
	DefaultBlockSize = 64 << 10

	// maxBlockRaw bounds a block payload: a block is either at most
	// BlockSize or a single entry with its tag.
	maxBlockRaw = max(MaxEntrySize+binary.MaxVarintLen64, MaxBlockSize)
)

// Fixed sizes of the version 1 layout (see doc.go).
const (
	magic           = "\x89TSG\r\n\x1a\n"
	preambleSize    = len(magic) + 4
	partitionLen    = len("YYYY-MM")
	headerFixed     = 1 + partitionLen + 8 + merkle.HashSize // all but the tenant
	footerFixed     = 16                                     // block_count, tile_count
	blockRecordSize = 8 + 8 + 4 + 4 + 4
	tileRecordSize  = 1 + 8 + 8 + 4 + 4
	trailerSize     = 8 + sha256.Size // footer_length, trailer_hash

	// minFileSize is the smallest well-formed file: an empty partition of a
	// one-byte tenant with no tiles.
	minFileSize = preambleSize + headerFixed + 1 + footerFixed + trailerSize
	// maxHeaderSize lets Open capture the header while hashing without
	// knowing the tenant length in advance.
	maxHeaderSize = headerFixed + MaxTenantLen
)

var (
	// ErrCorrupt reports a file that is not a well-formed segment, fails its
	// integrity checks, or changed after it was opened.
	ErrCorrupt = errors.New("corrupt segment file")
	// ErrPruned reports a leaf whose payload retention removed; the leaf
	// itself still exists.
	ErrPruned = errors.New("entry payload pruned")
	// ErrNotFound reports a leaf at or past the partition size, or a tile
	// the segment does not hold.
	ErrNotFound = errors.New("not in segment")
)

// castagnoli is the CRC-32C table for tile checksums; it is immutable once
// built, so sharing it is not shared mutable state.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// compressBound bounds the compressed length of a raw block. zstd stores an
// incompressible block raw (3 bytes of header per 128 KiB) plus at most 18
// bytes of frame header and a 4-byte checksum; the bound is looser so that
// another conforming encoder fits.
func compressBound(raw uint64) uint64 {
	return raw + raw/128 + 1024
}

// blockInfo is a block record of the footer.
type blockInfo struct {
	first  uint64 // first leaf
	off    uint64
	length uint32 // compressed
	raw    uint32 // payload
	count  uint32 // entries
}

// tileInfo is a tile record of the footer.
type tileInfo struct {
	id     merkle.TileID
	off    uint64
	length uint32
	crc    uint32
}

// tileCompare orders tiles by (level, index), the order of the tile index.
func tileCompare(a, b merkle.TileID) int {
	return cmp.Or(cmp.Compare(a.Level, b.Level), cmp.Compare(a.Index, b.Index))
}

// validateHeader checks what Create accepts and Open requires.
func validateHeader(h Header) error {
	if len(h.Tenant) == 0 || len(h.Tenant) > MaxTenantLen {
		return fmt.Errorf("tenant of %d bytes, want 1..%d", len(h.Tenant), MaxTenantLen)
	}
	if !validPartition(h.Partition) {
		return fmt.Errorf("partition %q is not YYYY-MM", h.Partition)
	}
	return nil
}

func validPartition(p string) bool {
	if len(p) != partitionLen || p[4] != '-' {
		return false
	}
	for i, c := range []byte(p) {
		if i != 4 && (c < '0' || c > '9') {
			return false
		}
	}
	month := (p[5]-'0')*10 + p[6] - '0'
	return month >= 1 && month <= 12
}

func appendHeader(b []byte, h Header) []byte {
	b = append(b, magic...)
	b = binary.BigEndian.AppendUint32(b, Version)
	b = append(b, byte(len(h.Tenant)))
	b = append(b, h.Tenant...)
	b = append(b, h.Partition...)
	b = binary.BigEndian.AppendUint64(b, h.Size)
	return append(b, h.Root[:]...)
}

// parseHeader parses the header from the start of the file (b holds the
// first bytes, possibly fewer than maxHeaderSize+preambleSize) and returns
// it with the offset where the data region starts.
func parseHeader(b []byte) (Header, uint64, error) {
	if len(b) < preambleSize || string(b[:len(magic)]) != magic {
		return Header{}, 0, errors.New("bad magic: not a segment file")
	}
	if v := binary.BigEndian.Uint32(b[len(magic):]); v != Version {
		return Header{}, 0, fmt.Errorf("unsupported format version %d (this build reads %d)", v, Version)
	}
	b = b[preambleSize:]
	if len(b) < 1 {
		return Header{}, 0, errors.New("header truncated")
	}
	n := int(b[0])
	if len(b) < n+headerFixed {
		return Header{}, 0, errors.New("header truncated")
	}
	var h Header
	h.Tenant = string(b[1 : 1+n])
	b = b[1+n:]
	h.Partition = string(b[:partitionLen])
	h.Size = binary.BigEndian.Uint64(b[partitionLen:])
	copy(h.Root[:], b[partitionLen+8:])
	if err := validateHeader(h); err != nil {
		return Header{}, 0, fmt.Errorf("header: %v", err)
	}
	return h, uint64(preambleSize + n + headerFixed), nil
}

func appendBlockRecord(b []byte, bi blockInfo) []byte {
	b = binary.BigEndian.AppendUint64(b, bi.first)
	b = binary.BigEndian.AppendUint64(b, bi.off)
	b = binary.BigEndian.AppendUint32(b, bi.length)
	b = binary.BigEndian.AppendUint32(b, bi.raw)
	return binary.BigEndian.AppendUint32(b, bi.count)
}

func appendTileRecord(b []byte, ti tileInfo) []byte {
	b = append(b, ti.id.Level)
	b = binary.BigEndian.AppendUint64(b, ti.id.Index)
	b = binary.BigEndian.AppendUint64(b, ti.off)
	b = binary.BigEndian.AppendUint32(b, ti.length)
	return binary.BigEndian.AppendUint32(b, ti.crc)
}

// footerLength returns footer_length for the given counts, or false if the
// counts cannot fit a footer of at most limit bytes. It divides before it
// multiplies so that no count read from a file can overflow.
func footerLength(blocks, tiles, limit uint64) (uint64, bool) {
	if limit < footerFixed || blocks > (limit-footerFixed)/blockRecordSize {
		return 0, false
	}
	n := footerFixed + blocks*blockRecordSize
	if tiles > (limit-n)/tileRecordSize {
		return 0, false
	}
	return n + tiles*tileRecordSize, true
}

// index is the parsed footer.
type index struct {
	blocks []blockInfo
	tiles  []tileInfo // sorted by id
	maxRaw uint32     // largest raw_length, to bound the decoder
}

// parseFooter parses and validates the footer f (exactly footer_length
// bytes) of a file whose header is h and whose data region is
// [dataStart, dataEnd). Every count is checked against len(f) before
// anything is allocated, so the index costs at most a few times the footer
// size, which is part of the file.
func parseFooter(f []byte, h Header, dataStart, dataEnd uint64) (*index, error) {
	if len(f) < footerFixed {
		return nil, fmt.Errorf("footer of %d bytes, want at least %d", len(f), footerFixed)
	}
	nb := binary.BigEndian.Uint64(f)
	nt := binary.BigEndian.Uint64(f[8:])
	want, ok := footerLength(nb, nt, uint64(len(f)))
	if !ok || want != uint64(len(f)) {
		return nil, fmt.Errorf("footer of %d bytes cannot hold %d blocks and %d tiles", len(f), nb, nt)
	}
	if (nb == 0) != (h.Size == 0) {
		return nil, fmt.Errorf("%d blocks for %d leaves", nb, h.Size)
	}
	ix := &index{blocks: make([]blockInfo, nb), tiles: make([]tileInfo, nt)}
	p := f[footerFixed:]
	var next uint64 // first leaf the next block must start at
	for i := range ix.blocks {
		r := p[i*blockRecordSize:]
		bi := blockInfo{
			first:  binary.BigEndian.Uint64(r),
			off:    binary.BigEndian.Uint64(r[8:]),
			length: binary.BigEndian.Uint32(r[16:]),
			raw:    binary.BigEndian.Uint32(r[20:]),
			count:  binary.BigEndian.Uint32(r[24:]),
		}
		switch {
		case bi.first != next:
			return nil, fmt.Errorf("block %d starts at leaf %d, want %d", i, bi.first, next)
		case bi.count == 0:
			return nil, fmt.Errorf("block %d holds no entries", i)
		case uint64(bi.count) > h.Size-next:
			return nil, fmt.Errorf("block %d holds leaves past size %d", i, h.Size)
		case bi.raw < bi.count || bi.raw > maxBlockRaw:
			return nil, fmt.Errorf("block %d: payload of %d bytes for %d entries", i, bi.raw, bi.count)
		case bi.length == 0 || uint64(bi.length) > compressBound(uint64(bi.raw)):
			return nil, fmt.Errorf("block %d: %d compressed bytes for a %d-byte payload", i, bi.length, bi.raw)
		case i > 0 && bi.off <= ix.blocks[i-1].off:
			return nil, fmt.Errorf("block %d is not after block %d", i, i-1)
		}
		next += uint64(bi.count)
		ix.maxRaw = max(ix.maxRaw, bi.raw)
		ix.blocks[i] = bi
	}
	if next != h.Size {
		return nil, fmt.Errorf("blocks hold %d leaves, header says %d", next, h.Size)
	}
	p = p[len(ix.blocks)*blockRecordSize:]
	for i := range ix.tiles {
		r := p[i*tileRecordSize:]
		ti := tileInfo{
			id:     merkle.TileID{Level: r[0], Index: binary.BigEndian.Uint64(r[1:])},
			off:    binary.BigEndian.Uint64(r[9:]),
			length: binary.BigEndian.Uint32(r[17:]),
			crc:    binary.BigEndian.Uint32(r[21:]),
		}
		switch {
		case ti.length == 0 || ti.length > MaxTileSize:
			return nil, fmt.Errorf("tile %s of %d bytes", ti.id, ti.length)
		case i > 0 && tileCompare(ix.tiles[i-1].id, ti.id) >= 0:
			return nil, fmt.Errorf("tile %s out of order or duplicated after %s", ti.id, ix.tiles[i-1].id)
		}
		ix.tiles[i] = ti
	}
	if err := checkCoverage(ix, dataStart, dataEnd); err != nil {
		return nil, err
	}
	return ix, nil
}

// checkCoverage checks that the blocks and tiles tile the data region
// exactly: no extent outside it, no overlap (one byte can't mean two
// things) and no gap (no bytes the index does not account for).
func checkCoverage(ix *index, dataStart, dataEnd uint64) error {
	type extent struct{ off, end uint64 }
	ext := make([]extent, 0, len(ix.blocks)+len(ix.tiles))
	add := func(off, n uint64) bool {
		if off < dataStart || off > dataEnd || n > dataEnd-off {
			return false
		}
		ext = append(ext, extent{off, off + n})
		return true
	}
	for i, bi := range ix.blocks {
		if !add(bi.off, uint64(bi.length)) {
			return fmt.Errorf("block %d [%d, +%d) outside the data region [%d, %d)", i, bi.off, bi.length, dataStart, dataEnd)
		}
	}
	for _, ti := range ix.tiles {
		if !add(ti.off, uint64(ti.length)) {
			return fmt.Errorf("tile %s [%d, +%d) outside the data region [%d, %d)", ti.id, ti.off, ti.length, dataStart, dataEnd)
		}
	}
	slices.SortFunc(ext, func(a, b extent) int { return cmp.Compare(a.off, b.off) })
	at := dataStart
	for _, e := range ext {
		if e.off != at {
			if e.off < at {
				return fmt.Errorf("data region: extents overlap at offset %d", e.off)
			}
			return fmt.Errorf("data region: bytes [%d, %d) belong to no block or tile", at, e.off)
		}
		at = e.end
	}
	if at != dataEnd {
		return fmt.Errorf("data region: bytes [%d, %d) belong to no block or tile", at, dataEnd)
	}
	return nil
}
