package engine

import (
	"crypto/sha256"
	"encoding/binary"
	"slices"
	"sync"
)

// A chunk is the unit in which dedup records and posting lists reach
// Pebble. Appends add them to the current chunk in memory; a checkpoint
// freezes it and writes it as sorted sstables that are ingested whole
// (checkpoint.go), so an append never inserts into Pebble's memtable and
// posting lists are never compacted. Reads see the chunks still in memory
// (current and, while a checkpoint runs, frozen) before Pebble.

// identity is what names an event for exactly-once: the first 16 bytes of
// SHA-256(tenant 0x00 event_id). A cryptographic hash because producers
// choose event ids: with a fast non-cryptographic hash one tenant could
// craft ids that collide with another's.
type identity [16]byte

func eventIdentity(tenant, eventID []byte) identity {
	d := sha256.New()
	d.Write(tenant)
	d.Write([]byte{0})
	d.Write(eventID)
	var sum [sha256.Size]byte
	d.Sum(sum[:0])
	return identity(sum[:16])
}

// bloomHash is the part of an identity the filter and hash log use.
func (id identity) bloomHash() uint64 { return binary.BigEndian.Uint64(id[:8]) }

// chunkDedup is one dedup record of a chunk.
type chunkDedup struct {
	id  identity
	rec dedupRecord
}

type chunk struct {
	seq uint64

	// mu guards everything below against readers; only the apply goroutine
	// writes, and only until the chunk is frozen.
	mu       sync.RWMutex
	dedup    map[identity]int32 // index in recs
	recs     []chunkDedup
	postings chunkPostings
	hashes   []uint64 // bloom hashes of recs, in order, for the hash log
	// starts records the first leaf the chunk holds of each partition.
	starts  map[Partition]uint64
	minTime int64
	maxTime int64
	events  int
	// retired is set, under mu, once the chunk is in Pebble and its
	// buffers go to the next chunk: a reader that still holds it then
	// reads Pebble instead.
	retired bool
}

// newChunk returns an empty chunk, reusing the buffers of spare, a retired
// chunk, when there is one: a chunk's slices and maps grow to tens of
// megabytes, and growing or zeroing new ones was a measurable share of an
// append. Without a spare its dedup map is sized for events events.
func newChunk(seq uint64, events int, spare *chunk) *chunk {
	if spare == nil {
		return &chunk{
			seq:      seq,
			dedup:    make(map[identity]int32, events),
			postings: newChunkPostings(),
			starts:   make(map[Partition]uint64),
		}
	}
	clear(spare.dedup)
	clear(spare.starts)
	return &chunk{
		seq:      seq,
		dedup:    spare.dedup,
		recs:     spare.recs[:0],
		hashes:   spare.hashes[:0],
		postings: spare.postings.reuse(),
		starts:   spare.starts,
	}
}

// retire marks the chunk retired and returns it as a spare for newChunk.
func (c *chunk) retire() *chunk {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.retired = true
	spare := &chunk{dedup: c.dedup, recs: c.recs, hashes: c.hashes, postings: c.postings, starts: c.starts}
	c.dedup, c.recs, c.hashes, c.postings, c.starts = nil, nil, nil, chunkPostings{}, nil
	return spare
}

func (c *chunk) empty() bool { return len(c.recs) == 0 && c.postings.empty() }

// lookup returns the dedup record of id held by the chunk; a retired
// chunk holds none (Pebble has them).
func (c *chunk) lookup(id identity) (dedupRecord, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.retired {
		return dedupRecord{}, false
	}
	i, ok := c.dedup[id]
	if !ok {
		return dedupRecord{}, false
	}
	return c.recs[i].rec, true
}

// addDedup records a new event; the caller holds mu.
func (c *chunk) addDedup(id identity, rec dedupRecord) int {
	i := len(c.recs)
	c.dedup[id] = int32(i)
	c.recs = append(c.recs, chunkDedup{id: id, rec: rec})
	c.hashes = append(c.hashes, id.bloomHash())
	return i
}

// addPosting adds leaf to the list of term, a term key (termKey) of kind
// whose tenant part is prefixLen bytes long; the caller holds mu. term may
// be a reused buffer.
func (c *chunk) addPosting(kind IndexKind, term []byte, prefixLen int, leaf uint64) {
	c.postings.add(kind, term, prefixLen, leaf)
}

// noteEvent widens the chunk's time bounds and records where it starts
// in p; the caller holds mu.
func (c *chunk) noteEvent(p Partition, leaf uint64, seq int64) {
	if c.events == 0 || seq < c.minTime {
		c.minTime = seq
	}
	c.maxTime = max(c.maxTime, seq)
	c.events++
	if _, ok := c.starts[p]; !ok {
		c.starts[p] = leaf
	}
}

// leaves returns the postings of a term key of kind, in leaf order;
// retired reports that the chunk was retired and Pebble has them.
func (c *chunk) leaves(kind IndexKind, term []byte, prefixLen int) (leaves []uint64, retired bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.retired {
		return nil, true
	}
	return c.postings.leaves(kind, term, prefixLen), false
}

func (c *chunk) isRetired() bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.retired
}

// months returns the months of tenant the chunk holds entries of, oldest
// first: the months a term of the tenant can have a list in.
func (c *chunk) months(tenant string) []Month {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var out []Month
	if c.retired {
		return nil
	}
	for p := range c.starts {
		if p.Tenant == tenant {
			out = append(out, p.Month)
		}
	}
	slices.SortFunc(out, compareMonths)
	return out
}

// termKey is the chunk-local key of a term's list in month m: the posting
// key without its 'z' and chunk sequence (see postingKey).
func termKey[T string | []byte](b []byte, tenant string, kind IndexKind, value T, m Month) []byte {
	return m.appendKey(appendTerm(b[:0], tenant, kind, value))
}
