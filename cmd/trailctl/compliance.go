package main

import (
	"context"
	"flag"
	"fmt"
	"strconv"
	"strings"

	"google.golang.org/protobuf/types/known/timestamppb"

	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// Retention policies, retention sweeps and legal holds (admin keys only).

func cmdRetentionList(ctx context.Context, e *env, args []string) error {
	var n netCommand
	fs := newFlagSet("retention list")
	n.register(fs)
	pos, err := parseCommand(e, "retention list", fs, args, 1, 1)
	if err != nil {
		return err
	}
	if err := validTenant(pos[0]); err != nil {
		return usageErrorf("%v", err)
	}
	return withCompliance(ctx, e, &n, func(ctx context.Context, c trailv1.ComplianceServiceClient) error {
		resp, err := c.ListRetentionPolicies(ctx, &trailv1.ListRetentionPoliciesRequest{TenantId: pos[0]})
		if err != nil {
			return wrapRPC("ListRetentionPolicies", err)
		}
		if n.json {
			return writeJSON(e.stdout, resp)
		}
		return printPolicies(e, resp.GetPolicies())
	})
}

func printPolicies(e *env, ps []*trailv1.RetentionPolicy) error {
	tw := newTable(e.stdout)
	fmt.Fprintln(tw, "TENANT\tCATEGORY\tDAYS\tDEFAULT")
	for _, p := range ps {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%t\n", p.GetTenantId(), shortEnum("CATEGORY_", p.GetCategory().String()),
			p.GetRetentionDays(), p.GetIsDefault())
	}
	return tw.Flush()
}

func cmdRetentionSet(ctx context.Context, e *env, args []string) error {
	var n netCommand
	var reset bool
	fs := newFlagSet("retention set")
	n.register(fs)
	fs.BoolVar(&reset, "reset", false, "restore the category's default instead of setting DAYS")
	pos, err := parseCommand(e, "retention set", fs, args, 2, 3)
	if err != nil {
		return err
	}
	req, err := retentionSetRequest(pos, reset)
	if err != nil {
		return usageErrorf("%v", err)
	}
	return withCompliance(ctx, e, &n, func(ctx context.Context, c trailv1.ComplianceServiceClient) error {
		resp, err := c.SetRetentionPolicy(ctx, req)
		if err != nil {
			return wrapRPC("SetRetentionPolicy", err)
		}
		if n.json {
			return writeJSON(e.stdout, resp)
		}
		return printPolicies(e, []*trailv1.RetentionPolicy{resp.GetPolicy()})
	})
}

// retentionSetRequest reads TENANT CATEGORY [DAYS]: DAYS exactly when not
// resetting.
func retentionSetRequest(pos []string, reset bool) (*trailv1.SetRetentionPolicyRequest, error) {
	if err := validTenant(pos[0]); err != nil {
		return nil, err
	}
	c, err := parseCategory(pos[1])
	if err != nil {
		return nil, err
	}
	req := &trailv1.SetRetentionPolicyRequest{TenantId: pos[0], Category: c, Reset_: reset}
	switch {
	case reset && len(pos) == 3:
		return nil, fmt.Errorf("give DAYS or --reset, not both")
	case reset:
		return req, nil
	case len(pos) != 3:
		return nil, fmt.Errorf("DAYS is required (730 to 3653), or --reset")
	}
	days, err := strconv.ParseUint(pos[2], 10, 32)
	if err != nil {
		return nil, fmt.Errorf("DAYS %q: want a whole number of days", pos[2])
	}
	req.RetentionDays = uint32(days)
	return req, nil
}

func cmdRetentionDryRun(ctx context.Context, e *env, args []string) error {
	var n netCommand
	var tenant, asOf string
	var limit uint
	fs := newFlagSet("retention dry-run")
	n.register(fs)
	fs.StringVar(&tenant, "tenant", "", "only this tenant (default every tenant)")
	fs.StringVar(&asOf, "as-of", "", "evaluate as of this time, RFC 3339 or a date (default now)")
	fs.UintVar(&limit, "limit", 0, "list at most this many entries (default 1000; the counts cover all)")
	if _, err := parseCommand(e, "retention dry-run", fs, args, 0, 0); err != nil {
		return err
	}
	req := &trailv1.RetentionDryRunRequest{TenantId: tenant, Limit: uint32(limit)}
	if err := checkOptionalTenant(tenant); err != nil {
		return usageErrorf("--tenant: %v", err)
	}
	if asOf != "" {
		t, err := parseTime(asOf)
		if err != nil {
			return usageErrorf("--as-of: %v", err)
		}
		req.AsOf = timestamppb.New(t)
	}
	return withCompliance(ctx, e, &n, func(ctx context.Context, c trailv1.ComplianceServiceClient) error {
		resp, err := c.RetentionDryRun(ctx, req)
		if err != nil {
			return wrapRPC("RetentionDryRun", err)
		}
		if n.json {
			return writeJSON(e.stdout, resp)
		}
		return printDryRun(e, resp)
	})
}

func printDryRun(e *env, r *trailv1.RetentionDryRunResponse) error {
	tw := newTable(e.stdout)
	fmt.Fprintln(tw, "TENANT\tPARTITION\tLEAF\tEVENT\tCATEGORY\tEXPIRED AT\tHELD BY")
	for _, c := range r.GetCandidates() {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\n", c.GetTenantId(), c.GetPartition(), c.GetLeafIndex(), c.GetEventId(),
			shortEnum("CATEGORY_", c.GetCategory().String()), formatTime(c.GetExpiredAt()), strings.Join(c.GetHeldBy(), ","))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	more := ""
	if r.GetTruncated() {
		more = fmt.Sprintf(" (%d listed)", len(r.GetCandidates()))
	}
	fmt.Fprintf(e.stdout, "\n%d expired%s, %d held, %d would be pruned\n", r.GetExpired(), more, r.GetHeld(), r.GetExpired()-r.GetHeld())
	if len(r.GetDroppablePartitions()) > 0 {
		fmt.Fprintf(e.stdout, "segment files that would be dropped: %s\n", strings.Join(r.GetDroppablePartitions(), " "))
	}
	return nil
}

func cmdRetentionSweep(ctx context.Context, e *env, args []string) error {
	var n netCommand
	var tenant string
	fs := newFlagSet("retention sweep")
	n.register(fs)
	fs.StringVar(&tenant, "tenant", "", "only this tenant (default every tenant)")
	if _, err := parseCommand(e, "retention sweep", fs, args, 0, 0); err != nil {
		return err
	}
	if err := checkOptionalTenant(tenant); err != nil {
		return usageErrorf("--tenant: %v", err)
	}
	return withCompliance(ctx, e, &n, func(ctx context.Context, c trailv1.ComplianceServiceClient) error {
		resp, err := c.RunRetentionSweep(ctx, &trailv1.RunRetentionSweepRequest{TenantId: tenant})
		if err != nil {
			return wrapRPC("RunRetentionSweep", err)
		}
		if n.json {
			return writeJSON(e.stdout, resp)
		}
		return keyValues(e.stdout, [][2]string{
			{"pruned", formatUint(resp.GetPruned())},
			{"held", formatUint(resp.GetHeld())},
			{"tombstones", strings.Join(resp.GetTombstones(), " ")},
			{"dropped", strings.Join(resp.GetDroppedPartitions(), " ")},
		})
	})
}

func checkOptionalTenant(t string) error {
	if t == "" {
		return nil
	}
	return validTenant(t)
}

// holdFlags are the scope and justification of a new hold.
type holdFlags struct {
	tenant, subject, actor, targetType, targetID string
	category, from, to, caseRef, reason          string
}

func (f *holdFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.tenant, "tenant", "", "tenant the hold applies to (required)")
	fs.StringVar(&f.subject, "subject", "", "only entries about this data subject")
	fs.StringVar(&f.actor, "actor", "", "only entries by this actor")
	fs.StringVar(&f.targetType, "target-type", "", "only entries on targets of this type")
	fs.StringVar(&f.targetID, "target-id", "", "only entries on this target id")
	fs.StringVar(&f.category, "category", "", "only entries of this category")
	fs.StringVar(&f.from, "from", "", "only entries sequenced at or after this time (RFC 3339 or a date)")
	fs.StringVar(&f.to, "to", "", "only entries sequenced before this time")
	fs.StringVar(&f.caseRef, "case", "", "case reference (required)")
	fs.StringVar(&f.reason, "reason", "", "why the entries are held (required)")
}

func (f *holdFlags) hold() (*trailv1.LegalHold, error) {
	if err := validTenant(f.tenant); err != nil {
		return nil, fmt.Errorf("--tenant: %v", err)
	}
	if f.caseRef == "" || f.reason == "" {
		return nil, fmt.Errorf("--case and --reason are required")
	}
	h := &trailv1.LegalHold{TenantId: f.tenant, SubjectId: f.subject, ActorId: f.actor, TargetType: f.targetType,
		TargetId: f.targetID, CaseReference: f.caseRef, Reason: f.reason}
	if f.category != "" {
		c, err := parseCategory(f.category)
		if err != nil {
			return nil, fmt.Errorf("--category: %v", err)
		}
		h.Category = c
	}
	for _, t := range []struct {
		flag, v string
		dst     **timestamppb.Timestamp
	}{{"--from", f.from, &h.From}, {"--to", f.to, &h.To}} {
		if t.v == "" {
			continue
		}
		tm, err := parseTime(t.v)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", t.flag, err)
		}
		*t.dst = timestamppb.New(tm)
	}
	return h, nil
}

func cmdHoldsCreate(ctx context.Context, e *env, args []string) error {
	var n netCommand
	var f holdFlags
	fs := newFlagSet("holds create")
	n.register(fs)
	f.register(fs)
	if _, err := parseCommand(e, "holds create", fs, args, 0, 0); err != nil {
		return err
	}
	h, err := f.hold()
	if err != nil {
		return usageErrorf("%v", err)
	}
	return withCompliance(ctx, e, &n, func(ctx context.Context, c trailv1.ComplianceServiceClient) error {
		resp, err := c.CreateLegalHold(ctx, &trailv1.CreateLegalHoldRequest{Hold: h})
		if err != nil {
			return wrapRPC("CreateLegalHold", err)
		}
		if n.json {
			return writeJSON(e.stdout, resp)
		}
		return printHolds(e, []*trailv1.LegalHold{resp.GetHold()})
	})
}

func cmdHoldsRelease(ctx context.Context, e *env, args []string) error {
	var n netCommand
	var reason string
	fs := newFlagSet("holds release")
	n.register(fs)
	fs.StringVar(&reason, "reason", "", "why the hold ends (required)")
	pos, err := parseCommand(e, "holds release", fs, args, 1, 1)
	if err != nil {
		return err
	}
	if reason == "" {
		return usageErrorf("--reason is required")
	}
	return withCompliance(ctx, e, &n, func(ctx context.Context, c trailv1.ComplianceServiceClient) error {
		resp, err := c.ReleaseLegalHold(ctx, &trailv1.ReleaseLegalHoldRequest{Id: pos[0], Reason: reason})
		if err != nil {
			return wrapRPC("ReleaseLegalHold", err)
		}
		if n.json {
			return writeJSON(e.stdout, resp)
		}
		return printHolds(e, []*trailv1.LegalHold{resp.GetHold()})
	})
}

func cmdHoldsList(ctx context.Context, e *env, args []string) error {
	var n netCommand
	var tenant string
	var all bool
	fs := newFlagSet("holds list")
	n.register(fs)
	fs.StringVar(&tenant, "tenant", "", "only this tenant's holds")
	fs.BoolVar(&all, "all", false, "include released holds")
	if _, err := parseCommand(e, "holds list", fs, args, 0, 0); err != nil {
		return err
	}
	if err := checkOptionalTenant(tenant); err != nil {
		return usageErrorf("--tenant: %v", err)
	}
	return withCompliance(ctx, e, &n, func(ctx context.Context, c trailv1.ComplianceServiceClient) error {
		resp, err := c.ListLegalHolds(ctx, &trailv1.ListLegalHoldsRequest{TenantId: tenant, IncludeReleased: all})
		if err != nil {
			return wrapRPC("ListLegalHolds", err)
		}
		if n.json {
			return writeJSON(e.stdout, resp)
		}
		return printHolds(e, resp.GetHolds())
	})
}

func printHolds(e *env, hs []*trailv1.LegalHold) error {
	tw := newTable(e.stdout)
	fmt.Fprintln(tw, "ID\tTENANT\tSCOPE\tCASE\tREASON\tCREATED\tRELEASED")
	for _, h := range hs {
		released := "-"
		if h.GetReleasedAt() != nil {
			released = formatTime(h.GetReleasedAt()) + " (" + h.GetReleaseReason() + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", h.GetId(), h.GetTenantId(), holdScope(h), h.GetCaseReference(),
			h.GetReason(), formatTime(h.GetCreatedAt()), released)
	}
	return tw.Flush()
}

// holdScope lists the fields a hold narrows its tenant by.
func holdScope(h *trailv1.LegalHold) string {
	var parts []string
	add := func(k, v string) {
		if v != "" {
			parts = append(parts, k+"="+v)
		}
	}
	add("subject", h.GetSubjectId())
	add("actor", h.GetActorId())
	add("target", strings.Trim(h.GetTargetType()+"/"+h.GetTargetId(), "/"))
	if h.GetCategory() != trailv1.Category_CATEGORY_UNSPECIFIED {
		add("category", shortEnum("CATEGORY_", h.GetCategory().String()))
	}
	if h.GetFrom() != nil {
		add("from", formatTime(h.GetFrom()))
	}
	if h.GetTo() != nil {
		add("to", formatTime(h.GetTo()))
	}
	if len(parts) == 0 {
		return "(whole tenant)"
	}
	return strings.Join(parts, " ")
}
