package engine

import (
	"encoding/binary"
	"fmt"
)

// Key space prefixes; see the package documentation for the layout.
const (
	prefixPartition = 'p'
	prefixCatalog   = 'c'
	prefixHead      = 'h'
	prefixDedup     = 'd'
	prefixIndex     = 'i'
	prefixMeta      = 'm'

	partEntry = 'e'
	partTile  = 't'
	partPrune = 'x'
)

var appliedKey = []byte{prefixMeta, 'a', 'p', 'p', 'l', 'i', 'e', 'd'}

func tenantKey(prefix byte, tenant string) []byte {
	b := make([]byte, 0, 2+len(tenant)+16)
	b = append(b, prefix)
	b = append(b, tenant...)
	return append(b, 0)
}

// partitionPrefix is the first key of p's contiguous range.
func partitionPrefix(p Partition) []byte {
	return p.Month.appendKey(tenantKey(prefixPartition, p.Tenant))
}

// partitionEnd is the exclusive end of p's range.
func partitionEnd(p Partition) []byte {
	b := partitionPrefix(p)
	b[len(b)-1]++ // month byte <= 12, cannot overflow
	return b
}

func entryKey(p Partition, leaf uint64) []byte {
	b := append(partitionPrefix(p), partEntry)
	return binary.BigEndian.AppendUint64(b, leaf)
}

func pruneKey(p Partition, leaf uint64) []byte {
	b := append(partitionPrefix(p), partPrune)
	return binary.BigEndian.AppendUint64(b, leaf)
}

func tileKey(p Partition, level uint8, index uint64) []byte {
	b := append(partitionPrefix(p), partTile, level)
	return binary.BigEndian.AppendUint64(b, index)
}

func catalogKey(p Partition) []byte {
	return p.Month.appendKey(tenantKey(prefixCatalog, p.Tenant))
}

func headKey(tenant string) []byte {
	return append([]byte{prefixHead}, tenant...)
}

func dedupKey(tenant, eventID string) []byte {
	return append(tenantKey(prefixDedup, tenant), eventID...)
}

// indexKey is 'i' tenant 0 kind value 0 yyyy mm leaf. Values never contain
// 0x00 (validation rejects it), so the terminator keeps prefixes unambiguous.
func indexKey(tenant string, kind IndexKind, value string, m Month, leaf uint64) []byte {
	b := indexValuePrefix(tenant, kind, value)
	b = m.appendKey(b)
	return binary.BigEndian.AppendUint64(b, leaf)
}

func indexValuePrefix(tenant string, kind IndexKind, value string) []byte {
	b := append(tenantKey(prefixIndex, tenant), byte(kind))
	b = append(b, value...)
	return append(b, 0)
}

// decodeIndexSuffix returns the month and leaf at the end of an index key.
func decodeIndexSuffix(k []byte) (Month, uint64, error) {
	if len(k) < 11 {
		return Month{}, 0, fmt.Errorf("engine: index key too short (%d bytes)", len(k))
	}
	m, err := decodeMonthKey(k[len(k)-11:])
	if err != nil {
		return Month{}, 0, fmt.Errorf("engine: index key: %w", err)
	}
	return m, binary.BigEndian.Uint64(k[len(k)-8:]), nil
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
