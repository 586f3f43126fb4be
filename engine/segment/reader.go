package segment

import (
	"bytes"
	"crypto/sha256"
	"encoding"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/bits"
	"os"
	"slices"
	"sort"
	"sync"

	"github.com/klauspost/compress/zstd"

	"github.com/trailaudit/trail/merkle"
)

// ReaderOptions tune a Reader. The zero value is the default.
type ReaderOptions struct {
	// CacheBytes bounds the decoded blocks Entry keeps (payload plus
	// per-entry offsets); 0 means DefaultCacheBytes, negative disables the
	// cache.
	CacheBytes int
}

// DefaultCacheBytes is the default ReaderOptions.CacheBytes: 16 blocks of
// the default size, enough for the locality of proof and search reads.
const DefaultCacheBytes = 1 << 20

// hashChunk is the read size when hashing a whole file: large enough for
// sequential throughput, constant whatever the file size.
const hashChunk = 256 << 10

// Reader reads a segment file. It is safe for concurrent use.
type Reader struct {
	path  string
	f     *os.File
	size  int64
	hdr   Header
	ix    *index
	sum   [sha256.Size]byte // trailer hash verified by Open
	dec   *zstd.Decoder
	cache *blockCache
	// comp recycles the compressed-block buffers of Entry misses (*[]byte);
	// the payload buffer cannot be recycled, the cache keeps it.
	comp sync.Pool
}

// Open opens and checks the segment at path: magic, trailing SHA-256 over
// the whole file (read once, in constant memory), version, header and every
// constraint of the footer index. Any failure of these checks returns an
// error wrapping ErrCorrupt; failing to open or read the file returns the
// I/O error. Block payloads are checked as they are read.
func Open(path string, opts ReaderOptions) (*Reader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("segment: open %s: %w", path, err)
	}
	r, err := open(f, path, opts)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("segment: open %s: %w", path, err)
	}
	return r, nil
}

// corrupt returns an error wrapping ErrCorrupt.
func corrupt(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), ErrCorrupt)
}

func open(f *os.File, path string, opts ReaderOptions) (*Reader, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	size := st.Size()
	if size == 0 {
		return nil, corrupt("empty file")
	}
	// Check the magic before anything else, so that a file that is not a
	// segment at all is reported as such rather than as a bad hash.
	if size >= int64(len(magic)) {
		var m [len(magic)]byte
		if err := readFull(f, m[:], 0); err != nil {
			return nil, err
		}
		if string(m[:]) != magic {
			return nil, corrupt("bad magic %x: not a segment file", m)
		}
	}
	if size < int64(minFileSize) {
		return nil, corrupt("file of %d bytes is shorter than the smallest segment (%d bytes)", size, minFileSize)
	}
	var trailer [trailerSize]byte
	if err := readFull(f, trailer[:], size-trailerSize); err != nil {
		return nil, err
	}
	footerLen := binary.BigEndian.Uint64(trailer[:])
	// footer_start is only a candidate until the hash is checked; an
	// implausible one is reported after the hash, which explains it better.
	footerStart := int64(-1)
	if footerLen <= uint64(size-int64(trailerSize+preambleSize+headerFixed)) {
		footerStart = size - trailerSize - int64(footerLen)
	}
	head := make([]byte, min(size, int64(preambleSize+maxHeaderSize)))
	sum, state, err := hashFile(f, size, footerStart, head)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(sum[:], trailer[8:]) {
		return nil, corrupt("trailing SHA-256 mismatch: file is %x, trailer says %x", sum, trailer[8:])
	}
	h, dataStart, err := parseHeader(head)
	if err != nil {
		return nil, corrupt("%v", err)
	}
	if footerStart < 0 || uint64(footerStart) < dataStart {
		return nil, corrupt("footer length %d does not fit a file of %d bytes", footerLen, size)
	}
	// The footer is read only now that its length is known to be the one
	// hashed, so a corrupt length never costs an allocation. Hashing it again
	// from the saved state proves these are the bytes that were hashed.
	footer := make([]byte, footerLen+8)
	if err := readFull(f, footer, footerStart); err != nil {
		return nil, err
	}
	if !footerHashed(state, footer, sum) {
		return nil, corrupt("file changed while being opened")
	}
	ix, err := parseFooter(footer[:footerLen], h, dataStart, uint64(footerStart))
	if err != nil {
		return nil, corrupt("footer: %v", err)
	}
	dec, err := newDecoder(ix.maxRaw)
	if err != nil {
		return nil, err
	}
	cb := opts.CacheBytes
	if cb == 0 {
		cb = DefaultCacheBytes
	}
	return &Reader{
		path:  path,
		f:     f,
		size:  size,
		hdr:   h,
		ix:    ix,
		sum:   sum,
		dec:   dec,
		cache: newBlockCache(cb),
	}, nil
}

// newDecoder returns a decoder bounded by the largest block payload of the
// file, whatever a frame header claims.
func newDecoder(maxRaw uint32) (*zstd.Decoder, error) {
	// Encoders round a small frame's window up to the power of two above its
	// size (at least 1 KiB), so allow that much; the decoder also caps its
	// output size at this, and DecodeAll caps it at the exact payload length.
	window := uint64(1) << bits.Len64(max(uint64(maxRaw), zstd.MinWindowSize))
	return zstd.NewReader(nil,
		// One decoder per Reader, used only through DecodeAll; concurrency 1
		// means no background goroutines and bounded memory.
		zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderMaxMemory(window),
		zstd.WithDecoderMaxWindow(window),
		// Decode into exactly the caller's capacity: the payload length is
		// known from the index, so output beyond it is corruption.
		zstd.WithDecodeAllCapLimit(true))
}

// hashFile returns the SHA-256 of f[0:size-32], reading it once in chunks of
// constant size. It copies the first len(head) bytes into head and, if
// footerStart >= 0, returns the marshaled hash state at footerStart so the
// footer can be proven hashed without holding it during the stream.
func hashFile(f *os.File, size, footerStart int64, head []byte) (sum [sha256.Size]byte, state []byte, err error) {
	d := sha256.New()
	end := size - sha256.Size
	buf := make([]byte, min(hashChunk, end))
	for off := int64(0); off < end; {
		n := min(int64(len(buf)), end-off)
		b := buf[:n]
		if err := readFull(f, b, off); err != nil {
			return sum, nil, err
		}
		if off < int64(len(head)) {
			copy(head[off:], b)
		}
		if footerStart >= off && footerStart < off+n {
			d.Write(b[:footerStart-off])
			if state, err = d.(encoding.BinaryMarshaler).MarshalBinary(); err != nil {
				return sum, nil, err
			}
			d.Write(b[footerStart-off:])
		} else {
			d.Write(b)
		}
		off += n
	}
	d.Sum(sum[:0])
	return sum, state, nil
}

// footerHashed reports whether continuing the hash state with rest (the
// footer and footer_length) yields sum.
func footerHashed(state, rest []byte, sum [sha256.Size]byte) bool {
	d := sha256.New()
	if state == nil || d.(encoding.BinaryUnmarshaler).UnmarshalBinary(state) != nil {
		return false
	}
	d.Write(rest)
	return bytes.Equal(d.Sum(nil), sum[:])
}

// readFull reads len(p) bytes at off. A short read means the file is shorter
// than its structure says: corruption, not an I/O failure.
func readFull(f *os.File, p []byte, off int64) error {
	n, err := f.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		return corrupt("file truncated: %d bytes at offset %d, got %d", len(p), off, n)
	}
	return err
}

// Header returns the segment's header.
func (r *Reader) Header() Header {
	return r.hdr
}

// Entry returns a copy of the entry of leaf. It returns an error wrapping
// ErrPruned if retention removed the payload, ErrNotFound if leaf >= Size,
// and ErrCorrupt if the block holding it fails its checks.
func (r *Reader) Entry(leaf uint64) ([]byte, error) {
	if leaf >= r.hdr.Size {
		return nil, fmt.Errorf("segment: %s: leaf %d of %d: %w", r.path, leaf, r.hdr.Size, ErrNotFound)
	}
	i := r.blockOf(leaf)
	d, ok := r.cache.get(i)
	if !ok {
		var bufs buffers
		if p, ok := r.comp.Get().(*[]byte); ok {
			bufs.comp = *p
		}
		raw, err := r.readBlock(i, &bufs)
		r.comp.Put(&bufs.comp)
		if err != nil {
			return nil, err
		}
		if d, err = r.index(i, raw); err != nil {
			return nil, err
		}
		r.cache.put(i, d)
	}
	s := d.spans[leaf-r.ix.blocks[i].first]
	if s.n < 0 {
		return nil, fmt.Errorf("segment: %s: leaf %d: %w", r.path, leaf, ErrPruned)
	}
	// A copy: the cached block is shared and must not be changed by callers.
	return append([]byte{}, d.raw[s.off:s.off+uint32(s.n)]...), nil
}

// Scan calls fn for every leaf from from to Size-1 in order, with data nil
// for pruned leaves. data is only valid until fn returns (the buffer is
// reused, keeping Scan's memory constant); fn must copy what it keeps. An
// error from fn stops the scan and is returned as is. from == Size scans
// nothing; from > Size returns ErrNotFound.
func (r *Reader) Scan(from uint64, fn func(leaf uint64, data []byte) error) error {
	if from > r.hdr.Size {
		return fmt.Errorf("segment: %s: scan from leaf %d of %d: %w", r.path, from, r.hdr.Size, ErrNotFound)
	}
	if from == r.hdr.Size {
		return nil
	}
	var bufs buffers // reused for every block
	for i := r.blockOf(from); i < len(r.ix.blocks); i++ {
		bi := r.ix.blocks[i]
		raw, err := r.readBlock(i, &bufs)
		if err != nil {
			return err
		}
		// Check the whole block before handing out any of it, so that fn
		// never sees entries of a block that turns out to be malformed.
		if err := checkPayload(raw, bi.count); err != nil {
			return r.blockCorrupt(i, err)
		}
		it := entries{b: raw, left: bi.count}
		for leaf := bi.first; it.left > 0; leaf++ {
			data, pruned, _ := it.next() // checked above
			if leaf < from {
				continue
			}
			if pruned {
				data = nil
			}
			if err := fn(leaf, data); err != nil {
				return err
			}
		}
	}
	return nil
}

// Tile returns a copy of the tile id, or an error wrapping ErrNotFound if
// the segment does not hold it.
func (r *Reader) Tile(id merkle.TileID) ([]byte, error) {
	i, found := slices.BinarySearchFunc(r.ix.tiles, id, func(t tileInfo, id merkle.TileID) int { return tileCompare(t.id, id) })
	if !found {
		return nil, fmt.Errorf("segment: %s: tile %s: %w", r.path, id, ErrNotFound)
	}
	ti := r.ix.tiles[i]
	b := make([]byte, ti.length)
	if err := readFull(r.f, b, int64(ti.off)); err != nil {
		return nil, fmt.Errorf("segment: %s: tile %s: %w", r.path, id, err)
	}
	// The trailing hash was checked at Open; the CRC catches bytes that
	// changed on disk since.
	if crc32.Checksum(b, castagnoli) != ti.crc {
		return nil, fmt.Errorf("segment: %s: tile %s: CRC-32C mismatch: %w", r.path, id, ErrCorrupt)
	}
	return b, nil
}

// Tiles returns the ids of the segment's tiles, sorted by (level, index).
func (r *Reader) Tiles() []merkle.TileID {
	ids := make([]merkle.TileID, len(r.ix.tiles))
	for i, t := range r.ix.tiles {
		ids[i] = t.id
	}
	return ids
}

// Verify re-reads the whole file and checks its trailing SHA-256, and that
// the file is still the one Open checked, for scheduled integrity checks.
func (r *Reader) Verify() error {
	st, err := r.f.Stat()
	if err != nil {
		return fmt.Errorf("segment: verify %s: %w", r.path, err)
	}
	if st.Size() != r.size {
		return fmt.Errorf("segment: verify %s: size changed from %d to %d bytes: %w", r.path, r.size, st.Size(), ErrCorrupt)
	}
	var trailer [sha256.Size]byte
	if err := readFull(r.f, trailer[:], r.size-sha256.Size); err != nil {
		return fmt.Errorf("segment: verify %s: %w", r.path, err)
	}
	sum, _, err := hashFile(r.f, r.size, -1, nil)
	if err != nil {
		return fmt.Errorf("segment: verify %s: %w", r.path, err)
	}
	if sum != trailer || sum != r.sum {
		return fmt.Errorf("segment: verify %s: trailing SHA-256 mismatch: file is %x, trailer says %x, was %x at open: %w",
			r.path, sum, trailer, r.sum, ErrCorrupt)
	}
	return nil
}

// Close releases the file and the decoder.
func (r *Reader) Close() error {
	r.dec.Close()
	r.cache.clear()
	return r.f.Close()
}

// blockOf returns the index of the block holding leaf < Size.
func (r *Reader) blockOf(leaf uint64) int {
	return sort.Search(len(r.ix.blocks), func(i int) bool { return r.ix.blocks[i].first > leaf }) - 1
}

// buffers are the compressed and decompressed buffers of a block read,
// grown as needed and reused across the blocks of a Scan.
type buffers struct {
	comp, raw []byte
}

// readBlock reads and decompresses block i into b and returns its payload.
func (r *Reader) readBlock(i int, b *buffers) ([]byte, error) {
	bi := r.ix.blocks[i]
	if cap(b.comp) < int(bi.length) {
		b.comp = make([]byte, bi.length)
	}
	if cap(b.raw) < int(bi.raw) {
		b.raw = make([]byte, bi.raw)
	}
	comp := b.comp[:bi.length]
	if err := readFull(r.f, comp, int64(bi.off)); err != nil {
		return nil, fmt.Errorf("segment: %s: block %d: %w", r.path, i, err)
	}
	// The three-index slice caps the output at the payload length the index
	// gives, so a frame cannot inflate beyond it.
	raw, err := r.dec.DecodeAll(comp, b.raw[:0:bi.raw])
	if err != nil {
		if errors.Is(err, zstd.ErrDecoderClosed) {
			return nil, fmt.Errorf("segment: %s: block %d: %w", r.path, i, os.ErrClosed)
		}
		return nil, r.blockCorrupt(i, err)
	}
	if len(raw) != int(bi.raw) {
		return nil, r.blockCorrupt(i, fmt.Errorf("payload of %d bytes, index says %d", len(raw), bi.raw))
	}
	return raw, nil
}

func (r *Reader) blockCorrupt(i int, err error) error {
	bi := r.ix.blocks[i]
	return fmt.Errorf("segment: %s: block %d (leaves %d..%d): %v: %w",
		r.path, i, bi.first, bi.first+uint64(bi.count)-1, err, ErrCorrupt)
}

// index splits the payload of block i into its entries.
func (r *Reader) index(i int, raw []byte) (*decoded, error) {
	bi := r.ix.blocks[i]
	d := &decoded{raw: raw, spans: make([]span, bi.count)}
	it := entries{b: raw, left: bi.count}
	for k := range d.spans {
		data, pruned, err := it.next()
		if err != nil {
			return nil, r.blockCorrupt(i, err)
		}
		if pruned {
			d.spans[k] = span{n: -1}
			continue
		}
		// Offsets fit 32 bits: a payload is at most maxBlockRaw bytes.
		d.spans[k] = span{off: uint32(len(raw) - len(it.b) - len(data)), n: int32(len(data))}
	}
	if len(it.b) != 0 {
		return nil, r.blockCorrupt(i, fmt.Errorf("%d bytes after the last entry", len(it.b)))
	}
	return d, nil
}

// checkPayload checks that raw holds exactly count well-formed entries.
func checkPayload(raw []byte, count uint32) error {
	it := entries{b: raw, left: count}
	for it.left > 0 {
		if _, _, err := it.next(); err != nil {
			return err
		}
	}
	if len(it.b) != 0 {
		return fmt.Errorf("%d bytes after the last entry", len(it.b))
	}
	return nil
}

// entries iterates over the entries of a block payload.
type entries struct {
	b    []byte // rest of the payload
	left uint32 // entries still to read
}

// next returns the next entry. Every length is checked against what is left
// of the payload, so a corrupt tag is an error, never an out-of-range slice.
func (it *entries) next() (data []byte, pruned bool, err error) {
	tag, n := binary.Uvarint(it.b)
	if n <= 0 {
		return nil, false, fmt.Errorf("bad entry tag with %d entries left", it.left)
	}
	it.b = it.b[n:]
	it.left--
	if tag == 0 {
		return nil, true, nil
	}
	if tag-1 > uint64(len(it.b)) {
		return nil, false, fmt.Errorf("entry of %d bytes with %d left in the block", tag-1, len(it.b))
	}
	data, it.b = it.b[:tag-1:tag-1], it.b[tag-1:]
	return data, false, nil
}
