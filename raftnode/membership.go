package raftnode

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/trailaudit/trail/engine"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// Server names one voter of a new cluster.
type Server struct {
	ID      string
	Address string
}

// Bootstrap creates a new cluster whose voters are servers (this node
// alone when empty). Call it on one node, or on every initial node with
// the same servers; the others learn the configuration from the leader.
// It fails with ErrAlreadyBootstrapped on a node that has Raft state.
func (n *Node) Bootstrap(ctx context.Context, servers []Server) error {
	if len(servers) == 0 {
		servers = []Server{{ID: n.cfg.ID, Address: n.Addr()}}
	}
	var conf raft.Configuration
	for _, s := range servers {
		conf.Servers = append(conf.Servers, raft.Server{
			Suffrage: raft.Voter, ID: raft.ServerID(s.ID), Address: raft.ServerAddress(s.Address),
		})
	}
	err := n.raft.BootstrapCluster(conf).Error()
	if errors.Is(err, raft.ErrCantBootstrap) {
		return ErrAlreadyBootstrapped
	}
	if err != nil {
		return fmt.Errorf("raftnode: bootstrap: %w", err)
	}
	return nil
}

// raftTimeout is how long a membership future may wait: the caller's
// deadline, or a bound so that an admin call cannot hang forever.
func raftTimeout(ctx context.Context) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		return max(time.Until(dl), time.Millisecond)
	}
	return time.Minute
}

// Join adds the node id at raftAddr as a voter. Any member accepts it and
// forwards it to the leader. Adding a node that is already a voter at that
// address is a no-op.
func (n *Node) Join(ctx context.Context, id, raftAddr string) error {
	req := &trailv1.RaftForwardRequest{Op: &trailv1.RaftForwardRequest_Join{Join: &trailv1.RaftJoin{Id: id, Address: raftAddr}}}
	return n.adminOnLeader(ctx, "join", req, func(ctx context.Context) error { return n.addVoterLocal(ctx, id, raftAddr) })
}

// RequestJoin asks the member at memberAddr to add this node as a voter;
// the member forwards the request to the leader. It retries until ctx ends
// while the member is unreachable or no leader is known.
func (n *Node) RequestJoin(ctx context.Context, memberAddr string) error {
	req := &trailv1.RaftForwardRequest{Route: true, Op: &trailv1.RaftForwardRequest_Join{
		Join: &trailv1.RaftJoin{Id: n.cfg.ID, Address: n.Addr()},
	}}
	backoff := minBackoff
	for {
		_, err := n.forward(ctx, "join", memberAddr, req)
		if err == nil || !retryable(err) {
			return err
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return fmt.Errorf("raftnode: join via %s: %w (last attempt: %w)", memberAddr, ctx.Err(), err)
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

func (n *Node) addVoterLocal(ctx context.Context, id, addr string) error {
	if id == "" || addr == "" {
		return fmt.Errorf("raftnode: join: %w: id and address are required", errBadRequest)
	}
	if err := n.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(addr), 0, raftTimeout(ctx)).Error(); err != nil {
		return fmt.Errorf("raftnode: add voter %s at %s: %w", id, addr, err)
	}
	return nil
}

// Remove removes server id from the cluster. Removing the leader makes it
// step down once the change commits.
func (n *Node) Remove(ctx context.Context, id string) error {
	req := &trailv1.RaftForwardRequest{Op: &trailv1.RaftForwardRequest_Remove{Remove: &trailv1.RaftRemove{Id: id}}}
	return n.adminOnLeader(ctx, "remove", req, func(ctx context.Context) error { return n.removeLocal(ctx, id) })
}

func (n *Node) removeLocal(ctx context.Context, id string) error {
	if err := n.raft.RemoveServer(raft.ServerID(id), 0, raftTimeout(ctx)).Error(); err != nil {
		return fmt.Errorf("raftnode: remove %s: %w", id, err)
	}
	return nil
}

// TransferLeadership hands leadership to server id, or to the most
// up-to-date follower when id is empty.
func (n *Node) TransferLeadership(ctx context.Context, id string) error {
	req := &trailv1.RaftForwardRequest{Op: &trailv1.RaftForwardRequest_Transfer{Transfer: &trailv1.RaftTransfer{Id: id}}}
	return n.adminOnLeader(ctx, "transfer leadership", req, func(ctx context.Context) error { return n.transferLocal(ctx, id) })
}

func (n *Node) transferLocal(ctx context.Context, id string) error {
	var f raft.Future
	if id == "" {
		f = n.raft.LeadershipTransfer()
	} else {
		// Asking for the leader it already has is a request already met:
		// the leader may have changed between the caller's look and ours.
		if _, leaderID := n.raft.LeaderWithID(); string(leaderID) == id && n.isLeader() {
			return nil
		}
		addr, err := n.serverAddress(id)
		if err != nil {
			return err
		}
		f = n.raft.LeadershipTransferToServer(raft.ServerID(id), addr)
	}
	if err := f.Error(); err != nil {
		return fmt.Errorf("raftnode: transfer leadership to %q: %w", id, err)
	}
	return nil
}

func (n *Node) serverAddress(id string) (raft.ServerAddress, error) {
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return "", fmt.Errorf("raftnode: configuration: %w", err)
	}
	for _, s := range f.Configuration().Servers {
		if string(s.ID) == id {
			return s.Address, nil
		}
	}
	return "", fmt.Errorf("raftnode: server %q: %w", id, engine.ErrNotFound)
}

// adminOnLeader runs a request that returns nothing but an error on the
// leader, locally or forwarded.
func (n *Node) adminOnLeader(ctx context.Context, op string, req *trailv1.RaftForwardRequest, local func(context.Context) error) error {
	if n.closed.Load() {
		return ErrClosed
	}
	remote := func(ctx context.Context, addr string) error {
		_, err := n.forward(ctx, op, addr, req)
		return err
	}
	return n.onLeader(ctx, op, local, remote)
}

// Seal proposes sealing partition p (tenant, "YYYY-MM") at the leader's
// sequencer time. The engine refuses a partition whose month has not ended
// (engine.ErrMonthNotEnded), an unknown one (engine.ErrNotFound) and one
// already sealed (engine.ErrSealed).
func (n *Node) Seal(ctx context.Context, p engine.Partition) error {
	req := &trailv1.RaftForwardRequest{Op: &trailv1.RaftForwardRequest_Seal{
		Seal: &trailv1.RaftSeal{Tenant: p.Tenant, Partition: p.Month.String()},
	}}
	return n.adminOnLeader(ctx, "seal", req, func(ctx context.Context) error {
		return n.sealLocal(ctx, p.Tenant, p.Month.String())
	})
}

func (n *Node) sealLocal(ctx context.Context, tenant, partition string) error {
	_, err := n.batch.submit(ctx, "seal", &proposal{control: func(t int64) ([]byte, error) {
		return encodeCommand(&trailv1.RaftCommand{Command: &trailv1.RaftCommand_Seal{
			Seal: &trailv1.RaftSeal{Tenant: tenant, Partition: partition, TimeUnixNano: t},
		}})
	}})
	return err
}

// Prune proposes removing the payloads of leaves of partition p
// (retention); it returns how many payloads were removed.
func (n *Node) Prune(ctx context.Context, p engine.Partition, leaves []uint64) (int, error) {
	cmd := &trailv1.RaftPrune{Tenant: p.Tenant, Partition: p.Month.String(), Leaves: leaves}
	req := &trailv1.RaftForwardRequest{Op: &trailv1.RaftForwardRequest_Prune{Prune: cmd}}
	var pruned int
	local := func(ctx context.Context) (err error) {
		pruned, err = n.pruneLocal(ctx, cmd)
		return err
	}
	remote := func(ctx context.Context, addr string) error {
		resp, err := n.forward(ctx, "prune", addr, req)
		if err == nil {
			pruned = int(resp.GetPruned())
		}
		return err
	}
	err := n.onLeader(ctx, "prune", local, remote)
	return pruned, err
}

func (n *Node) pruneLocal(ctx context.Context, c *trailv1.RaftPrune) (int, error) {
	r, err := n.batch.submit(ctx, "prune", &proposal{control: func(int64) ([]byte, error) {
		return encodeCommand(&trailv1.RaftCommand{Command: &trailv1.RaftCommand_Prune{Prune: c}})
	}})
	if err != nil {
		return 0, err
	}
	return r.pruned, nil
}

// ApplySettings commits setting operations (API keys, policies) so that
// every node holds the same settings. Invalid ops reject the whole command
// with engine.ErrBadSetting.
func (n *Node) ApplySettings(ctx context.Context, ops []engine.SettingOp) error {
	s := &trailv1.RaftSettings{}
	for _, op := range ops {
		s.Ops = append(s.Ops, &trailv1.RaftSettingOp{Key: op.Key, Value: op.Value, Delete: op.Delete, IfAbsent: op.IfAbsent, IfPrefix: op.IfPrefix})
	}
	req := &trailv1.RaftForwardRequest{Op: &trailv1.RaftForwardRequest_Settings{Settings: s}}
	return n.adminOnLeader(ctx, "settings", req, func(ctx context.Context) error { return n.settingsLocal(ctx, s) })
}

func (n *Node) settingsLocal(ctx context.Context, s *trailv1.RaftSettings) error {
	_, err := n.batch.submit(ctx, "settings", &proposal{control: func(int64) ([]byte, error) {
		return encodeCommand(&trailv1.RaftCommand{Command: &trailv1.RaftCommand_Settings{Settings: s}})
	}})
	return err
}

// Status is a node's view of the cluster.
type Status struct {
	ID      string
	Address string
	// State is "Leader", "Follower", "Candidate" or "Shutdown".
	State         string
	LeaderID      string
	LeaderAddress string
	Term          uint64
	// AppliedIndex is the last entry applied to this node's engine;
	// CommitIndex the last known committed; LastLogIndex the last in the
	// local log.
	AppliedIndex uint64
	CommitIndex  uint64
	LastLogIndex uint64
	// RaftApplied is the last entry Raft has processed, the no-op a new
	// leader commits among them (AppliedIndex counts only the entries the
	// engine sees): a node whose RaftApplied reached a non-zero
	// CommitIndex has caught up with what it knows to be committed.
	RaftApplied uint64
	// LastContact is when a follower last heard from the leader (zero on
	// the leader).
	LastContact time.Time
	// Failed is set when the state machine stopped on a storage failure.
	Failed error
	Nodes  []PeerStatus
}

// PeerStatus is one server of the Raft configuration.
type PeerStatus struct {
	ID      string
	Address string
	APIAddr string // known for this node only
	// CosignerKey is the node's checkpoint cosigning key; known for this
	// node only.
	CosignerKey string
	Voter       bool
	Leader      bool
	Self        bool
	// Unreachable is set, on the leader, for a follower whose heartbeats
	// are failing.
	Unreachable bool
}

// Status reports this node's view of the cluster.
func (n *Node) Status() Status {
	leaderAddr, leaderID := n.raft.LeaderWithID()
	st := Status{
		ID: n.cfg.ID, Address: n.Addr(), State: n.raft.State().String(),
		LeaderID: string(leaderID), LeaderAddress: string(leaderAddr),
		Term: n.raft.CurrentTerm(), AppliedIndex: n.AppliedIndex(),
		CommitIndex: n.raft.CommitIndex(), LastLogIndex: n.raft.LastIndex(), RaftApplied: n.raft.AppliedIndex(),
		Failed: n.fsm.err(),
	}
	if st.State != raft.Leader.String() {
		st.LastContact = n.raft.LastContact()
	}
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return st
	}
	for _, s := range f.Configuration().Servers {
		p := PeerStatus{
			ID: string(s.ID), Address: string(s.Address), Voter: s.Suffrage == raft.Voter,
			Leader: s.ID == leaderID, Self: string(s.ID) == n.cfg.ID,
		}
		if p.Self {
			p.APIAddr, p.CosignerKey = n.cfg.APIAddr, n.cfg.CosignerKey
		}
		p.Unreachable = st.State == raft.Leader.String() && !p.Self && n.health.failing(string(s.ID))
		st.Nodes = append(st.Nodes, p)
	}
	return st
}

// peerHealth follows Raft's heartbeat observations on the leader.
type peerHealth struct {
	r    *raft.Raft
	obs  *raft.Observer
	ch   chan raft.Observation
	done chan struct{}
	wg   sync.WaitGroup

	mu  sync.Mutex
	bad map[string]bool

	// leaders is broadcast whenever this node observes a new leader (or
	// none): calls forwarded to the one before are then re-routed.
	leaders notifier
}

func watchPeers(r *raft.Raft) *peerHealth {
	h := &peerHealth{r: r, ch: make(chan raft.Observation, 16), done: make(chan struct{}), bad: make(map[string]bool)}
	h.obs = raft.NewObserver(h.ch, false, func(o *raft.Observation) bool {
		switch o.Data.(type) {
		case raft.FailedHeartbeatObservation, raft.ResumedHeartbeatObservation, raft.LeaderObservation:
			return true
		}
		return false
	})
	r.RegisterObserver(h.obs)
	h.wg.Add(1)
	go h.run()
	return h
}

func (h *peerHealth) run() {
	defer h.wg.Done()
	for {
		select {
		case o := <-h.ch:
			h.mu.Lock()
			switch d := o.Data.(type) {
			case raft.FailedHeartbeatObservation:
				h.bad[string(d.PeerID)] = true
			case raft.ResumedHeartbeatObservation:
				delete(h.bad, string(d.PeerID))
			case raft.LeaderObservation:
				clear(h.bad) // a new term starts with fresh replication
			}
			h.mu.Unlock()
			if _, ok := o.Data.(raft.LeaderObservation); ok {
				h.leaders.broadcast()
			}
		case <-h.done:
			return
		}
	}
}

func (h *peerHealth) failing(id string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.bad[id]
}

func (h *peerHealth) stop() {
	h.r.DeregisterObserver(h.obs)
	close(h.done)
	h.wg.Wait()
}
