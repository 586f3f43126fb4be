package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/trailaudit/trail/raftnode"
)

// cmdRecover rewrites the Raft membership of a stopped node whose cluster
// has lost its quorum for good (say two of three nodes destroyed), so that
// it can start again: by default as a one-node cluster, to which new nodes
// are then added with `trailctl cluster join`. See raftnode.Recover for
// what it replays and which node to pick.
func cmdRecover(ctx context.Context, e *env, args []string) error {
	cf := newConfigFlags("recover", e.stderr)
	cf.fs.Usage = settingsUsage(cf.fs, e.stderr, "[--peers id=addr,...] [settings]")
	cfg, err := cf.parse(args, e.getenv)
	if err != nil {
		return err
	}
	if err := cfg.check(); err != nil {
		return err
	}
	id, ok, err := readIdentity(cfg.DataDir)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("data directory %s holds no node: nothing to recover", cfg.DataDir)
	}
	if err := adoptIdentity(cfg, id); err != nil {
		return err
	}
	unlock, err := lockDataDir(cfg.DataDir)
	if err != nil {
		return fmt.Errorf("recover: stop the node first: %w", err)
	}
	defer unlock()
	servers, err := parsePeers(cfg.Peers)
	if err != nil {
		return usageErrorf("%v", err)
	}
	if len(servers) == 0 {
		servers = []raftnode.Server{{ID: cfg.NodeID, Address: firstNonEmpty(cfg.Raft.Advertise, cfg.Raft.Bind)}}
	}
	log := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	nc := nodeConfig(cfg, nil, "", nil, log)
	nc.BindAddr = cfg.Raft.Bind // nothing listens: Recover works offline
	if err := raftnode.Recover(ctx, nc, servers); err != nil {
		return err
	}
	voters := make([]string, len(servers))
	for i, s := range servers {
		voters[i] = s.ID + "=" + s.Address
	}
	fmt.Fprintf(e.stdout, "recovered %s: node %s now starts as a cluster of %d voter(s): %s\n",
		cfg.DataDir, cfg.NodeID, len(servers), strings.Join(voters, ","))
	fmt.Fprintln(e.stdout, "start it, check `trailctl cluster status`, then add fresh nodes with `trailctl cluster join`")
	return nil
}
