package server

import (
	"sync"
	"time"
)

// spaceCheckEvery is how old a free-space reading may be. Appends are
// refused while the disk is below its reserve; reading it costs a statfs
// call, which at thousands of calls a second was a measurable share of
// an append, while the reserve (256 MiB by default) is meant to absorb
// far more than a fraction of a second of writes.
const spaceCheckEvery = 100 * time.Millisecond

// spaceGate answers whether appends may proceed from a recent reading of
// the disk's free space.
type spaceGate struct {
	probe func() error
	every time.Duration

	mu  sync.Mutex
	at  time.Time
	err error
}

func (g *spaceGate) check() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if now := time.Now(); g.at.IsZero() || now.Sub(g.at) >= g.every {
		g.err, g.at = g.probe(), now
	}
	return g.err
}
