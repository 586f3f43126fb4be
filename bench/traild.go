package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/mod/sumdb/note"
	"google.golang.org/grpc"

	"github.com/trailaudit/trail/internal/syncbuf"
	"github.com/trailaudit/trail/merkle"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// traildTokenPrefix starts the line on which the bootstrapping traild
// prints the first admin token (adminTokenPrefix in cmd/traild).
const traildTokenPrefix = "admin token: "

// Timings of a traild cluster's life.
const (
	traildStartWait = 60 * time.Second // first start to every node answering with the token
	traildStopWait  = 30 * time.Second // SIGTERM to exit; traild's own shutdown_timeout is 20 s
	traildPoll      = 50 * time.Millisecond
)

// procOptions say how to start a traild cluster.
type procOptions struct {
	bin           string
	nodes         int
	fastElections bool
	verbose       bool // node logs (warnings) to stderr instead of files
}

// procCluster is a throwaway cluster of traild processes on loopback: each
// node its own process, configuration file and data directory under dir,
// formed the way deploy/compose.yml forms one (n1 bootstraps with every
// node as a peer, the others join it) and sharing one log key. It is what
// a deployment runs, so each node's RSS and CPU are its own.
type procCluster struct {
	clusterAccess
	dir    string
	procs  []*traildProc
	closed bool
}

// traildProc is one running traild.
type traildProc struct {
	node    string
	dataDir string
	logPath string // stderr, unless verbose
	cmd     *exec.Cmd
	stdout  *syncbuf.Buffer
	done    chan struct{} // closed when the process has exited
	waitErr error         // set before done is closed
}

// nodeAddrs are the loopback addresses of one node.
type nodeAddrs struct{ raft, grpc, http string }

// startProcesses returns a starter of traild clusters for startRetrying.
func startProcesses(o procOptions) func(context.Context, string) (cluster, error) {
	return func(ctx context.Context, dir string) (cluster, error) {
		return asCluster(startProcCluster(ctx, dir, o))
	}
}

// startProcCluster starts the nodes in dir and waits until every one of
// them serves the admin token; on failure it stops whatever it started.
func startProcCluster(ctx context.Context, dir string, o procOptions) (_ *procCluster, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("bench: traild cluster: %w", err)
	}
	c := &procCluster{dir: dir}
	defer func() {
		if err != nil {
			c.close(context.WithoutCancel(ctx))
		}
	}()
	if c.verifier, err = traildKeygen(ctx, o.bin, dir); err != nil {
		return nil, err
	}
	addrs, err := loopbackAddrs(o.nodes)
	if err != nil {
		return nil, err
	}
	for i := range o.nodes {
		p, err := c.startNode(o, addrs, i)
		if err != nil {
			return nil, err
		}
		c.procs = append(c.procs, p)
		c.apiAddrs = append(c.apiAddrs, addrs[i].grpc)
	}
	ctx, cancel := context.WithTimeout(ctx, traildStartWait)
	defer cancel()
	if c.token, err = c.waitToken(ctx); err != nil {
		return nil, err
	}
	if c.leader, err = c.waitServing(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// traildKeygen makes the cluster's log key in dir with traild itself, so
// that every node can be given it from the start, and returns its
// verifier for checking checkpoints.
func traildKeygen(ctx context.Context, bin, dir string) (note.Verifier, error) {
	out, err := exec.CommandContext(ctx, bin, "keygen", "--name", benchLogName, "--out", dir).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("bench: %s keygen: %w: %s", bin, err, bytes.TrimSpace(out))
	}
	vkey, err := os.ReadFile(filepath.Join(dir, "log.vkey"))
	if err != nil {
		return nil, fmt.Errorf("bench: traild keygen: %w", err)
	}
	v, err := merkle.NewVerifier(strings.TrimSpace(string(vkey)))
	if err != nil {
		return nil, fmt.Errorf("bench: traild keygen: %w", err)
	}
	return v, nil
}

// loopbackAddrs picks free loopback ports for n nodes. Raft's must be known
// before the nodes start, for the bootstrap peers; all are held open
// together so that no two are the same, then released for traild to bind
// (a port taken in between fails the start, and startRetrying retries).
func loopbackAddrs(n int) ([]nodeAddrs, error) {
	var lis []net.Listener
	defer func() {
		for _, l := range lis {
			l.Close()
		}
	}()
	addr := func() (string, error) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", fmt.Errorf("bench: traild cluster: pick a port: %w", err)
		}
		lis = append(lis, l)
		return l.Addr().String(), nil
	}
	out := make([]nodeAddrs, n)
	for i := range out {
		for _, p := range []*string{&out[i].raft, &out[i].grpc, &out[i].http} {
			a, err := addr()
			if err != nil {
				return nil, err
			}
			*p = a
		}
	}
	return out, nil
}

// traildConfig is node i's configuration file: loopback plaintext (traild
// allows it there), the shared log key, production Raft timing unless
// fastElections, and the cluster formation: n1 bootstraps with every node
// as a peer, the others join through n1.
func traildConfig(dir string, addrs []nodeAddrs, i int, fastElections bool) string {
	var b strings.Builder
	kv := func(indent, key, value string) { fmt.Fprintf(&b, "%s%s: %s\n", indent, key, strconv.Quote(value)) }
	kv("", "node_id", nodeName(i))
	kv("", "cluster_id", "bench")
	kv("", "data_dir", filepath.Join(dir, nodeName(i)))
	kv("", "log_name", benchLogName)
	kv("", "log_key_file", filepath.Join(dir, "log.skey"))
	kv("", "log_vkey_file", filepath.Join(dir, "log.vkey"))
	kv("", "grpc_addr", addrs[i].grpc)
	kv("", "http_addr", addrs[i].http)
	kv("", "log_level", "warn")
	b.WriteString("raft:\n")
	kv("  ", "bind", addrs[i].raft)
	if fastElections {
		kv("  ", "heartbeat_timeout", "200ms")
		kv("  ", "election_timeout", "200ms")
		kv("  ", "leader_lease_timeout", "100ms")
	}
	if i > 0 {
		kv("", "join", addrs[0].raft)
		return b.String()
	}
	kv("", "bootstrap", "true")
	if len(addrs) > 1 {
		b.WriteString("peers:\n")
		for j, a := range addrs {
			fmt.Fprintf(&b, "  - %s\n", strconv.Quote(nodeName(j)+"="+a.raft))
		}
	}
	return b.String()
}

func nodeName(i int) string { return fmt.Sprintf("n%d", i+1) }

// startNode writes node i's configuration and starts its traild.
func (c *procCluster) startNode(o procOptions, addrs []nodeAddrs, i int) (*traildProc, error) {
	node := nodeName(i)
	cfgPath := filepath.Join(c.dir, node+".yaml")
	if err := os.WriteFile(cfgPath, []byte(traildConfig(c.dir, addrs, i, o.fastElections)), 0o644); err != nil {
		return nil, fmt.Errorf("bench: traild %s: %w", node, err)
	}
	p := &traildProc{node: node, dataDir: filepath.Join(c.dir, node), stdout: new(syncbuf.Buffer), done: make(chan struct{})}
	// Not CommandContext: a cancelled run must still stop its nodes with
	// SIGTERM and wait for them (close), not kill them mid-write.
	p.cmd = exec.Command(o.bin, "serve", "--config", cfgPath)
	p.cmd.Stdout = p.stdout
	p.cmd.SysProcAttr = childProcAttr()
	if o.verbose {
		p.cmd.Stderr = os.Stderr
	} else {
		// Outside the data directory, so that it is not counted as the
		// node's disk use.
		p.logPath = filepath.Join(c.dir, node+".log")
		f, err := os.Create(p.logPath)
		if err != nil {
			return nil, fmt.Errorf("bench: traild %s: %w", node, err)
		}
		defer f.Close() // the child has its own descriptor
		p.cmd.Stderr = f
	}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("bench: start traild %s: %w", node, err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// waitToken waits for n1 to print the first admin key, which it creates
// once the cluster has a leader.
func (c *procCluster) waitToken(ctx context.Context) (string, error) {
	for {
		for line := range strings.SplitSeq(c.procs[0].stdout.String(), "\n") {
			if tok, ok := strings.CutPrefix(line, traildTokenPrefix); ok {
				return strings.TrimSpace(tok), nil
			}
		}
		if err := c.pause(ctx, "the first admin token"); err != nil {
			return "", err
		}
	}
}

// waitServing waits until every node answers an authenticated call (so
// that it holds the admin key, as the load generator will call it
// straight away) and reports the leader, whose index it returns.
func (c *procCluster) waitServing(ctx context.Context) (int, error) {
	opts, err := dialOptions(c.token, "", false)
	if err != nil {
		return 0, err
	}
	leader := ""
	for _, addr := range c.apiAddrs {
		cc, err := grpc.NewClient(addr, opts...)
		if err != nil {
			return 0, fmt.Errorf("bench: dial traild at %s: %w", addr, err)
		}
		for {
			st, err := trailv1.NewAdminServiceClient(cc).ClusterStatus(ctx, &trailv1.ClusterStatusRequest{})
			if err == nil && st.GetLeaderId() != "" {
				leader = st.GetLeaderId()
				break
			}
			if err := c.pause(ctx, "node at "+addr+" to serve"); err != nil {
				cc.Close()
				return 0, err
			}
		}
		cc.Close()
	}
	for i, p := range c.procs {
		if p.node == leader {
			return i, nil
		}
	}
	return 0, fmt.Errorf("bench: traild cluster: leader %q is none of its nodes", leader)
}

// pause waits a little while the cluster starts, and fails when a node has
// exited or the wait is over; the error carries that node's last words.
func (c *procCluster) pause(ctx context.Context, what string) error {
	for _, p := range c.procs {
		select {
		case <-p.done:
			return fmt.Errorf("bench: traild %s exited while waiting for %s: %v%s", p.node, what, p.waitErr, p.logTail())
		default:
		}
	}
	select {
	case <-ctx.Done():
		return fmt.Errorf("bench: traild cluster: waiting for %s: %w%s", what, ctx.Err(), c.procs[0].logTail())
	case <-time.After(traildPoll):
		return nil
	}
}

// logTail is the end of the node's log, to explain a failure.
func (p *traildProc) logTail() string {
	if p.logPath == "" {
		return "" // it went to stderr
	}
	b, err := os.ReadFile(p.logPath)
	if err != nil || len(bytes.TrimSpace(b)) == 0 {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return "; " + p.node + " log: " + strings.Join(lines[max(0, len(lines)-5):], " | ")
}

// close stops every node with SIGTERM, as an operator would, and waits for
// them; one that does not stop in time is killed, and that is an error.
// The data stays for measuring until remove.
func (c *procCluster) close(ctx context.Context) error {
	if c.closed {
		return nil
	}
	c.closed = true
	for _, p := range c.procs {
		p.cmd.Process.Signal(syscall.SIGTERM) // one that already exited reports it below
	}
	var errs []error
	for _, p := range c.procs {
		errs = append(errs, p.wait(ctx))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("bench: traild cluster: %w", err)
	}
	return nil
}

func (p *traildProc) wait(ctx context.Context) error {
	select {
	case <-p.done:
	case <-ctx.Done():
	case <-time.After(traildStopWait):
	}
	select {
	case <-p.done:
		if p.waitErr != nil {
			return fmt.Errorf("%s: %w%s", p.node, p.waitErr, p.logTail())
		}
		return nil
	default:
		p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s did not stop within %v of SIGTERM; killed", p.node, traildStopWait)
	}
}

// disk reports each node's disk use, now.
func (c *procCluster) disk() []nodeDisk {
	var out []nodeDisk
	for _, p := range c.procs {
		out = append(out, measureNodeDisk(p.dataDir, p.node))
	}
	return out
}

// remove deletes the cluster's data, configuration and logs.
func (c *procCluster) remove() error { return os.RemoveAll(c.dir) }

// term is 0: ClusterStatus and /metrics do not expose the Raft term.
func (c *procCluster) term() uint64 { return 0 }

func (c *procCluster) readers() []nodeReader {
	var out []nodeReader
	for _, p := range c.procs {
		out = append(out, procReader{node: p.node, pid: p.cmd.Process.Pid})
	}
	return out
}

func (c *procCluster) describe(n int) string {
	return fmt.Sprintf("local %d-node cluster (traild processes, loopback TCP)", n)
}

// checkExecutable refuses a -traild that cannot be run, before any
// ceiling is measured.
func checkExecutable(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	if st.IsDir() || st.Mode()&0o111 == 0 {
		return fmt.Errorf("%s is not an executable file", path)
	}
	return nil
}
