package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/mod/sumdb/note"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/trailaudit/trail/engine"
	"github.com/trailaudit/trail/merkle"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// Scheduled integrity verification. Every node periodically re-hashes its
// own stored entries and tiles (engine.VerifyPartition, rate-limited) and
// compares each partition's root with its peers' roots at the same size:
// the FSM is deterministic, so replicas must agree root for root. A problem
// is appended durably, as a security event, to the affected tenant's log
// and to the system tenant; every complete pass appends one
// audit.integrity.verified event to the system tenant.

// Defaults of Config.IntegrityInterval and Config.IntegrityRate.
const (
	DefaultIntegrityInterval = time.Hour
	DefaultIntegrityRate     = 50_000
)

const (
	// Actions of the events integrity verification appends; Subscribe
	// derives its audit.integrity.* domain events from them.
	actionIntegrityViolation = "audit.integrity.violation"
	actionIntegrityVerified  = "audit.integrity.verified"
	// integrityFullEvery is how many scheduled passes may reuse an earlier
	// verification of a partition (skip a sealed one, resume an open one
	// where it stopped) before it is re-hashed from leaf 0 again, so that
	// bit rot in old entries is found within this many passes.
	integrityFullEvery = 24
	// integrityAttempts bounds the attempts to append one integrity event.
	integrityAttempts = 3
	// reportHeader opens the signed report's note: its second line is not
	// a number, so the note can never be taken for a checkpoint.
	reportHeader = "integrity report v1"
)

// integrity runs verification passes and remembers what it verified.
type integrity struct {
	s        *Server
	node     string
	interval time.Duration // <= 0: no scheduled passes
	limiter  engine.Limiter
	// verify re-hashes one partition: the engine's VerifyPartition, which
	// tests replace (setVerify) to inject problems.
	verify verifyFunc

	violations *prometheus.CounterVec // kind
	hashed     prometheus.Counter
	lastPass   prometheus.Gauge

	mu     sync.Mutex // guards verify, passes and last
	passes uint64
	last   map[engine.Partition]verifiedAt
}

type verifyFunc func(ctx context.Context, e *engine.Engine, p engine.Partition, opts engine.VerifyOptions) (engine.VerifyResult, error)

func (ic *integrity) setVerify(f verifyFunc) {
	ic.mu.Lock()
	defer ic.mu.Unlock()
	ic.verify = f
}

func (ic *integrity) verifier() verifyFunc {
	ic.mu.Lock()
	defer ic.mu.Unlock()
	return ic.verify
}

// verifiedAt is the last OK verification of a partition and the pass in
// which it was last verified from leaf 0.
type verifiedAt struct {
	res      engine.VerifyResult
	fullPass uint64
}

func newIntegrity(s *Server) *integrity {
	interval, rate := s.cfg.IntegrityInterval, s.cfg.IntegrityRate
	if interval == 0 {
		interval = DefaultIntegrityInterval
	}
	if rate == 0 {
		rate = DefaultIntegrityRate
	}
	ic := &integrity{
		s: s, node: s.cluster.Status().ID, interval: interval, limiter: engine.NewRateLimiter(rate),
		verify: func(ctx context.Context, e *engine.Engine, p engine.Partition, opts engine.VerifyOptions) (engine.VerifyResult, error) {
			return e.VerifyPartition(ctx, p, opts)
		},
		violations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trail_integrity_violations_total",
			Help: "Integrity problems found by verification, by kind (entry, tile, chain, link, root, segment, peer).",
		}, []string{"kind"}),
		hashed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "trail_integrity_entries_hashed_total", Help: "Stored entries re-hashed by integrity verification.",
		}),
		lastPass: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "trail_integrity_last_pass_timestamp_seconds", Help: "When the last complete integrity pass finished (Unix time).",
		}),
		last: make(map[engine.Partition]verifiedAt),
	}
	// Export every kind at 0 from the start, so that alerts on an increase
	// see a series before the first violation.
	for _, k := range []engine.ProblemKind{engine.ProblemEntry, engine.ProblemTile, engine.ProblemChain,
		engine.ProblemLink, engine.ProblemRoot, engine.ProblemSegment, "peer"} {
		ic.violations.WithLabelValues(string(k))
	}
	s.metrics.reg.MustRegister(ic.violations, ic.hashed, ic.lastPass)
	return ic
}

// startIntegrity creates the verifier and, unless disabled, starts the
// scheduled passes; they end with s.life. Serve calls it once.
func (s *Server) startIntegrity() {
	s.integrity = newIntegrity(s)
	if s.integrity.interval <= 0 {
		return
	}
	s.bg.Add(1)
	go func() { defer s.bg.Done(); s.integrity.schedule(s.life) }()
}

// integrityOf returns the verifier Serve created, nil before Serve.
func (s *Server) integrityOf() *integrity {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.integrity
}

// firstPassDelay bounds the wait before a node's first pass: a node
// restarted more often than the interval must still verify its storage.
const firstPassDelay = 5 * time.Minute

// schedule runs a pass every interval, the first one after at most
// firstPassDelay; the next is timed from the end of the last, so passes
// never overlap.
func (ic *integrity) schedule(ctx context.Context) {
	t := time.NewTimer(min(ic.interval, firstPassDelay))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := ic.run(ctx, integrityScope{}, true); err != nil && ctx.Err() == nil {
			ic.s.log.Error("integrity pass failed", "err", err)
		}
		t.Reset(ic.interval)
	}
}

// integrityScope selects what a run verifies: every tenant, one tenant,
// or one partition.
type integrityScope struct {
	tenant string
	month  *engine.Month
}

func (sc integrityScope) complete() bool { return sc.tenant == "" }

// run verifies the partitions in scope and returns the report. A
// scheduled run is incremental (see integrityFullEvery); an on-demand one
// re-hashes everything in scope. A complete run ends with an
// audit.integrity.verified event.
func (ic *integrity) run(ctx context.Context, sc integrityScope, scheduled bool) (*trailv1.IntegrityReport, error) {
	started := time.Now()
	pass := ic.nextPass(scheduled)
	parts, err := ic.partitions(ctx, sc)
	if err != nil {
		return nil, err
	}
	report := &trailv1.IntegrityReport{NodeId: ic.node, StartedAt: timestamppb.New(started), Ok: true}
	sum := passSummary{pass: pass, scheduled: scheduled}
	for _, pi := range parts {
		pin, res, skipped, err := ic.partition(ctx, pi, pass, scheduled)
		if err != nil {
			return nil, err
		}
		if skipped {
			sum.skipped++
			continue
		}
		sum.add(pin, res)
		report.Partitions = append(report.Partitions, pin)
		report.EntriesHashed += res.Hashed
		report.Ok = report.Ok && pin.GetOk()
	}
	report.FinishedAt = timestamppb.Now()
	if sc.complete() {
		ic.passDone(report, sum)
	}
	return report, nil
}

func (ic *integrity) nextPass(scheduled bool) uint64 {
	ic.mu.Lock()
	defer ic.mu.Unlock()
	if scheduled {
		ic.passes++
	}
	return ic.passes
}

// partitions lists the partitions in scope, tenants in key order, each
// tenant's oldest first.
func (ic *integrity) partitions(ctx context.Context, sc integrityScope) ([]engine.PartitionInfo, error) {
	e, release := ic.s.cluster.AcquireEngine()
	defer release()
	if sc.month != nil {
		pi, err := e.PartitionInfo(ctx, engine.Partition{Tenant: sc.tenant, Month: *sc.month})
		if err != nil {
			return nil, fmt.Errorf("server: integrity: %w", err)
		}
		return []engine.PartitionInfo{pi}, nil
	}
	tenants := []string{sc.tenant}
	if sc.complete() {
		var err error
		if tenants, err = e.Tenants(ctx); err != nil {
			return nil, fmt.Errorf("server: integrity: %w", err)
		}
	}
	var out []engine.PartitionInfo
	for _, t := range tenants {
		parts, err := e.Partitions(ctx, t)
		if err != nil {
			return nil, fmt.Errorf("server: integrity: %w", err)
		}
		out = append(out, parts...)
	}
	return out, nil
}

// partition verifies one partition and compares its root with the peers'.
// skipped is set when a scheduled pass could rely on an earlier result.
func (ic *integrity) partition(ctx context.Context, pi engine.PartitionInfo, pass uint64, scheduled bool) (
	pin *trailv1.PartitionIntegrity, res engine.VerifyResult, skipped bool, err error) {
	opts := engine.VerifyOptions{Limiter: ic.limiter}
	if scheduled {
		prev, ok := ic.previous(pi.Partition, pass)
		if ok && pi.Sealed && prev.Size == pi.Size && prev.Root == pi.Root {
			return nil, res, true, nil
		}
		if ok {
			opts.Resume = &prev
		}
	}
	// The engine is held per partition, not per pass: a snapshot restore
	// during a long pass need not keep the replaced engine around.
	e, release := ic.s.cluster.AcquireEngine()
	res, err = ic.verifier()(ctx, e, pi.Partition, opts)
	release()
	if err != nil {
		return nil, res, false, fmt.Errorf("server: integrity: %w", err)
	}
	ic.hashed.Add(float64(res.Hashed))
	pin = partitionIntegrity(res)
	var v problemAt
	if res.Problem != nil {
		v = problemAt{kind: string(res.Problem.Kind), where: res.Problem.Where}
	}
	if peer := ic.comparePeers(ctx, pin, res); v.kind == "" && peer != "" {
		v = problemAt{kind: "peer", where: peer}
	}
	if v.kind != "" {
		ic.forget(pi.Partition) // the next pass starts over from leaf 0
		ic.violation(pin, v)
		return pin, res, false, nil
	}
	ic.remember(res, pass)
	return pin, res, false, nil
}

// previous returns the earlier result a scheduled pass may build on.
func (ic *integrity) previous(p engine.Partition, pass uint64) (engine.VerifyResult, bool) {
	ic.mu.Lock()
	defer ic.mu.Unlock()
	v, ok := ic.last[p]
	if !ok || pass-v.fullPass >= integrityFullEvery {
		return engine.VerifyResult{}, false
	}
	return v.res, true
}

func (ic *integrity) remember(res engine.VerifyResult, pass uint64) {
	ic.mu.Lock()
	defer ic.mu.Unlock()
	v := verifiedAt{res: res, fullPass: pass}
	if prev, ok := ic.last[res.Partition]; ok && res.From > 0 {
		v.fullPass = prev.fullPass // a resumed run did not re-hash the start
	}
	ic.last[res.Partition] = v
}

func (ic *integrity) forget(p engine.Partition) {
	ic.mu.Lock()
	defer ic.mu.Unlock()
	delete(ic.last, p)
}

func partitionIntegrity(res engine.VerifyResult) *trailv1.PartitionIntegrity {
	pin := &trailv1.PartitionIntegrity{
		TenantId: res.Partition.Tenant, Partition: res.Partition.Month.String(), Size: res.Size,
		RootHash: res.Root[:], Sealed: res.Sealed, Ok: res.OK(),
	}
	if res.Problem != nil {
		pin.Problem = res.Problem.Error()
	}
	return pin
}

// problemAt is what a violation is and where: a problem kind of the engine
// and its place ("leaf 12"), or "peer" and the peer's id.
type problemAt struct{ kind, where string }

// comparePeers asks the peers for their roots at the verified size and
// records them in pin, with the nodes a majority disagrees with. It
// returns where the violation lies: those nodes, or else the first peer
// whose root differs; a peer that cannot answer (down, behind) is
// reported but is no violation.
func (ic *integrity) comparePeers(ctx context.Context, pin *trailv1.PartitionIntegrity, res engine.VerifyResult) string {
	if res.Size == 0 {
		return ""
	}
	differs := ""
	roots := []nodeRoot{{node: ic.node, root: res.Root}}
	for _, pr := range ic.s.cluster.PeerRoots(ctx, res.Partition, res.Size) {
		peer := &trailv1.PeerRoot{NodeId: pr.NodeID}
		switch {
		case pr.Err != nil:
			peer.Error = pr.Err.Error()
			roots = append(roots, nodeRoot{node: pr.NodeID, unknown: true})
			pin.Peers = append(pin.Peers, peer)
			continue
		case pr.Root != res.Root:
			peer.RootHash, pin.Ok = pr.Root[:], false
			if differs == "" {
				differs = pr.NodeID
			}
			if pin.Problem == "" {
				pin.Problem = fmt.Sprintf("root at size %d is %s here, %s on peer %s", res.Size, res.Root, pr.Root, pr.NodeID)
			}
		default:
			peer.RootHash, peer.Match = pr.Root[:], true
		}
		roots = append(roots, nodeRoot{node: pr.NodeID, root: pr.Root})
		pin.Peers = append(pin.Peers, peer)
	}
	if differs == "" {
		return ""
	}
	if pin.Suspects = outvoted(roots); len(pin.Suspects) > 0 {
		pin.Problem += fmt.Sprintf("; a majority of the %d nodes shares one root, not %s", len(roots), strings.Join(pin.Suspects, ", "))
		return strings.Join(pin.Suspects, ",")
	}
	return differs
}

// nodeRoot is one node's root of a partition at a size, or unknown when
// the node could not answer.
type nodeRoot struct {
	node    string
	root    merkle.Hash
	unknown bool
}

// outvoted returns the nodes whose root differs from the one a strict
// majority of all the nodes (those that could not answer included) share,
// or nil when no root has such a majority. Every copy re-hashes its own
// entries, so two copies agreeing on a root outweigh one that does not:
// the one is the copy to wipe and re-sync.
func outvoted(roots []nodeRoot) []string {
	votes := make(map[merkle.Hash]int)
	for _, r := range roots {
		if !r.unknown {
			votes[r.root]++
		}
	}
	for root, n := range votes {
		if 2*n <= len(roots) {
			continue
		}
		var out []string
		for _, r := range roots {
			if !r.unknown && r.root != root {
				out = append(out, r.node)
			}
		}
		return out
	}
	return nil
}

// violation counts a problem and appends it, durably, to the affected
// tenant's log and to the system tenant. The event id names the node, the
// partition and the problem's place, not the size: the affected tenant's
// open partition grows by the event itself, and the same problem found by
// a later pass must not be recorded again.
func (ic *integrity) violation(pin *trailv1.PartitionIntegrity, v problemAt) {
	ic.violations.WithLabelValues(v.kind).Inc()
	ic.s.log.Error("integrity violation", "tenant", pin.GetTenantId(), "partition", pin.GetPartition(),
		"size", pin.GetSize(), "kind", v.kind, "where", v.where, "problem", pin.GetProblem())
	id := fmt.Sprintf("integrity-violation/%s/%s/%s/%s/%s", ic.node, pin.GetTenantId(), pin.GetPartition(),
		v.kind, strings.ReplaceAll(v.where, " ", "-"))
	attrs := map[string]string{
		"node": ic.node, "tenant": pin.GetTenantId(), "partition": pin.GetPartition(),
		"size": strconv.FormatUint(pin.GetSize(), 10), "root": hex.EncodeToString(pin.GetRootHash()),
		"kind": v.kind, "where": v.where, "problem": truncate(pin.GetProblem(), maxAuditValue),
	}
	var evs []*trailv1.Event
	for _, tenant := range uniqueTenants(pin.GetTenantId(), engine.SystemTenant) {
		ev := ic.event(tenant, eventID(id), trailv1.Category_CATEGORY_SECURITY, actionIntegrityViolation, trailv1.Outcome_OUTCOME_FAILURE, attrs)
		ev.Target = &trailv1.Target{Type: "partition", Id: pin.GetTenantId() + "/" + pin.GetPartition()}
		evs = append(evs, ev)
	}
	ic.append(evs)
}

func uniqueTenants(a, b string) []string {
	if a == b {
		return []string{a}
	}
	return []string{a, b}
}

// eventID keeps a derived id within the engine's limit by hashing the
// part that does not fit.
func eventID(id string) string {
	if len(id) <= engine.MaxEventIDLen {
		return id
	}
	sum := sha256.Sum256([]byte(id))
	return id[:engine.MaxEventIDLen-33] + "/" + hex.EncodeToString(sum[:16])
}

// event builds an event this node records about itself.
func (ic *integrity) event(tenant, id string, cat trailv1.Category, action string, outcome trailv1.Outcome, attrs map[string]string) *trailv1.Event {
	return &trailv1.Event{
		TenantId: tenant, EventId: id, Category: cat, Action: action, Outcome: outcome,
		Actor:         &trailv1.Actor{Id: "node:" + ic.node, Type: "system"},
		SourceService: "trail-server",
		OccurredAt:    timestamppb.Now(),
		Attributes:    attrs,
	}
}

// append commits integrity events through Raft, retrying a few times: a
// retry of the same event is deduplicated. An event id already used (the
// same problem found by an earlier pass) counts as recorded. The appends
// are bound to the server's life, not to the caller who triggered them.
func (ic *integrity) append(evs []*trailv1.Event) {
	var err error
	for attempt := range integrityAttempts {
		if attempt > 0 {
			select {
			case <-ic.s.life.Done():
				return
			case <-time.After(time.Duration(attempt) * 200 * time.Millisecond):
			}
		}
		ctx, cancel := context.WithTimeout(ic.s.life, ic.s.cfg.CommitTimeout)
		var results []engine.Result
		results, err = ic.s.cluster.Append(ctx, evs)
		cancel()
		if err == nil {
			ic.logRejected(results)
			return
		}
	}
	ic.s.log.Error("integrity events not recorded", "events", len(evs), "err", err)
}

func (ic *integrity) logRejected(results []engine.Result) {
	for _, r := range results {
		if r.Err != nil && !isConflict(r.Err) {
			ic.s.log.Error("integrity event rejected", "err", r.Err)
		}
	}
}

func isConflict(err error) bool { return errors.Is(err, engine.ErrEventIDConflict) }

// passSummary accumulates what a pass did, for its verified event.
type passSummary struct {
	pass       uint64
	scheduled  bool
	verified   int
	skipped    int
	violations int
	pruned     uint64
}

func (ps *passSummary) add(pin *trailv1.PartitionIntegrity, res engine.VerifyResult) {
	ps.verified++
	ps.pruned += res.Pruned
	if !pin.GetOk() {
		ps.violations++
	}
}

// passDone records a complete pass: the gauge, and one event in the system
// tenant summarising it.
func (ic *integrity) passDone(r *trailv1.IntegrityReport, sum passSummary) {
	ic.lastPass.SetToCurrentTime()
	trigger, outcome := "on_demand", trailv1.Outcome_OUTCOME_SUCCESS
	if sum.scheduled {
		trigger = "scheduled"
	}
	if !r.GetOk() {
		outcome = trailv1.Outcome_OUTCOME_FAILURE
	}
	started, finished := r.GetStartedAt().AsTime(), r.GetFinishedAt().AsTime()
	attrs := map[string]string{
		"node": ic.node, "trigger": trigger, "pass": strconv.FormatUint(sum.pass, 10),
		"ok":                  strconv.FormatBool(r.GetOk()),
		"partitions_verified": strconv.Itoa(sum.verified), "partitions_skipped": strconv.Itoa(sum.skipped),
		"violations":     strconv.Itoa(sum.violations),
		"entries_hashed": strconv.FormatUint(r.GetEntriesHashed(), 10), "pruned_skipped": strconv.FormatUint(sum.pruned, 10),
		"started_at": started.Format(time.RFC3339Nano), "finished_at": finished.Format(time.RFC3339Nano),
		"duration_ms": strconv.FormatInt(finished.Sub(started).Milliseconds(), 10),
	}
	id := eventID(fmt.Sprintf("integrity-verified/%s/%d", ic.node, started.UnixNano()))
	ic.append([]*trailv1.Event{ic.event(engine.SystemTenant, id, trailv1.Category_CATEGORY_SYSTEM, actionIntegrityVerified, outcome, attrs)})
}

// signReport signs the report's verdict and SHA-256 (of its deterministic
// encoding) with the log key. The note reads
//
//	<log name> integrity report v1
//	node <node id>
//	<ok|violation> sha256:<hex>
//
// and, its second line not being a tree size, never parses as a checkpoint.
func (ic *integrity) signReport(r *trailv1.IntegrityReport, logName string) (string, error) {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(r)
	if err != nil {
		return "", fmt.Errorf("server: integrity report: %w", err)
	}
	sum := sha256.Sum256(b)
	verdict := "ok"
	if !r.GetOk() {
		verdict = "violation"
	}
	text := fmt.Sprintf("%s %s\nnode %s\n%s sha256:%s\n", logName, reportHeader, r.GetNodeId(), verdict, hex.EncodeToString(sum[:]))
	signed, err := note.Sign(&note.Note{Text: text}, ic.s.cfg.Signer)
	if err != nil {
		return "", fmt.Errorf("server: sign integrity report: %w", err)
	}
	return string(signed), nil
}

// VerifyIntegrity re-hashes the requested partitions on this node now,
// compares their roots with the peers', and returns a signed report. It
// needs an admin key.
func (c *complianceService) VerifyIntegrity(ctx context.Context, req *trailv1.VerifyIntegrityRequest) (_ *trailv1.VerifyIntegrityResponse, err error) {
	sc, err := integrityScopeOf(req)
	if err != nil {
		return nil, err
	}
	ac, err := c.s.authorize(ctx, permAdmin, trailv1.Category_CATEGORY_SYSTEM, req.GetTenantId())
	if err != nil {
		return nil, err
	}
	defer func() { ac.finish(err) }()
	ac.set("partition", req.GetPartition())
	ic := c.s.integrityOf()
	if ic == nil {
		return nil, fmt.Errorf("%w: the server is not serving yet", errUnavailable)
	}
	report, err := ic.run(ctx, sc, false)
	if err != nil {
		return nil, err
	}
	signed, err := ic.signReport(report, c.s.cluster.Engine().LogName())
	if err != nil {
		return nil, err
	}
	ac.set("ok", strconv.FormatBool(report.GetOk()))
	return &trailv1.VerifyIntegrityResponse{Report: report, SignedNote: signed}, nil
}

func integrityScopeOf(req *trailv1.VerifyIntegrityRequest) (integrityScope, error) {
	sc := integrityScope{tenant: req.GetTenantId()}
	if sc.tenant != "" {
		if err := checkTenant(sc.tenant); err != nil {
			return sc, err
		}
	}
	if req.GetPartition() == "" {
		return sc, nil
	}
	if sc.tenant == "" {
		return sc, badRequest("partition needs tenant_id")
	}
	m, err := engine.ParseMonth(req.GetPartition())
	if err != nil {
		return sc, badRequest("partition %q: want YYYY-MM", req.GetPartition())
	}
	sc.month = &m
	return sc, nil
}
