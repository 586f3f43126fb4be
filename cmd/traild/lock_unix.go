//go:build unix

package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// lockFile, in the data directory, is held (flock) by the running traild.
const lockFile = "traild.lock"

// lockDataDir takes an exclusive lock on the data directory, so that a
// second traild started on it stops with a clear message rather than a
// storage error from deep inside. The kernel releases it when the process
// exits, however it exits.
func lockDataDir(dir string) (unlock func(), err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("data directory %s is in use by another traild", dir)
		}
		return nil, fmt.Errorf("data directory: lock: %w", err)
	}
	return func() { f.Close() }, nil
}
