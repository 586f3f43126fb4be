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
	"time"

	"golang.org/x/mod/sumdb/note"
	"google.golang.org/grpc"

	"github.com/trailaudit/trail/merkle"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// targetFlags choose what the load goes to: an existing cluster (-addr)
// or a throwaway one (-local), in this process or as traild processes
// (-traild); and how its nodes are measured.
type targetFlags struct {
	addr       string
	token      string
	vkey       string
	caFile     string
	useTLS     bool
	local      int
	traild     string
	metrics    string
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
	fs.IntVar(&f.local, "local", 0, "start a throwaway cluster of `N` nodes (1 or 3) on loopback instead of -addr, in this process unless -traild")
	fs.StringVar(&f.traild, "traild", "", "with -local, run each node as a separate traild process from this `binary` (go build -o /tmp/traild ./cmd/traild), measured per node from /proc")
	fs.StringVar(&f.metrics, "metrics", "", "with -addr, each node's Prometheus /metrics, comma-separated, one per node (`URLs`: http://h1:7080,... or h1:7080), scraped for per-node RSS and CPU")
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
	case f.traild != "" && f.local == 0:
		return errors.New("-traild starts the -local cluster's nodes: give -local N")
	case f.metrics != "" && f.addr == "":
		return errors.New("-metrics is for -addr; with -local -traild the nodes are measured from /proc")
	}
	if f.traild != "" {
		if err := checkExecutable(f.traild); err != nil {
			return fmt.Errorf("-traild: %w", err)
		}
	}
	if _, err := scrapeReaders(f.metrics, f.caFile, f.useTLS); err != nil {
		return err
	}
	if f.token == "" {
		f.token = os.Getenv("TRAIL_TOKEN")
	}
	if f.addr != "" && f.token == "" {
		return errors.New("-addr needs -token (or $TRAIL_TOKEN)")
	}
	return nil
}

// resourceNotes say whose RSS and CPU a report's figures are, which
// depends on where the nodes run.
func (f targetFlags) resourceNotes() []string {
	switch {
	case f.local > 0 && f.traild == "":
		return []string{rssNoteLocal, cpuNoteLocal}
	case f.local > 0:
		return []string{"traild processes: per node, peak RSS is the kernel's high-water mark (VmHWM, reset at the start of each row) and CPU is user+system time (/proc/<pid>/stat); RSS and CPU in the main table are the load generator alone",
			"traild processes: the bench cannot see the Raft term, so elections are not counted (an election shows as retried or failed calls)"}
	case f.metrics != "":
		return []string{fmt.Sprintf("per node, peak RSS is the largest %s scraped from the node's /metrics every %v (a sample, not the kernel's peak) and CPU is the change of %s over the row; RSS and CPU in the main table are the load generator alone", rssMetric, nodeSampleEvery, cpuMetric)}
	}
	return []string{"remote target without -metrics: nothing is measured per node; RSS and CPU are the load generator alone"}
}

// target is a running cluster and the client connections to it.
type target struct {
	nodes    int // nodes in the cluster (local) or addresses given (remote)
	local    cluster
	conns    []*grpc.ClientConn
	verifier note.Verifier // nil: checkpoint signatures cannot be checked
	// readers measure the nodes one by one; nil when they cannot be.
	readers []nodeReader
}

// cluster is a throwaway cluster the bench starts for a run and removes
// afterwards: in this process (localCluster) or as traild processes
// (procCluster).
type cluster interface {
	access() *clusterAccess
	// term is the highest Raft term among the nodes, 0 when the bench
	// cannot see it.
	term() uint64
	// readers measure each node, nil when the nodes share this process.
	readers() []nodeReader
	disk() []nodeDisk
	close(ctx context.Context) error
	remove() error
	describe(n int) string
}

// clusterAccess is what a client needs to use a throwaway cluster.
type clusterAccess struct {
	apiAddrs []string
	leader   int // index into apiAddrs
	token    string
	verifier note.Verifier
}

func (a *clusterAccess) access() *clusterAccess { return a }

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
		c, err := startRetrying(ctx, dir, clusterStarter(f, verbose))
		if err != nil {
			return nil, err
		}
		t.local, t.readers = c, c.readers()
		a := c.access()
		t.nodes, token, t.verifier = f.local, a.token, a.verifier
		addrs = a.apiAddrs
		if f.leaderOnly {
			addrs = addrs[a.leader : a.leader+1]
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
		if t.readers, err = scrapeReaders(f.metrics, f.caFile, f.useTLS); err != nil {
			return nil, err
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

// clusterStarter starts one attempt at the -local cluster: traild
// processes with -traild, else nodes in this process.
func clusterStarter(f targetFlags, verbose bool) func(context.Context, string) (cluster, error) {
	if f.traild != "" {
		return startProcesses(procOptions{bin: f.traild, nodes: f.local, fastElections: f.fastElections, verbose: verbose})
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if verbose {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	return startInProcess(f.local, f.fastElections, logger)
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
// target, or when the bench cannot see it): a row during which it moved
// saw an election.
func (t *target) term() uint64 {
	if t.local == nil {
		return 0
	}
	return t.local.term()
}

func (t *target) describe() string {
	if t.local != nil {
		return t.local.describe(t.nodes)
	}
	return fmt.Sprintf("remote (%d address(es))", t.nodes)
}

// startMeter starts measuring a row: each node that can be measured
// apart, then this process, so that the nodes' first readings (a scrape
// may take a while) are not charged to the load generator.
func (t *target) startMeter(ctx context.Context) *meter {
	nodes := startNodeMeter(ctx, t.readers, nodeSampleEvery)
	return &meter{cpu0: cpuSeconds(), load0: loadAvg(), rss: startRSSPeak(100 * time.Millisecond), nodes: nodes}
}
