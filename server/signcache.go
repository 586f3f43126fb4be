package server

import (
	"sync"

	"github.com/trailaudit/trail/merkle"
)

// signCacheSize bounds the signed checkpoints kept (about 200 bytes each).
const signCacheSize = 4096

// signCache keeps recently signed checkpoints. Signing is the largest cost
// of serving a proof against a partition that is not growing (sealed, or
// quiet), and Ed25519 signatures are deterministic, so a cached note is
// exactly what signing again would produce. When full it is emptied
// rather than evicted entry by entry: the working set of a busy log is a
// few checkpoints per active partition, refilled at once.
type signCache struct {
	mu    sync.Mutex
	notes map[merkle.Checkpoint]string
}

func (c *signCache) get(cp merkle.Checkpoint) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, ok := c.notes[cp]
	return n, ok
}

func (c *signCache) put(cp merkle.Checkpoint, note string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.notes == nil || len(c.notes) >= signCacheSize {
		c.notes = make(map[merkle.Checkpoint]string)
	}
	c.notes[cp] = note
}
