package witness

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// maxStateBytes bounds a state file: one checkpoint note and its
// signatures.
const maxStateBytes = MaxRequestBytes

// stateDir persists, per origin, the latest checkpoint the witness
// cosigned: the note with the log's verified signatures and the witness's
// own cosignature, as the monitoring endpoint serves it. Each origin is one
// file named by the lowercase hex SHA-256 of the origin (the protocol's
// origin hash), so no origin text ever becomes a path.
type stateDir struct{ dir string }

// originHash is the protocol's name for a log: hex SHA-256 of its origin.
func originHash(origin string) string {
	sum := sha256.Sum256([]byte(origin))
	return hex.EncodeToString(sum[:])
}

func (d stateDir) path(hash string) string { return filepath.Join(d.dir, hash) }

// load returns the stored note for the origin hash, or nil if there is
// none.
func (d stateDir) load(hash string) ([]byte, error) {
	f, err := os.Open(d.path(hash))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("witness: read state: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxStateBytes+1))
	if err != nil {
		return nil, fmt.Errorf("witness: read state %s: %w", hash, err)
	}
	if len(b) > maxStateBytes {
		return nil, fmt.Errorf("witness: state %s is larger than %d bytes", hash, maxStateBytes)
	}
	return b, nil
}

// save replaces the origin's note atomically and durably: a crash leaves
// the old state or the new one, and the new one is on disk before the
// cosignature is returned (the protocol requires it).
func (d stateDir) save(hash string, note []byte) error {
	tmp, err := os.CreateTemp(d.dir, ".tmp-"+hash+"-*")
	if err != nil {
		return fmt.Errorf("witness: save state: %w", err)
	}
	name := tmp.Name()
	_, err = tmp.Write(note)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(name, d.path(hash))
	}
	if err != nil {
		os.Remove(name)
		return fmt.Errorf("witness: save state %s: %w", hash, err)
	}
	dir, err := os.Open(d.dir)
	if err != nil {
		return fmt.Errorf("witness: save state %s: sync directory: %w", hash, err)
	}
	defer dir.Close()
	if err := dir.Sync(); err != nil {
		return fmt.Errorf("witness: save state %s: sync directory: %w", hash, err)
	}
	return nil
}
