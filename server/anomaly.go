package server

import (
	"context"
	"strconv"
	"strings"

	"github.com/trailaudit/trail/compliance"
	"github.com/trailaudit/trail/engine"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// GetAnomalyRules returns a tenant's anomaly rules (the defaults when it
// has set none) to anyone who may read the tenant's log: auditors judge
// the anomaly events by the rules that produced them.
func (c *complianceService) GetAnomalyRules(ctx context.Context, req *trailv1.GetAnomalyRulesRequest) (_ *trailv1.GetAnomalyRulesResponse, err error) {
	tenant := req.GetTenantId()
	ac, err := c.s.authorizeTenant(ctx, permRead, trailv1.Category_CATEGORY_COMPLIANCE, tenant)
	if err != nil {
		return nil, err
	}
	defer func() { ac.finish(err) }()
	e, release := c.s.cluster.AcquireEngine()
	defer release()
	rules, err := compliance.ReadRules(e, tenant)
	if err != nil {
		return nil, toStatus(err)
	}
	return &trailv1.GetAnomalyRulesResponse{Rules: rules}, nil
}

// SetAnomalyRules replaces a tenant's anomaly rules (admin). They take
// effect on the leader's next batch, on every node alike, since they are
// a replicated setting.
func (c *complianceService) SetAnomalyRules(ctx context.Context, req *trailv1.SetAnomalyRulesRequest) (_ *trailv1.SetAnomalyRulesResponse, err error) {
	rules := req.GetRules()
	if rules == nil {
		return nil, badRequest("rules are required")
	}
	ac, err := c.s.authorizeTenant(ctx, permAdmin, trailv1.Category_CATEGORY_COMPLIANCE, rules.GetTenantId())
	if err != nil {
		return nil, err
	}
	defer func() { ac.finish(err) }()
	if rules.GetTenantId() == engine.SystemTenant {
		return nil, badRequest("tenant %s holds Trail's own records and has no anomaly rules", engine.SystemTenant)
	}
	if err := compliance.CheckRules(rules); err != nil {
		return nil, badRequest("%s", strings.TrimPrefix(err.Error(), compliance.ErrBadRules.Error()+": "))
	}
	op, err := compliance.RulesSetting(rules)
	if err != nil {
		return nil, toStatus(err)
	}
	ac.set("rules", rulesSummary(rules))
	if err := c.s.cluster.ApplySettings(ctx, []engine.SettingOp{op}); err != nil {
		return nil, toStatus(err)
	}
	return &trailv1.SetAnomalyRulesResponse{Rules: rules}, nil
}

// tenantPurposeCodes is the tenant's list of valid purpose codes from its
// anomaly rules; nil means any non-empty code is valid.
func (s *Server) tenantPurposeCodes(ctx context.Context, tenant string) ([]string, error) {
	e, release := s.cluster.AcquireEngine()
	defer release()
	rules, err := compliance.ReadRules(e, tenant)
	if err != nil {
		return nil, err
	}
	return rules.GetValidPurposeCodes(), ctx.Err()
}

func rulesSummary(r *trailv1.AnomalyRules) string {
	var b strings.Builder
	if r.GetDisabled() {
		return "disabled"
	}
	b.WriteString("max_subjects_per_hour=")
	b.WriteString(strconv.FormatUint(uint64(r.GetMaxDistinctSubjectsPerHour()), 10))
	if r.GetWorkingHoursStart() != "" {
		b.WriteString(" working_hours=" + r.GetWorkingHoursStart() + "-" + r.GetWorkingHoursEnd() + " " + r.GetTimeZone())
	}
	if n := len(r.GetValidPurposeCodes()); n > 0 {
		b.WriteString(" valid_purpose_codes=" + strings.Join(r.GetValidPurposeCodes(), ","))
	}
	return b.String()
}
