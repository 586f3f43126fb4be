package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/trailaudit/trail/internal/enumname"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// maxEventJSONBytes bounds one event read from stdin or one JSON line.
const maxEventJSONBytes = 8 << 20

// eventFlags are the event fields settable from the command line. Every
// field set by a flag overrides the same field of events read as JSON, so
// "--tenant acme" can stamp a whole file.
type eventFlags struct {
	tenant, eventID, category, action, outcome                string
	actor, actorType, actorName, actorIP, actorAgent, session string
	actorRoles                                                stringList
	subject, targetType, targetID, purpose, source, traceID   string
	occurredAt                                                string
	pii, attrs                                                stringList
}

func (f *eventFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.tenant, "tenant", "", "tenant id")
	fs.StringVar(&f.eventID, "event-id", "", "event id, unique per tenant: retrying with the same id never appends twice")
	fs.StringVar(&f.category, "category", "", "category: authentication, authorization, data_access, data_modification, workflow, financial, compliance, system, security")
	fs.StringVar(&f.action, "action", "", "action, a dotted verb such as user.login")
	fs.StringVar(&f.outcome, "outcome", "", "outcome: success, failure, denied, error (default success)")
	fs.StringVar(&f.actor, "actor", "", "actor id")
	fs.StringVar(&f.actorType, "actor-type", "", "actor type (user, service, system)")
	fs.StringVar(&f.actorName, "actor-name", "", "actor display name")
	fs.Var(&f.actorRoles, "actor-role", "actor role (repeatable)")
	fs.StringVar(&f.actorIP, "actor-ip", "", "actor IP address")
	fs.StringVar(&f.actorAgent, "actor-agent", "", "actor user agent")
	fs.StringVar(&f.session, "session", "", "actor session id")
	fs.StringVar(&f.subject, "subject", "", "data subject id (whose data this is)")
	fs.StringVar(&f.targetType, "target-type", "", "target entity type")
	fs.StringVar(&f.targetID, "target-id", "", "target entity id")
	fs.Var(&f.pii, "pii-field", "PII field accessed (repeatable)")
	fs.StringVar(&f.purpose, "purpose", "", "purpose code (required for data_access events with PII fields)")
	fs.StringVar(&f.source, "source", "", "source service")
	fs.StringVar(&f.traceID, "trace-id", "", "trace id")
	fs.StringVar(&f.occurredAt, "occurred-at", "", "producer time, RFC 3339 (default: now, for events built from flags)")
	fs.Var(&f.attrs, "attr", "attribute `KEY=VALUE` (repeatable)")
}

// event builds an event holding exactly the fields the flags set.
func (f *eventFlags) event() (*trailv1.Event, error) {
	ev := &trailv1.Event{
		TenantId: f.tenant, EventId: f.eventID, Action: f.action, SubjectId: f.subject,
		PiiFieldsAccessed: f.pii, PurposeCode: f.purpose, SourceService: f.source, TraceId: f.traceID,
	}
	var err error
	if f.category != "" {
		if ev.Category, err = parseCategory(f.category); err != nil {
			return nil, usageErrorf("--category: %v", err)
		}
	}
	if f.outcome != "" {
		if ev.Outcome, err = parseOutcome(f.outcome); err != nil {
			return nil, usageErrorf("--outcome: %v", err)
		}
	}
	if f.occurredAt != "" {
		t, err := parseTime(f.occurredAt)
		if err != nil {
			return nil, usageErrorf("--occurred-at: %v", err)
		}
		ev.OccurredAt = timestamppb.New(t)
	}
	if a := f.actorMessage(); a != nil {
		ev.Actor = a
	}
	if f.targetType != "" || f.targetID != "" {
		ev.Target = &trailv1.Target{Type: f.targetType, Id: f.targetID}
	}
	for _, kv := range f.attrs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, usageErrorf("--attr %q: want KEY=VALUE", kv)
		}
		if ev.Attributes == nil {
			ev.Attributes = map[string]string{}
		}
		ev.Attributes[k] = v
	}
	return ev, nil
}

func (f *eventFlags) actorMessage() *trailv1.Actor {
	a := &trailv1.Actor{Id: f.actor, Type: f.actorType, DisplayName: f.actorName, Roles: f.actorRoles,
		Ip: f.actorIP, UserAgent: f.actorAgent, SessionId: f.session}
	if proto.Equal(a, &trailv1.Actor{}) {
		return nil
	}
	return a
}

// fromFlags completes an event built only from flags with the defaults a
// command-line user expects: outcome success, occurred now.
func fromFlags(ev *trailv1.Event, now time.Time) *trailv1.Event {
	if ev.Outcome == trailv1.Outcome_OUTCOME_UNSPECIFIED {
		ev.Outcome = trailv1.Outcome_OUTCOME_SUCCESS
	}
	if ev.OccurredAt == nil {
		ev.OccurredAt = timestamppb.New(now)
	}
	return ev
}

// decodeEvent parses one event in protojson (proto field names or JSON
// names, enums by full or short name: CATEGORY_DATA_ACCESS or data_access),
// strictly: a misspelt field is an error, not a silently dropped value.
func decodeEvent(b []byte) (*trailv1.Event, error) {
	ev := new(trailv1.Event)
	if err := enumname.Unmarshal(protojson.UnmarshalOptions{}, b, ev); err != nil {
		return nil, fmt.Errorf("invalid event JSON: %w", err)
	}
	return ev, nil
}

// overlay applies the flag fields onto ev (flags win; repeated fields and
// attributes are added).
func overlay(ev, flags *trailv1.Event) *trailv1.Event {
	proto.Merge(ev, flags)
	return ev
}

type appendFlags struct {
	net   netCommand
	event eventFlags
	bulk  bulkFlags
}

func cmdAppend(ctx context.Context, e *env, args []string) error {
	var f appendFlags
	fs := newFlagSet("append")
	f.net.register(fs)
	f.event.register(fs)
	f.bulk.register(fs)
	pos, err := parseCommand(e, "append", fs, args, 0, 1)
	if err != nil {
		return err
	}
	if len(pos) == 1 && pos[0] != "-" {
		return usageErrorf("the only argument append takes is - (one JSON event on stdin)")
	}
	flagged, err := f.event.event()
	if err != nil {
		return err
	}
	if f.bulk.file != "" {
		if len(pos) != 0 {
			return usageErrorf("give - or --jsonl, not both")
		}
		return runBulk(ctx, e, &f, flagged)
	}
	ev, err := singleEvent(e, pos, flagged)
	if err != nil {
		return err
	}
	return appendOne(ctx, e, &f.net, ev)
}

// singleEvent is the event of a single append: from stdin ("-") with the
// flags' fields on top, or from the flags alone with their defaults.
func singleEvent(e *env, pos []string, flagged *trailv1.Event) (*trailv1.Event, error) {
	if len(pos) == 0 {
		return fromFlags(flagged, e.now()), nil
	}
	b, err := readLimit(e.stdin, "stdin", maxEventJSONBytes)
	if err != nil {
		return nil, err
	}
	ev, err := decodeEvent(b)
	if err != nil {
		return nil, err
	}
	return overlay(ev, flagged), nil
}

func appendOne(ctx context.Context, e *env, n *netCommand, ev *trailv1.Event) error {
	if ev.GetTenantId() == "" || ev.GetEventId() == "" {
		return usageErrorf("an event needs a tenant and an event id (--tenant, --event-id)")
	}
	conn, err := n.connect(e)
	if err != nil {
		return err
	}
	defer conn.Close()
	rctx, cancel := n.rpcContext(ctx)
	defer cancel()
	resp, err := trailv1.NewIngestServiceClient(conn).Append(rctx, &trailv1.AppendRequest{Event: ev})
	if err != nil {
		return wrapRPC("Append", err)
	}
	if n.json {
		return writeJSON(e.stdout, resp.GetReceipt())
	}
	return printReceipt(e.stdout, resp.GetReceipt())
}

func printReceipt(w io.Writer, r *trailv1.Receipt) error {
	dup := ""
	if r.GetDuplicate() {
		dup = "yes: the event was already in the log; this is its original receipt"
	}
	return keyValues(w, [][2]string{
		{"tenant", r.GetTenantId()},
		{"event id", r.GetEventId()},
		{"partition", r.GetPartition()},
		{"leaf index", formatUint(r.GetLeafIndex())},
		{"leaf hash", hexOf(r.GetLeafHash())},
		{"tree size", formatUint(r.GetTreeSize())},
		{"sequenced", formatTime(r.GetSequencerTime())},
		{"duplicate", dup},
	})
}
