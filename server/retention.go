package server

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"golang.org/x/mod/sumdb/note"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/trailaudit/trail/compliance"
	"github.com/trailaudit/trail/engine"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// Retention (invariant 9): per-tenant policies, a dry run, and
// the sweep that prunes expired payloads through Raft, logs each pruning
// as a signed tombstone in the system tenant, and drops segment files
// left with nothing but hashes. The rules live in package compliance; this
// file decides when to apply them and carries them out.
//
// Every retention and legal-hold call needs an admin key, listing and the
// dry run included: they reveal what the log is about to forget, which
// only its operators act on.

const (
	// sweepChunk bounds the leaves of one prune command: a few hundred KiB
	// of Raft entry, and for a sealed partition one segment rewrite.
	sweepChunk          = 16384
	defaultDryRunLimit  = 1000
	maxDryRunLimit      = 10000
	durableAttempts     = 3
	actionPolicySet     = "audit.retention.policy_set"
	actionHoldCreated   = "audit.legal_hold.created"
	actionHoldReleased  = "audit.legal_hold.released"
	complianceSource    = "trail-server"
	durableRetryBackoff = 200 * time.Millisecond
)

// tenantScope says whether a compliance call must name a tenant.
type tenantScope bool

const (
	tenantRequired tenantScope = true
	tenantOptional tenantScope = false // "": every tenant, or none
)

// beginCompliance checks the call's tenant id, then authorizes an
// admin-only compliance call on it ("" for calls not scoped to one) and
// starts its audit record.
func (cs *complianceService) beginCompliance(ctx context.Context, tenant string, scope tenantScope) (*access, error) {
	check := checkOptionalTenant
	if scope == tenantRequired {
		check = checkTenant
	}
	if err := check(tenant); err != nil {
		return nil, err
	}
	return cs.s.authorize(ctx, permAdmin, trailv1.Category_CATEGORY_COMPLIANCE, tenant)
}

// complianceInvalid maps the compliance package's validation errors to
// InvalidArgument.
func complianceInvalid(err error) error {
	if errors.Is(err, compliance.ErrBadPolicy) || errors.Is(err, compliance.ErrBadHold) {
		return fmt.Errorf("%w: %v", errBadRequest, err)
	}
	return err
}

func (cs *complianceService) SetRetentionPolicy(ctx context.Context, req *trailv1.SetRetentionPolicyRequest) (_ *trailv1.SetRetentionPolicyResponse, err error) {
	ac, err := cs.beginCompliance(ctx, req.GetTenantId(), tenantRequired)
	if err != nil {
		return nil, err
	}
	defer func() { ac.finish(err) }()
	ac.set("category", compliance.CategoryName(req.GetCategory()))
	ac.setUint("retention_days", uint64(req.GetRetentionDays()))
	ac.set("reset", strconv.FormatBool(req.GetReset_()))
	policy, ops, err := policyChange(req)
	if err != nil {
		return nil, complianceInvalid(err)
	}
	if err := cs.s.cluster.ApplySettings(ctx, ops); err != nil {
		return nil, err
	}
	ev := func(tenant string) *trailv1.Event {
		return complianceEvent(ac, tenant, actionPolicySet, "retention_policy", policy.GetTenantId()+"/"+compliance.CategoryName(policy.GetCategory()),
			map[string]string{
				"tenant": policy.GetTenantId(), "category": compliance.CategoryName(policy.GetCategory()),
				"retention_days": strconv.FormatUint(uint64(policy.GetRetentionDays()), 10),
				"is_default":     strconv.FormatBool(policy.GetIsDefault()),
			})
	}
	if err := cs.s.appendDurable(ctx, bothTenants(policy.GetTenantId(), ev)...); err != nil {
		return nil, fmt.Errorf("retention policy set, but logging it failed: %w", err)
	}
	return &trailv1.SetRetentionPolicyResponse{Policy: policy}, nil
}

// policyChange returns the policy a request sets and the settings that
// store it.
func policyChange(req *trailv1.SetRetentionPolicyRequest) (*trailv1.RetentionPolicy, []engine.SettingOp, error) {
	p := &trailv1.RetentionPolicy{TenantId: req.GetTenantId(), Category: req.GetCategory(), RetentionDays: req.GetRetentionDays()}
	if !req.GetReset_() {
		ops, err := compliance.SetPolicyOps(p.TenantId, p.Category, p.RetentionDays)
		return p, ops, err
	}
	ops, err := compliance.ResetPolicyOps(p.TenantId, p.Category)
	if err != nil {
		return nil, nil, err
	}
	p.RetentionDays, _ = compliance.DefaultRetentionDays(p.Category)
	p.IsDefault = true
	return p, ops, nil
}

func (cs *complianceService) ListRetentionPolicies(ctx context.Context, req *trailv1.ListRetentionPoliciesRequest) (_ *trailv1.ListRetentionPoliciesResponse, err error) {
	ac, err := cs.beginCompliance(ctx, req.GetTenantId(), tenantRequired)
	if err != nil {
		return nil, err
	}
	defer func() { ac.finish(err) }()
	ps, err := compliance.Policies(ctx, cs.s.cluster.Engine(), req.GetTenantId())
	if err != nil {
		return nil, complianceInvalid(err)
	}
	return &trailv1.ListRetentionPoliciesResponse{Policies: ps}, nil
}

func (cs *complianceService) RetentionDryRun(ctx context.Context, req *trailv1.RetentionDryRunRequest) (_ *trailv1.RetentionDryRunResponse, err error) {
	ac, err := cs.beginCompliance(ctx, req.GetTenantId(), tenantOptional)
	if err != nil {
		return nil, err
	}
	defer func() { ac.finish(err) }()
	asOf := cs.s.cfg.Now()
	if req.GetAsOf() != nil {
		if err := req.GetAsOf().CheckValid(); err != nil {
			return nil, badRequest("as_of: %v", err)
		}
		asOf = req.GetAsOf().AsTime()
	}
	limit := int(req.GetLimit())
	switch {
	case limit == 0:
		limit = defaultDryRunLimit
	case limit > maxDryRunLimit:
		return nil, badRequest("limit %d above %d", limit, maxDryRunLimit)
	}
	ac.set("as_of", asOf.UTC().Format(time.RFC3339))
	eng, release := cs.s.cluster.AcquireEngine()
	defer release()
	tenants, err := sweepTenants(ctx, eng, req.GetTenantId())
	if err != nil {
		return nil, err
	}
	var r compliance.DryRunResult
	for _, t := range tenants {
		if err := compliance.DryRun(ctx, eng, t, asOf, limit, &r); err != nil {
			return nil, err
		}
	}
	ac.setUint("expired", r.Expired)
	ac.setUint("held", r.Held)
	return dryRunProto(&r), nil
}

func dryRunProto(r *compliance.DryRunResult) *trailv1.RetentionDryRunResponse {
	out := &trailv1.RetentionDryRunResponse{Expired: r.Expired, Held: r.Held, Truncated: r.Truncated()}
	for _, c := range r.Candidates {
		out.Candidates = append(out.Candidates, &trailv1.RetentionCandidate{
			TenantId: c.Partition.Tenant, Partition: c.Partition.Month.String(), LeafIndex: c.Leaf,
			EventId: c.EventID, Category: c.Category, SequencerTime: timestamppb.New(c.SequencerTime),
			ExpiredAt: timestamppb.New(c.ExpiredAt), HeldBy: c.HeldBy,
		})
	}
	for _, p := range r.Droppable {
		out.DroppablePartitions = append(out.DroppablePartitions, p.String())
	}
	return out
}

func (cs *complianceService) RunRetentionSweep(ctx context.Context, req *trailv1.RunRetentionSweepRequest) (_ *trailv1.RunRetentionSweepResponse, err error) {
	ac, err := cs.beginCompliance(ctx, req.GetTenantId(), tenantOptional)
	if err != nil {
		return nil, err
	}
	defer func() { ac.finish(err) }()
	resp, err := cs.s.sweep(ctx, req.GetTenantId(), cs.s.cfg.Now())
	ac.setUint("pruned", resp.GetPruned())
	ac.setUint("held", resp.GetHeld())
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// checkOptionalTenant validates a tenant filter, where "" means every
// tenant.
func checkOptionalTenant(tenant string) error {
	if tenant == "" {
		return nil
	}
	return checkTenant(tenant)
}

// sweepTenants is the tenant asked for, or every tenant for "".
func sweepTenants(ctx context.Context, eng *engine.Engine, tenant string) ([]string, error) {
	if tenant == "" {
		return eng.Tenants(ctx)
	}
	if err := checkTenant(tenant); err != nil {
		return nil, err
	}
	return []string{tenant}, nil
}

// runRetention sweeps every RetentionInterval while this node leads, until
// ctx ends. Only the leader sweeps, so two nodes never propose the same
// prunes; every node applies them through Raft.
func (s *Server) runRetention(ctx context.Context) {
	if s.cfg.RetentionInterval < 0 {
		return
	}
	s.whileLeading(ctx, s.cfg.RetentionInterval, func(ctx context.Context) {
		resp, err := s.sweep(ctx, "", s.cfg.Now())
		if err != nil && ctx.Err() == nil {
			s.log.Error("retention sweep", "err", err)
		}
		if resp.GetPruned() > 0 || len(resp.GetDroppedPartitions()) > 0 {
			s.log.Info("retention sweep", "pruned", resp.GetPruned(), "held", resp.GetHeld(),
				"tombstones", len(resp.GetTombstones()), "dropped", resp.GetDroppedPartitions())
		}
	})
}

// whileLeading runs job every interval while this node leads, until ctx
// ends: the background work only the leader does.
func (s *Server) whileLeading(ctx context.Context, interval time.Duration, job func(context.Context)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if s.cluster.Status().State == "Leader" {
			job(ctx)
		}
	}
}

// sweep prunes what expired by asOf in tenant ("" for every tenant). It
// returns what it did even when it fails part way.
func (s *Server) sweep(ctx context.Context, tenant string, asOf time.Time) (*trailv1.RunRetentionSweepResponse, error) {
	s.sweepMu.Lock()
	defer s.sweepMu.Unlock()
	resp := &trailv1.RunRetentionSweepResponse{}
	// Plan on state as fresh as this node knows of: on a follower, a hold
	// or policy committed a moment ago must count. (The state machine
	// re-checks holds anyway; this keeps tombstones from naming leaves it
	// will keep.)
	wctx, cancel := context.WithTimeout(ctx, s.cfg.CommitTimeout)
	err := s.cluster.WaitApplied(wctx, s.cluster.Status().CommitIndex)
	cancel()
	if err != nil && ctx.Err() != nil {
		return resp, ctx.Err()
	}
	eng, release := s.cluster.AcquireEngine()
	defer release()
	tenants, err := sweepTenants(ctx, eng, tenant)
	if err != nil {
		return resp, err
	}
	for _, t := range tenants {
		if err := s.sweepTenant(ctx, eng, t, asOf, resp); err != nil {
			return resp, fmt.Errorf("retention sweep of %s: %w", t, err)
		}
	}
	return resp, nil
}

func (s *Server) sweepTenant(ctx context.Context, eng *engine.Engine, tenant string, asOf time.Time, resp *trailv1.RunRetentionSweepResponse) error {
	holds, err := compliance.ActiveHolds(ctx, eng, tenant)
	if err != nil {
		return err
	}
	held, err := compliance.PlanPrunes(ctx, eng, tenant, asOf, holds, sweepChunk, func(c compliance.Chunk) error {
		return s.pruneChunk(ctx, eng, c, resp)
	})
	resp.Held += held
	if err != nil {
		return err
	}
	return s.dropPruned(ctx, eng, tenant, resp)
}

// pruneChunk logs one chunk's tombstone and then proposes its prune. The
// tombstone comes first so that no payload is ever removed without a
// record, whatever fails or crashes in between: a tombstone whose prune
// did not happen names payloads that are still there, which anyone can
// check, while a prune without its tombstone could not be told from
// tampering. Should the state machine keep some leaves (a hold committed
// since they were chosen), a following record says which.
func (s *Server) pruneChunk(ctx context.Context, eng *engine.Engine, c compliance.Chunk, resp *trailv1.RunRetentionSweepResponse) error {
	info, err := eng.PartitionInfo(ctx, c.Partition)
	if err != nil {
		return err
	}
	tomb := compliance.Tombstone{
		Tenant: c.Partition.Tenant, Partition: c.Partition.Month.String(), Category: c.Category,
		RetentionDays: c.RetentionDays, Leaves: c.Leaves, TreeSize: info.Size, Root: info.Root[:],
	}
	signed, err := note.Sign(&note.Note{Text: tomb.Body(eng.LogName())}, s.cfg.Signer)
	if err != nil {
		return fmt.Errorf("sign tombstone: %w", err)
	}
	ev := tomb.Event(string(signed), s.cfg.Now())
	// A conflict is this tombstone written by an earlier sweep whose
	// prune did not complete: the record exists, the prune goes ahead.
	if err := s.appendDurable(ctx, ev); err != nil && !errors.Is(err, engine.ErrEventIDConflict) {
		return fmt.Errorf("tombstone for %s not written, nothing pruned: %w", c.Partition, err)
	}
	n, err := s.cluster.Prune(ctx, c.Partition, c.Leaves)
	if err != nil {
		return fmt.Errorf("prune %s (tombstone %s written): %w", c.Partition, ev.GetEventId(), err)
	}
	resp.Tombstones = append(resp.Tombstones, ev.GetEventId())
	resp.Pruned += uint64(n)
	resp.Held += uint64(len(c.Leaves) - n)
	if n == len(c.Leaves) {
		return nil
	}
	pruned, err := s.prunedLeaves(ctx, c.Partition, c.Leaves, n)
	if err != nil {
		return fmt.Errorf("prune %s: %w", c.Partition, err)
	}
	kept := slices.DeleteFunc(slices.Clone(c.Leaves), func(l uint64) bool { _, found := slices.BinarySearch(pruned, l); return found })
	if err := s.appendDurable(ctx, compliance.KeptEvent(tomb, kept, s.cfg.Now())); err != nil {
		return fmt.Errorf("%d leaves of %s kept by a hold, but recording it failed: %w", len(kept), c.Partition, err)
	}
	return nil
}

// prunedLeaves returns which of leaves are pruned once this node has
// applied the prune that removed n of them: at once on the leader, after
// catching up on a follower (so that what the sweep reads next, the
// partitions to drop, reflects the prune).
func (s *Server) prunedLeaves(ctx context.Context, p engine.Partition, leaves []uint64, n int) ([]uint64, error) {
	probe := leaves
	if n == len(leaves) {
		probe = leaves[:1] // one command pruned them all: one seen pruned is all applied
	}
	wctx, cancel := context.WithTimeout(ctx, s.cfg.CommitTimeout)
	defer cancel()
	var out []uint64
	err := s.cluster.WaitFor(wctx, func(e *engine.Engine) (bool, error) {
		out = out[:0]
		for _, leaf := range probe {
			se, err := e.Entry(wctx, p, leaf)
			if err != nil {
				return false, err
			}
			if se.Pruned {
				out = append(out, leaf)
			}
		}
		return len(out) >= min(n, len(probe)), nil
	})
	if n == len(leaves) {
		return leaves, err
	}
	return out, err
}

// dropPruned drops the segment files of tenant's sealed partitions whose
// every payload is pruned and that no hold reaches. Holds are read again:
// one created during the sweep must count.
func (s *Server) dropPruned(ctx context.Context, eng *engine.Engine, tenant string, resp *trailv1.RunRetentionSweepResponse) error {
	holds, err := compliance.ActiveHolds(ctx, eng, tenant)
	if err != nil {
		return err
	}
	parts, err := eng.Partitions(ctx, tenant)
	if err != nil {
		return err
	}
	for _, p := range compliance.DropCandidates(parts, nil, holds) {
		err := s.cluster.DropSegment(ctx, p)
		switch {
		case errors.Is(err, engine.ErrNotDroppable), errors.Is(err, engine.ErrNotFound):
			// Refused (held payload left, dropped already): nothing lost,
			// the next sweep looks again.
			s.log.Info("retention: segment not dropped", "partition", p.String(), "err", err)
			continue
		case err != nil:
			return fmt.Errorf("drop %s: %w", p, err)
		}
		resp.DroppedPartitions = append(resp.DroppedPartitions, p.String())
		info, err := eng.PartitionInfo(ctx, p)
		if err != nil {
			return err
		}
		if err := s.appendDurable(ctx, compliance.DropEvent(info, s.cfg.Now())); err != nil {
			return fmt.Errorf("segment of %s dropped, but logging it failed: %w", p, err)
		}
	}
	return nil
}

// appendDurable commits events through Raft, unlike the best-effort
// access-audit queue: records of retention and legal holds must not be
// dropped. Their event ids are fixed, so a retry never appends twice.
func (s *Server) appendDurable(ctx context.Context, events ...*trailv1.Event) error {
	checked, err := checkOwnEvents(events)
	if err != nil {
		return err
	}
	for attempt := range durableAttempts {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return fmt.Errorf("%w (last attempt: %w)", ctx.Err(), err)
			case <-time.After(time.Duration(attempt) * durableRetryBackoff):
			}
		}
		var results []engine.Result
		if results, err = s.commit(ctx, checked); err == nil {
			return firstResultError(results)
		}
		if codeOf(err) != codes.Unavailable {
			return err
		}
	}
	return err
}

func firstResultError(results []engine.Result) error {
	for _, r := range results {
		if r.Err != nil {
			return fmt.Errorf("append %s: %w", r.Receipt.EventID, r.Err)
		}
	}
	return nil
}

// complianceEvent is a durable record of an administrative compliance
// action by the caller of ac, in tenant.
func complianceEvent(ac *access, tenant, action, targetType, targetID string, attrs map[string]string) *trailv1.Event {
	return &trailv1.Event{
		TenantId: tenant,
		EventId:  action + "-" + randomID(),
		Category: trailv1.Category_CATEGORY_COMPLIANCE,
		Action:   action,
		Outcome:  trailv1.Outcome_OUTCOME_SUCCESS,
		Actor: &trailv1.Actor{
			Id: "apikey:" + ac.p.keyID, Type: "api_key", Roles: []string{ac.p.roleName()},
			Ip: ac.ip, UserAgent: truncate(ac.ua, 512),
		},
		Target:        &trailv1.Target{Type: targetType, Id: targetID},
		SourceService: complianceSource,
		OccurredAt:    timestamppb.New(ac.at),
		Attributes:    attrs,
	}
}

// bothTenants builds a record for the system tenant and, when it is
// another one, for the tenant it concerns, so that each log shows it.
func bothTenants(tenant string, build func(tenant string) *trailv1.Event) []*trailv1.Event {
	out := []*trailv1.Event{build(engine.SystemTenant)}
	if tenant != engine.SystemTenant {
		ev := build(tenant)
		ev.EventId = out[0].GetEventId() // one action, one id, in both logs
		out = append(out, ev)
	}
	return out
}
