// Package testnode runs a real single-node Trail in-process for the tests
// and runnable examples of packages outside server/: Raft on loopback TCP,
// Pebble on disk, and the gRPC server on loopback, as production runs them.
package testnode

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/trailaudit/trail/engine"
	"github.com/trailaudit/trail/merkle"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
	"github.com/trailaudit/trail/raftnode"
	"github.com/trailaudit/trail/server"
)

// LogName is the log name of every test node.
const LogName = "test.trail"

// Node is a running node with its API server.
type Node struct {
	// Addr is the gRPC address.
	Addr string
	// Admin is an admin API key; VKey the log's verifier key.
	Admin string
	VKey  string
	Raft  *raftnode.Node

	id     string
	dir    string
	ownDir bool

	closeOnce sync.Once
	srv       *server.Server
	served    chan error
	conn      *grpc.ClientConn
}

// Start opens a node in dir, or in a new temporary directory removed by
// Close when dir is empty, and waits until it leads and serves.
func Start(dir string) (n *Node, err error) {
	n = &Node{dir: dir}
	defer func() {
		if err != nil {
			n.Close()
		}
	}()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	if err := n.open(ln); err != nil {
		return nil, err
	}
	if err := n.Raft.Bootstrap(context.Background(), nil); err != nil {
		return nil, fmt.Errorf("testnode: bootstrap: %w", err)
	}
	if err := waitLeader(n.Raft); err != nil {
		return nil, err
	}
	signer, err := n.keys(n.Raft)
	if err != nil {
		return nil, err
	}
	if err := n.serve(signer); err != nil {
		return nil, err
	}
	return n, nil
}

// StartCluster starts size nodes, each in a new temporary directory, that
// form one cluster, and waits until node 0 leads and every node serves.
// The nodes share the log key and the admin key.
func StartCluster(size int) (nodes []*Node, err error) {
	defer func() {
		if err != nil {
			for _, n := range nodes {
				n.Close()
			}
		}
	}()
	servers := make([]raftnode.Server, size)
	lns := make([]net.Listener, size)
	for i := range size {
		if lns[i], err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			for _, ln := range lns[:i] {
				ln.Close()
			}
			return nil, err
		}
		servers[i] = raftnode.Server{ID: fmt.Sprintf("n%d", i+1), Address: lns[i].Addr().String()}
	}
	for i := range size {
		n := &Node{id: servers[i].ID}
		nodes = append(nodes, n)
		if err := n.open(lns[i]); err != nil {
			for _, ln := range lns[i+1:] {
				ln.Close()
			}
			return nodes, err
		}
	}
	first := nodes[0].Raft
	if err := first.Bootstrap(context.Background(), servers); err != nil {
		return nodes, fmt.Errorf("testnode: bootstrap: %w", err)
	}
	if err := waitLeader(first); err != nil {
		// Another node won the first election; hand leadership to node 0
		// so that tests know where the leader is.
		if terr := first.TransferLeadership(context.Background(), first.ID()); terr != nil {
			return nodes, fmt.Errorf("%w; transfer: %w", err, terr)
		}
		if err := waitLeader(first); err != nil {
			return nodes, err
		}
	}
	signer, err := nodes[0].keys(first)
	if err != nil {
		return nodes, err
	}
	for _, n := range nodes {
		n.Admin, n.VKey = nodes[0].Admin, nodes[0].VKey
		if err := n.serve(signer); err != nil {
			return nodes, err
		}
	}
	return nodes, nil
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// open opens the node's Raft and engine on ln, in n.dir or a new
// temporary directory.
func (n *Node) open(ln net.Listener) (err error) {
	if n.dir == "" {
		if n.dir, err = os.MkdirTemp("", "trail-testnode-"); err != nil {
			ln.Close()
			return err
		}
		n.ownDir = true
	}
	if n.id == "" {
		n.id = "n1"
	}
	n.Raft, err = raftnode.Open(context.Background(), raftnode.Config{
		ID: n.id, Dir: n.dir, Listener: ln,
		HeartbeatTimeout: 300 * time.Millisecond, ElectionTimeout: 300 * time.Millisecond,
		LeaderLeaseTimeout: 200 * time.Millisecond, CommitTimeout: 5 * time.Millisecond,
		Engine: engine.Options{LogName: LogName, CacheBytes: 4 << 20},
		Logger: quietLogger(),
	})
	if err != nil {
		ln.Close()
		return fmt.Errorf("testnode: open raft: %w", err)
	}
	return nil
}

// waitLeader waits until r leads.
func waitLeader(r *raftnode.Node) error {
	deadline := time.Now().Add(10 * time.Second)
	for r.Status().State != "Leader" {
		if time.Now().After(deadline) {
			return fmt.Errorf("testnode: %s not leading within 10s", r.ID())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

// keys makes the log key and the first admin key through leader.
func (n *Node) keys(leader *raftnode.Node) (note.Signer, error) {
	skey, vkey, err := merkle.GenerateKey(LogName, nil)
	if err != nil {
		return nil, err
	}
	signer, err := merkle.NewSigner(skey)
	if err != nil {
		return nil, err
	}
	n.VKey = vkey
	if n.Admin, err = server.Bootstrap(context.Background(), leader, "testnode admin"); err != nil {
		return nil, fmt.Errorf("testnode: bootstrap keys: %w", err)
	}
	return signer, nil
}

// serve starts the API server on loopback.
func (n *Node) serve(signer note.Signer) error {
	srv, err := server.New(server.Config{Cluster: n.Raft, Signer: signer, Plaintext: true, Logger: quietLogger()})
	if err != nil {
		return fmt.Errorf("testnode: server: %w", err)
	}
	gl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	hl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		gl.Close()
		return err
	}
	n.srv, n.served = srv, make(chan error, 1)
	go func() { n.served <- srv.Serve(gl, hl) }()
	n.Addr = gl.Addr().String()
	n.conn, err = grpc.NewClient(n.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)))
	return err
}

// Close stops the server and the node, and removes a directory Start
// made. It may be called more than once.
func (n *Node) Close() {
	n.closeOnce.Do(n.close)
}

func (n *Node) close() {
	if n.conn != nil {
		n.conn.Close()
	}
	if n.served != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		n.srv.Shutdown(ctx)
		cancel()
		<-n.served
	}
	if n.Raft != nil {
		n.Raft.Close()
	}
	if n.ownDir {
		os.RemoveAll(n.dir)
	}
}

// As returns ctx authenticated as token.
func As(ctx context.Context, token string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
}

// Key creates an API key of role for tenants and returns its token.
func (n *Node) Key(ctx context.Context, role trailv1.Role, tenants ...string) (string, error) {
	resp, err := trailv1.NewAdminServiceClient(n.conn).CreateAPIKey(As(ctx, n.Admin),
		&trailv1.CreateAPIKeyRequest{Role: role, Tenants: tenants, Description: "testnode"})
	if err != nil {
		return "", fmt.Errorf("testnode: create key: %w", err)
	}
	return resp.GetToken(), nil
}

// Size returns how many entries tenant's log holds, over all partitions.
func (n *Node) Size(ctx context.Context, tenant string) (uint64, error) {
	resp, err := trailv1.NewProofServiceClient(n.conn).ListPartitions(As(ctx, n.Admin),
		&trailv1.ListPartitionsRequest{TenantId: tenant})
	if err != nil {
		return 0, fmt.Errorf("testnode: list partitions: %w", err)
	}
	var size uint64
	for _, p := range resp.GetPartitions() {
		size += p.GetSize()
	}
	return size, nil
}

// Events returns tenant's events in log order.
func (n *Node) Events(ctx context.Context, tenant string) ([]*trailv1.Event, error) {
	rs := trailv1.NewReadServiceClient(n.conn)
	var out []*trailv1.Event
	cursor := ""
	for {
		resp, err := rs.Search(As(ctx, n.Admin), &trailv1.SearchRequest{TenantId: tenant, Limit: 1000, Cursor: cursor})
		if err != nil {
			return nil, fmt.Errorf("testnode: search: %w", err)
		}
		for _, e := range resp.GetEntries() {
			out = append(out, e.GetEntry().GetEvent())
		}
		if cursor = resp.GetNextCursor(); cursor == "" {
			return out, nil
		}
	}
}
