//go:build unix

package client

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// lockDir takes an exclusive advisory lock on the file at path, so that two
// clients never replay and delete each other's spool segments. The kernel
// drops the lock when the process dies, so a crash leaves nothing stale.
func lockDir(path string) (unlock func() error, err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, errors.New("lock: spool directory is in use by another client")
		}
		return nil, fmt.Errorf("lock: %w", err)
	}
	return f.Close, nil
}
