package engine

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/trailaudit/trail/merkle"
)

// The records below are the engine's own metadata. Each encoding starts with
// a version byte so that a future format can be read beside this one.
const recordV1 = 1

var errBadRecord = errors.New("malformed record")

// catalogRecord is the durable state of one partition.
type catalogRecord struct {
	Size      uint64
	Root      merkle.Hash
	RightEdge []merkle.Hash // compact range of [0, Size); empty once sealed
	Sealed    bool
	Dropped   bool   // sealed, every payload pruned, segment file deleted (drop.go)
	Pruned    uint64 // entries whose payload retention removed
	FirstTime int64  // sequencer time of leaf 0, unix nanos
	LastTime  int64  // sequencer time of the last leaf, unix nanos
}

func (c *catalogRecord) marshal() []byte {
	b := make([]byte, 0, 64+len(c.RightEdge)*merkle.HashSize)
	b = append(b, recordV1)
	b = binary.BigEndian.AppendUint64(b, c.Size)
	b = append(b, c.Root[:]...)
	var flags byte
	if c.Sealed {
		flags |= 1
	}
	if c.Dropped {
		flags |= flagDropped
	}
	b = append(b, flags)
	b = binary.BigEndian.AppendUint64(b, c.Pruned)
	b = binary.BigEndian.AppendUint64(b, uint64(c.FirstTime))
	b = binary.BigEndian.AppendUint64(b, uint64(c.LastTime))
	b = append(b, byte(len(c.RightEdge)))
	for _, h := range c.RightEdge {
		b = append(b, h[:]...)
	}
	return b
}

func unmarshalCatalog(b []byte) (catalogRecord, error) {
	const fixed = 1 + 8 + 32 + 1 + 8 + 8 + 8 + 1
	var c catalogRecord
	if len(b) < fixed || b[0] != recordV1 {
		return c, fmt.Errorf("catalog: %w", errBadRecord)
	}
	c.Size = binary.BigEndian.Uint64(b[1:])
	copy(c.Root[:], b[9:41])
	c.Sealed = b[41]&1 != 0
	c.Dropped = b[41]&flagDropped != 0
	c.Pruned = binary.BigEndian.Uint64(b[42:])
	c.FirstTime = int64(binary.BigEndian.Uint64(b[50:]))
	c.LastTime = int64(binary.BigEndian.Uint64(b[58:]))
	n := int(b[66])
	if len(b) != fixed+n*merkle.HashSize {
		return c, fmt.Errorf("catalog: right edge: %w", errBadRecord)
	}
	c.RightEdge = make([]merkle.Hash, n)
	for i := range c.RightEdge {
		copy(c.RightEdge[i][:], b[fixed+i*merkle.HashSize:])
	}
	return c, nil
}

// headRecord is where a tenant's log currently ends.
type headRecord struct {
	Month    Month       // partition of the last entry
	LastLeaf merkle.Hash // leaf hash of the last entry
	LastTime int64       // highest sequencer time seen or sealed past, unix nanos
}

func (h *headRecord) marshal() []byte {
	b := make([]byte, 0, 1+3+32+8)
	b = append(b, recordV1)
	b = h.Month.appendKey(b)
	b = append(b, h.LastLeaf[:]...)
	return binary.BigEndian.AppendUint64(b, uint64(h.LastTime))
}

func unmarshalHead(b []byte) (headRecord, error) {
	var h headRecord
	if len(b) != 1+3+32+8 || b[0] != recordV1 {
		return h, fmt.Errorf("tenant head: %w", errBadRecord)
	}
	m, err := decodeMonthKey(b[1:4])
	if err != nil {
		return h, fmt.Errorf("tenant head: %w", err)
	}
	h.Month = m
	copy(h.LastLeaf[:], b[4:36])
	h.LastTime = int64(binary.BigEndian.Uint64(b[36:]))
	return h, nil
}

// dedupRecord is the original receipt of an event_id, minus what can be
// read back from the tree (the leaf hash).
type dedupRecord struct {
	Month    Month
	Leaf     uint64
	TreeSize uint64
	SeqTime  int64
	Digest   uint64 // xxhash64 of the event's deterministic encoding
}

func (d *dedupRecord) marshal() []byte {
	b := make([]byte, 0, 1+3+8*4)
	b = append(b, recordV1)
	b = d.Month.appendKey(b)
	b = binary.BigEndian.AppendUint64(b, d.Leaf)
	b = binary.BigEndian.AppendUint64(b, d.TreeSize)
	b = binary.BigEndian.AppendUint64(b, uint64(d.SeqTime))
	return binary.BigEndian.AppendUint64(b, d.Digest)
}

func unmarshalDedup(b []byte) (dedupRecord, error) {
	var d dedupRecord
	if len(b) != 1+3+8*4 || b[0] != recordV1 {
		return d, fmt.Errorf("dedup: %w", errBadRecord)
	}
	m, err := decodeMonthKey(b[1:4])
	if err != nil {
		return d, fmt.Errorf("dedup: %w", err)
	}
	d.Month = m
	d.Leaf = binary.BigEndian.Uint64(b[4:])
	d.TreeSize = binary.BigEndian.Uint64(b[12:])
	d.SeqTime = int64(binary.BigEndian.Uint64(b[20:]))
	d.Digest = binary.BigEndian.Uint64(b[28:])
	return d, nil
}

func encodeUint64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func decodeUint64(b []byte) (uint64, error) {
	if len(b) != 8 {
		return 0, errBadRecord
	}
	return binary.BigEndian.Uint64(b), nil
}
