package server

import (
	"context"
	"fmt"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/trailaudit/trail/compliance"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// Legal holds (invariant 9): a held entry is never pruned. A hold
// is a setting committed through Raft; the state machine checks holds on
// every prune (compliance.FilterHeld), so a hold protects its entries from
// the moment it commits, whatever a sweep already planned. Creating and
// releasing a hold are recorded durably, as compliance events, in the
// system tenant and in the hold's tenant. Every call needs an admin key.

func (cs *complianceService) CreateLegalHold(ctx context.Context, req *trailv1.CreateLegalHoldRequest) (_ *trailv1.CreateLegalHoldResponse, err error) {
	if req.GetHold() == nil {
		return nil, badRequest("hold is required")
	}
	ac, err := cs.beginCompliance(ctx, req.GetHold().GetTenantId(), tenantRequired)
	if err != nil {
		return nil, err
	}
	defer func() { ac.finish(err) }()
	h := proto.Clone(req.GetHold()).(*trailv1.LegalHold)
	h.Id = "hold-" + randomID()
	h.CreatedAt = timestamppb.New(cs.s.cfg.Now())
	h.CreatedBy = "apikey:" + ac.p.keyID
	h.ReleasedAt, h.ReleasedBy, h.ReleaseReason = nil, "", ""
	ac.set("hold_id", h.GetId())
	ac.set("case_reference", h.GetCaseReference())
	ops, err := compliance.HoldOps(h)
	if err != nil {
		return nil, complianceInvalid(err)
	}
	if err := cs.s.cluster.ApplySettings(ctx, ops); err != nil {
		return nil, err
	}
	if err := cs.s.appendDurable(ctx, holdEvents(ac, h, actionHoldCreated)...); err != nil {
		return nil, fmt.Errorf("legal hold %s created, but logging it failed: %w", h.GetId(), err)
	}
	return &trailv1.CreateLegalHoldResponse{Hold: h}, nil
}

// ReleaseLegalHold releases an active hold. It reads the hold from this
// node's applied state, so a hold created moments ago through another node
// may not be found yet.
func (cs *complianceService) ReleaseLegalHold(ctx context.Context, req *trailv1.ReleaseLegalHoldRequest) (_ *trailv1.ReleaseLegalHoldResponse, err error) {
	ac, err := cs.beginCompliance(ctx, "", tenantOptional)
	if err != nil {
		return nil, err
	}
	defer func() { ac.finish(err) }()
	ac.set("hold_id", req.GetId())
	if err := compliance.CheckHoldID(req.GetId()); err != nil {
		return nil, complianceInvalid(err)
	}
	if strings.TrimSpace(req.GetReason()) == "" {
		return nil, badRequest("reason is required to release a legal hold")
	}
	h, err := compliance.LoadHold(cs.s.cluster.Engine(), req.GetId())
	if err != nil {
		return nil, err
	}
	ac.tenant = h.GetTenantId()
	if !compliance.Active(h) {
		return nil, fmt.Errorf("%w: legal hold %s was released at %s", errPrecondition, h.GetId(), h.GetReleasedAt().AsTime().Format(time.RFC3339))
	}
	rel := compliance.Released(h, "apikey:"+ac.p.keyID, req.GetReason(), cs.s.cfg.Now())
	ops, err := compliance.HoldOps(rel)
	if err != nil {
		return nil, complianceInvalid(err)
	}
	if err := cs.s.cluster.ApplySettings(ctx, ops); err != nil {
		return nil, err
	}
	if err := cs.s.appendDurable(ctx, holdEvents(ac, rel, actionHoldReleased)...); err != nil {
		return nil, fmt.Errorf("legal hold %s released, but logging it failed: %w", h.GetId(), err)
	}
	return &trailv1.ReleaseLegalHoldResponse{Hold: rel}, nil
}

func (cs *complianceService) ListLegalHolds(ctx context.Context, req *trailv1.ListLegalHoldsRequest) (_ *trailv1.ListLegalHoldsResponse, err error) {
	ac, err := cs.beginCompliance(ctx, req.GetTenantId(), tenantOptional)
	if err != nil {
		return nil, err
	}
	defer func() { ac.finish(err) }()
	hs, err := compliance.ListHolds(ctx, cs.s.cluster.Engine(), req.GetTenantId(), req.GetIncludeReleased())
	if err != nil {
		return nil, err
	}
	return &trailv1.ListLegalHoldsResponse{Holds: hs}, nil
}

// holdEvents records action on hold h in the system tenant and the hold's
// tenant. The event id derives from the hold and the action: each happens
// once per hold.
func holdEvents(ac *access, h *trailv1.LegalHold, action string) []*trailv1.Event {
	attrs := map[string]string{
		"hold_id":        h.GetId(),
		"case_reference": h.GetCaseReference(),
		"reason":         h.GetReason(),
		"scope":          compliance.Scope(h),
		"created_by":     h.GetCreatedBy(),
	}
	if !compliance.Active(h) {
		attrs["released_by"] = h.GetReleasedBy()
		attrs["release_reason"] = h.GetReleaseReason()
	}
	id := strings.ReplaceAll(strings.TrimPrefix(action, "audit."), ".", "-") + "-" + h.GetId()
	return bothTenants(h.GetTenantId(), func(tenant string) *trailv1.Event {
		ev := complianceEvent(ac, tenant, action, "legal_hold", h.GetId(), attrs)
		ev.EventId = id
		return ev
	})
}
