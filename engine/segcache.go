package engine

import (
	"container/list"
	"errors"
	"fmt"
	"sync"

	"github.com/trailaudit/trail/engine/segment"
)

// segmentPath is where the segment file of a sealed partition lives:
// segments/<tenant>/<YYYY-MM>.seg, refused for a tenant id that could name
// anything else (invariant 12).
func segmentPath(dir string, p Partition) (string, error) {
	return tenantPath(segmentRoot(dir), p.Tenant, p.Month.String()+".seg")
}

// segmentCache keeps at most max segment readers open, least recently used
// evicted first. Opening a segment verifies its trailing hash, so a reader
// is worth keeping; a reader in use is closed only after its last release.
type segmentCache struct {
	dir string
	max int

	mu    sync.Mutex
	lru   *list.List // of *segmentHandle, front = most recent
	byKey map[Partition]*list.Element
}

type segmentHandle struct {
	c       *segmentCache
	p       Partition
	r       *segment.Reader
	refs    int  // guarded by c.mu
	evicted bool // guarded by c.mu
}

func newSegmentCache(dir string, max int) *segmentCache {
	return &segmentCache{dir: dir, max: max, lru: list.New(), byKey: make(map[Partition]*list.Element)}
}

func (c *segmentCache) acquire(p Partition) (*segmentHandle, error) {
	c.mu.Lock()
	if el, ok := c.byKey[p]; ok {
		h := el.Value.(*segmentHandle)
		h.refs++
		c.lru.MoveToFront(el)
		c.mu.Unlock()
		return h, nil
	}
	c.mu.Unlock()

	// Open outside the lock: it reads and hashes the whole file.
	path, err := segmentPath(c.dir, p)
	if err != nil {
		return nil, err
	}
	r, err := segment.Open(path, segment.ReaderOptions{})
	if err != nil {
		if errors.Is(err, segment.ErrCorrupt) {
			return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.byKey[p]; ok { // lost a race: keep the other
		r.Close()
		h := el.Value.(*segmentHandle)
		h.refs++
		return h, nil
	}
	h := &segmentHandle{c: c, p: p, r: r, refs: 1}
	c.byKey[p] = c.lru.PushFront(h)
	for c.lru.Len() > c.max {
		c.evictLocked(c.lru.Back())
	}
	return h, nil
}

func (h *segmentHandle) release() {
	h.c.mu.Lock()
	defer h.c.mu.Unlock()
	h.refs--
	if h.refs == 0 && h.evicted {
		h.r.Close()
	}
}

func (c *segmentCache) evictLocked(el *list.Element) {
	h := el.Value.(*segmentHandle)
	c.lru.Remove(el)
	delete(c.byKey, h.p)
	h.evicted = true
	if h.refs == 0 {
		h.r.Close()
	}
}

// forget drops p's reader so the next read reopens the file (after the
// file was replaced).
func (c *segmentCache) forget(p Partition) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.byKey[p]; ok {
		c.evictLocked(el)
	}
}

func (c *segmentCache) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.lru.Len() > 0 {
		c.evictLocked(c.lru.Back())
	}
	return nil
}
