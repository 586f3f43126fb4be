package server

import (
	"sync"

	"github.com/trailaudit/trail/engine"
)

// engineCache holds values read from one engine at one generation of what
// they depend on (its settings version, its count of erased data keys):
// a value is served only while both are current, so a settings command,
// an erasure or a restored snapshot (a new engine) makes it stale without
// anyone telling the cache. It starts over when it reaches max entries,
// so its memory is bounded whatever the keys (invariant 7).
type engineCache[V any] struct {
	mu     sync.Mutex
	eng    *engine.Engine
	gen    uint64
	values map[string]V
}

// get returns key's value if it was put for eng at gen, the caller's
// current generation.
func (c *engineCache[V]) get(eng *engine.Engine, gen uint64, key string) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.eng != eng || c.gen != gen {
		c.eng, c.gen, c.values = eng, gen, nil
	}
	v, ok := c.values[key]
	return v, ok
}

// put stores a value read from eng at gen, taken before the read: a value
// read across a change of generation is stored under the old one, which
// the next get, at the new one, never serves.
func (c *engineCache[V]) put(eng *engine.Engine, gen uint64, key string, v V, max int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.eng != eng || c.gen != gen {
		return
	}
	if c.values == nil || len(c.values) >= max {
		c.values = make(map[string]V)
	}
	c.values[key] = v
}
