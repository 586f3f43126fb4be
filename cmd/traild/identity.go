package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/trailaudit/trail/raftnode"
)

// identityFile, in the data directory, records whose data it is: the
// cluster and node it belongs to and the log it serves. traild compares it
// with the configuration on every start and refuses a mismatch, so that a
// directory mounted in the wrong place never joins the wrong cluster. It
// also carries the first-start work still to do, so that a node that
// crashes before finishing it picks it up again.
const identityFile = "identity.json"

// identityVersion is the format of identityFile.
const identityVersion = 1

type identity struct {
	Version   int       `json:"version"`
	ClusterID string    `json:"cluster_id,omitempty"` // empty until a joining node learns it
	NodeID    string    `json:"node_id"`
	LogName   string    `json:"log_name"`
	CreatedAt time.Time `json:"created_at"`

	// BootstrapPending: Raft must be bootstrapped with Peers (this node
	// alone when empty) at the next start.
	BootstrapPending bool              `json:"bootstrap_pending,omitempty"`
	Peers            []raftnode.Server `json:"peers,omitempty"`
	// JoinPending is the member to ask to add this node, until it has.
	JoinPending string `json:"join_pending,omitempty"`
	// AdminKeyPending: the first admin API key is still to be created and
	// shown. Only the node that bootstrapped the cluster does it.
	AdminKeyPending bool `json:"admin_key_pending,omitempty"`
}

// readIdentity reads dir's identity; ok is false when the directory has
// none (it is new).
func readIdentity(dir string) (id *identity, ok bool, err error) {
	path := filepath.Join(dir, identityFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("data directory: %w", err)
	}
	id = new(identity)
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(id); err != nil {
		return nil, false, fmt.Errorf("data directory: %s is malformed: %w", path, err)
	}
	if id.Version != identityVersion || id.NodeID == "" || id.LogName == "" {
		return nil, false, fmt.Errorf("data directory: %s: unsupported version %d or missing node_id or log_name", path, id.Version)
	}
	return id, true, nil
}

// writeIdentity replaces dir's identity atomically and durably: a crash
// leaves the old file or the new one, never a torn one.
func writeIdentity(dir string, id *identity) error {
	b, err := json.MarshalIndent(id, "", "  ")
	if err != nil {
		return fmt.Errorf("encode identity: %w", err)
	}
	if err := writeFileAtomic(filepath.Join(dir, identityFile), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("data directory: write identity: %w", err)
	}
	return nil
}

// checkNewDataDir refuses to initialise a directory that already holds a
// node's state without an identity: that is someone's data whose origin
// traild cannot vouch for.
func checkNewDataDir(dir string) error {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	for _, e := range ents {
		if e.Name() == "raft" || strings.HasPrefix(e.Name(), "engine-") {
			return fmt.Errorf("data directory %s holds Raft or engine state but no %s: refusing to adopt it", dir, identityFile)
		}
	}
	return nil
}

// writeFileAtomic writes data to a temporary file next to path, syncs it,
// renames it over path and syncs the directory.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after a successful rename there is nothing to remove
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
