package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/trailaudit/trail/internal/enumname"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// "trailctl aggregate" counts a tenant's events by field or time bucket;
// "trailctl search-settings" shows and sets what full-text search reads.

func cmdAggregate(ctx context.Context, e *env, args []string) error {
	var n netCommand
	var f filterFlags
	var by string
	var limit uint
	fs := newFlagSet("aggregate")
	n.register(fs)
	f.register(fs, "count events")
	fs.StringVar(&by, "by", "", "group by `FIELD`: actor, subject, target, category, action, purpose, pii_field, or a time bucket: hour, day, month (required)")
	fs.UintVar(&limit, "limit", 0, "groups by a field to show, largest first (default 10, at most 1000)")
	pos, err := parseCommand(e, "aggregate", fs, args, 1, 2)
	if err != nil {
		return err
	}
	if err := validTenant(pos[0]); err != nil {
		return usageErrorf("%v", err)
	}
	g, ok := enumname.Lookup(trailv1.GroupBy(0).Descriptor(), by)
	if by == "" || !ok || g.Number() == 0 {
		return usageErrorf("--by: %q is not a grouping (actor, subject, target, category, action, purpose, pii_field, hour, day, month)", by)
	}
	if limit > 1000 {
		return usageErrorf("--limit is at most 1000")
	}
	filter, err := f.filter()
	if err != nil {
		return err
	}
	filter.Query = strings.Join(pos[1:], "")
	req := &trailv1.AggregateRequest{TenantId: pos[0], Filter: filter, GroupBy: trailv1.GroupBy(g.Number()), Limit: uint32(limit)}
	return withRead(ctx, e, &n, func(ctx context.Context, c trailv1.ReadServiceClient) error {
		resp, err := c.Aggregate(ctx, req)
		if err != nil {
			return wrapRPC("Aggregate", err)
		}
		if n.json {
			return writeJSON(e.stdout, resp)
		}
		tw := newTable(e.stdout)
		fmt.Fprintln(tw, strings.ToUpper(enumname.Short(g))+"\tCOUNT")
		for _, gr := range resp.GetGroups() {
			key := gr.GetKey()
			if gr.GetStart() != nil {
				key = gr.GetStart().AsTime().Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%d\n", key, gr.GetCount())
		}
		fmt.Fprintf(tw, "(all)\t%d\n", resp.GetTotal())
		return tw.Flush()
	})
}

func withRead(ctx context.Context, e *env, n *netCommand, fn func(context.Context, trailv1.ReadServiceClient) error) error {
	return withClient(ctx, e, n, trailv1.NewReadServiceClient, fn)
}

func cmdSearchSettingsGet(ctx context.Context, e *env, args []string) error {
	var n netCommand
	fs := newFlagSet("search-settings get")
	n.register(fs)
	pos, err := parseCommand(e, "search-settings get", fs, args, 1, 1)
	if err != nil {
		return err
	}
	if err := validTenant(pos[0]); err != nil {
		return usageErrorf("%v", err)
	}
	return withAdmin(ctx, e, &n, func(ctx context.Context, c trailv1.AdminServiceClient) error {
		resp, err := c.GetSearchSettings(ctx, &trailv1.GetSearchSettingsRequest{TenantId: pos[0]})
		if err != nil {
			return wrapRPC("GetSearchSettings", err)
		}
		return printSearchSettings(e, resp, n.json)
	})
}

func cmdSearchSettingsSet(ctx context.Context, e *env, args []string) error {
	var n netCommand
	var attrs stringsFlag
	var reset, none bool
	fs := newFlagSet("search-settings set")
	n.register(fs)
	fs.Var(&attrs, "text-attr", "an attribute `KEY` whose values full-text search reads (repeat for several)")
	fs.BoolVar(&none, "none", false, "index no attribute, only the action, display name and target")
	fs.BoolVar(&reset, "reset", false, "go back to Trail's default attributes")
	pos, err := parseCommand(e, "search-settings set", fs, args, 1, 1)
	if err != nil {
		return err
	}
	if err := validTenant(pos[0]); err != nil {
		return usageErrorf("%v", err)
	}
	choices := 0
	for _, c := range []bool{len(attrs) > 0, none, reset} {
		if c {
			choices++
		}
	}
	if choices != 1 {
		return usageErrorf("give --text-attr KEY..., --none or --reset")
	}
	req := &trailv1.SetSearchSettingsRequest{TenantId: pos[0], TextAttributes: attrs, Reset_: reset}
	return withAdmin(ctx, e, &n, func(ctx context.Context, c trailv1.AdminServiceClient) error {
		resp, err := c.SetSearchSettings(ctx, req)
		if err != nil {
			return wrapRPC("SetSearchSettings", err)
		}
		return printSearchSettings(e, resp, n.json)
	})
}

func printSearchSettings(e *env, s *trailv1.SearchSettings, asJSON bool) error {
	if asJSON {
		return writeJSON(e.stdout, s)
	}
	origin := "chosen"
	if s.GetDefault() {
		origin = "default"
	}
	_, err := fmt.Fprintf(e.stdout, "tenant %s: full text reads the action, the actor's display name, the target and attributes %s (%s)\n",
		s.GetTenantId(), strings.Join(s.GetTextAttributes(), ", "), origin)
	return err
}
