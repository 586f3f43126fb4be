package engine

import (
	"errors"
	"fmt"
	"syscall"
)

// ErrDiskFull is returned by CheckSpace when the data directory's free
// space is below Options.MinFreeBytes.
var ErrDiskFull = errors.New("engine: disk space below reserve")

// DefaultMinFreeBytes is the free space CheckSpace insists on by default:
// room for Pebble's compactions and a seal's segment file.
const DefaultMinFreeBytes = 256 << 20

// CheckSpace reports ErrDiskFull when the data directory is nearly full.
//
// A full disk must be met at admission, not inside Apply: Apply runs in the
// replicated state machine, where refusing on one node and not another
// would break determinism, and Pebble treats a failed WAL write as fatal.
// So the leader calls CheckSpace before it proposes, and producers get a
// clear RESOURCE_EXHAUSTED while nothing is written.
func (e *Engine) CheckSpace() error {
	var st syscall.Statfs_t
	if err := syscall.Statfs(e.opts.Dir, &st); err != nil {
		return fmt.Errorf("engine: statfs %s: %w", e.opts.Dir, err)
	}
	free := st.Bavail * uint64(st.Bsize)
	if free < uint64(e.opts.MinFreeBytes) {
		return fmt.Errorf("%w: %d bytes free in %s, reserve %d", ErrDiskFull, free, e.opts.Dir, e.opts.MinFreeBytes)
	}
	return nil
}
