package raftnode

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"github.com/trailaudit/trail/engine"
)

// Node is one member of a Trail cluster: a Raft peer whose state machine
// is the engine. All methods are safe for concurrent use.
type Node struct {
	cfg     Config
	log     *slog.Logger
	raft    *raft.Raft
	trans   *raft.NetworkTransport
	mux     *mux
	fwd     *forwarder
	logs    raftStore
	engines *engineSlot
	fsm     *fsm
	batch   *batcher
	health  *peerHealth
	// sealerDone is closed when the sealer goroutine has exited.
	sealerDone chan struct{}

	// ctx ends when the node closes; forwarded requests run under it.
	ctx    context.Context
	cancel context.CancelFunc

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

// Open starts a node: it opens (or creates) the engine, the Raft log and
// snapshots under cfg.Dir, listens, and starts Raft. A node with no Raft
// state waits to be bootstrapped (Bootstrap), added by a member (Join on
// any member, or RequestJoin here), or sent a snapshot by a leader that
// already lists it.
func Open(ctx context.Context, cfg Config) (_ *Node, err error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, log: cfg.Logger.With("node", cfg.ID)}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	var undo []func()
	defer func() {
		if err != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
			n.cancel()
		}
	}()
	raftDir := filepath.Join(cfg.Dir, "raft")
	if err := os.MkdirAll(raftDir, 0o755); err != nil {
		return nil, fmt.Errorf("raftnode: open: %w", err)
	}
	if n.engines, err = openEngineSlot(ctx, cfg.Dir, n.engineOptions(), cfg.RetiredEngineGrace, n.log); err != nil {
		return nil, err
	}
	undo = append(undo, func() { n.engines.close(false) })
	if n.logs, err = openRaftStore(&n.cfg, raftDir, n.log); err != nil {
		return nil, err
	}
	undo = append(undo, func() { n.logs.Close() })
	hl := newHCLog(n.log, "raft")
	snaps, err := raft.NewFileSnapshotStoreWithLogger(raftDir, cfg.SnapshotRetain, hl.Named("snapshots"))
	if err != nil {
		return nil, fmt.Errorf("raftnode: open snapshot store: %w", err)
	}
	restore, err := needsRestore(snaps, n.engines.current().e.AppliedIndex())
	if err != nil {
		return nil, err
	}
	if err := n.listen(); err != nil {
		return nil, err
	}
	undo = append(undo, func() { n.mux.Close() })
	n.trans = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  raftLayer{n.mux},
		MaxPool: 3,
		Timeout: 10 * time.Second,
		Logger:  hl.Named("transport"),
	})
	undo = append(undo, func() { n.trans.Close() })
	n.fsm = newFSM(n.engines, n.log, n.onFatal)
	n.fsm.pruneFilter = cfg.PruneFilter
	logCache, err := raft.NewLogCache(64, n.logs)
	if err != nil {
		return nil, fmt.Errorf("raftnode: log cache: %w", err)
	}
	if n.raft, err = raft.NewRaft(n.raftConfig(hl, restore), n.fsm, logCache, n.logs, snaps, n.trans); err != nil {
		return nil, fmt.Errorf("raftnode: start raft: %w", err)
	}
	n.batch = newBatcher(&n.cfg, func(cmd []byte) raft.ApplyFuture { return n.raft.Apply(cmd, 0) }, n.fsm.lastTime.Load)
	n.batch.admit = func() error { return n.engines.current().e.CheckSpace() }
	n.batch.start()
	n.health = watchPeers(n.raft)
	n.sealerDone = make(chan struct{})
	go n.runSealer(n.sealerDone)
	n.mux.serve()
	return n, nil
}

func (n *Node) engineOptions() engine.Options { return engineOptions(&n.cfg, n.log) }

func engineOptions(cfg *Config, log *slog.Logger) engine.Options {
	o := cfg.Engine
	if cfg.FS != nil {
		o.FS = cfg.FS
	}
	if o.Logger == nil {
		o.Logger = log
	}
	return o
}

func (n *Node) listen() error {
	ln := n.cfg.Listener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", n.cfg.BindAddr); err != nil {
			return fmt.Errorf("raftnode: listen: %w", err)
		}
	}
	adv := n.cfg.AdvertiseAddr
	if adv == "" {
		adv = ln.Addr().String()
	}
	n.cfg.AdvertiseAddr = adv
	n.mux = newMux(ln, advertiseAddr(adv), &n.cfg)
	n.mux.forward = n.serveForward
	n.mux.probe = n.serveProbe
	n.fwd = newForwarder(n.mux)
	return nil
}

func (n *Node) raftConfig(hl *hclogAdapter, restore bool) *raft.Config {
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(n.cfg.ID)
	rc.HeartbeatTimeout = n.cfg.HeartbeatTimeout
	rc.ElectionTimeout = n.cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = n.cfg.LeaderLeaseTimeout
	rc.CommitTimeout = n.cfg.CommitTimeout
	rc.TrailingLogs = n.cfg.TrailingLogs
	rc.SnapshotThreshold = n.cfg.SnapshotThreshold
	rc.SnapshotInterval = n.cfg.SnapshotInterval
	// Entries are up to MaxBatchBytes; 32 of them bound one AppendEntries
	// RPC and one FSM batch. BatchApplyCh lets Raft take the batcher's
	// pipelined proposals in one go.
	rc.MaxAppendEntries = 32
	rc.BatchApplyCh = true
	rc.NoLegacyTelemetry = true
	rc.Logger = hl
	// The engine is durable by itself: unless it is behind the newest
	// snapshot, replaying the log past its applied index is enough, and
	// restoring a snapshot at every start would copy the whole engine.
	rc.NoSnapshotRestoreOnStart = !restore
	return rc
}

// needsRestore reports whether the engine is behind the newest snapshot,
// so that Raft must restore it at start: the log it covers may be gone.
func needsRestore(snaps raft.SnapshotStore, engineApplied uint64) (bool, error) {
	metas, err := snaps.List()
	if err != nil {
		return false, fmt.Errorf("raftnode: list snapshots: %w", err)
	}
	if len(metas) == 0 {
		return false, nil
	}
	_, rc, err := snaps.Open(metas[0].ID)
	if err != nil {
		return false, fmt.Errorf("raftnode: open snapshot %s: %w", metas[0].ID, err)
	}
	defer rc.Close()
	hdr, err := readSnapshotHeader(rc)
	if err != nil {
		return false, fmt.Errorf("raftnode: snapshot %s: %w", metas[0].ID, err)
	}
	return hdr.engineIndex > engineApplied, nil
}

// onFatal stops Raft after the state machine failed. It runs Shutdown on
// its own goroutine: the FSM goroutine calling it must not wait for itself.
func (n *Node) onFatal(error) {
	go func() {
		if r := n.raft; r != nil {
			r.Shutdown().Error()
		}
	}()
}

// Close shuts the node down: Raft stops (without leaving the cluster), the
// engine is synced and closed once in-flight reads release it. Appends in
// flight end with an ambiguous error.
func (n *Node) Close() error { return n.shutdown(true) }

// shutdown stops everything; sync=false skips the engine's final fsync,
// which is how tests simulate a crash (Raft replays what was lost).
func (n *Node) shutdown(sync bool) error {
	n.closeOnce.Do(func() {
		n.closed.Store(true)
		n.cancel()
		errs := []error{n.raft.Shutdown().Error()}
		n.batch.stop()
		<-n.sealerDone
		n.health.stop()
		errs = append(errs, n.trans.Close())
		n.mux.Close()
		n.fwd.close()
		errs = append(errs, n.engines.close(sync), n.logs.Close())
		if err := errors.Join(errs...); err != nil {
			n.closeErr = fmt.Errorf("raftnode: close %s: %w", n.cfg.ID, err)
		}
	})
	return n.closeErr
}

// ID is this node's Raft server ID.
func (n *Node) ID() string { return n.cfg.ID }

// Addr is the address other nodes dial for Raft and forwarding.
func (n *Node) Addr() string { return n.cfg.AdvertiseAddr }

// Leader returns the current leader's ID and address, empty if unknown.
func (n *Node) Leader() (id, addr string) {
	a, i := n.raft.LeaderWithID()
	return string(i), string(a)
}

func (n *Node) isLeader() bool { return n.raft.State() == raft.Leader }

// Engine returns the current engine for reads. A snapshot restore replaces
// it; the replaced engine stays open for Config.RetiredEngineGrace, so a
// read that starts on it finishes unless it outlasts the grace period. For
// a guarantee, use AcquireEngine or View.
func (n *Node) Engine() *engine.Engine { return n.engines.current().e }

// AcquireEngine returns the current engine and a release function; the
// engine stays open until release is called, even across a restore.
func (n *Node) AcquireEngine() (*engine.Engine, func()) {
	h := n.engines.acquire()
	return h.e, sync.OnceFunc(h.release)
}

// View calls fn with the current engine, held open for the duration.
func (n *Node) View(fn func(*engine.Engine) error) error {
	e, release := n.AcquireEngine()
	defer release()
	return fn(e)
}

// AppliedIndex is the index of the last Raft entry applied on this node.
func (n *Node) AppliedIndex() uint64 { return n.fsm.applied.Load() }

// WaitApplied blocks until this node has applied the Raft entry at index
// (and so every entry before it), or ctx ends, or the node closes.
func (n *Node) WaitApplied(ctx context.Context, index uint64) error {
	for {
		ch := n.fsm.notify.wait()
		if n.fsm.applied.Load() >= index {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("raftnode: wait for index %d (applied %d): %w", index, n.fsm.applied.Load(), ctx.Err())
		case <-n.ctx.Done():
			return ErrClosed
		}
	}
}

// WaitFor blocks until cond, evaluated against the current engine after
// each applied batch, returns true or an error; or ctx ends. The server
// uses it for reads that carry a minimum tree size.
func (n *Node) WaitFor(ctx context.Context, cond func(*engine.Engine) (bool, error)) error {
	for {
		ch := n.fsm.notify.wait()
		var ok bool
		err := n.View(func(e *engine.Engine) (err error) {
			ok, err = cond(e)
			return err
		})
		if err != nil || ok {
			return err
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("raftnode: wait: %w", ctx.Err())
		case <-n.ctx.Done():
			return ErrClosed
		}
	}
}
