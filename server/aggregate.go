package server

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/trailaudit/trail/engine"
	"github.com/trailaudit/trail/filter"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// groupings maps the API's GroupBy to the engine's.
var groupings = map[trailv1.GroupBy]engine.GroupBy{
	trailv1.GroupBy_GROUP_BY_ACTOR:     engine.GroupActor,
	trailv1.GroupBy_GROUP_BY_SUBJECT:   engine.GroupSubject,
	trailv1.GroupBy_GROUP_BY_TARGET:    engine.GroupTarget,
	trailv1.GroupBy_GROUP_BY_CATEGORY:  engine.GroupCategory,
	trailv1.GroupBy_GROUP_BY_ACTION:    engine.GroupAction,
	trailv1.GroupBy_GROUP_BY_PURPOSE:   engine.GroupPurpose,
	trailv1.GroupBy_GROUP_BY_PII_FIELD: engine.GroupPIIField,
	trailv1.GroupBy_GROUP_BY_HOUR:      engine.GroupHour,
	trailv1.GroupBy_GROUP_BY_DAY:       engine.GroupDay,
	trailv1.GroupBy_GROUP_BY_MONTH:     engine.GroupMonth,
}

// Aggregate counts the events a filter selects, grouped by a field or a
// time bucket. Grouping by data subject or PII field, like filtering by
// them, is a report on people's data and needs permPIIReport.
func (rs *readService) Aggregate(ctx context.Context, req *trailv1.AggregateRequest) (_ *trailv1.AggregateResponse, err error) {
	tenant := req.GetTenantId()
	if err := checkTenant(tenant); err != nil {
		return nil, err
	}
	by, ok := groupings[req.GetGroupBy()]
	if !ok {
		return nil, badRequest("group_by is required: one of actor, subject, target, category, action, purpose, pii_field, hour, day, month")
	}
	f, err := filter.FromProto(req.GetFilter())
	if err != nil {
		return nil, badRequest("%v", err)
	}
	perm := filterPerm(&f)
	if by == engine.GroupSubject || by == engine.GroupPIIField {
		perm = permPIIReport
	}
	ac, err := rs.s.authorize(ctx, perm, trailv1.Category_CATEGORY_DATA_ACCESS, tenant)
	if err != nil {
		return nil, err
	}
	defer func() { ac.finish(err) }()
	ac.set("filter", f.Describe())
	ac.set("group_by", req.GetGroupBy().String())
	if err := rs.s.waitApplied(ctx, req.GetMinIndex()); err != nil {
		return nil, err
	}
	actx, end := rs.s.span(ctx, "trail.aggregate", attribute.String("trail.tenant", tenant), attribute.String("trail.group_by", req.GetGroupBy().String()))
	res, err := rs.s.cluster.Engine().Aggregate(actx, engine.Aggregation{Tenant: tenant, Filter: f, By: by, Limit: int(req.GetLimit())})
	end(err)
	if err != nil {
		return nil, err
	}
	resp := &trailv1.AggregateResponse{Total: res.Total, Groups: make([]*trailv1.AggregateGroup, len(res.Groups))}
	for i, g := range res.Groups {
		resp.Groups[i] = &trailv1.AggregateGroup{Key: g.Key, Count: g.Count}
		if !g.Start.IsZero() {
			resp.Groups[i].Start = timestamppb.New(g.Start)
		}
	}
	ac.setUint("results", res.Total)
	return resp, nil
}

// proveHits adds to resp each hit's inclusion proof against its
// partition's current signed checkpoint.
func (rs *readService) proveHits(ctx context.Context, eng *engine.Engine, tenant string, hits []engine.Hit, resp *trailv1.SearchResponse) error {
	sizes := map[engine.Month]uint64{}
	for _, h := range hits {
		m := h.Partition.Month
		size, ok := sizes[m]
		if !ok {
			cp, err := eng.Checkpoint(ctx, h.Partition, 0)
			if err != nil {
				return err
			}
			signed, err := rs.s.sign(cp)
			if err != nil {
				return err
			}
			size = cp.Size
			sizes[m] = size
			resp.Checkpoints = append(resp.Checkpoints, &trailv1.PartitionCheckpoint{Partition: m.String(), Checkpoint: signed})
		}
		proof, _, err := eng.InclusionProof(ctx, engine.Partition{Tenant: tenant, Month: m}, h.LeafIndex, size)
		if err != nil {
			return err
		}
		resp.Proofs = append(resp.Proofs, &trailv1.InclusionProof{Partition: m.String(), LeafIndex: h.LeafIndex, TreeSize: size, Proof: hashesProto(proof)})
	}
	return nil
}

// GetSearchSettings returns a tenant's full-text settings.
func (as *adminService) GetSearchSettings(ctx context.Context, req *trailv1.GetSearchSettingsRequest) (_ *trailv1.SearchSettings, err error) {
	tenant := req.GetTenantId()
	ac, err := as.s.authorizeTenant(ctx, permRead, trailv1.Category_CATEGORY_SYSTEM, tenant)
	if err != nil {
		return nil, err
	}
	defer func() { ac.finish(err) }()
	return as.searchSettings(tenant), nil
}

// SetSearchSettings chooses the attributes a tenant's full-text search
// reads; it applies to events appended after it.
func (as *adminService) SetSearchSettings(ctx context.Context, req *trailv1.SetSearchSettingsRequest) (_ *trailv1.SearchSettings, err error) {
	tenant := req.GetTenantId()
	ac, err := as.s.authorizeTenant(ctx, permAdmin, trailv1.Category_CATEGORY_SYSTEM, tenant)
	if err != nil {
		return nil, err
	}
	defer func() { ac.finish(err) }()
	keys := req.GetTextAttributes()
	switch {
	case req.GetReset_() && len(keys) > 0:
		return nil, badRequest("reset goes without text_attributes")
	case req.GetReset_():
		keys = nil
	case keys == nil:
		keys = []string{} // index no attribute
	}
	op, err := engine.TextAttributesSetting(tenant, keys)
	if err != nil {
		return nil, badRequest("%v", err)
	}
	ac.set("text_attributes", string(op.Value))
	if err := as.s.cluster.ApplySettings(ctx, []engine.SettingOp{op}); err != nil {
		return nil, toStatus(err)
	}
	return as.searchSettings(tenant), nil
}

func (as *adminService) searchSettings(tenant string) *trailv1.SearchSettings {
	eng := as.s.cluster.Engine()
	return &trailv1.SearchSettings{TenantId: tenant, TextAttributes: eng.TextAttributes(tenant), Default: !eng.TextAttributesChosen(tenant)}
}
