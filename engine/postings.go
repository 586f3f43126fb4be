package engine

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"slices"
)

// chunkPostings are a chunk's posting lists while it is in memory, kept so
// that adding a posting rarely misses the CPU cache: an event adds seven
// or eight of them, and a map lookup that goes to memory costs as much as
// hashing the whole entry.
//
// Dense terms (actors, categories, actions, purposes, PII fields) recur
// within a chunk: each has one list, found through a map keyed by the
// term's hash, with its postings linked in one shared slice. Sparse terms
// (subjects and targets, see sparseKind) rarely recur: their postings are
// appended as they come and grouped when the chunk is written. Term keys
// are copied into arenas, not allocated one by one.
type chunkPostings struct {
	// prefixes numbers the distinct tenant 0 kind prefixes, so that
	// sorting compares small integers before it compares bytes.
	prefixes   map[string]uint16
	prefixKeys []string
	// lastPrefix remembers each kind's latest prefix id: a batch is
	// mostly one tenant, so the map is rarely asked.
	lastPrefix [IndexText + 1]struct {
		prefix string
		id     uint16
		ok     bool
	}
	dense       map[uint64]int32 // mixed hash -> latest dense term with it
	terms       []denseTerm
	arena       []byte
	posts       []posting
	sparse      []sparsePosting
	sparseArena []byte
}

// denseTerm is one dense term's list: its key is arena[start:end], its
// postings posts[first] .. posts[last] through next links, and same links
// the terms whose mixed hashes are equal.
type denseTerm struct {
	pid         uint16
	hash        uint64 // the value's hash, from the key
	start, end  uint32
	first, last int32
	same        int32
	// lastLeaf is posts[last].leaf, kept here: the term is in cache when
	// a posting is added, its last posting usually is not.
	lastLeaf uint64
}

// posting is one leaf in a dense term's list; next links the term's
// postings in append order (-1 ends the list), for readers of the chunk
// in memory.
type posting struct {
	leaf uint64
	next int32
	term int32
}

// sparsePosting is one leaf of a sparse term, whose key is
// sparseArena[start:end].
type sparsePosting struct {
	pid        uint16
	hash       uint64 // the value's hash, from the key
	start, end uint32
	leaf       uint64
}

// sparseKind reports the kinds whose terms rarely repeat within a chunk:
// subjects (the people whose data it is) and targets (records).
func sparseKind(k IndexKind) bool { return k == IndexSubject || k == IndexTarget }

// newChunkPostings returns empty postings. Nothing is sized ahead: a
// chunk-sized allocation costs more to zero than growing does to copy,
// and the dense map stays more compact, so its lookups hit the cache.
func newChunkPostings() chunkPostings {
	return chunkPostings{prefixes: make(map[string]uint16), dense: make(map[uint64]int32)}
}

// reuse empties the postings for a new chunk, keeping their memory.
func (cp *chunkPostings) reuse() chunkPostings {
	clear(cp.prefixes)
	clear(cp.dense)
	// lastPrefix starts empty: prefix ids are the new chunk's.
	return chunkPostings{
		prefixes: cp.prefixes, dense: cp.dense, prefixKeys: cp.prefixKeys[:0],
		terms: cp.terms[:0], arena: cp.arena[:0], posts: cp.posts[:0],
		sparse: cp.sparse[:0], sparseArena: cp.sparseArena[:0],
	}
}

func (cp *chunkPostings) empty() bool { return len(cp.posts) == 0 && len(cp.sparse) == 0 }

// termParts splits a term key (tenant 0 kind hash value 0 month, see
// termKey) whose tenant part is prefixLen bytes: its prefix and the
// value's hash, and a hash of the whole key for the dense map.
func termParts(term []byte, prefixLen int) (prefix []byte, hash, mixed uint64) {
	hash = binary.BigEndian.Uint64(term[prefixLen:])
	month := uint64(term[len(term)-3])<<16 | uint64(term[len(term)-2])<<8 | uint64(term[len(term)-1])
	return term[:prefixLen], hash, hash ^ (uint64(term[prefixLen-1])<<56 | month<<32) ^ uint64(len(term))
}

func (cp *chunkPostings) prefixID(prefix []byte) uint16 {
	if id, ok := cp.prefixes[string(prefix)]; ok {
		return id
	}
	id := uint16(len(cp.prefixKeys))
	cp.prefixes[string(prefix)] = id
	cp.prefixKeys = append(cp.prefixKeys, string(prefix))
	return id
}

func (cp *chunkPostings) add(kind IndexKind, term []byte, prefixLen int, leaf uint64) {
	prefix, hash, mixed := termParts(term, prefixLen)
	var pid uint16
	if last := &cp.lastPrefix[kind]; last.ok && last.prefix == string(prefix) {
		pid = last.id
	} else {
		pid = cp.prefixID(prefix)
		*last = struct {
			prefix string
			id     uint16
			ok     bool
		}{cp.prefixKeys[pid], pid, true}
	}
	if sparseKind(kind) {
		start := uint32(len(cp.sparseArena))
		cp.sparseArena = append(cp.sparseArena, term...)
		cp.sparse = append(cp.sparse, sparsePosting{pid: pid, hash: hash, start: start, end: uint32(len(cp.sparseArena)), leaf: leaf})
		return
	}
	p := int32(len(cp.posts))
	if t := cp.findDense(term, mixed); t >= 0 {
		dt := &cp.terms[t]
		if dt.lastLeaf == leaf {
			return // the same event again: a word it holds twice
		}
		cp.posts = append(cp.posts, posting{leaf: leaf, next: -1, term: t})
		cp.posts[dt.last].next = p
		dt.last, dt.lastLeaf = p, leaf
		return
	}
	same, ok := cp.dense[mixed]
	if !ok {
		same = -1
	}
	t := int32(len(cp.terms))
	cp.posts = append(cp.posts, posting{leaf: leaf, next: -1, term: t})
	start := uint32(len(cp.arena))
	cp.arena = append(cp.arena, term...)
	cp.dense[mixed] = t
	cp.terms = append(cp.terms, denseTerm{pid: pid, hash: hash, start: start, end: uint32(len(cp.arena)), first: p, last: p, same: same, lastLeaf: leaf})
}

func (cp *chunkPostings) findDense(term []byte, mixed uint64) int32 {
	t, ok := cp.dense[mixed]
	if !ok {
		return -1
	}
	for ; t >= 0; t = cp.terms[t].same {
		dt := &cp.terms[t]
		if bytes.Equal(cp.arena[dt.start:dt.end], term) {
			return t
		}
	}
	return -1
}

// leaves returns a term's postings in leaf order.
func (cp *chunkPostings) leaves(kind IndexKind, term []byte, prefixLen int) []uint64 {
	_, hash, mixed := termParts(term, prefixLen)
	var out []uint64
	if sparseKind(kind) {
		for _, sp := range cp.sparse {
			if sp.hash == hash && bytes.Equal(cp.sparseArena[sp.start:sp.end], term) {
				out = append(out, sp.leaf)
			}
		}
		return out
	}
	t := cp.findDense(term, mixed)
	if t < 0 {
		return nil
	}
	for p := cp.terms[t].first; p >= 0; p = cp.posts[p].next {
		out = append(out, cp.posts[p].leaf)
	}
	return out
}

// groupDense lays out every dense term's leaves contiguously, in append
// (leaf) order: term t's are grouped[starts[t]:starts[t+1]]. A counting
// sort reads the postings in order and writes each once; following each
// term's links instead would wait on a cache miss per posting.
func (cp *chunkPostings) groupDense() (grouped []uint64, starts []int32) {
	starts = make([]int32, len(cp.terms)+1)
	for i := range cp.posts {
		starts[cp.posts[i].term+1]++
	}
	for t := 1; t < len(starts); t++ {
		starts[t] += starts[t-1]
	}
	next := slices.Clone(starts[:len(cp.terms)])
	grouped = make([]uint64, len(cp.posts))
	for i := range cp.posts {
		p := &cp.posts[i]
		grouped[next[p.term]] = p.leaf
		next[p.term]++
	}
	return grouped, starts
}

// sortItem is a dense term or a sparse posting, placed for writing. It
// holds no pointer, so that sorting moves plain words.
type sortItem struct {
	hash       uint64
	leaf       uint64 // sparse
	start, end uint32 // the key, in arena (dense) or sparseArena
	dense      int32  // the dense term, or -1
	rank       uint16
}

// each calls fn for every list in key order: the term key and its leaves
// in leaf order. Postings of one sparse term are gathered into one list.
func (cp *chunkPostings) each(fn func(term []byte, leaves []uint64) error) error {
	// Prefix ranks in key order: integer comparisons then sort the terms
	// exactly as their keys sort (tenant 0 kind, then the hash
	// big-endian, then value and month).
	order := make([]uint16, len(cp.prefixKeys))
	for i := range order {
		order[i] = uint16(i)
	}
	slices.SortFunc(order, func(a, b uint16) int { return cmp.Compare(cp.prefixKeys[a], cp.prefixKeys[b]) })
	rank := make([]uint16, len(order))
	for r, id := range order {
		rank[id] = uint16(r)
	}
	items := make([]sortItem, 0, len(cp.terms)+len(cp.sparse))
	for i, dt := range cp.terms {
		items = append(items, sortItem{rank: rank[dt.pid], hash: dt.hash, start: dt.start, end: dt.end, dense: int32(i)})
	}
	for _, sp := range cp.sparse {
		items = append(items, sortItem{rank: rank[sp.pid], hash: sp.hash, start: sp.start, end: sp.end, leaf: sp.leaf, dense: -1})
	}
	key := func(it *sortItem) []byte {
		if it.dense >= 0 {
			return cp.arena[it.start:it.end]
		}
		return cp.sparseArena[it.start:it.end]
	}
	// Terms sort by prefix rank, then value hash: integers. Items equal on
	// both are the same term (a sparse term's postings, in leaf order)
	// unless two values collide on 64 bits; such a run is sorted by key.
	slices.SortFunc(items, func(a, b sortItem) int {
		if c := cmp.Compare(a.rank, b.rank); c != 0 {
			return c
		}
		if c := cmp.Compare(a.hash, b.hash); c != 0 {
			return c
		}
		return cmp.Compare(a.leaf, b.leaf)
	})
	for i := 0; i < len(items); {
		j := i + 1
		for j < len(items) && items[j].rank == items[i].rank && items[j].hash == items[i].hash {
			j++
		}
		run := items[i:j]
		for _, it := range run[1:] {
			if !bytes.Equal(key(&it), key(&run[0])) {
				slices.SortStableFunc(run, func(a, b sortItem) int { return bytes.Compare(key(&a), key(&b)) })
				break
			}
		}
		i = j
	}
	grouped, starts := cp.groupDense()
	var buf []uint64 // a sparse term's leaves
	for i := 0; i < len(items); {
		it := &items[i]
		k := key(it)
		var leaves []uint64
		if it.dense >= 0 {
			leaves = grouped[starts[it.dense]:starts[it.dense+1]]
			i++
		} else {
			buf = buf[:0]
			for ; i < len(items) && items[i].dense < 0 && items[i].hash == it.hash && bytes.Equal(key(&items[i]), k); i++ {
				buf = append(buf, items[i].leaf)
			}
			leaves = buf
		}
		if err := fn(k, leaves); err != nil {
			return err
		}
	}
	return nil
}
