package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// withCompliance runs fn with a ComplianceService client.
func withCompliance(ctx context.Context, e *env, n *netCommand, fn func(context.Context, trailv1.ComplianceServiceClient) error) error {
	return withClient(ctx, e, n, trailv1.NewComplianceServiceClient, fn)
}

func cmdAnomalyGet(ctx context.Context, e *env, args []string) error {
	var n netCommand
	fs := newFlagSet("anomaly get")
	n.register(fs)
	pos, err := parseCommand(e, "anomaly get", fs, args, 1, 1)
	if err != nil {
		return err
	}
	if err := validTenant(pos[0]); err != nil {
		return usageErrorf("%v", err)
	}
	return withCompliance(ctx, e, &n, func(ctx context.Context, c trailv1.ComplianceServiceClient) error {
		resp, err := c.GetAnomalyRules(ctx, &trailv1.GetAnomalyRulesRequest{TenantId: pos[0]})
		if err != nil {
			return wrapRPC("GetAnomalyRules", err)
		}
		return printRules(e, resp.GetRules(), n.json)
	})
}

// anomalySetFlags are the rules as flags; unset flags keep the tenant's
// current value, so one rule can be changed without restating the rest.
type anomalySetFlags struct {
	disabled, enabled bool
	maxSubjects       uint
	hours, timeZone   string
	days              string
	purposes          stringList
	clearPurposes     bool
}

func cmdAnomalySet(ctx context.Context, e *env, args []string) error {
	var n netCommand
	var f anomalySetFlags
	fs := newFlagSet("anomaly set")
	n.register(fs)
	fs.BoolVar(&f.disabled, "disable", false, "turn the tenant's anomaly rules off")
	fs.BoolVar(&f.enabled, "enable", false, "turn them back on")
	fs.UintVar(&f.maxSubjects, "max-subjects-per-hour", 0, "flag an actor reading more distinct subjects than this within an hour")
	fs.StringVar(&f.hours, "working-hours", "", `working hours "HH:MM-HH:MM" ("none" to drop the off-hours rule)`)
	fs.StringVar(&f.timeZone, "time-zone", "", "IANA time zone of the working hours, e.g. Europe/Tallinn")
	fs.StringVar(&f.days, "working-days", "", "working days as numbers, 1 = Monday .. 7 = Sunday, e.g. 1-5 or 1,2,3,4,5,6")
	fs.Var(&f.purposes, "purpose", "a valid purpose code (repeatable; replaces the list)")
	fs.BoolVar(&f.clearPurposes, "any-purpose", false, "accept any non-empty purpose code")
	pos, err := parseCommand(e, "anomaly set", fs, args, 1, 1)
	if err != nil {
		return err
	}
	if err := validTenant(pos[0]); err != nil {
		return usageErrorf("%v", err)
	}
	if f.disabled && f.enabled {
		return usageErrorf("--disable and --enable together")
	}
	return withCompliance(ctx, e, &n, func(ctx context.Context, c trailv1.ComplianceServiceClient) error {
		cur, err := c.GetAnomalyRules(ctx, &trailv1.GetAnomalyRulesRequest{TenantId: pos[0]})
		if err != nil {
			return wrapRPC("GetAnomalyRules", err)
		}
		rules := cur.GetRules()
		if err := f.apply(rules); err != nil {
			return usageErrorf("%v", err)
		}
		resp, err := c.SetAnomalyRules(ctx, &trailv1.SetAnomalyRulesRequest{Rules: rules})
		if err != nil {
			return wrapRPC("SetAnomalyRules", err)
		}
		return printRules(e, resp.GetRules(), n.json)
	})
}

func (f *anomalySetFlags) apply(r *trailv1.AnomalyRules) error {
	if f.disabled || f.enabled {
		r.Disabled = f.disabled
	}
	if f.maxSubjects > 0 {
		r.MaxDistinctSubjectsPerHour = uint32(f.maxSubjects)
	}
	switch {
	case f.hours == "none":
		r.WorkingHoursStart, r.WorkingHoursEnd = "", ""
	case f.hours != "":
		start, end, ok := strings.Cut(f.hours, "-")
		if !ok {
			return fmt.Errorf(`--working-hours %q: want "HH:MM-HH:MM"`, f.hours)
		}
		r.WorkingHoursStart, r.WorkingHoursEnd = start, end
	}
	if f.timeZone != "" {
		r.TimeZone = f.timeZone
	}
	if f.days != "" {
		days, err := parseDays(f.days)
		if err != nil {
			return err
		}
		r.WorkingDays = days
	}
	if f.clearPurposes {
		r.ValidPurposeCodes = nil
	}
	if len(f.purposes) > 0 {
		r.ValidPurposeCodes = f.purposes
	}
	return nil
}

// parseDays reads "1-5" or "1,2,3,6".
func parseDays(s string) ([]uint32, error) {
	if lo, hi, ok := strings.Cut(s, "-"); ok {
		a, err1 := strconv.Atoi(lo)
		b, err2 := strconv.Atoi(hi)
		if err1 != nil || err2 != nil || a < 1 || b > 7 || a > b {
			return nil, fmt.Errorf("--working-days %q: want a range within 1-7", s)
		}
		var out []uint32
		for d := a; d <= b; d++ {
			out = append(out, uint32(d))
		}
		return out, nil
	}
	var out []uint32
	for _, part := range strings.Split(s, ",") {
		d, err := strconv.Atoi(strings.TrimSpace(part))
		if err != nil || d < 1 || d > 7 {
			return nil, fmt.Errorf("--working-days %q: %q is not a day 1-7", s, part)
		}
		out = append(out, uint32(d))
	}
	return out, nil
}

func printRules(e *env, r *trailv1.AnomalyRules, asJSON bool) error {
	if asJSON {
		return writeJSON(e.stdout, r)
	}
	hours := "(not set: no off-hours rule)"
	if r.GetWorkingHoursStart() != "" {
		zone := r.GetTimeZone()
		if zone == "" {
			zone = "UTC"
		}
		days := "1-5"
		if len(r.GetWorkingDays()) > 0 {
			days = strings.Trim(strings.ReplaceAll(fmt.Sprint(r.GetWorkingDays()), " ", ","), "[]")
		}
		hours = fmt.Sprintf("%s-%s %s, days %s", r.GetWorkingHoursStart(), r.GetWorkingHoursEnd(), zone, days)
	}
	purposes := "(any non-empty code)"
	if len(r.GetValidPurposeCodes()) > 0 {
		purposes = strings.Join(r.GetValidPurposeCodes(), ", ")
	}
	return keyValues(e.stdout, [][2]string{
		{"tenant", r.GetTenantId()},
		{"enabled", strconv.FormatBool(!r.GetDisabled())},
		{"max subjects per hour", formatUint(uint64(r.GetMaxDistinctSubjectsPerHour()))},
		{"working hours", hours},
		{"valid purpose codes", purposes},
	})
}

// cmdSubscribe prints a tenant's domain events as they happen.
func cmdSubscribe(ctx context.Context, e *env, args []string) error {
	var n netCommand
	var types stringList
	fs := newFlagSet("subscribe")
	n.register(fs)
	fs.Var(&types, "type", "domain event type to receive (repeatable; default all): audit.event.recorded, "+
		"audit.integrity.verified, audit.integrity.violation, audit.security_anomaly, audit.partition.sealed")
	pos, err := parseCommand(e, "subscribe", fs, args, 1, 1)
	if err != nil {
		return err
	}
	if err := validTenant(pos[0]); err != nil {
		return usageErrorf("%v", err)
	}
	conn, err := n.connect(e)
	if err != nil {
		return err
	}
	defer conn.Close()
	// No deadline: a subscription runs until interrupted.
	stream, err := trailv1.NewComplianceServiceClient(conn).Subscribe(ctx, &trailv1.SubscribeRequest{TenantId: pos[0], Types: types})
	if err != nil {
		return wrapRPC("Subscribe", err)
	}
	for {
		ev, err := stream.Recv()
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, io.EOF):
			return wrapRPC("Subscribe", status.Error(codes.Unavailable, "server ended the stream"))
		case err != nil:
			return wrapRPC("Subscribe", err)
		}
		if err := printDomainEvent(e.stdout, ev, n.json); err != nil {
			return ioError(err)
		}
	}
}

func printDomainEvent(w io.Writer, ev *trailv1.DomainEvent, asJSON bool) error {
	if asJSON {
		return writeJSON(w, ev)
	}
	line := fmt.Sprintf("%s  %s  %s/%s", formatTime(ev.GetTime()), ev.GetType(), ev.GetTenantId(), ev.GetPartition())
	switch {
	case ev.GetType() == "audit.event.recorded":
		line += fmt.Sprintf("  leaves %d..%d  size %d", ev.GetFromLeaf(), ev.GetFromLeaf()+ev.GetCount()-1, ev.GetTreeSize())
	case ev.GetCheckpoint() != nil:
		line += fmt.Sprintf("  final size %d  root %s", ev.GetTreeSize(), shortHex(ev.GetCheckpoint().GetRootHash()))
	case ev.GetEntry() != nil:
		x := ev.GetEntry().GetEntry().GetEvent()
		line += fmt.Sprintf("  leaf %d  %s", ev.GetFromLeaf(), x.GetEventId())
		if rule := x.GetAttributes()["rule"]; rule != "" {
			line += fmt.Sprintf("  rule %s  actor %s  event %s", rule, x.GetAttributes()["actor_id"], x.GetAttributes()["event_id"])
		}
	}
	_, err := fmt.Fprintln(w, line)
	return err
}
