//go:build !unix

package client

// lockDir is a no-op where flock is unavailable: run one client per spool
// directory there.
func lockDir(string) (func() error, error) { return func() error { return nil }, nil }
