package main

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/trailaudit/trail/engine"
	"github.com/trailaudit/trail/raftnode"
)

// Cluster formation at first start: a node configured to bootstrap
// creates a cluster only when there is none yet.
//
// bootstrap with peers is static configuration: Compose, a Kubernetes
// manifest or a config file says it on every start. traild acts on it only
// for a new data directory, but a new data directory is also what a node
// whose volume was lost or wiped starts with, while its peers still form
// the cluster it created. Bootstrapping then starts a second history at
// index 1 under the same node ID: with another node wiped at the same time
// (it joins through this one), the two fresh nodes are a majority of the
// peers and elect each other into a second cluster, and the survivor's log
// is overwritten by theirs once it reaches them.
//
// So before it bootstraps, a new node asks every other peer, over the Raft
// port and its (mutual) TLS, whether it holds Raft state and of which
// cluster (raftnode.Probe; members answer with the cluster ID they
// replicate):
//
//   - a peer holds state of this cluster (or, when cluster_id is not
//     configured, of any cluster: the peers list says these are its
//     fellow voters): the node joins that cluster instead, through that
//     peer, as a node configured with join would. Raft already lists its
//     ID at its address, so the leader adds it back as the same voter
//     (AddVoter of an existing voter commits an unchanged configuration;
//     the leader's replication to that ID, failing while the node was
//     gone, then brings it up to date from the log or a snapshot). It
//     does not remove the stale entry first: removing and re-adding
//     shrinks the configuration for a while, and a node of a three-voter
//     cluster that fails between the two steps is then fatal to the
//     quorum. (Neither way makes a node that lost its disk remember the
//     vote it cast before in the current term; followers that know a
//     leader refuse candidates, which keeps that window to an election
//     under way at the very moment of the wipe.)
//   - a peer holds state of another cluster, or peers disagree: the node
//     refuses to start. Neither bootstrapping next to it nor joining it is
//     right, and the operator must look.
//   - every peer answers that it holds nothing: the node bootstraps at
//     once, as it always did. Nodes starting together on a new cluster
//     hold nothing (they wait to be bootstrapped or added), so a fresh
//     cluster still bootstraps exactly once: the other nodes of the
//     Compose file join, and several nodes bootstrapping with the same
//     peers write the same configuration, which Raft accepts. (A node
//     answers probes only once its own decision is made, so several nodes
//     configured to bootstrap wait for each other until the timeout
//     below; one that starts later finds the others' state and joins.)
//   - some peers do not answer within bootstrap_probe_timeout (down,
//     partitioned, not started yet, or of a version without probes), and
//     none that answered holds state: the node bootstraps anyway, with a
//     warning. This is the trade-off: waiting for every peer would block
//     a new cluster forever on one dead machine, while bootstrapping
//     without hearing from every peer may bootstrap next to an existing
//     cluster that was unreachable for the whole window. Raft limits what
//     that costs: the new node cannot elect itself without a majority of
//     the peers, and a peer with the longer log refuses it its vote, so
//     once the peers are back it becomes their follower. It becomes a
//     second cluster only if a majority of the peers lost their data
//     together and every peer that kept it stayed silent for the whole
//     window.
//
// The decision is taken once, before anything is written, logged, and
// recorded in identity.json (bootstrap_pending or join_pending); a node
// that joins never generates a log key and does not create the first
// admin key. A directory prepared by `traild init --bootstrap` is probed
// too on its first start, but only ever bootstraps or refuses: init may
// have generated a log key that is not the cluster's.

// Timing of the formation probe; bootstrap_probe_timeout bounds the whole.
const (
	probeAttempt = 2 * time.Second        // one round of probes
	probeRetry   = 500 * time.Millisecond // pause before asking silent peers again
)

// peerAnswer is one peer's answer to the formation probe.
type peerAnswer struct {
	peer raftnode.Server // as the peers list names it
	info raftnode.PeerInfo
}

// probeResult is what the peers said within the probe window.
type probeResult struct {
	members []peerAnswer     // peers that hold Raft state
	empty   []string         // IDs of peers that answered they hold none
	silent  map[string]error // IDs of peers that did not answer, with the last error
}

// probePeers asks peers in parallel, in rounds, until one of them holds
// Raft state, every one has answered, or window has passed; only ctx
// ending is an error.
func probePeers(ctx context.Context, peers []raftnode.Server, t *tls.Config, window time.Duration) (probeResult, error) {
	res := probeResult{silent: make(map[string]error)}
	deadline := time.Now().Add(window)
	pending := peers
	for {
		actx, cancel := context.WithTimeout(ctx, min(probeAttempt, max(time.Until(deadline), time.Millisecond)))
		infos := make([]raftnode.PeerInfo, len(pending))
		errs := make([]error, len(pending))
		var wg sync.WaitGroup
		for i, p := range pending {
			wg.Go(func() { infos[i], errs[i] = raftnode.Probe(actx, p.Address, t) })
		}
		wg.Wait()
		cancel()
		if err := ctx.Err(); err != nil {
			return res, err
		}
		var next []raftnode.Server
		for i, p := range pending {
			switch {
			case errs[i] != nil:
				res.silent[p.ID] = errs[i]
				next = append(next, p)
			case infos[i].HasState():
				delete(res.silent, p.ID)
				res.members = append(res.members, peerAnswer{peer: p, info: infos[i]})
			default:
				delete(res.silent, p.ID)
				res.empty = append(res.empty, p.ID)
			}
		}
		pending = next
		wait := min(probeRetry, time.Until(deadline))
		if len(res.members) > 0 || len(pending) == 0 || wait <= 0 {
			return res, nil
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return res, ctx.Err()
		}
	}
}

// decideFormation probes the peers of a node about to bootstrap a
// multi-node cluster for the first time, and turns the plan into a join
// when they already form one (see the comment at the top of this file).
// It runs once the ports are bound, before anything is written.
func (d *daemon) decideFormation(ctx context.Context, p *plan, t *tls.Config) error {
	if !p.id.BootstrapPending {
		return nil
	}
	var others []raftnode.Server
	for _, s := range p.id.Peers {
		if s.ID != p.id.NodeID {
			others = append(others, s)
		}
	}
	if len(others) == 0 {
		return nil // a one-node cluster has nobody to ask
	}
	if !p.fresh {
		// An earlier start decided to bootstrap and got as far as opening
		// Raft: the decision stands (Bootstrap is idempotent).
		if _, err := os.Stat(filepath.Join(d.cfg.DataDir, "raft")); !errors.Is(err, fs.ErrNotExist) {
			return nil
		}
	}
	window := d.cfg.BootstrapProbeTimeout
	d.log.Info("first start: asking the peers whether they already form a cluster before bootstrapping",
		"peers", serverIDs(others), "timeout", window)
	res, err := probePeers(ctx, others, t, window)
	if err != nil {
		return fmt.Errorf("probe the peers: %w", err)
	}
	if len(res.members) == 0 {
		if len(res.silent) == 0 {
			d.log.Info("first start: every peer answered and none holds cluster state: bootstrapping a new cluster",
				"voters", len(p.id.Peers), "empty", res.empty)
			return nil
		}
		silent := slices.Sorted(maps.Keys(res.silent))
		d.log.Warn("first start: some peers did not answer in time and none that did holds cluster state: bootstrapping a new cluster",
			"voters", len(p.id.Peers), "empty", res.empty, "silent", silent, "timeout", window,
			"err", res.silent[silent[0]])
		return nil
	}
	return d.switchToJoin(p, res.members)
}

// switchToJoin makes p join the cluster the members form, after checking
// that it is the cluster this node belongs to.
func (d *daemon) switchToJoin(p *plan, members []peerAnswer) error {
	want := p.id.ClusterID
	if p.randomClusterID {
		want = "" // made up for a new cluster: adopt the one found
	}
	var got string
	var from peerAnswer
	for _, m := range members {
		id := m.info.ClusterID
		switch {
		case id == "":
		case want != "" && id != want:
			return fmt.Errorf("peer %s (%s) already belongs to cluster %q, not %q (cluster_id): refusing both to bootstrap next to it and to join it",
				m.peer.ID, m.peer.Address, id, want)
		case got != "" && id != got:
			return fmt.Errorf("peers %s and %s belong to different clusters, %q and %q: refusing both to bootstrap and to join",
				from.peer.ID, m.peer.ID, got, id)
		default:
			got, from = id, m
		}
	}
	name := cmp.Or(got, want, "(ID not known yet)")
	if !p.fresh {
		return fmt.Errorf("data directory %s was prepared (traild init) to bootstrap a new cluster, but peer %s (%s) already holds cluster %s: refusing to bootstrap a second one; to join it, start this node on a new data directory",
			d.cfg.DataDir, members[0].peer.ID, members[0].peer.Address, name)
	}
	if p.genKey {
		return fmt.Errorf("the peers already form cluster %s, which this node joins; a joining node never generates a log key: give it the cluster's (%s and %s; log_key_file, log_vkey_file)",
			name, d.cfg.LogKeyFile, d.cfg.LogVKeyFile)
	}
	via := joinTarget(members)
	p.id.BootstrapPending, p.id.Peers, p.id.AdminKeyPending = false, nil, false
	p.id.JoinPending = via.peer.Address
	if p.randomClusterID {
		// Learned from the cluster if no peer reported it (learnClusterID).
		p.id.ClusterID, d.cfg.ClusterID = got, got
	}
	d.log.Info("first start: the peers already form a cluster: joining it instead of bootstrapping a second one",
		"cluster", name, "via", via.peer.ID, "address", via.peer.Address, "leader", via.info.LeaderID,
		"term", via.info.Term, "members", memberIDs(members))
	return nil
}

// joinTarget picks the member to ask: the leader, else one that knows a
// leader, else the first; Raft routes the request to the leader anyway.
func joinTarget(members []peerAnswer) peerAnswer {
	rank := func(m peerAnswer) int {
		switch {
		case m.info.LeaderID != "" && m.info.LeaderID == m.info.ID:
			return 0
		case m.info.LeaderID != "":
			return 1
		}
		return 2
	}
	best := members[0]
	for _, m := range members[1:] {
		if rank(m) < rank(best) {
			best = m
		}
	}
	return best
}

// probedClusterID is what this node reports as its cluster's ID to nodes
// that probe it: the replicated setting, "" until it has arrived.
func probedClusterID(e *engine.Engine) string {
	v, err := e.Setting(clusterIDSetting)
	if err != nil {
		return ""
	}
	return string(v)
}

func serverIDs(s []raftnode.Server) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = v.ID
	}
	return out
}

func memberIDs(m []peerAnswer) []string {
	out := make([]string, len(m))
	for i, v := range m {
		out[i] = v.peer.ID
	}
	return out
}
