package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"

	"github.com/trailaudit/trail/engine"
	"github.com/trailaudit/trail/raftnode"
	"github.com/trailaudit/trail/server"
)

// clusterIDSetting is the replicated engine setting that holds the
// cluster's ID. The bootstrapping node writes it through Raft, so every
// member, including one that joined without being told the ID, can check
// its data directory against the cluster it actually talks to.
const clusterIDSetting = "cluster/id"

// syncSettingPrefix + node ID is the marker a node writes to catch up with
// the cluster (syncWithCluster); it holds a random nonce and nothing else.
const syncSettingPrefix = "traild/sync/"

// Timings of the first-start work.
const (
	joinAttempt   = 30 * time.Second // one RequestJoin before logging that it still fails
	joinRetry     = time.Second      // pause before asking again after a failed join
	adminKeyWait  = 30 * time.Second // one attempt at creating the admin key
	adminKeyRetry = time.Second      // pause between attempts
)

// reconcile finishes what the data directory says is pending (joining,
// the first admin key) and then checks the cluster ID the cluster
// replicates against the data directory's. It returns nil when ctx ends or
// everything is done; an error is fatal to the daemon.
func (d *daemon) reconcile(ctx context.Context) error {
	if d.id.JoinPending != "" {
		if err := d.join(ctx); err != nil {
			return stopped(ctx, err)
		}
	}
	if d.id.AdminKeyPending {
		if err := d.createAdminKey(ctx); err != nil {
			return stopped(ctx, err)
		}
	}
	return stopped(ctx, d.learnClusterID(ctx))
}

// stopped hides errors caused by the daemon shutting down.
func stopped(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// join asks the configured member to add this node as a voter until it
// succeeds. raftnode retries while the member is unreachable or there is no
// leader; so does join when the leader lost its leadership (or shut down)
// while committing the change, since adding a node that is already a voter
// at that address changes nothing. A definite refusal ends it.
func (d *daemon) join(ctx context.Context) error {
	member := d.id.JoinPending
	d.log.Info("joining the cluster", "via", member)
	for {
		actx, cancel := context.WithTimeout(ctx, joinAttempt)
		err := d.node.RequestJoin(actx, member)
		cancel()
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !joinRetryable(err) {
			return fmt.Errorf("join via %s: %w", member, err)
		}
		d.log.Warn("still trying to join the cluster", "via", member, "err", err)
		select {
		case <-time.After(joinRetry):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	d.log.Info("joined the cluster", "via", member)
	d.id.JoinPending = ""
	return writeIdentity(d.cfg.DataDir, d.id)
}

// joinRetryable reports whether a failed join may succeed if asked again:
// the attempt timed out, or the leader lost its leadership or shut down
// while committing the change (an election under way, as when a node
// rejoins while the cluster is still settling).
func joinRetryable(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, raft.ErrLeadershipLost) ||
		errors.Is(err, raft.ErrRaftShutdown) || errors.Is(err, raftnode.ErrAmbiguous)
}

// createAdminKey creates the cluster's first admin API key once there is a
// leader, and shows it this once. It records the cluster ID first, so that
// a key never exists in a cluster without one. Failures are retried: on a
// new multi-node cluster there is no quorum until the other nodes start.
func (d *daemon) createAdminKey(ctx context.Context) error {
	for {
		token, err := d.tryCreateAdminKey(ctx)
		if err == nil {
			printBanner(d.env.stdout, d, token)
			break
		}
		if errors.Is(err, server.ErrAlreadyBootstrapped) {
			d.log.Info("the cluster already has API keys; no admin key created")
			break
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		d.log.Warn("first admin key not created yet; retrying", "err", err)
		select {
		case <-time.After(adminKeyRetry):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	d.id.AdminKeyPending = false
	return writeIdentity(d.cfg.DataDir, d.id)
}

func (d *daemon) tryCreateAdminKey(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, adminKeyWait)
	defer cancel()
	// ApplySettings waits for a leader (within ctx).
	if err := d.syncWithCluster(ctx); err != nil {
		return "", fmt.Errorf("reach the cluster: %w", err)
	}
	if err := d.recordClusterID(ctx); err != nil {
		return "", err
	}
	return server.Bootstrap(ctx, d.node, "first admin key, created by traild at bootstrap")
}

// syncWithCluster makes this node's engine current, so that its local
// reads (is there a cluster ID, are there keys?) see the cluster's state:
// it writes a marker through Raft and waits until the local engine holds
// it. Raft applies entries in order, so everything committed before the
// marker is then applied here too. (Waiting for the commit index instead
// can hang: the no-op entry a new leader commits never reaches the state
// machine, so the applied index stays below it until the next command.)
func (d *daemon) syncWithCluster(ctx context.Context) error {
	nonce, err := randomID(d.env.rand)
	if err != nil {
		return err
	}
	key := syncSettingPrefix + d.id.NodeID
	if err := d.node.ApplySettings(ctx, []engine.SettingOp{{Key: key, Value: []byte(nonce)}}); err != nil {
		return err
	}
	return d.node.WaitFor(ctx, func(e *engine.Engine) (bool, error) {
		v, err := e.Setting(key)
		if errors.Is(err, engine.ErrNotFound) {
			return false, nil
		}
		return string(v) == nonce, err
	})
}

// recordClusterID writes the data directory's cluster ID into the
// replicated settings unless the cluster already has one.
func (d *daemon) recordClusterID(ctx context.Context) error {
	got, err := d.replicatedClusterID()
	if err != nil || got != "" {
		return err // the learning step compares it with ours
	}
	op := engine.SettingOp{Key: clusterIDSetting, Value: []byte(d.id.ClusterID)}
	if err := d.node.ApplySettings(ctx, []engine.SettingOp{op}); err != nil {
		return fmt.Errorf("record cluster id: %w", err)
	}
	return nil
}

// learnClusterID waits until the cluster's ID has reached this node and
// compares it with the data directory's; a node that joined without one
// adopts it.
func (d *daemon) learnClusterID(ctx context.Context) error {
	var got string
	err := d.node.WaitFor(ctx, func(*engine.Engine) (bool, error) {
		var err error
		got, err = d.replicatedClusterID()
		return got != "", err
	})
	if err != nil {
		return err
	}
	want := firstNonEmpty(d.id.ClusterID, d.cfg.ClusterID)
	switch {
	case want == got && d.id.ClusterID == got:
		return nil
	case want != "" && want != got:
		return fmt.Errorf("this node belongs to cluster %q but the cluster it reached is %q: stopping", want, got)
	}
	d.log.Info("learned the cluster id", "cluster", got)
	d.id.ClusterID, d.cfg.ClusterID = got, got
	return writeIdentity(d.cfg.DataDir, d.id)
}

// checkReplicatedClusterID refuses to start a node whose engine already
// holds another cluster's ID than its data directory records.
func (d *daemon) checkReplicatedClusterID() error {
	got, err := d.replicatedClusterID()
	if err != nil {
		return err
	}
	if want := d.id.ClusterID; got != "" && want != "" && got != want {
		return fmt.Errorf("data directory %s records cluster %q but its replicated state is of cluster %q", d.cfg.DataDir, want, got)
	}
	return nil
}

// replicatedClusterID reads the cluster ID from the local engine; "" when
// it has not arrived (yet).
func (d *daemon) replicatedClusterID() (string, error) {
	var v []byte
	err := d.node.View(func(e *engine.Engine) (err error) {
		v, err = e.Setting(clusterIDSetting)
		return err
	})
	if errors.Is(err, engine.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read the replicated cluster id: %w", err)
	}
	return string(v), nil
}
