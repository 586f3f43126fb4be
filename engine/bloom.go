package engine

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/bits"
	"os"
	"path/filepath"
)

// Nearly every append carries a new event_id, and proving that an id is new
// by reading the dedup records costs a Pebble point lookup per event, more
// than the whole rest of an append. A bloom filter over every identity in
// the log answers "certainly new" from memory for all but a fraction of a
// percent of them; only a "maybe" reads Pebble.
//
// The filter is the one structure that grows with the log: 12 bits per
// event (15 MB at ten million events). It is not persisted as such: the
// first 8 bytes of each identity are appended to the hash log, a file of 8
// bytes per event written with each checkpoint, and Open rebuilds the
// filter from it at sequential-read speed. Pebble keeps a bloom filter per
// sstable for the same purpose; one filter over the whole log answers with
// one cache line instead of one probe per level.
//
// The filter is blocked: a key sets and tests bloomProbes bits of one
// 512-bit block, so a query touches one cache line. Written by hand because
// no maintained Go library offers a blocked filter that can be rebuilt from
// a stream of precomputed 64-bit hashes.
const (
	bloomBitsPerKey = 12
	bloomProbes     = 7 // 9 bits each, 63 of the mixed hash
	bloomBlockWords = 8 // 512 bits
	bloomMinKeys    = 1 << 20
	hashLogName     = "dedup.hashes"
)

type dedupFilter struct {
	blocks   []uint64 // len is a multiple of bloomBlockWords
	nblocks  uint64
	keys     uint64 // keys added
	capacity uint64 // keys the size was chosen for
}

func newDedupFilter(capacity uint64) *dedupFilter {
	capacity = max(capacity, bloomMinKeys)
	nblocks := (capacity*bloomBitsPerKey + 511) / 512
	return &dedupFilter{blocks: make([]uint64, nblocks*bloomBlockWords), nblocks: nblocks, capacity: capacity}
}

// probe returns the block and the bit positions of h. The identity is
// already uniform (a SHA-256 prefix); the multiply spreads its low bits
// over the word that chooses the positions.
func (b *dedupFilter) probe(h uint64) (block []uint64, mixed uint64) {
	hi, _ := bits.Mul64(h, b.nblocks)
	i := hi * bloomBlockWords
	return b.blocks[i : i+bloomBlockWords], h * 0x9e3779b97f4a7c15
}

func (b *dedupFilter) add(h uint64) {
	block, m := b.probe(h)
	for i := 0; i < bloomProbes; i++ {
		bit := (m >> (9 * i)) & 511
		block[bit>>6] |= 1 << (bit & 63)
	}
	b.keys++
}

func (b *dedupFilter) mayContain(h uint64) bool {
	block, m := b.probe(h)
	for i := 0; i < bloomProbes; i++ {
		bit := (m >> (9 * i)) & 511
		if block[bit>>6]&(1<<(bit&63)) == 0 {
			return false
		}
	}
	return true
}

// full reports whether the filter holds more keys than it was sized for,
// past which its false-positive rate climbs.
func (b *dedupFilter) full() bool { return b.keys > b.capacity }

// hashLog is the append-only file of identity prefixes the filter is
// rebuilt from. Its durable length is recorded with each checkpoint; Open
// cuts it back to that length.
type hashLog struct {
	f   *os.File
	len int64
}

func openHashLog(dir string, durable int64) (*hashLog, error) {
	f, err := os.OpenFile(filepath.Join(dir, hashLogName), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("engine: open hash log: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("engine: hash log: %w", err)
	}
	if st.Size() < durable {
		f.Close()
		return nil, fmt.Errorf("engine: hash log holds %d bytes, the last checkpoint recorded %d: %w", st.Size(), durable, ErrCorrupt)
	}
	if err := f.Truncate(durable); err != nil {
		f.Close()
		return nil, fmt.Errorf("engine: truncate hash log: %w", err)
	}
	return &hashLog{f: f, len: durable}, nil
}

// append writes hashes at the end of the log and syncs it.
func (l *hashLog) append(hashes []uint64) error {
	if len(hashes) == 0 {
		return nil
	}
	b := make([]byte, 8*len(hashes))
	for i, h := range hashes {
		binary.BigEndian.PutUint64(b[8*i:], h)
	}
	if _, err := l.f.WriteAt(b, l.len); err != nil {
		return fmt.Errorf("write hash log: %w", err)
	}
	if err := l.f.Sync(); err != nil {
		return fmt.Errorf("sync hash log: %w", err)
	}
	l.len += int64(len(b))
	return nil
}

// load builds a filter sized for the log plus room to grow, with extra
// hashes (those not yet in the log) added too.
func (l *hashLog) load(extra ...[]uint64) (*dedupFilter, error) {
	n := uint64(l.len / 8)
	for _, e := range extra {
		n += uint64(len(e))
	}
	bf := newDedupFilter(2 * n)
	r := bufio.NewReaderSize(io.NewSectionReader(l.f, 0, l.len), 1<<20)
	var b [8]byte
	for {
		if _, err := io.ReadFull(r, b[:]); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, fmt.Errorf("engine: read hash log: %w", err)
		}
		bf.add(binary.BigEndian.Uint64(b[:]))
	}
	for _, e := range extra {
		for _, h := range e {
			bf.add(h)
		}
	}
	return bf, nil
}

func (l *hashLog) close() error { return l.f.Close() }

// removeHashLog deletes a hash log that no checkpoint accounts for.
func removeHashLog(dir string) error {
	err := os.Remove(filepath.Join(dir, hashLogName))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}
