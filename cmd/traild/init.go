package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
)

// cmdInit prepares a new data directory without starting the node: its
// identity, the cluster formation to perform at first start, and (for a
// node that creates the cluster) the log key. Operators use it to stage
// nodes, and to see what a first start would do, before running them.
func cmdInit(_ context.Context, e *env, args []string) error {
	cf := newConfigFlags("init", e.stderr)
	cf.fs.Usage = settingsUsage(cf.fs, e.stderr, "[--bootstrap [--peers id=addr,...] | --join ADDR] [settings]")
	cfg, err := cf.parse(args, e.getenv)
	if err != nil {
		return err
	}
	if err := cfg.check(); err != nil {
		return err
	}
	p, err := planDataDir(cfg, e.rand, e.now())
	if err != nil {
		return err
	}
	if !p.fresh {
		return fmt.Errorf("data directory %s is already initialized (node %s of cluster %s)", cfg.DataDir, p.id.NodeID, p.id.ClusterID)
	}
	keyReady := p.genKey
	if !p.genKey {
		present, err := logKeyPresent(cfg.LogKeyFile, cfg.LogVKeyFile)
		if err != nil {
			return err
		}
		if present {
			if _, err := loadLogKey(cfg.LogKeyFile, cfg.LogVKeyFile, cfg.LogName, slog.New(slog.NewTextHandler(e.stderr, nil))); err != nil {
				return err
			}
			keyReady = true
		}
	}
	vkey, err := p.commit(cfg, e.rand)
	if err != nil {
		return err
	}
	describeInit(e.stdout, cfg, p.id, vkey, keyReady)
	return nil
}

func describeInit(w io.Writer, c *Config, id *identity, vkey string, keyReady bool) {
	fmt.Fprintf(w, "initialized %s: node %s", c.DataDir, id.NodeID)
	if id.ClusterID != "" {
		fmt.Fprintf(w, " of cluster %s", id.ClusterID)
	}
	fmt.Fprintln(w)
	switch {
	case id.JoinPending != "":
		fmt.Fprintf(w, "first start: ask %s to add this node as a voter\n", id.JoinPending)
	case len(id.Peers) > 0:
		fmt.Fprintf(w, "first start: bootstrap a cluster of %d voters and create the first admin key\n", len(id.Peers))
	default:
		fmt.Fprintln(w, "first start: bootstrap a one-node cluster and create the first admin key")
	}
	if vkey != "" {
		fmt.Fprintf(w, "generated the log key %s; verifier key (for auditors) %s:\n%s\n", c.LogKeyFile, c.LogVKeyFile, vkey)
	}
	if !keyReady {
		fmt.Fprintf(w, "before the first start, copy the cluster's log key to %s and %s (or set log_key_file, log_vkey_file)\n",
			c.LogKeyFile, c.LogVKeyFile)
	}
}
