//go:build !linux

package main

// writtenBytes cannot tell preallocated space from data here.
func writtenBytes(_ string, size int64) int64 { return size }
