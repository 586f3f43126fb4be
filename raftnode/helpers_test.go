package raftnode

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/trailaudit/trail/engine"
	"github.com/trailaudit/trail/internal/loopback"
	"github.com/trailaudit/trail/merkle"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// faultNet is a fault-injecting network on real loopback TCP: every node
// dials through it, so a test can cut a node off (both directions, new
// and established connections) and heal it.
type faultNet struct {
	mu     sync.Mutex
	down   map[string]bool // isolated node addresses
	frozen map[string]bool // paused nodes: connections stay open, nothing flows
	conns  map[*faultConn]struct{}
}

func newFaultNet() *faultNet {
	return &faultNet{down: make(map[string]bool), frozen: make(map[string]bool), conns: make(map[*faultConn]struct{})}
}

// freeze makes addr behave like a paused process: connections to and
// from it, old and new, stay open, what is written to them is lost, and
// reads wait (until a deadline, a close or thaw).
func (f *faultNet) freeze(addr string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.frozen[addr] = true
}

func (f *faultNet) thaw() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.frozen)
}

func (f *faultNet) isFrozen(c *faultConn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.frozen[c.from] || f.frozen[c.to]
}

type faultConn struct {
	net.Conn
	from, to string
	f        *faultNet
	once     sync.Once
	closed   atomic.Bool
	readDL   atomic.Pointer[time.Time]
}

func (c *faultConn) SetDeadline(t time.Time) error {
	c.readDL.Store(&t)
	return c.Conn.SetDeadline(t)
}

func (c *faultConn) SetReadDeadline(t time.Time) error {
	c.readDL.Store(&t)
	return c.Conn.SetReadDeadline(t)
}

// waitThawed blocks while the connection is frozen, as a read from a
// paused peer does.
func (c *faultConn) waitThawed() error {
	for c.f.isFrozen(c) {
		if c.closed.Load() {
			return net.ErrClosed
		}
		if dl := c.readDL.Load(); dl != nil && !dl.IsZero() && time.Now().After(*dl) {
			return os.ErrDeadlineExceeded
		}
		time.Sleep(5 * time.Millisecond)
	}
	return nil
}

func (c *faultConn) Read(p []byte) (int, error) {
	if err := c.waitThawed(); err != nil {
		return 0, err
	}
	return c.Conn.Read(p)
}

func (c *faultConn) Write(p []byte) (int, error) {
	if c.f.isFrozen(c) {
		return len(p), nil // into a paused peer's full buffers, as far as the writer knows
	}
	return c.Conn.Write(p)
}

func (c *faultConn) Close() error {
	c.closed.Store(true)
	c.once.Do(func() {
		c.f.mu.Lock()
		delete(c.f.conns, c)
		c.f.mu.Unlock()
	})
	return c.Conn.Close()
}

var errPartitioned = errors.New("faultnet: network partitioned")

// dialer returns the Dial function of the node at from.
func (f *faultNet) dialer(from string) func(ctx context.Context, addr string) (net.Conn, error) {
	return func(ctx context.Context, addr string) (net.Conn, error) {
		f.mu.Lock()
		cut := f.down[from] || f.down[addr]
		f.mu.Unlock()
		if cut {
			return nil, errPartitioned
		}
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, err
		}
		fc := &faultConn{Conn: c, from: from, to: addr, f: f}
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.down[from] || f.down[addr] {
			c.Close()
			return nil, errPartitioned
		}
		f.conns[fc] = struct{}{}
		return fc, nil
	}
}

// isolate cuts addr off from everyone.
func (f *faultNet) isolate(addr string) {
	f.mu.Lock()
	f.down[addr] = true
	var victims []*faultConn
	for c := range f.conns {
		if c.from == addr || c.to == addr {
			victims = append(victims, c)
		}
	}
	f.mu.Unlock()
	for _, c := range victims {
		c.Close()
	}
}

func (f *faultNet) heal() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.down)
}

// cluster is a test cluster of real nodes on loopback TCP with real
// engines on disk.
type cluster struct {
	t     testing.TB
	net   *faultNet
	ids   []string
	addrs []string
	dirs  []string
	fss   []vfs.FS // per-node Pebble FS; nil means the real disk
	tune  func(*Config)

	// mu guards writes of nodes, which producers read concurrently; the
	// test goroutine is the only writer.
	mu    sync.Mutex
	nodes []*Node
}

// testConfig is fast Raft timing that still survives -race on two busy
// cores.
func testConfig(c *Config) {
	c.HeartbeatTimeout = 400 * time.Millisecond
	c.ElectionTimeout = 400 * time.Millisecond
	c.LeaderLeaseTimeout = 300 * time.Millisecond
	c.CommitTimeout = 5 * time.Millisecond
	c.Engine.CacheBytes = 4 << 20
	c.Engine.LogName = "test.trail"
	// Tests that seal do it explicitly, except TestSealer.
	c.SealInterval = time.Hour
}

func newCluster(t testing.TB, n int, tune func(*Config)) *cluster {
	t.Helper()
	c := &cluster{t: t, net: newFaultNet(), tune: tune}
	root := t.TempDir()
	for i := range n {
		// Nodes restart at their address, so it is reserved below the
		// ephemeral range where no client socket can take it meanwhile.
		addr, err := loopback.Addr()
		if err != nil {
			t.Fatal(err)
		}
		c.ids = append(c.ids, fmt.Sprintf("n%d", i))
		c.addrs = append(c.addrs, addr)
		c.dirs = append(c.dirs, filepath.Join(root, fmt.Sprintf("n%d", i)))
		c.fss = append(c.fss, nil)
		c.nodes = append(c.nodes, nil)
	}
	t.Cleanup(c.closeAll)
	return c
}

func (c *cluster) config(i int) Config {
	cfg := Config{
		ID: c.ids[i], Dir: c.dirs[i], BindAddr: c.addrs[i],
		Dial: c.net.dialer(c.addrs[i]), FS: c.fss[i],
	}
	testConfig(&cfg)
	if os.Getenv("RAFTNODE_TEST_LOG") != "" {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: testLogLevel()})).With("test", c.ids[i])
	}
	if c.tune != nil {
		c.tune(&cfg)
	}
	return cfg
}

// start opens node i; the port may take a moment to be free again after a
// crash of the previous incarnation.
func (c *cluster) start(i int) *Node {
	c.t.Helper()
	var err error
	for attempt := 0; attempt < 50; attempt++ {
		var n *Node
		if n, err = Open(context.Background(), c.config(i)); err == nil {
			c.mu.Lock()
			c.nodes[i] = n
			c.mu.Unlock()
			return n
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.t.Fatalf("start %s: %v", c.ids[i], err)
	return nil
}

func (c *cluster) servers() []Server {
	var out []Server
	for i := range c.ids {
		out = append(out, Server{ID: c.ids[i], Address: c.addrs[i]})
	}
	return out
}

// boot starts every node and bootstraps the cluster on node 0.
func (c *cluster) boot() {
	c.t.Helper()
	for i := range c.ids {
		c.start(i)
	}
	if err := c.nodes[0].Bootstrap(context.Background(), c.servers()); err != nil {
		c.t.Fatal(err)
	}
	c.leader(10 * time.Second)
}

// kill stops node i like a crash: no graceful leave, no final engine sync.
func (c *cluster) kill(i int) {
	c.mu.Lock()
	n := c.nodes[i]
	c.nodes[i] = nil
	c.mu.Unlock()
	if n != nil {
		n.shutdown(false)
	}
}

func (c *cluster) closeAll() {
	for i := range c.nodes {
		c.kill(i)
	}
}

func (c *cluster) live() []*Node {
	var out []*Node
	for _, n := range c.nodes {
		if n != nil {
			out = append(out, n)
		}
	}
	return out
}

// leader waits for a live node that is leader and returns its index.
func (c *cluster) leader(timeout time.Duration) int {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		for i, n := range c.nodes {
			if n != nil && n.isLeader() {
				return i
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.t.Fatalf("no leader within %s", timeout)
	return -1
}

func (c *cluster) follower() int {
	l := c.leader(10 * time.Second)
	for i, n := range c.nodes {
		if n != nil && i != l {
			return i
		}
	}
	c.t.Fatal("no live follower")
	return -1
}

var testTime = time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)

// event returns a minimal valid event.
func event(tenant, id string) *trailv1.Event {
	return &trailv1.Event{
		TenantId:   tenant,
		EventId:    id,
		Category:   trailv1.Category_CATEGORY_AUTHENTICATION,
		Action:     "user.login",
		Outcome:    trailv1.Outcome_OUTCOME_SUCCESS,
		Actor:      &trailv1.Actor{Id: "alice"},
		OccurredAt: timestamppb.New(testTime),
	}
}

// appendOK appends through n and fails on any error.
func appendOK(t testing.TB, n *Node, evs ...*trailv1.Event) []engine.Receipt {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := n.Append(ctx, evs)
	if err != nil {
		t.Fatalf("Append via %s: %v", n.ID(), err)
	}
	out := make([]engine.Receipt, len(res))
	for i, r := range res {
		if r.Err != nil {
			t.Fatalf("Append via %s: event %d: %v", n.ID(), i, r.Err)
		}
		out[i] = r.Receipt
	}
	return out
}

// position is where an event sits in its tenant's log.
type position struct {
	month engine.Month
	leaf  uint64
}

func (p position) less(o position) bool {
	if p.month != o.month {
		return p.month.Before(o.month)
	}
	return p.leaf < o.leaf
}

// tenantLog is one tenant's whole log as a node holds it.
type tenantLog struct {
	parts []engine.PartitionInfo
	ids   map[string]position // event_id -> position
}

// readTenant reads and verifies a tenant's log on one node: every entry's
// leaf hash, the linear chain across partitions, each partition's root
// rebuilt from its leaves, and that no event_id occurs twice.
func readTenant(t testing.TB, n *Node, tenant string) tenantLog {
	t.Helper()
	e, release := n.AcquireEngine()
	defer release()
	ctx := context.Background()
	parts, err := e.Partitions(ctx, tenant)
	if err != nil {
		t.Fatalf("%s: Partitions(%s): %v", n.ID(), tenant, err)
	}
	out := tenantLog{parts: parts, ids: make(map[string]position)}
	chain := merkle.NewChainVerifier(merkle.Hash{}, 0)
	for _, pi := range parts {
		app, _ := merkle.NewAppender(0, nil)
		for leaf := uint64(0); leaf < pi.Size; leaf++ {
			se, err := e.Entry(ctx, pi.Partition, leaf)
			if err != nil {
				t.Fatalf("%s: Entry(%s, %d): %v", n.ID(), pi.Partition, leaf, err)
			}
			app.Append(se.LeafHash, nil)
			if se.Pruned { // payload gone: the chain restarts at its leaf hash
				chain = merkle.NewChainVerifier(se.LeafHash, chain.Count()+1)
				continue
			}
			en := new(trailv1.Entry)
			if err := proto.Unmarshal(se.Data, en); err != nil {
				t.Fatalf("%s: decode %s/%d: %v", n.ID(), pi.Partition, leaf, err)
			}
			if err := chain.Next(se.LeafHash, merkle.Hash(en.GetPrevLeafHash())); err != nil {
				t.Fatalf("%s: %s leaf %d: chain: %v", n.ID(), pi.Partition, leaf, err)
			}
			id := en.GetEvent().GetEventId()
			if prev, dup := out.ids[id]; dup {
				t.Fatalf("%s: tenant %s event %q appears twice (%v and %s/%d)", n.ID(), tenant, id, prev, pi.Partition, leaf)
			}
			out.ids[id] = position{pi.Month, leaf}
		}
		if app.Root() != pi.Root {
			t.Fatalf("%s: %s: root from leaves %s, stored %s", n.ID(), pi.Partition, app.Root(), pi.Root)
		}
	}
	return out
}

// converge waits until every live node has applied as far as the leader
// (via a barrier event appended last), then checks that all nodes hold the
// same verified logs for tenants, and returns node 0's view.
func (c *cluster) converge(tenants []string) map[string]tenantLog {
	c.t.Helper()
	l := c.leader(20 * time.Second)
	barrier := appendOK(c.t, c.nodes[l], event("barrier", fmt.Sprintf("b-%d", time.Now().UnixNano())))[0]
	for _, n := range c.live() {
		c.waitEvent(n, barrier.Tenant, barrier.EventID)
	}
	var ref map[string]tenantLog
	var refNode string
	for _, n := range c.live() {
		logs := make(map[string]tenantLog)
		for _, tn := range tenants {
			logs[tn] = readTenant(c.t, n, tn)
		}
		if ref == nil {
			ref, refNode = logs, n.ID()
			continue
		}
		for _, tn := range tenants {
			a, b := ref[tn].parts, logs[tn].parts
			if !slices.EqualFunc(a, b, func(x, y engine.PartitionInfo) bool {
				return x.Partition == y.Partition && x.Size == y.Size && x.Root == y.Root && x.Sealed == y.Sealed
			}) {
				c.t.Fatalf("tenant %s: %s has partitions %+v, %s has %+v", tn, refNode, a, n.ID(), b)
			}
		}
	}
	return ref
}

func (c *cluster) waitEvent(n *Node, tenant, id string) {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		var err error
		n.View(func(e *engine.Engine) error {
			_, _, err = e.EntryByEventID(context.Background(), tenant, id)
			return nil
		})
		if err == nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.t.Fatalf("%s never applied %s/%s (applied %d)", n.ID(), tenant, id, n.AppliedIndex())
}

// op is one client append as the history checker sees it.
type op struct {
	tenant, id string
	invoke     time.Time // first attempt
	ret        time.Time // acknowledgment
	receipt    engine.Receipt
	acked      bool
	via        string    // node that acknowledged it
	attempt    time.Time // start of the acknowledged attempt
}

// history records client operations from many goroutines.
type history struct {
	mu  sync.Mutex
	ops []*op
	// Failed attempts, by kind: ambiguous, and any other error.
	ambiguous, failed atomic.Int64
}

func (h *history) add(o *op) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ops = append(h.ops, o)
}

func (h *history) acked() []*op {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []*op
	for _, o := range h.ops {
		if o.acked {
			out = append(out, o)
		}
	}
	return out
}

// check verifies the history against the final logs:
//
//  1. every acknowledged event is in the log (exactly once: readTenant
//     already rejects duplicates), at the position its receipt names;
//  2. real-time order: if A was acknowledged before B was first invoked
//     (same tenant), A precedes B in the log. This is linearizability of
//     an append-only log whose appends each take effect at one point
//     between invocation and response; with the log's total order fixed,
//     checking it needs no search. Ops are swept in invocation order
//     while a second cursor over response order keeps, per tenant, the
//     furthest position of all ops that had returned by then.
func (h *history) check(t testing.TB, logs map[string]tenantLog) {
	t.Helper()
	ops := h.acked()
	for _, o := range ops {
		pos, ok := logs[o.tenant].ids[o.id]
		if !ok {
			t.Fatalf("acknowledged event %s/%s is missing from the log", o.tenant, o.id)
		}
		if got := (position{o.receipt.Partition, o.receipt.LeafIndex}); got != pos {
			t.Fatalf("event %s/%s: receipt says %v, log has it at %v", o.tenant, o.id, got, pos)
		}
	}
	byInvoke := slices.Clone(ops)
	slices.SortFunc(byInvoke, func(a, b *op) int { return a.invoke.Compare(b.invoke) })
	byReturn := slices.Clone(ops)
	slices.SortFunc(byReturn, func(a, b *op) int { return a.ret.Compare(b.ret) })
	type mark struct {
		pos position
		op  *op
	}
	done := make(map[string]mark)
	j := 0
	for _, b := range byInvoke {
		for ; j < len(byReturn) && byReturn[j].ret.Before(b.invoke); j++ {
			a := byReturn[j]
			pa := logs[a.tenant].ids[a.id]
			if m, ok := done[a.tenant]; !ok || m.pos.less(pa) {
				done[a.tenant] = mark{pa, a}
			}
		}
		pb := logs[b.tenant].ids[b.id]
		if m, ok := done[b.tenant]; ok && !m.pos.less(pb) {
			t.Fatalf("real-time order violated: %s returned before %s was invoked, but sits at %v, not before %v",
				m.op.id, b.id, m.pos, pb)
		}
	}
}

// producers runs n goroutines appending events round-robin over tenants
// through the given nodes until stop is closed. Each op retries with the
// same event_id until acknowledged or the test gives up on it; only
// acknowledged ops count.
func producers(c *cluster, h *history, prefix string, n int, tenants []string, stop <-chan struct{}) *sync.WaitGroup {
	var wg sync.WaitGroup
	for g := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seq := 0; ; seq++ {
				select {
				case <-stop:
					return
				default:
				}
				tenant := tenants[(g+seq)%len(tenants)]
				o := &op{tenant: tenant, id: fmt.Sprintf("%s%d-%d", prefix, g, seq), invoke: time.Now()}
				h.add(o)
				produce(c, h, g+seq, o, stop)
			}
		}()
	}
	return &wg
}

// produce retries one append, rotating over live nodes, until it is
// acknowledged or stop is closed.
func produce(c *cluster, h *history, k int, o *op, stop <-chan struct{}) {
	for attempt := k; ; attempt++ {
		live := c.liveSnapshot()
		if len(live) > 0 {
			n := live[attempt%len(live)]
			start := time.Now()
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			res, err := n.Append(ctx, []*trailv1.Event{event(o.tenant, o.id)})
			cancel()
			if err == nil && res[0].Err == nil {
				// Read by the checker only after the producers are done.
				o.ret, o.receipt, o.acked = time.Now(), res[0].Receipt, true
				o.via, o.attempt = n.ID(), start
				return
			}
			if errors.Is(err, ErrAmbiguous) {
				h.ambiguous.Add(1)
			} else {
				h.failed.Add(1)
			}
		}
		select {
		case <-stop:
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// liveSnapshot is live() safe against concurrent kill/start by the test.
func (c *cluster) liveSnapshot() []*Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.live()
}

func tenantsN(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("t%d", i)
	}
	return out
}

// testLogLevel is RAFTNODE_TEST_LOG's level ("debug", "info"; else warn).
func testLogLevel() slog.Level {
	switch os.Getenv("RAFTNODE_TEST_LOG") {
	case "debug":
		return slog.LevelDebug
	case "info":
		return slog.LevelInfo
	}
	return slog.LevelWarn
}
