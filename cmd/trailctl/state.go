package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// stateDir is the witness's memory: for each partition, the last
// checkpoint it verified, kept as the exact signed note received, at
// <root>/<tenant>/<YYYY-MM>.checkpoint. Files are replaced atomically, so a
// crash leaves the old checkpoint or the new one, never a torn file.
type stateDir struct {
	root string
}

const (
	stateExt  = ".checkpoint"
	statePerm = 0o700
)

// dir returns the tenant's directory. Tenant ids are validated before they
// get here; validTenant refuses "." and "..", so this stays under root.
func (s stateDir) dir(tenant string) string { return filepath.Join(s.root, tenant) }

func (s stateDir) file(tenant, partition string) string {
	return filepath.Join(s.dir(tenant), partition+stateExt)
}

// load returns the saved note, or nil if the partition has none yet.
func (s stateDir) load(tenant, partition string) ([]byte, error) {
	b, err := readFileLimit(s.file(tenant, partition), maxProofFileBytes)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("witness state: %w", err)
	}
	return b, nil
}

func (s stateDir) save(tenant, partition string, note []byte) error {
	if err := os.MkdirAll(s.dir(tenant), statePerm); err != nil {
		return ioError(fmt.Errorf("witness state: %w", err))
	}
	if err := writeFileAtomic(s.file(tenant, partition), note, 0o644); err != nil {
		return fmt.Errorf("witness state: %w", err)
	}
	return nil
}

// saved lists the partitions of tenant that have a saved checkpoint.
func (s stateDir) saved(tenant string) ([]string, error) {
	entries, err := os.ReadDir(s.dir(tenant))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, ioError(fmt.Errorf("witness state: %w", err))
	}
	var out []string
	for _, e := range entries {
		p, ok := strings.CutSuffix(e.Name(), stateExt)
		if ok && e.Type().IsRegular() && validPartition(p) == nil {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out, nil
}

// saveEvidence keeps an inconsistency report next to the state, since
// stderr may be lost and the signed notes in it are proof of misbehaviour.
func (s stateDir) saveEvidence(tenant, partition string, at time.Time, report string) (string, error) {
	if err := os.MkdirAll(s.dir(tenant), statePerm); err != nil {
		return "", ioError(err)
	}
	name := fmt.Sprintf("%s.inconsistency-%s.txt", partition, at.UTC().Format("20060102T150405.000000000Z"))
	path := filepath.Join(s.dir(tenant), name)
	return path, writeFileAtomic(path, []byte(report), 0o644)
}
