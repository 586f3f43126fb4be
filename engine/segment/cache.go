package segment

import (
	"container/list"
	"sync"
	"unsafe"
)

// decoded is a decompressed block split into its entries, as Entry caches
// it. It is never modified once built, so readers share it without locks.
type decoded struct {
	raw   []byte
	spans []span // one per entry, in leaf order
}

// span locates an entry in decoded.raw; n < 0 marks a pruned entry.
type span struct {
	off uint32
	n   int32
}

func (d *decoded) cost() int {
	return len(d.raw) + len(d.spans)*int(unsafe.Sizeof(span{}))
}

// blockCache keeps recently decoded blocks, least recently used evicted
// first, within a byte budget rather than a count: blocks vary in size, and
// a budget keeps a Reader's memory bounded whatever the file holds.
type blockCache struct {
	budget int // <= 0: caching disabled

	mu    sync.Mutex
	used  int
	lru   list.List // of *cached, front = most recent
	byIdx map[int]*list.Element
}

type cached struct {
	i int
	d *decoded
}

func newBlockCache(budget int) *blockCache {
	return &blockCache{budget: budget, byIdx: make(map[int]*list.Element)}
}

func (c *blockCache) get(i int) (*decoded, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.byIdx[i]
	if !ok {
		return nil, false
	}
	c.lru.MoveToFront(el)
	return el.Value.(*cached).d, true
}

// put caches block i unless it alone exceeds the budget. Two readers that
// missed on the same block both decode it; the second put is dropped.
func (c *blockCache) put(i int, d *decoded) {
	cost := d.cost()
	if cost > c.budget {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.byIdx[i]; ok {
		return
	}
	c.byIdx[i] = c.lru.PushFront(&cached{i, d})
	c.used += cost
	for c.used > c.budget {
		el := c.lru.Back()
		v := el.Value.(*cached)
		c.lru.Remove(el)
		delete(c.byIdx, v.i)
		c.used -= v.d.cost()
	}
}

func (c *blockCache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lru.Init()
	clear(c.byIdx)
	c.used = 0
}
