package segment

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"math/bits"
	"os"
	"path/filepath"
	"slices"

	"github.com/klauspost/compress/zstd"

	"github.com/trailaudit/trail/merkle"
)

// Header describes the partition a segment holds.
type Header struct {
	Tenant    string
	Partition string // "YYYY-MM"
	Size      uint64 // number of leaves
	Root      merkle.Hash
}

// WriterOptions tune a Writer. The zero value is the default.
type WriterOptions struct {
	// BlockSize is the target uncompressed size of an entry block, at most
	// MaxBlockSize; 0 means DefaultBlockSize. Larger blocks compress better
	// and make random reads decompress more.
	BlockSize int
	// Level is the zstd encoder level; 0 means zstd.SpeedDefault.
	Level zstd.EncoderLevel
}

// errFinished is what a Writer returns once Commit or Abort ran.
var errFinished = errors.New("segment: writer already committed or aborted")

// Writer writes one segment file. It is not safe for concurrent use.
//
// Any error from AddEntry, AddTile or Commit finishes the writer: the
// temporary file is removed at once and every later call returns the same
// error, so a caller that misuses the writer can never commit a segment that
// differs from what it meant to write, and nothing is left on disk.
type Writer struct {
	path string
	tmp  string
	h    Header

	f   *os.File
	bw  *bufio.Writer
	sum hash.Hash // SHA-256 of every byte written so far
	off uint64    // bytes written so far

	blockSize int
	enc       *zstd.Encoder

	next  uint64 // next leaf AddEntry expects
	raw   []byte // payload of the pending block
	count uint32 // entries in the pending block
	comp  []byte // compressed block, reused

	blocks  []blockInfo
	tiles   []tileInfo
	tileSet map[merkle.TileID]struct{}

	err error // set once the writer is finished
}

// Create starts a segment for the partition h that Commit will place at
// path. Until then the bytes go to a temporary file in path's directory
// (the same file system, so the final rename is atomic).
func Create(path string, h Header, opts WriterOptions) (*Writer, error) {
	if err := validateHeader(h); err != nil {
		return nil, fmt.Errorf("segment: create %s: %w", path, err)
	}
	bs := opts.BlockSize
	if bs == 0 {
		bs = DefaultBlockSize
	}
	if bs < 0 || bs > MaxBlockSize {
		return nil, fmt.Errorf("segment: create %s: block size %d outside 1..%d", path, opts.BlockSize, MaxBlockSize)
	}
	level := opts.Level
	if level == 0 {
		level = zstd.SpeedDefault
	}
	if level < zstd.SpeedFastest || level > zstd.SpeedBestCompression {
		return nil, fmt.Errorf("segment: create %s: invalid zstd level %d", path, opts.Level)
	}
	// Concurrency 1 makes EncodeAll deterministic and keeps the writer to
	// one core; the encoder is per Writer so writers never contend.
	enc, err := zstd.NewWriter(nil,
		zstd.WithEncoderLevel(level),
		zstd.WithEncoderConcurrency(1),
		zstd.WithEncoderCRC(true))
	if err != nil {
		return nil, fmt.Errorf("segment: create %s: %w", path, err)
	}
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp-*")
	if err != nil {
		enc.Close()
		return nil, fmt.Errorf("segment: create %s: %w", path, err)
	}
	w := &Writer{
		path:      path,
		tmp:       f.Name(),
		h:         h,
		f:         f,
		bw:        bufio.NewWriterSize(f, 256<<10),
		sum:       sha256.New(),
		blockSize: bs,
		enc:       enc,
		tileSet:   make(map[merkle.TileID]struct{}),
	}
	if err := w.write(appendHeader(nil, h)); err != nil {
		return nil, err
	}
	return w, nil
}

// AddEntry adds the entry of leaf, which must be the next leaf: 0, 1, 2, ...
// data == nil means the payload was pruned; an empty non-nil data is an
// empty entry. data is copied, so the caller may reuse it.
func (w *Writer) AddEntry(leaf uint64, data []byte) error {
	if w.err != nil {
		return w.err
	}
	switch {
	case leaf != w.next:
		return w.fail(fmt.Errorf("segment: write %s: entry for leaf %d, want leaf %d next", w.path, leaf, w.next))
	case leaf >= w.h.Size:
		return w.fail(fmt.Errorf("segment: write %s: entry for leaf %d, but the partition has %d leaves", w.path, leaf, w.h.Size))
	case len(data) > MaxEntrySize:
		return w.fail(fmt.Errorf("segment: write %s: leaf %d: entry of %d bytes exceeds %d", w.path, leaf, len(data), MaxEntrySize))
	}
	var tag uint64 // 0: pruned, else length+1
	if data != nil {
		tag = uint64(len(data)) + 1
	}
	// Close the pending block rather than let this entry take it past the
	// target: blocks stay within BlockSize unless one entry alone exceeds it.
	need := uvarintLen(tag) + len(data)
	if w.count > 0 && len(w.raw)+need > w.blockSize {
		if err := w.flushBlock(); err != nil {
			return err
		}
	}
	w.raw = binary.AppendUvarint(w.raw, tag)
	w.raw = append(w.raw, data...)
	w.count++
	w.next++
	// The last entry closes its block at once rather than at Commit, so
	// that tiles added after the entries follow every block in the file.
	if len(w.raw) >= w.blockSize || w.next == w.h.Size {
		return w.flushBlock()
	}
	return nil
}

// AddTile adds a tile. Tiles may come in any order, before, between or
// after entries, but each id only once. tile is copied.
func (w *Writer) AddTile(id merkle.TileID, tile []byte) error {
	if w.err != nil {
		return w.err
	}
	if _, dup := w.tileSet[id]; dup {
		return w.fail(fmt.Errorf("segment: write %s: tile %s added twice", w.path, id))
	}
	if len(tile) == 0 || len(tile) > MaxTileSize {
		return w.fail(fmt.Errorf("segment: write %s: tile %s of %d bytes, want 1..%d", w.path, id, len(tile), MaxTileSize))
	}
	w.tileSet[id] = struct{}{}
	w.tiles = append(w.tiles, tileInfo{
		id:     id,
		off:    w.off,
		length: uint32(len(tile)),
		crc:    crc32.Checksum(tile, castagnoli),
	})
	return w.write(tile)
}

// Commit completes the segment: it requires every leaf's entry, writes the
// footer and trailing hash, syncs the file, renames it over path and syncs
// the directory so that the rename itself survives a crash. On error nothing
// is left at path (unless only the final directory sync failed).
func (w *Writer) Commit() error {
	if w.err != nil {
		return w.err
	}
	if w.next != w.h.Size {
		return w.fail(fmt.Errorf("segment: commit %s: %d of %d entries added", w.path, w.next, w.h.Size))
	}
	if err := w.flushBlock(); err != nil {
		return err
	}
	slices.SortFunc(w.tiles, func(a, b tileInfo) int { return tileCompare(a.id, b.id) })
	n, _ := footerLength(uint64(len(w.blocks)), uint64(len(w.tiles)), ^uint64(0))
	footer := make([]byte, 0, n+8)
	footer = binary.BigEndian.AppendUint64(footer, uint64(len(w.blocks)))
	footer = binary.BigEndian.AppendUint64(footer, uint64(len(w.tiles)))
	for _, bi := range w.blocks {
		footer = appendBlockRecord(footer, bi)
	}
	for _, ti := range w.tiles {
		footer = appendTileRecord(footer, ti)
	}
	footer = binary.BigEndian.AppendUint64(footer, n)
	if err := w.write(footer); err != nil {
		return err
	}
	if _, err := w.bw.Write(w.sum.Sum(nil)); err != nil {
		return w.fail(fmt.Errorf("segment: commit %s: %w", w.path, err))
	}
	if err := w.bw.Flush(); err != nil {
		return w.fail(fmt.Errorf("segment: commit %s: %w", w.path, err))
	}
	// The data must be durable before the rename makes it visible, or a
	// crash could leave a complete name over incomplete bytes.
	if err := w.f.Sync(); err != nil {
		return w.fail(fmt.Errorf("segment: commit %s: sync: %w", w.path, err))
	}
	err := w.f.Close()
	w.f = nil
	if err != nil {
		return w.fail(fmt.Errorf("segment: commit %s: close: %w", w.path, err))
	}
	if err := os.Rename(w.tmp, w.path); err != nil {
		return w.fail(fmt.Errorf("segment: commit %s: %w", w.path, err))
	}
	w.tmp = "" // renamed: nothing left to remove
	w.finish(errFinished)
	if err := syncDir(filepath.Dir(w.path)); err != nil {
		return fmt.Errorf("segment: commit %s: sync directory: %w", w.path, err)
	}
	return nil
}

// Abort abandons the segment and removes the temporary file. It is a no-op
// on a writer already finished (committed, aborted or failed).
func (w *Writer) Abort() error {
	if w.err != nil {
		return nil
	}
	w.finish(errFinished)
	return nil
}

// write appends p to the file and the running hash.
func (w *Writer) write(p []byte) error {
	w.sum.Write(p)
	if _, err := w.bw.Write(p); err != nil {
		return w.fail(fmt.Errorf("segment: write %s: %w", w.path, err))
	}
	w.off += uint64(len(p))
	return nil
}

// flushBlock compresses and writes the pending block, if any.
func (w *Writer) flushBlock() error {
	if w.count == 0 {
		return nil
	}
	w.comp = w.enc.EncodeAll(w.raw, w.comp[:0])
	if uint64(len(w.comp)) > compressBound(uint64(len(w.raw))) {
		// Cannot happen with this encoder; checked so that the writer can
		// never produce a file its own reader rejects.
		return w.fail(fmt.Errorf("segment: write %s: block of %d bytes compressed to %d", w.path, len(w.raw), len(w.comp)))
	}
	w.blocks = append(w.blocks, blockInfo{
		first:  w.next - uint64(w.count),
		off:    w.off,
		length: uint32(len(w.comp)),
		raw:    uint32(len(w.raw)),
		count:  w.count,
	})
	if err := w.write(w.comp); err != nil {
		return err
	}
	w.raw, w.count = w.raw[:0], 0
	// One huge entry must not pin a huge buffer for the rest of the file.
	if cap(w.raw) > 2*w.blockSize {
		w.raw = nil
	}
	if cap(w.comp) > 2*w.blockSize+1024 {
		w.comp = nil
	}
	return nil
}

// fail finishes the writer with err and returns it.
func (w *Writer) fail(err error) error {
	w.finish(err)
	return err
}

// finish releases everything and makes err sticky. If the temporary file
// is still open it is closed and removed.
func (w *Writer) finish(err error) {
	w.err = err
	if w.f != nil {
		w.f.Close()
		w.f = nil
	}
	if w.tmp != "" {
		os.Remove(w.tmp)
		w.tmp = ""
	}
	w.enc.Close()
	w.raw, w.comp, w.blocks, w.tiles, w.tileSet = nil, nil, nil, nil, nil
}

// uvarintLen is the length of binary.AppendUvarint(nil, x).
func uvarintLen(x uint64) int {
	return (bits.Len64(x|1) + 6) / 7
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	return errors.Join(err, d.Close())
}
