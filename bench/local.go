package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/trailaudit/trail/engine"
	"github.com/trailaudit/trail/merkle"
	"github.com/trailaudit/trail/raftnode"
	"github.com/trailaudit/trail/server"
	"github.com/trailaudit/trail/shred"
)

// benchLogName is the log name of in-process clusters; it is also the
// name of their log key, so checkpoint origins start with it.
const benchLogName = "bench.trail"

// localCluster is a throwaway cluster in this process: real raftnode
// nodes talking Raft over loopback TCP, each with a real server on real
// gRPC sockets, data on disk under dir. Only the process is shared, which
// is what the reports say about RSS and CPU.
type localCluster struct {
	clusterAccess
	dir      string
	nodes    []*raftnode.Node
	servers  []*server.Server
	serveErr []chan error
	closed   bool
}

// nodeDisk is the disk one node uses, split into its Raft log (and
// snapshots) and its engine.
type nodeDisk struct {
	Node   string  `json:"node"`
	Raft   diskUse `json:"raft"`
	Engine diskUse `json:"engine"`
}

func startLocal(ctx context.Context, dir string, n int, fastElections bool, logger *slog.Logger) (_ *localCluster, err error) {
	if n < 1 {
		return nil, fmt.Errorf("local cluster: %d nodes", n)
	}
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	skey, vkey, err := merkle.GenerateKey(benchLogName, nil)
	if err != nil {
		return nil, fmt.Errorf("local cluster: %w", err)
	}
	signer, err := merkle.NewSigner(skey)
	if err != nil {
		return nil, fmt.Errorf("local cluster: %w", err)
	}
	// As traild does: the sealing secret comes from the log key.
	sealing, err := shred.NewKeyring([]byte(skey))
	if err != nil {
		return nil, err
	}
	c := &localCluster{dir: dir}
	if c.verifier, err = merkle.NewVerifier(vkey); err != nil {
		return nil, fmt.Errorf("local cluster: %w", err)
	}
	apiLis := make([]net.Listener, n)
	httpLis := make([]net.Listener, n)
	defer func() {
		if err != nil {
			c.close(context.Background())
			for _, l := range append(apiLis, httpLis...) {
				if l != nil {
					l.Close() // a listener a server took is already closed; that error is moot
				}
			}
		}
	}()
	var voters []raftnode.Server
	for i := range n {
		if apiLis[i], err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			return nil, fmt.Errorf("local cluster: %w", err)
		}
		if httpLis[i], err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			return nil, fmt.Errorf("local cluster: %w", err)
		}
		c.apiAddrs = append(c.apiAddrs, apiLis[i].Addr().String())
		node, err := openLocalNode(ctx, filepath.Join(dir, fmt.Sprintf("n%d", i+1)), c.apiAddrs[i], fastElections, logger)
		if err != nil {
			return nil, err
		}
		c.nodes = append(c.nodes, node)
		voters = append(voters, raftnode.Server{ID: node.ID(), Address: node.Addr()})
	}
	if err := c.nodes[0].Bootstrap(ctx, voters); err != nil {
		return nil, fmt.Errorf("local cluster: %w", err)
	}
	if err := c.waitLeader(ctx); err != nil {
		return nil, err
	}
	// Followers that hold the configuration entry answer the leader's
	// heartbeats; a key stored before that may be lost with the leadership.
	if err := c.waitAllApplied(ctx); err != nil {
		return nil, err
	}
	if c.token, err = server.Bootstrap(ctx, c.nodes[c.leader], "bench admin"); err != nil {
		return nil, fmt.Errorf("local cluster: %w", err)
	}
	// Every node must hold the admin key before a client calls it.
	if err := c.waitAllApplied(ctx); err != nil {
		return nil, err
	}
	for i, node := range c.nodes {
		srv, err := server.New(server.Config{Cluster: node, Signer: signer, Sealing: sealing, Plaintext: true, Logger: logger})
		if err != nil {
			return nil, fmt.Errorf("local cluster: server %s: %w", node.ID(), err)
		}
		errc := make(chan error, 1)
		go func() { errc <- srv.Serve(apiLis[i], httpLis[i]) }()
		c.servers = append(c.servers, srv)
		c.serveErr = append(c.serveErr, errc)
	}
	return c, nil
}

// openLocalNode opens one node with its data in dir, named after it, and
// Raft on a fresh loopback port. It uses the production Raft timing and
// engine defaults, since the point is to measure what a deployment runs.
func openLocalNode(ctx context.Context, dir, apiAddr string, fastElections bool, logger *slog.Logger) (*raftnode.Node, error) {
	raftLis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("local cluster: %w", err)
	}
	cfg := raftnode.Config{
		ID: filepath.Base(dir), Dir: dir, Listener: raftLis, APIAddr: apiAddr,
		Engine: engine.Options{LogName: benchLogName},
		Logger: logger,
	}
	if fastElections {
		cfg.HeartbeatTimeout, cfg.ElectionTimeout, cfg.LeaderLeaseTimeout = 200*time.Millisecond, 200*time.Millisecond, 100*time.Millisecond
	}
	node, err := raftnode.Open(ctx, cfg)
	if err != nil {
		raftLis.Close()
		return nil, fmt.Errorf("local cluster: open %s: %w", cfg.ID, err)
	}
	return node, nil
}

// startRetrying starts a cluster in a subdirectory of dir, and a fresh one
// in another when that fails: on a loaded machine a new leader can lose its
// leadership while storing the first admin key, whose token is then lost
// with it, and a loopback port picked for a traild can be taken before it
// binds it.
func startRetrying(ctx context.Context, dir string, start func(ctx context.Context, dir string) (cluster, error)) (cluster, error) {
	var errs []error
	for attempt := range 3 {
		d := filepath.Join(dir, fmt.Sprintf("cluster-%d", attempt))
		c, err := start(ctx, d)
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
		os.RemoveAll(d)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}

// startInProcess returns a starter of in-process clusters for
// startRetrying.
func startInProcess(n int, fastElections bool, logger *slog.Logger) func(context.Context, string) (cluster, error) {
	return func(ctx context.Context, dir string) (cluster, error) {
		return asCluster(startLocal(ctx, dir, n, fastElections, logger))
	}
}

// asCluster passes a started cluster on as the interface, and a failure
// as a nil interface rather than one holding a nil pointer.
func asCluster[C cluster](c C, err error) (cluster, error) {
	if err != nil {
		return nil, err
	}
	return c, nil
}

func (c *localCluster) waitLeader(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		for i, n := range c.nodes {
			if n.Status().State == "Leader" {
				c.leader = i
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("local cluster: no leader: %w", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// waitAllApplied waits until every node has applied what the leader has.
func (c *localCluster) waitAllApplied(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	idx := c.nodes[c.leader].AppliedIndex()
	for _, n := range c.nodes {
		if err := n.WaitApplied(ctx, idx); err != nil {
			return fmt.Errorf("local cluster: %s catching up to %d: %w", n.ID(), idx, err)
		}
	}
	return nil
}

// close stops the servers, then the nodes (which syncs their engines), and
// leaves the data in place so that it can be measured.
func (c *localCluster) close(ctx context.Context) error {
	if c.closed {
		return nil
	}
	c.closed = true
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var errs []error
	for i, s := range c.servers {
		if err := s.Shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
		if err := <-c.serveErr[i]; err != nil {
			errs = append(errs, err)
		}
	}
	for _, n := range c.nodes {
		if err := n.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close %s: %w", n.ID(), err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("local cluster: %w", err)
	}
	return nil
}

// disk reports each node's disk use, now.
func (c *localCluster) disk() []nodeDisk {
	var out []nodeDisk
	for _, n := range c.nodes {
		out = append(out, measureNodeDisk(filepath.Join(c.dir, n.ID()), n.ID()))
	}
	return out
}

// measureNodeDisk is the disk use of the node whose data directory is dir:
// its Raft log and snapshots (raft/), and everything else, the engine.
func measureNodeDisk(dir, node string) nodeDisk {
	raft := measureDisk(filepath.Join(dir, "raft"))
	return nodeDisk{Node: node, Raft: raft, Engine: measureDisk(dir).minus(raft)}
}

// remove deletes the cluster's data.
func (c *localCluster) remove() error { return os.RemoveAll(c.dir) }

// term is the highest Raft term among the nodes: a row during which it
// moved saw an election.
func (c *localCluster) term() uint64 {
	var term uint64
	for _, n := range c.nodes {
		term = max(term, n.Status().Term)
	}
	return term
}

// readers is nil: nodes in this process cannot be measured apart.
func (c *localCluster) readers() []nodeReader { return nil }

func (c *localCluster) describe(n int) string {
	return fmt.Sprintf("local %d-node cluster (in-process, loopback TCP)", n)
}
