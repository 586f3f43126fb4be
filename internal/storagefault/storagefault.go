// Package storagefault damages a stopped or running node's storage on
// purpose, for tests that show what Trail does when a copy of the log is
// no longer what was written: the tamperer who can write files.
package storagefault

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// FlipHashes inverts every stored tree node of an open partition under a
// node's data directory (the engine's "hashes" file of
// open/<tenant>/<partition>), so that every root the node computes from
// its files, at any size, differs from the other replicas'. It returns
// the file it changed.
func FlipHashes(dataDir, tenant, partition string) (string, error) {
	want := filepath.Join("open", tenant, partition, "hashes")
	var path string
	err := filepath.WalkDir(dataDir, func(f string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(f, string(filepath.Separator)+want) {
			path = f
		}
		return err
	})
	if err != nil {
		return "", fmt.Errorf("storagefault: %w", err)
	}
	if path == "" {
		return "", fmt.Errorf("storagefault: no %s under %s", want, dataDir)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("storagefault: %w", err)
	}
	for i := range b {
		b[i] ^= 0xff
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return "", fmt.Errorf("storagefault: %w", err)
	}
	return path, nil
}
