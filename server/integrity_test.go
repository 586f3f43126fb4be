package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/note"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	"github.com/trailaudit/trail/engine"
	"github.com/trailaudit/trail/filter"
	"github.com/trailaudit/trail/merkle"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
	"github.com/trailaudit/trail/raftnode"
)

// noSchedule keeps scheduled passes out of a test that runs its own.
func noSchedule(c *Config) { c.IntegrityInterval = -1 }

// waitSystemLog makes an audited call and waits until the access audit
// has written the system log.
func waitSystemLog(t *testing.T, e *env) {
	t.Helper()
	if _, err := e.adm.ClusterStatus(e.ctx(e.admin), &trailv1.ClusterStatusRequest{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the system log", func() bool {
		_, found, err := e.node.Engine().LatestPartition(context.Background(), engine.SystemTenant)
		return err == nil && found
	})
}

func TestVerifyIntegrityReport(t *testing.T) {
	e := newEnv(t, envOptions{tune: noSchedule})
	e.appendAll(e.admin, events("acme", "a", 40))
	waitSystemLog(t, e)
	resp, err := e.comp.VerifyIntegrity(e.ctx(e.admin), &trailv1.VerifyIntegrityRequest{})
	if err != nil {
		t.Fatal(err)
	}
	r := resp.GetReport()
	if !r.GetOk() || r.GetNodeId() != "n1" || r.GetEntriesHashed() < 40 || !r.GetFinishedAt().AsTime().After(r.GetStartedAt().AsTime()) {
		t.Fatalf("report %v", r)
	}
	acme := findPartition(t, r, "acme")
	if acme.GetSize() != 40 || !acme.GetOk() || acme.GetSealed() || len(acme.GetRootHash()) != merkle.HashSize {
		t.Fatalf("acme: %v", acme)
	}
	findPartition(t, r, engine.SystemTenant)
	checkSignedReport(t, e, resp)
	// A complete on-demand run is a pass: one verified event in the system log.
	waitEntries(t, e, engine.SystemTenant, actionIntegrityVerified, 1)

	// One partition, over REST as well.
	month := acme.GetPartition()
	var one trailv1.VerifyIntegrityResponse
	e.restJSON(http.MethodPost, "/api/v1/admin/integrity/verify", e.admin,
		&trailv1.VerifyIntegrityRequest{TenantId: "acme", Partition: month}, &one)
	if ps := one.GetReport().GetPartitions(); len(ps) != 1 || ps[0].GetTenantId() != "acme" || ps[0].GetPartition() != month {
		t.Fatalf("one partition: %v", one.GetReport())
	}
	checkSignedReport(t, e, &one)
}

func TestVerifyIntegrityRequests(t *testing.T) {
	e := newEnv(t, envOptions{tune: noSchedule})
	e.appendAll(e.admin, events("acme", "a", 3))
	cases := []struct {
		name  string
		token string
		req   *trailv1.VerifyIntegrityRequest
		want  codes.Code
	}{
		{"auditor", e.key(trailv1.Role_ROLE_AUDITOR, "acme"), &trailv1.VerifyIntegrityRequest{TenantId: "acme"}, codes.PermissionDenied},
		{"producer", e.key(trailv1.Role_ROLE_PRODUCER, "acme"), &trailv1.VerifyIntegrityRequest{}, codes.PermissionDenied},
		{"no key", "", &trailv1.VerifyIntegrityRequest{}, codes.Unauthenticated},
		{"partition without tenant", e.admin, &trailv1.VerifyIntegrityRequest{Partition: "2026-11"}, codes.InvalidArgument},
		{"bad partition", e.admin, &trailv1.VerifyIntegrityRequest{TenantId: "acme", Partition: "11/2026"}, codes.InvalidArgument},
		{"bad tenant", e.admin, &trailv1.VerifyIntegrityRequest{TenantId: "a b"}, codes.InvalidArgument},
		{"unknown partition", e.admin, &trailv1.VerifyIntegrityRequest{TenantId: "acme", Partition: "2001-01"}, codes.NotFound},
		{"admin", e.admin, &trailv1.VerifyIntegrityRequest{TenantId: "acme"}, codes.OK},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := e.comp.VerifyIntegrity(e.ctx(c.token), c.req)
			wantCode(t, err, c.want)
		})
	}
}

// checkSignedReport verifies the note with the log's key, checks that it
// commits to the report, and that it is not a checkpoint.
func checkSignedReport(t *testing.T, e *env, resp *trailv1.VerifyIntegrityResponse) {
	t.Helper()
	signed := []byte(resp.GetSignedNote())
	n, err := note.Open(signed, note.VerifierList(e.verifier))
	if err != nil {
		t.Fatalf("note.Open: %v\n%s", err, signed)
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(resp.GetReport())
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	verdict := "ok"
	if !resp.GetReport().GetOk() {
		verdict = "violation"
	}
	want := fmt.Sprintf("%s integrity report v1\nnode %s\n%s sha256:%s\n", testLogName, resp.GetReport().GetNodeId(), verdict, hex.EncodeToString(sum[:]))
	if n.Text != want {
		t.Fatalf("note text %q, want %q", n.Text, want)
	}
	for _, origin := range []string{testLogName, testLogName + " integrity report v1"} {
		if _, _, _, err := log.ParseCheckpoint(signed, origin, e.verifier); err == nil {
			t.Fatalf("the signed report parses as a checkpoint of %q", origin)
		}
	}
	if _, err := merkle.ParseCheckpoint([]byte(n.Text)); err == nil {
		t.Fatal("the report body parses as a checkpoint body")
	}
}

func findPartition(t *testing.T, r *trailv1.IntegrityReport, tenant string) *trailv1.PartitionIntegrity {
	t.Helper()
	for _, p := range r.GetPartitions() {
		if p.GetTenantId() == tenant {
			return p
		}
	}
	t.Fatalf("no partition of %s in %v", tenant, r)
	return nil
}

// entriesWith returns a tenant's entries with the given action.
func entriesWith(t *testing.T, e *env, tenant, action string) []*trailv1.Entry {
	t.Helper()
	res, err := e.node.Engine().Search(context.Background(), engine.Query{Tenant: tenant, Filter: filter.Filter{Actions: []string{action}}, Limit: engine.MaxSearchLimit})
	if err != nil {
		t.Fatal(err)
	}
	var out []*trailv1.Entry
	for _, h := range res.Hits {
		out = append(out, h.Entry)
	}
	return out
}

// waitEntries waits until tenant holds exactly n entries with action.
func waitEntries(t *testing.T, e *env, tenant, action string, n int) []*trailv1.Entry {
	t.Helper()
	var got []*trailv1.Entry
	waitFor(t, 20*time.Second, fmt.Sprintf("%d %s entries in %s", n, action, tenant), func() bool {
		got = entriesWith(t, e, tenant, action)
		return len(got) >= n
	})
	if len(got) != n {
		t.Fatalf("%d %s entries in %s, want %d", len(got), action, tenant, n)
	}
	return got
}

// checkViolation checks a recorded violation event.
func checkViolation(t *testing.T, en *trailv1.Entry, tenant, kind, where string) {
	t.Helper()
	ev := en.GetEvent()
	a := ev.GetAttributes()
	if ev.GetCategory() != trailv1.Category_CATEGORY_SECURITY || ev.GetOutcome() != trailv1.Outcome_OUTCOME_FAILURE ||
		a["node"] != "n1" || a["tenant"] != tenant || a["kind"] != kind || a["where"] != where || a["size"] == "" || a["problem"] == "" ||
		!strings.HasPrefix(ev.GetEventId(), "integrity-violation/n1/"+tenant+"/") {
		t.Fatalf("violation event %v", ev)
	}
}

func violationCount(t *testing.T, e *env, kind string) float64 {
	t.Helper()
	return counterValue(t, e.srv.integrityOf().violations.WithLabelValues(kind))
}

// The seam: a problem injected into the engine's result for one partition
// is reported, counted and recorded in both logs, once however often it is
// found again.
func TestIntegrityViolationIsRecorded(t *testing.T) {
	e := newEnv(t, envOptions{tune: noSchedule})
	e.appendAll(e.admin, events("acme", "a", 10))
	waitSystemLog(t, e)
	ic := e.srv.integrityOf()
	real := ic.verifier()
	ic.setVerify(func(ctx context.Context, en *engine.Engine, p engine.Partition, opts engine.VerifyOptions) (engine.VerifyResult, error) {
		res, err := real(ctx, en, p, opts)
		if p.Tenant == "acme" {
			res.Problem = &engine.IntegrityError{Partition: p, Kind: engine.ProblemChain, Where: "leaf 3",
				Err: fmt.Errorf("injected: %w", engine.ErrCorrupt)}
		}
		return res, err
	})
	for range 2 {
		resp, err := e.comp.VerifyIntegrity(e.ctx(e.admin), &trailv1.VerifyIntegrityRequest{})
		if err != nil {
			t.Fatal(err)
		}
		acme := findPartition(t, resp.GetReport(), "acme")
		if resp.GetReport().GetOk() || acme.GetOk() || !strings.Contains(acme.GetProblem(), "leaf 3") {
			t.Fatalf("report %v", resp.GetReport())
		}
		if !findPartition(t, resp.GetReport(), engine.SystemTenant).GetOk() {
			t.Fatal("the system tenant should verify")
		}
		checkSignedReport(t, e, resp)
	}
	for _, tenant := range []string{"acme", engine.SystemTenant} {
		checkViolation(t, waitEntries(t, e, tenant, actionIntegrityViolation, 1)[0], "acme", "chain", "leaf 3")
	}
	if got := violationCount(t, e, "chain"); got != 2 {
		t.Fatalf("trail_integrity_violations_total{kind=chain} = %v, want 2 (found twice)", got)
	}
	verified := waitEntries(t, e, engine.SystemTenant, actionIntegrityVerified, 2)
	if a := verified[0].GetEvent().GetAttributes(); a["ok"] != "false" || a["violations"] != "1" {
		t.Fatalf("verified event %v", a)
	}
}

// divergentPeers is a cluster whose peers answer with given roots.
type divergentPeers struct {
	Cluster
	answers func(p engine.Partition, size uint64) []raftnode.PeerRoot
}

func (d *divergentPeers) PeerRoots(ctx context.Context, p engine.Partition, size uint64) []raftnode.PeerRoot {
	return append(d.Cluster.PeerRoots(ctx, p, size), d.answers(p, size)...)
}

func TestIntegrityPeerRootMismatch(t *testing.T) {
	var wrong atomic.Bool
	e := newEnv(t, envOptions{tune: func(c *Config) {
		noSchedule(c)
		c.Cluster = &divergentPeers{Cluster: c.Cluster, answers: func(p engine.Partition, size uint64) []raftnode.PeerRoot {
			info, _ := c.Cluster.Engine().PartitionInfo(context.Background(), p)
			good := raftnode.PeerRoot{NodeID: "n2", Root: info.Root}
			if size != info.Size {
				good.Err = fmt.Errorf("test peer only answers at the current size")
			}
			bad := raftnode.PeerRoot{NodeID: "n3", Err: fmt.Errorf("unreachable")}
			if wrong.Load() && p.Tenant == "acme" {
				bad = raftnode.PeerRoot{NodeID: "n3", Root: merkle.Hash{1}}
			}
			return []raftnode.PeerRoot{good, bad}
		}}
	}})
	e.appendAll(e.admin, events("acme", "a", 5))
	resp, err := e.comp.VerifyIntegrity(e.ctx(e.admin), &trailv1.VerifyIntegrityRequest{TenantId: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	acme := findPartition(t, resp.GetReport(), "acme")
	if !acme.GetOk() || len(acme.GetPeers()) != 2 || !acme.GetPeers()[0].GetMatch() || acme.GetPeers()[1].GetError() == "" || len(acme.GetSuspects()) != 0 {
		t.Fatalf("an unreachable peer is no violation: %v", acme)
	}
	wrong.Store(true)
	resp, err = e.comp.VerifyIntegrity(e.ctx(e.admin), &trailv1.VerifyIntegrityRequest{TenantId: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	acme = findPartition(t, resp.GetReport(), "acme")
	if acme.GetOk() || acme.GetPeers()[1].GetMatch() || !strings.Contains(acme.GetProblem(), "peer n3") {
		t.Fatalf("mismatch: %v", acme)
	}
	// This node and n2 agree: n3 is the copy the majority outvotes.
	if !slices.Equal(acme.GetSuspects(), []string{"n3"}) {
		t.Fatalf("suspects %v, want [n3]", acme.GetSuspects())
	}
	checkViolation(t, waitEntries(t, e, "acme", actionIntegrityViolation, 1)[0], "acme", "peer", "n3")
	waitEntries(t, e, engine.SystemTenant, actionIntegrityViolation, 1)
	if got := violationCount(t, e, "peer"); got != 1 {
		t.Fatalf("peer violations %v", got)
	}
	// A tenant-scoped run is not a complete pass.
	if got := entriesWith(t, e, engine.SystemTenant, actionIntegrityVerified); len(got) != 0 {
		t.Fatalf("verified events after tenant runs: %d", len(got))
	}
}

// Real damage on the node: a sealed month's segment file changed on disk.
func TestIntegrityDetectsCorruptSegment(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Date(2026, 10, 14, 12, 0, 0, 0, time.UTC).UnixNano())
	dir := t.TempDir()
	e := newEnv(t, envOptions{tune: noSchedule, tuneNode: func(c *raftnode.Config) {
		c.Dir = dir
		c.Clock = func() time.Time { return time.Unix(0, now.Load()) }
		c.SealInterval = time.Hour
	}})
	e.appendAll(e.admin, events("acme", "oct", 30))
	now.Store(time.Date(2026, 11, 3, 12, 0, 0, 0, time.UTC).UnixNano())
	e.appendAll(e.admin, events("acme", "nov", 5))
	oct := engine.Partition{Tenant: "acme", Month: engine.Month{Year: 2026, Month: time.October}}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := e.node.Seal(ctx, oct); err != nil {
		t.Fatal(err)
	}
	resp, err := e.comp.VerifyIntegrity(e.ctx(e.admin), &trailv1.VerifyIntegrityRequest{TenantId: "acme"})
	if err != nil || !resp.GetReport().GetOk() {
		t.Fatalf("before the damage: %v, %v", resp.GetReport(), err)
	}
	paths, _ := filepath.Glob(filepath.Join(dir, "engine-*", "segments", "acme", "2026-10.seg"))
	if len(paths) != 1 {
		t.Fatalf("segment files %v", paths)
	}
	b, err := os.ReadFile(paths[0])
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x10
	if err := os.WriteFile(paths[0], b, 0o644); err != nil {
		t.Fatal(err)
	}
	resp, err = e.comp.VerifyIntegrity(e.ctx(e.admin), &trailv1.VerifyIntegrityRequest{TenantId: "acme", Partition: "2026-10"})
	if err != nil {
		t.Fatal(err)
	}
	p := resp.GetReport().GetPartitions()[0]
	if resp.GetReport().GetOk() || p.GetOk() || !p.GetSealed() || !strings.Contains(p.GetProblem(), "segment") {
		t.Fatalf("damage not reported: %v", resp.GetReport())
	}
	checkSignedReport(t, e, resp)
	for _, tenant := range []string{"acme", engine.SystemTenant} {
		checkViolation(t, waitEntries(t, e, tenant, actionIntegrityViolation, 1)[0], "acme", "segment", "segment")
	}
	if got := violationCount(t, e, "segment"); got != 1 {
		t.Fatalf("segment violations %v", got)
	}
}

// Scheduled passes run on their own, each ending in one verified event;
// later passes resume where earlier ones stopped.
func TestIntegritySchedule(t *testing.T) {
	e := newEnv(t, envOptions{tune: func(c *Config) { c.IntegrityInterval = 100 * time.Millisecond }})
	e.appendAll(e.admin, events("acme", "a", 200))
	hashed := func(en *trailv1.Entry) int {
		var n int
		fmt.Sscan(en.GetEvent().GetAttributes()["entries_hashed"], &n)
		return n
	}
	// Appends answer once committed, so a pass may run before the 200 are
	// applied: look for the first pass that hashed them all, and the one
	// after it.
	var full, next map[string]string
	var n1, n2 int
	waitFor(t, 20*time.Second, "a pass over every entry, then one that resumes", func() bool {
		verified := entriesWith(t, e, engine.SystemTenant, actionIntegrityVerified)
		for i := 0; i+1 < len(verified); i++ {
			if n1 = hashed(verified[i]); n1 >= 200 {
				full, next = verified[i].GetEvent().GetAttributes(), verified[i+1].GetEvent().GetAttributes()
				n2 = hashed(verified[i+1])
				return true
			}
		}
		return false
	})
	if full["trigger"] != "scheduled" || full["ok"] != "true" || next["trigger"] != "scheduled" {
		t.Fatalf("verified events %v, %v", full, next)
	}
	if n2 >= n1 {
		t.Fatalf("entries hashed by a full pass %d, by the next %d: the next should resume", n1, n2)
	}
	var g float64
	waitFor(t, 5*time.Second, "the last-pass gauge", func() bool {
		g = gaugeValue(t, e.srv.integrityOf().lastPass)
		return g > 0
	})
	if g < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Fatalf("last pass gauge %v", g)
	}
}

// On a three-node cluster every partition's root is compared with both
// peers, from the leader and from a follower.
func TestVerifyIntegrityComparesPeers(t *testing.T) {
	e := newClusterEnv(t, nil)
	e.appendAll(e.admin, events("acme", "a", 30))
	for _, node := range []*env{e, scenarioFollower(t, e)} {
		resp, err := node.comp.VerifyIntegrity(node.ctx(node.admin), &trailv1.VerifyIntegrityRequest{TenantId: "acme"})
		if err != nil {
			t.Fatal(err)
		}
		r := resp.GetReport()
		acme := findPartition(t, r, "acme")
		if !r.GetOk() || r.GetNodeId() != node.node.ID() || len(acme.GetPeers()) != 2 {
			t.Fatalf("%s: %v", node.node.ID(), r)
		}
		for _, p := range acme.GetPeers() {
			if !p.GetMatch() || p.GetNodeId() == node.node.ID() || string(p.GetRootHash()) != string(acme.GetRootHash()) {
				t.Fatalf("%s: peer %v", node.node.ID(), p)
			}
		}
	}
}

func gaugeValue(t testing.TB, g prometheus.Gauge) float64 {
	t.Helper()
	var m dto.Metric
	if err := g.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetGauge().GetValue()
}

func TestOutvoted(t *testing.T) {
	a, b := merkle.Hash{1}, merkle.Hash{2}
	unknown := nodeRoot{node: "n3", unknown: true}
	for _, tc := range []struct {
		name  string
		roots []nodeRoot
		want  []string
	}{
		{"all agree", []nodeRoot{{"n1", a, false}, {"n2", a, false}, {"n3", a, false}}, nil},
		{"one peer differs", []nodeRoot{{"n1", a, false}, {"n2", a, false}, {"n3", b, false}}, []string{"n3"}},
		{"this node differs", []nodeRoot{{"n1", b, false}, {"n2", a, false}, {"n3", a, false}}, []string{"n1"}},
		{"one of two answering differs, no majority", []nodeRoot{{"n1", a, false}, {"n2", b, false}, unknown}, nil},
		{"two answering agree against an unknown", []nodeRoot{{"n1", a, false}, {"n2", a, false}, unknown}, nil},
		{"five nodes, three agree", []nodeRoot{{"n1", a, false}, {"n2", b, false}, {"n3", a, false}, {"n4", b, false}, {"n5", a, false}}, []string{"n2", "n4"}},
		{"a single node", []nodeRoot{{"n1", a, false}}, nil},
	} {
		if got := outvoted(tc.roots); !slices.Equal(got, tc.want) {
			t.Errorf("%s: outvoted = %v, want %v", tc.name, got, tc.want)
		}
	}
}
