package engine

import (
	"encoding/binary"
	"fmt"

	"github.com/cespare/xxhash/v2"
)

// Key space prefixes; see the package documentation for the layout. Three
// ranges are kept apart on purpose, so that the three sstables a chunk is
// ingested as never overlap each other or the memtable's keys: dedup
// records ('D') sort before every metadata prefix (lowercase 'c'..'s'), and
// posting lists ('z') after them.
const (
	prefixDedup      = 'D'
	prefixCatalog    = 'c'
	prefixLeafChunk  = 'e'
	prefixHead       = 'h'
	prefixChunk      = 'k'
	prefixMeta       = 'm'
	prefixPartition  = 'p'
	prefixWords      = 'y'
	prefixPostings   = 'z'
	partPrune        = 'x'
	formatVersion    = 3
	metaApplied      = "applied"
	metaFormat       = "format"
	metaHashLog      = "hashlog"
	metaNextChunk    = "nextchunk"
	postingMonthSize = 3
)

func metaKey(name string) []byte { return append([]byte{prefixMeta}, name...) }

var appliedKey = metaKey(metaApplied)

func tenantKey(prefix byte, tenant string) []byte {
	b := make([]byte, 0, 2+len(tenant)+16)
	b = append(b, prefix)
	b = append(b, tenant...)
	return append(b, 0)
}

// partitionPrefix is the first key of p's range of prune records.
func partitionPrefix(p Partition) []byte {
	return p.Month.appendKey(tenantKey(prefixPartition, p.Tenant))
}

// partitionEnd is the exclusive end of p's range.
func partitionEnd(p Partition) []byte {
	b := partitionPrefix(p)
	b[len(b)-1]++ // month byte <= 12, cannot overflow
	return b
}

// pruneKey marks a leaf of an open partition whose payload retention
// removed; a sealed partition's segment records it instead.
func pruneKey(p Partition, leaf uint64) []byte {
	b := append(partitionPrefix(p), partPrune)
	return binary.BigEndian.AppendUint64(b, leaf)
}

func catalogKey(p Partition) []byte {
	return p.Month.appendKey(tenantKey(prefixCatalog, p.Tenant))
}

func headKey(tenant string) []byte {
	return append([]byte{prefixHead}, tenant...)
}

// dedupKey is 'D' and the event's identity (see eventIdentity): fixed
// size, so that the dedup range is uniform whatever the event ids look
// like, and free of the ids themselves.
func dedupKey(id identity) []byte {
	return append([]byte{prefixDedup}, id[:]...)
}

// chunkKey names the record of a chunk's time bounds.
func chunkKey(seq uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{prefixChunk}, seq)
}

// leafChunkKey maps the first leaf a chunk holds of partition p to the
// chunk, so that the posting lists of any leaf can be found (pruning).
func leafChunkKey(p Partition, firstLeaf uint64) []byte {
	b := p.Month.appendKey(tenantKey(prefixLeafChunk, p.Tenant))
	return binary.BigEndian.AppendUint64(b, firstLeaf)
}

// postingPrefix is 'z' chunk tenant 0 kind hash value 0: every posting
// list of one term in one chunk, one per month the chunk covers, follows
// it. The chunk comes first: each chunk's lists are one contiguous range,
// ingested without overlapping any other file, so posting lists are
// written once and never compacted. Within a chunk, terms are ordered by
// the 64-bit hash of their value (big-endian), then the value: a
// checkpoint then sorts a chunk's terms by integers instead of comparing
// strings, which it would do several hundred thousand times per chunk. A
// term is only ever looked up exactly, so nothing needs values in order.
// Values never contain 0x00 (validation rejects it), so the terminator
// keeps prefixes unambiguous.
func postingPrefix[T string | []byte](seq uint64, tenant string, kind IndexKind, value T) []byte {
	b := make([]byte, 0, 1+8+len(tenant)+2+8+len(value)+1+postingMonthSize)
	b = append(b, prefixPostings)
	b = binary.BigEndian.AppendUint64(b, seq)
	return appendTerm(b, tenant, kind, value)
}

// appendTerm appends tenant 0 kind hash value 0, a term's part of a
// posting key.
func appendTerm[T string | []byte](b []byte, tenant string, kind IndexKind, value T) []byte {
	b = append(b, tenant...)
	b = append(b, 0, byte(kind), 0, 0, 0, 0, 0, 0, 0, 0)
	at := len(b)
	b = append(b, value...)
	binary.BigEndian.PutUint64(b[at-8:], xxhash.Sum64(b[at:]))
	return append(b, 0)
}

func postingKey(seq uint64, tenant string, kind IndexKind, value string, m Month) []byte {
	return m.appendKey(postingPrefix(seq, tenant, kind, value))
}

// prefixEnd returns the smallest key greater than every key with prefix b.
func prefixEnd(b []byte) []byte {
	end := append([]byte(nil), b...)
	for i := len(end) - 1; i >= 0; i-- {
		end[i]++
		if end[i] != 0 {
			return end[:i+1]
		}
	}
	return nil
}

// decodePartitionKey parses prefix tenant 0x00 yyyy mm.
func decodePartitionKey(k []byte) (Partition, error) {
	if len(k) < 5 || k[len(k)-4] != 0 {
		return Partition{}, fmt.Errorf("partition key %q: %w", k, errBadRecord)
	}
	m, err := decodeMonthKey(k[len(k)-3:])
	if err != nil {
		return Partition{}, err
	}
	return Partition{Tenant: string(k[1 : len(k)-4]), Month: m}, nil
}
