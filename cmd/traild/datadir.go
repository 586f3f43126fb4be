package main

import (
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/trailaudit/trail/raftnode"
)

// Defaults that follow the data directory: an existing directory supplies
// its own values, a new one gets these.
const (
	defaultNodeID  = "node1"
	defaultLogName = "trail"
)

// plan is what starting (or traild init) will do to the data directory,
// decided before anything is written.
type plan struct {
	id *identity
	// fresh: the directory is new and id is still to be written.
	fresh bool
	// genKey: the log key is to be generated (a new cluster whose key
	// files do not exist yet).
	genKey bool
	// randomClusterID: id.ClusterID was made up for a new cluster, not
	// configured; a node that joins an existing cluster instead drops it
	// (formation.go).
	randomClusterID bool
}

// planDataDir reads the data directory, completes c from it (node_id,
// cluster_id and log_name follow the directory unless configured) and
// refuses a directory that belongs to another node, cluster or log. For a
// new directory it plans the cluster formation that c asks for.
func planDataDir(c *Config, rand io.Reader, now time.Time) (*plan, error) {
	id, ok, err := readIdentity(c.DataDir)
	if err != nil {
		return nil, err
	}
	var p *plan
	if ok {
		if err := adoptIdentity(c, id); err != nil {
			return nil, err
		}
		p = &plan{id: id}
	} else {
		if p, err = newPlan(c, rand, now); err != nil {
			return nil, err
		}
	}
	if c.LogKeyFile == "" {
		c.LogKeyFile = filepath.Join(c.DataDir, skeyName)
	}
	if c.LogVKeyFile == "" {
		c.LogVKeyFile = filepath.Join(c.DataDir, vkeyName)
	}
	present, err := logKeyPresent(c.LogKeyFile, c.LogVKeyFile)
	if err != nil {
		return nil, err
	}
	// Only a node creating a cluster may create its key; every other node
	// must be given the cluster's key, or its checkpoints would not verify.
	p.genKey = !present && p.fresh && p.id.BootstrapPending
	return p, nil
}

// adoptIdentity fills c from an existing directory's identity and refuses
// explicit settings that contradict it.
func adoptIdentity(c *Config, id *identity) error {
	dir := c.DataDir
	switch {
	case c.NodeID != "" && c.NodeID != id.NodeID:
		return fmt.Errorf("data directory %s belongs to node %q, not %q (node_id)", dir, id.NodeID, c.NodeID)
	case c.ClusterID != "" && id.ClusterID != "" && c.ClusterID != id.ClusterID:
		return fmt.Errorf("data directory %s belongs to cluster %q, not %q (cluster_id)", dir, id.ClusterID, c.ClusterID)
	case c.LogName != "" && c.LogName != id.LogName:
		return fmt.Errorf("data directory %s holds log %q, not %q (log_name)", dir, id.LogName, c.LogName)
	}
	c.NodeID, c.LogName = id.NodeID, id.LogName
	if id.ClusterID != "" {
		c.ClusterID = id.ClusterID
	}
	return nil
}

func newPlan(c *Config, rand io.Reader, now time.Time) (*plan, error) {
	if err := checkNewDataDir(c.DataDir); err != nil {
		return nil, err
	}
	if c.NodeID == "" {
		c.NodeID = defaultNodeID
	}
	if c.LogName == "" {
		c.LogName = defaultLogName
	}
	id := &identity{
		Version: identityVersion, ClusterID: c.ClusterID, NodeID: c.NodeID, LogName: c.LogName,
		CreatedAt: now.UTC().Truncate(time.Second),
	}
	if c.Join != "" {
		id.JoinPending = c.Join
		return &plan{id: id, fresh: true}, nil
	}
	// Bootstrap, asked for or by default: a new directory with no
	// instructions becomes a one-node cluster, which is what `traild` with
	// no flags promises. Voters can be added later.
	peers, err := parsePeers(c.Peers)
	if err != nil {
		return nil, err
	}
	if len(peers) > 0 && !slices.ContainsFunc(peers, func(s raftnode.Server) bool { return s.ID == c.NodeID }) {
		return nil, fmt.Errorf("peers do not list this node %q: a bootstrapping node must be one of the voters", c.NodeID)
	}
	random := id.ClusterID == ""
	if random {
		if id.ClusterID, err = randomID(rand); err != nil {
			return nil, err
		}
		c.ClusterID = id.ClusterID
	}
	id.BootstrapPending, id.Peers, id.AdminKeyPending = true, peers, true
	return &plan{id: id, fresh: true, randomClusterID: random}, nil
}

// commit creates the directory, the log key if planned, and the identity.
// It returns the key's public half when it generated one.
func (p *plan) commit(c *Config, rand io.Reader) (generatedVKey string, err error) {
	if !p.fresh {
		return "", nil
	}
	if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
		return "", fmt.Errorf("data directory: %w", err)
	}
	if p.genKey {
		if generatedVKey, err = generateLogKey(c.LogName, c.LogKeyFile, c.LogVKeyFile, rand); err != nil {
			return "", err
		}
	}
	if err := writeIdentity(c.DataDir, p.id); err != nil {
		return "", err
	}
	p.fresh = false
	return generatedVKey, nil
}

func randomID(rand io.Reader) (string, error) {
	var b [16]byte
	if _, err := io.ReadFull(rand, b[:]); err != nil {
		return "", fmt.Errorf("generate cluster id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}
