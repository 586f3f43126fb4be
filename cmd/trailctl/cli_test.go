package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

func TestParseInterspersed(t *testing.T) {
	for _, tc := range []struct {
		args []string
		json bool
		n    int
		pos  []string
	}{
		{[]string{"acme", "e-1"}, false, 0, []string{"acme", "e-1"}},
		{[]string{"--json", "acme", "e-1"}, true, 0, []string{"acme", "e-1"}},
		{[]string{"acme", "--json", "e-1", "-n", "3"}, true, 3, []string{"acme", "e-1"}},
		{[]string{"acme", "e-1", "--json"}, true, 0, []string{"acme", "e-1"}},
		{[]string{"-", "--json"}, true, 0, []string{"-"}},
		{[]string{"acme", "--", "--json", "-n"}, false, 0, []string{"acme", "--json", "-n"}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			fs := newFlagSet("t")
			asJSON := fs.Bool("json", false, "")
			n := fs.Int("n", 0, "")
			pos, err := parseInterspersed(fs, tc.args)
			if err != nil || *asJSON != tc.json || *n != tc.n || !slices.Equal(pos, tc.pos) {
				t.Errorf("= %q, %v; json %t n %d", pos, err, *asJSON, *n)
			}
		})
	}
}

func TestParseEnums(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want trailv1.Category
		ok   bool
	}{
		{"data_access", trailv1.Category_CATEGORY_DATA_ACCESS, true},
		{"DATA-ACCESS", trailv1.Category_CATEGORY_DATA_ACCESS, true},
		{"CATEGORY_SECURITY", trailv1.Category_CATEGORY_SECURITY, true},
		{"unspecified", 0, false},
		{"CATEGORY_UNSPECIFIED", 0, false},
		{"login", 0, false},
	} {
		got, err := parseCategory(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseCategory(%q) = %v, %v", tc.in, got, err)
		}
	}
	if _, err := parseCategory("nope"); err == nil || !strings.Contains(err.Error(), "authentication, authorization, data_access") {
		t.Errorf("error lists no choices: %v", err)
	}
	if r, err := parseRole("privacy_officer"); err != nil || r != trailv1.Role_ROLE_PRIVACY_OFFICER {
		t.Errorf("parseRole = %v, %v", r, err)
	}
	if o, err := parseOutcome("denied"); err != nil || o != trailv1.Outcome_OUTCOME_DENIED {
		t.Errorf("parseOutcome = %v, %v", o, err)
	}
}

func TestEventFromFlags(t *testing.T) {
	var f eventFlags
	fs := newFlagSet("append")
	f.register(fs)
	err := fs.Parse([]string{"--tenant", "acme", "--event-id", "e-1", "--category", "data_access", "--action", "record.view",
		"--actor", "alice", "--actor-role", "clerk", "--actor-role", "admin", "--pii-field", "ssn", "--purpose", "care",
		"--target-type", "record", "--target-id", "r-9", "--attr", "k=v=w", "--occurred-at", "2026-11-02T09:00:00Z"})
	if err != nil {
		t.Fatal(err)
	}
	ev, err := f.event()
	if err != nil {
		t.Fatal(err)
	}
	ev = fromFlags(ev, dec)
	want := &trailv1.Event{
		TenantId: "acme", EventId: "e-1", Category: trailv1.Category_CATEGORY_DATA_ACCESS, Action: "record.view",
		Outcome: trailv1.Outcome_OUTCOME_SUCCESS, Actor: &trailv1.Actor{Id: "alice", Roles: []string{"clerk", "admin"}},
		Target: &trailv1.Target{Type: "record", Id: "r-9"}, PiiFieldsAccessed: []string{"ssn"}, PurposeCode: "care",
		Attributes: map[string]string{"k": "v=w"}, OccurredAt: timestamppb.New(time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)),
	}
	if !proto.Equal(ev, want) {
		t.Errorf("event = %v\nwant %v", ev, want)
	}
}

// TestEventOverlay checks flags override a JSON event's fields.
func TestEventOverlay(t *testing.T) {
	ev, err := decodeEvent([]byte(`{"tenant_id":"x","event_id":"e-1","category":"CATEGORY_SYSTEM","actor":{"id":"bob","type":"user"}}`))
	if err != nil {
		t.Fatal(err)
	}
	ev = overlay(ev, &trailv1.Event{TenantId: "acme", Actor: &trailv1.Actor{Id: "alice"}})
	if ev.GetTenantId() != "acme" || ev.GetActor().GetId() != "alice" || ev.GetActor().GetType() != "user" || ev.GetEventId() != "e-1" {
		t.Errorf("overlay = %v", ev)
	}
	if _, err := decodeEvent([]byte(`{"tenant":"acme"}`)); err == nil {
		t.Error("decodeEvent accepted an unknown field")
	}
}

func TestConnFlags(t *testing.T) {
	envOf := func(kv ...string) func(string) string {
		return func(k string) string {
			for i := 0; i < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1]
				}
			}
			return ""
		}
	}
	for _, tc := range []struct {
		name    string
		args    []string
		env     func(string) string
		addr    string
		secure  bool
		wantErr string
	}{
		{"default", nil, envOf(), defaultAddr, false, ""},
		{"env address", nil, envOf("TRAIL_ADDR", "trail.example:7070"), "trail.example:7070", true, ""},
		{"flag beats env", []string{"--addr", "localhost:9"}, envOf("TRAIL_ADDR", "trail.example:7070"), "localhost:9", false, ""},
		{"ipv6 loopback", []string{"--addr", "[::1]:7070"}, envOf(), "[::1]:7070", false, ""},
		{"tls on loopback", []string{"--tls"}, envOf(), defaultAddr, true, ""},
		{"ca implies tls", []string{"--ca", "x.pem"}, envOf(), defaultAddr, true, ""},
		{"insecure remote", []string{"--addr", "10.0.0.1:7070", "--insecure"}, envOf(), "10.0.0.1:7070", false, ""},
		{"insecure and tls", []string{"--insecure", "--tls"}, envOf(), "", false, "--insecure contradicts"},
		{"cert without key", []string{"--cert", "c.pem"}, envOf(), "", false, "--cert and --key go together"},
		{"two tokens", []string{"--token", "a", "--token-file", "f"}, envOf(), "", false, "not both"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c connFlags
			fs := newFlagSet("t")
			c.register(fs)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			err := c.resolve(tc.env)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || exitCode(err) != exitUsage {
					t.Fatalf("resolve = %v, want usage error %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || c.addr != tc.addr || c.secure() != tc.secure {
				t.Errorf("resolve = %v: addr %q secure %t", err, c.addr, c.secure())
			}
		})
	}
}

func TestHelpNeverShowsToken(t *testing.T) {
	var out strings.Builder
	e := &env{stdout: &out, stderr: &out, getenv: func(k string) string { return "secret-" + k }, stdin: strings.NewReader("")}
	if code := run(context.Background(), e, []string{"get", "-h"}); code != exitOK {
		t.Fatalf("exit %d", code)
	}
	if strings.Contains(out.String(), "secret-") {
		t.Errorf("help shows an environment value:\n%s", out.String())
	}
}

func TestExitCode(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want int
	}{
		{nil, exitOK},
		{errHelp, exitOK},
		{errors.New("root mismatch"), exitFailed},
		{fmt.Errorf("FAILED: %w", errors.New("x")), exitFailed},
		{usageErrorf("bad"), exitUsage},
		{ioError(errors.New("disk")), exitIO},
		{fmt.Errorf("wrapped: %w", ioError(errors.New("disk"))), exitIO},
		{context.DeadlineExceeded, exitIO},
		{wrapRPC("Get", status.Error(codes.NotFound, "no")), exitFailed},
		{wrapRPC("Get", status.Error(codes.PermissionDenied, "no")), exitFailed},
		{wrapRPC("Get", status.Error(codes.Unavailable, "down")), exitIO},
		{wrapRPC("Get", status.Error(codes.DeadlineExceeded, "slow")), exitIO},
		{wrapRPC("Get", context.DeadlineExceeded), exitIO},
	} {
		if got := exitCode(tc.err); got != tc.want {
			t.Errorf("exitCode(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
	if got := wrapRPC("GetEvent", status.Error(codes.NotFound, "event not found")).Error(); got != "GetEvent: NotFound: event not found" {
		t.Errorf("rpc error reads %q", got)
	}
}

// TestUsageErrors runs commands with bad arguments: each exits 2 before
// any network call (runCLI's address has no server behind it).
func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"frobnicate"}, "unknown command"},
		{[]string{"cluster", "explode"}, "unknown command"},
		{[]string{"--token", "trail_secret", "frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"--frob", "x", "search"}, "flag -frob cannot come before the command"},
		{[]string{"--token", "trail_secret", "search"}, "usage: trailctl search"},
		{[]string{"get"}, "usage: trailctl get TENANT EVENT_ID"},
		{[]string{"get", "acme"}, "give EVENT_ID, or --partition and --leaf"},
		{[]string{"get", "acme", "e-1", "--partition", "2026-11"}, "not both"},
		{[]string{"get", "../x", "e-1"}, "invalid tenant id"},
		{[]string{"search", "acme", "--category", "nope"}, "unknown category"},
		{[]string{"search", "acme", "--from", "yesterday"}, "--from: time \"yesterday\""},
		{[]string{"search", "acme", "--limit", "5000"}, "--limit is at most 1000"},
		{[]string{"tail", "acme", "--from-leaf", "3"}, "--from-leaf needs --partition"},
		{[]string{"checkpoint", "acme", "2026-13"}, "invalid partition"},
		{[]string{"prove", "acme", "e-1"}, "--vkey FILE is required"},
		{[]string{"consistency", "acme", "2026-11", "10", "5", "--vkey", "k"}, "1 <= FROM <= TO"},
		{[]string{"consistency", "acme", "2026-11", "0", "5", "--vkey", "k"}, "1 <= FROM <= TO"},
		{[]string{"watch", "acme", "--vkey", "k"}, "--state-dir DIR is required"},
		{[]string{"append", "x"}, "the only argument append takes is -"},
		{[]string{"append"}, "an event needs a tenant and an event id"},
		{[]string{"append", "--jsonl", "f", "--batch", "0"}, "must be positive"},
		{[]string{"append", "--attr", "novalue", "--tenant", "a", "--event-id", "e"}, "--attr \"novalue\": want KEY=VALUE"},
		{[]string{"keys", "create", "--role", "root"}, "unknown role"},
		{[]string{"keys", "revoke"}, "usage: trailctl keys revoke ID"},
		{[]string{"cluster", "join", "n4"}, "usage: trailctl cluster join ID RAFT_ADDR"},
		{[]string{"get", "acme", "e-1", "--insecure", "--tls"}, "--insecure contradicts"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			r := runCLI(t, "", tc.args...)
			if r.code != exitUsage || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want exit 2 and %q", r.code, r.stderr, tc.want)
			}
			// A secret given on the command line is never echoed.
			if strings.Contains(r.stderr+r.stdout, "trail_secret") {
				t.Errorf("the token was printed: %q", r.stderr)
			}
		})
	}
}

// TestUnreachableServer shows a network failure exits 3, after the
// UNAVAILABLE retries (a few seconds at most).
func TestUnreachableServer(t *testing.T) {
	r := runCLI(t, "", "get", "acme", "e-1", "--timeout", "20s")
	if r.code != exitIO || !strings.Contains(r.stderr, "GetEvent: Unavailable") {
		t.Errorf("exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestEveryCommandHasHelp(t *testing.T) {
	for _, c := range commands() {
		t.Run(c.name, func(t *testing.T) {
			r := runCLI(t, "", append(strings.Fields(c.name), "-h")...)
			if r.code != exitOK || !strings.Contains(r.stdout, "usage: trailctl "+c.name) {
				t.Errorf("exit %d:\n%s\n%s", r.code, r.stdout, r.stderr)
			}
		})
	}
}

// TestSingleEventFromStdin checks that "append -" keeps the JSON event's
// fields, with only the flags actually given on top (no defaults).
func TestSingleEventFromStdin(t *testing.T) {
	e := &env{stdin: strings.NewReader(`{"tenant_id":"x","event_id":"e-1","outcome":"OUTCOME_FAILURE","occurred_at":"2026-11-02T09:00:00Z"}`), now: func() time.Time { return dec }}
	ev, err := singleEvent(e, []string{"-"}, &trailv1.Event{TenantId: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	if ev.GetTenantId() != "acme" || ev.GetOutcome() != trailv1.Outcome_OUTCOME_FAILURE || !ev.GetOccurredAt().AsTime().Equal(time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)) {
		t.Errorf("event = %v", ev)
	}
	ev, err = singleEvent(e, nil, &trailv1.Event{TenantId: "acme"})
	if err != nil || ev.GetOutcome() != trailv1.Outcome_OUTCOME_SUCCESS || !ev.GetOccurredAt().AsTime().Equal(dec) {
		t.Errorf("flags-only event = %v, %v", ev, err)
	}
}

func TestProgress(t *testing.T) {
	now := dec
	clock := func() time.Time { return now }
	var out strings.Builder
	p := newProgress(&out, true, 1000, clock)
	p.update(10, 100)
	if out.Len() != 0 {
		t.Fatalf("drew within the first second: %q", out.String())
	}
	now = now.Add(2 * time.Second)
	p.update(500, 500)
	if !strings.Contains(out.String(), "[###############...............]  50%  500 events  250/s") {
		t.Errorf("bar = %q", out.String())
	}
	p.finish()
	if !strings.HasSuffix(out.String(), "\r") {
		t.Errorf("finish did not return to the line start: %q", out.String())
	}
	var silent strings.Builder
	q := newProgress(&silent, false, 0, clock)
	now = now.Add(time.Hour)
	q.update(1, 1)
	q.finish()
	if silent.Len() != 0 {
		t.Errorf("drew when not a terminal: %q", silent.String())
	}
	if got := (&progress{}).render(300, 0, 3*time.Second); got != "300 events  100/s" {
		t.Errorf("unknown-size render = %q", got)
	}
}
