package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"google.golang.org/grpc"

	"github.com/trailaudit/trail/merkle"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// targetFlags choose what the load goes to: an existing cluster (-addr)
// or a throwaway one started in this process (-local).
type targetFlags struct {
	addr       string
	token      string
	vkey       string
	caFile     string
	useTLS     bool
	local      int
	conns      int
	leaderOnly bool
	// fastElections shortens Raft's timeouts so that a local cluster
	// elects a leader in a fraction of a second; the smoke tests set it,
	// measurements keep the production timing.
	fastElections bool
}

func (f *targetFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.addr, "addr", "", "gRPC `host:port` of an existing node (comma-separated for several)")
	fs.StringVar(&f.token, "token", "", "API key for -addr (admin, or producer and auditor of the tenants used); default $TRAIL_TOKEN")
	fs.StringVar(&f.vkey, "vkey", "", "log verifier key for -addr, to check checkpoint signatures (without it only roots are checked)")
	fs.StringVar(&f.caFile, "ca", "", "CA certificate `FILE` for TLS to -addr")
	fs.BoolVar(&f.useTLS, "tls", false, "use TLS with the system roots for -addr")
	fs.IntVar(&f.local, "local", 0, "start a throwaway in-process cluster of `N` nodes (1 or 3) on loopback instead of -addr")
	fs.IntVar(&f.conns, "conns", 4, "gRPC connections, spread over the nodes")
	fs.BoolVar(&f.leaderOnly, "leader-only", false, "with -local, send everything to the leader (default: spread clients over all nodes; followers forward appends)")
}

func (f *targetFlags) check() error {
	switch {
	case f.addr != "" && f.local > 0:
		return errors.New("give -addr or -local, not both")
	case f.addr == "" && f.local == 0:
		return errors.New("give -addr host:port or -local 1|3")
	case f.local < 0 || f.local > 9:
		return fmt.Errorf("-local %d: want 1 to 9 nodes", f.local)
	case f.conns < 1:
		return fmt.Errorf("-conns %d: want at least 1", f.conns)
	}
	if f.token == "" {
		f.token = os.Getenv("TRAIL_TOKEN")
	}
	if f.addr != "" && f.token == "" {
		return errors.New("-addr needs -token (or $TRAIL_TOKEN)")
	}
	return nil
}

// target is a running cluster and the client connections to it.
type target struct {
	nodes    int // nodes in the cluster (local) or addresses given (remote)
	local    *localCluster
	conns    []*grpc.ClientConn
	verifier note.Verifier // nil: checkpoint signatures cannot be checked
}

// openTarget starts the local cluster in dir, or dials the remote one.
func openTarget(ctx context.Context, f targetFlags, dir string, verbose bool) (_ *target, err error) {
	t := &target{}
	defer func() {
		if err != nil {
			t.close(context.Background())
		}
	}()
	var addrs []string
	token := f.token
	if f.local > 0 {
		logger := slog.New(slog.NewTextHandler(io.Discard, nil))
		if verbose {
			logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		}
		if t.local, err = startLocalRetrying(ctx, dir, f.local, f.fastElections, logger); err != nil {
			return nil, err
		}
		t.nodes, token, t.verifier = f.local, t.local.token, t.local.verifier
		addrs = t.local.apiAddrs
		if f.leaderOnly {
			addrs = addrs[t.local.leader : t.local.leader+1]
		}
	} else {
		for _, a := range strings.Split(f.addr, ",") {
			addrs = append(addrs, strings.TrimSpace(a))
		}
		t.nodes = len(addrs)
		if f.vkey != "" {
			if t.verifier, err = merkle.NewVerifier(f.vkey); err != nil {
				return nil, fmt.Errorf("-vkey: %w", err)
			}
		}
	}
	opts, err := dialOptions(token, f.caFile, f.useTLS)
	if err != nil {
		return nil, err
	}
	for i := range max(f.conns, len(addrs)) {
		cc, err := grpc.NewClient(addrs[i%len(addrs)], opts...)
		if err != nil {
			return nil, fmt.Errorf("dial %s: %w", addrs[i%len(addrs)], err)
		}
		t.conns = append(t.conns, cc)
	}
	return t, nil
}

// conn returns the connection worker i uses; workers are spread evenly.
func (t *target) conn(i int) *grpc.ClientConn { return t.conns[i%len(t.conns)] }

func (t *target) ingest(i int) trailv1.IngestServiceClient {
	return trailv1.NewIngestServiceClient(t.conn(i))
}

func (t *target) proofs(i int) trailv1.ProofServiceClient {
	return trailv1.NewProofServiceClient(t.conn(i))
}

func (t *target) reads(i int) trailv1.ReadServiceClient {
	return trailv1.NewReadServiceClient(t.conn(i))
}

// close drops the connections and stops a local cluster, keeping its data
// for disk measurement until remove.
func (t *target) close(ctx context.Context) error {
	var errs []error
	for _, c := range t.conns {
		errs = append(errs, c.Close())
	}
	t.conns = nil
	if t.local != nil {
		errs = append(errs, t.local.close(ctx))
	}
	return errors.Join(errs...)
}

// disk is the local cluster's disk use per node (nil for a remote target).
func (t *target) disk() []nodeDisk {
	if t.local == nil {
		return nil
	}
	return t.local.disk()
}

func (t *target) remove() error {
	if t.local == nil {
		return nil
	}
	return t.local.remove()
}

// term is the highest Raft term among local nodes (0 for a remote
// target): a row during which it moved saw an election.
func (t *target) term() uint64 {
	if t.local == nil {
		return 0
	}
	var term uint64
	for _, n := range t.local.nodes {
		term = max(term, n.Status().Term)
	}
	return term
}

func (t *target) describe() string {
	if t.local != nil {
		return fmt.Sprintf("local %d-node cluster (in-process, loopback TCP)", t.nodes)
	}
	return fmt.Sprintf("remote (%d address(es))", t.nodes)
}
