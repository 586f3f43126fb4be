package raftnode

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/hashicorp/raft"
)

// Recover rewrites the membership of the stopped node in cfg.Dir to
// servers, for a cluster that has lost its quorum for good (two of three
// nodes destroyed): no leader can be elected, so no membership change can
// be committed, and only an offline rewrite of the surviving copy brings
// the cluster back. Typically servers is the survivor alone; once it runs
// again it elects itself and new nodes are added with Join as usual.
//
// Recover replays the node's whole Raft log into its engine, including
// entries a leader had proposed but not committed (hashicorp/raft's
// RecoverCluster does; any other choice would need the lost nodes). Those
// are events producers sent and were not told were appended: a retry with
// the same event_id is deduplicated. Recover the node that was leader last,
// or the one with the longest log: an entry committed by the other two
// alone is lost with them. The node must not be running.
func Recover(ctx context.Context, cfg Config, servers []Server) error {
	if err := cfg.setDefaults(); err != nil {
		return err
	}
	if len(servers) == 0 {
		return errors.New("raftnode: recover: no servers given")
	}
	var conf raft.Configuration
	self := false
	for _, s := range servers {
		self = self || s.ID == cfg.ID
		conf.Servers = append(conf.Servers, raft.Server{
			Suffrage: raft.Voter, ID: raft.ServerID(s.ID), Address: raft.ServerAddress(s.Address),
		})
	}
	if !self {
		return fmt.Errorf("raftnode: recover: node %s is not among the servers given", cfg.ID)
	}
	raftDir := filepath.Join(cfg.Dir, "raft")
	if _, err := os.Stat(raftDir); err != nil {
		return fmt.Errorf("raftnode: recover %s: no Raft state: %w", cfg.Dir, err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	log := cfg.Logger.With("node", cfg.ID)
	engines, err := openEngineSlot(ctx, cfg.Dir, engineOptions(&cfg, log), cfg.RetiredEngineGrace, log)
	if err != nil {
		return err
	}
	logs, err := openRaftStore(&cfg, raftDir, log)
	if err != nil {
		engines.close(false)
		return err
	}
	defer logs.Close()
	hl := newHCLog(log, "raft")
	snaps, err := raft.NewFileSnapshotStoreWithLogger(raftDir, cfg.SnapshotRetain, hl.Named("snapshots"))
	if err != nil {
		engines.close(false)
		return fmt.Errorf("raftnode: recover: open snapshot store: %w", err)
	}
	last, err := logs.LastIndex()
	if err != nil {
		engines.close(false)
		return fmt.Errorf("raftnode: recover: %w", err)
	}
	var fatal error
	f := newFSM(engines, log, func(err error) { fatal = err })
	f.pruneFilter = cfg.PruneFilter
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.ID)
	rc.Logger = hl
	// The snapshot store wants a transport to encode peers with; nothing is
	// sent.
	_, trans := raft.NewInmemTransport("")
	err = raft.RecoverCluster(rc, recoveryFSM{fsm: f, last: last}, logs, logs, snaps, trans, conf)
	if cerr := engines.close(true); err == nil {
		err = cerr
	}
	if err == nil {
		err = fatal
	}
	if err != nil {
		return fmt.Errorf("raftnode: recover %s: %w", cfg.Dir, err)
	}
	log.Warn("raftnode: membership rewritten offline", "servers", len(servers), "last_index", last)
	return nil
}

// recoveryFSM is the state machine RecoverCluster replays into. Raft
// replays commands only, so before the snapshot it takes the engine's
// applied index is moved to the log's last index (the membership and no-op
// entries after the last command change no data): the snapshot then
// covers the index Raft records for it, and the node does not restore it
// again at every start.
type recoveryFSM struct {
	*fsm
	last uint64
}

func (r recoveryFSM) Snapshot() (raft.FSMSnapshot, error) {
	if err := r.fsm.err(); err != nil {
		return nil, err
	}
	h := r.engines.acquire()
	if h.e.AppliedIndex() < r.last {
		if err := h.e.Advance(r.last); err != nil {
			h.release()
			return nil, fmt.Errorf("raftnode: recover: %w", err)
		}
	}
	h.release()
	r.setApplied(r.last)
	snap, err := r.fsm.Snapshot()
	if err != nil {
		return nil, err
	}
	return releasedAfterPersist{snap}, nil
}

// releasedAfterPersist releases its snapshot once persisted: RecoverCluster
// never calls Release, and the engine a snapshot holds could not close.
type releasedAfterPersist struct{ raft.FSMSnapshot }

func (s releasedAfterPersist) Persist(sink raft.SnapshotSink) error {
	defer s.FSMSnapshot.Release()
	return s.FSMSnapshot.Persist(sink)
}

func (releasedAfterPersist) Release() {}
