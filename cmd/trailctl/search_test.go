package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trailaudit/trail/internal/syncbuf"
	"github.com/trailaudit/trail/merkle"
)

// TestSearchQueryAndAggregate runs search with the query syntax and
// proofs, aggregate and search-settings against a real server.
func TestSearchQueryAndAggregate(t *testing.T) {
	rs := startRealServer(t)
	dir := t.TempDir()
	vkey := filepath.Join(dir, "log.vkey")
	writeTestFile(t, vkey, rs.vkey+"\n")
	var events strings.Builder
	for i := range 12 {
		cat := []string{"data_access", "authentication", "security"}[i%3]
		fmt.Fprintf(&events, `{"tenant_id":"acme","event_id":"q-%d","category":%q,"action":"record.view",`+
			`"outcome":"OUTCOME_SUCCESS","actor":{"id":"user-%d","display_name":"User %d"},"occurred_at":"2026-11-23T10:00:00Z",`+
			`"attributes":{"reason":"%s"}}`+"\n", i, cat, i%2, i%2, []string{"bulk export", "routine check"}[i%2])
	}
	jsonl := filepath.Join(dir, "events.jsonl")
	writeTestFile(t, jsonl, events.String())
	rs.runOK(t, rs.admin, "append", "--jsonl", jsonl)

	out := rs.runOK(t, rs.admin, "search", "acme", `category:data_access,security -actor:user-1 "bulk export"`, "--json")
	if n := strings.Count(out, `"entry_bytes"`); n != 4 {
		t.Fatalf("query found %d entries, want 4:\n%s", n, out)
	}
	var stdout, stderr syncbuf.Buffer
	if code := rs.run(context.Background(), rs.admin, &stdout, &stderr, "search", "acme", "bulk", "--vkey", vkey, "--all", "--limit", "2"); code != exitOK {
		t.Fatalf("search --vkey: exit %d\n%s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), "OK 6 hits: each entry's leaf hash recomputed and proven") {
		t.Fatalf("search --vkey did not prove its hits:\n%s", stderr.String())
	}
	_, other, err := merkle.GenerateKey("test.trail", nil)
	if err != nil {
		t.Fatal(err)
	}
	otherKey := filepath.Join(dir, "other.vkey")
	writeTestFile(t, otherKey, other+"\n")

	out = rs.runOK(t, rs.admin, "aggregate", "acme", "--by", "category", "bul*")
	for _, want := range []string{"CATEGORY_DATA_ACCESS 2", "(all) 6"} {
		if !strings.Contains(strings.Join(strings.Fields(strings.ReplaceAll(out, "\n", " ; ")), " "), want) {
			t.Fatalf("aggregate output lacks %q:\n%s", want, out)
		}
	}
	out = rs.runOK(t, rs.admin, "aggregate", "acme", "--by", "day", "--category", "security", "--action", "record.view")
	if !strings.Contains(out, "(all)                 4") || strings.Count(out, "\n") < 28 {
		t.Fatalf("aggregate by day:\n%s", out)
	}
	out = rs.runOK(t, rs.admin, "search-settings", "set", "acme", "--text-attr", "reason", "--text-attr", "ticket")
	if !strings.Contains(out, "attributes reason, ticket (chosen)") {
		t.Fatalf("search-settings set:\n%s", out)
	}

	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"search", "acme", "actr:x"}, exitFailed, `unknown field "actr"`},
		{[]string{"search", "acme", "bulk", "--vkey", otherKey}, exitFailed, "checkpoint is not signed by key"},
		{[]string{"aggregate", "acme"}, exitUsage, "--by"},
		{[]string{"aggregate", "acme", "--by", "weekday"}, exitUsage, `"weekday" is not a grouping`},
		{[]string{"search-settings", "set", "acme", "--none", "--reset"}, exitUsage, "give --text-attr"},
	} {
		var out, errb syncbuf.Buffer
		code := rs.run(context.Background(), rs.admin, &out, &errb, tc.args...)
		if code != tc.code || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("%v: exit %d (want %d), stderr lacks %q:\n%s", tc.args, code, tc.code, tc.want, errb.String())
		}
	}
}
