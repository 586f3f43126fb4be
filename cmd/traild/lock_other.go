//go:build !unix

package main

// lockDataDir is a no-op where flock does not exist; the storage engine's
// own lock still refuses a second process, less legibly.
func lockDataDir(dir string) (unlock func(), err error) { return func() {}, nil }
