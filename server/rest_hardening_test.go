package server

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// restRaw sends body as it is to the REST API.
func (e *env) restRaw(method, path, token, body string) (int, string) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.httpBase+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.http.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func jsonEvent(t *testing.T, id string) string {
	t.Helper()
	b, err := protojson.Marshal(event("acme", id))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Bad REST input gets a clear 4xx and nothing of it is stored (issue 13,
// items 6, 7 and 9).
func TestRESTBadInput(t *testing.T) {
	e := newEnv(t, envOptions{tune: func(c *Config) { c.MaxBatchEvents = 50 }})
	tok := e.admin
	ev := jsonEvent(t, "rest-1")
	cases := []struct {
		name, method, path, body string
		code                     int
		msg                      string
	}{
		{"two events in one body", "POST", "/api/v1/audit/events", ev + jsonEvent(t, "rest-2"), 400, "more than one JSON value"},
		{"trailing garbage", "POST", "/api/v1/audit/events", ev + " xyz", 400, "more than one JSON value"},
		{"batch with trailing garbage", "POST", "/api/v1/audit/events/batch", `{"events":[` + ev + `]} []`, 400, "more than one JSON value"},
		{"too many events", "POST", "/api/v1/audit/events/batch", manyEvents(t, 51), 413, "limit 50"},
		{"event too large", "POST", "/api/v1/audit/events", hugeEvent(t, 2<<20), 413, "limit"},
		{"body beyond any limit", "POST", "/api/v1/audit/events/batch", `{"events":[` + strings.Repeat(ev+",", 40000) + ev + `]}`, 413, "limit"},
		{"leaf index without partition", "GET", "/api/v1/audit/events/x?tenant_id=acme&leaf_index=3", "", 400, "event_id, or partition and leaf_index"},
		{"proof: event id and leaf index", "GET", "/api/v1/audit/events/x/proof?tenant_id=acme&leaf_index=3", "", 400, "not both"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, body := e.restRaw(c.method, c.path, tok, c.body)
			if code != c.code || !strings.Contains(body, c.msg) {
				t.Fatalf("HTTP %d %s, want %d containing %q", code, body, c.code, c.msg)
			}
		})
	}
	for _, id := range []string{"rest-1", "rest-2"} {
		if _, _, err := e.node.Engine().EntryByEventID(e.ctx(tok), "acme", id); err == nil {
			t.Errorf("%s was stored from a refused request", id)
		}
	}
}

func manyEvents(t *testing.T, n int) string {
	var parts []string
	for i := range n {
		parts = append(parts, jsonEvent(t, fmt.Sprintf("many-%d", i)))
	}
	return `{"events":[` + strings.Join(parts, ",") + `]}`
}

func hugeEvent(t *testing.T, size int) string {
	ev := event("acme", "huge")
	ev.Attributes["blob"] = strings.Repeat("h", size)
	b, err := protojson.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Entries and proofs are addressable by partition and leaf index over
// REST, as over gRPC; a batch says at the top how many of its events
// failed (issue 13, items 8 and 9).
func TestRESTLeafRoutesAndFailedCount(t *testing.T) {
	e := newEnv(t, envOptions{})
	tok := e.admin
	var batch trailv1.AppendBatchResponse
	e.restJSON("POST", "/api/v1/audit/events/batch", tok, &trailv1.AppendBatchRequest{Events: []*trailv1.Event{event("acme", "ok-1"), event("acme", "ok-2")}}, &batch)
	if batch.GetFailed() != 0 || len(batch.GetResults()) != 2 {
		t.Fatalf("batch %v", &batch)
	}
	r := batch.GetResults()[1].GetReceipt()
	var got trailv1.GetEventResponse
	e.restJSON("GET", fmt.Sprintf("/api/v1/audit/tenants/acme/partitions/%s/leaves/%d", r.GetPartition(), r.GetLeafIndex()), tok, nil, &got)
	if got.GetEntry().GetEntry().GetEvent().GetEventId() != "ok-2" {
		t.Fatalf("entry by leaf: %v", &got)
	}
	var pr trailv1.GetInclusionProofResponse
	e.restJSON("GET", fmt.Sprintf("/api/v1/audit/tenants/acme/partitions/%s/leaves/%d/proof", r.GetPartition(), r.GetLeafIndex()), tok, nil, &pr)
	if pr.GetLeafIndex() != r.GetLeafIndex() || !bytes.Equal(pr.GetLeafHash(), r.GetLeafHash()) {
		t.Fatalf("proof by leaf: %v", &pr)
	}
	bad := event("acme", "")
	var failed trailv1.AppendBatchResponse
	e.restJSON("POST", "/api/v1/audit/events/batch", tok, &trailv1.AppendBatchRequest{Events: []*trailv1.Event{bad, bad}}, &failed)
	if failed.GetFailed() != 2 {
		t.Fatalf("every event failed, but failed = %d: %v", failed.GetFailed(), &failed)
	}
}

// A body is read only from a caller whose key authenticates, and must
// arrive in time: a client trickling a body no longer holds the server
// (issue 13, item 5).
func TestRESTBodyGuards(t *testing.T) {
	e := newEnv(t, envOptions{tune: func(c *Config) { c.bodyTimeout = time.Second }})
	// No key: refused before the body, which never comes.
	status, elapsed := trickle(t, e, "", time.Hour)
	if status != "401" || elapsed > 5*time.Second {
		t.Fatalf("unauthenticated body: HTTP %s after %s", status, elapsed)
	}
	status, _ = trickle(t, e, "trail_0123456789abcdef0123456789abcdef0123456789abcdef", time.Hour)
	if status != "401" {
		t.Fatalf("unknown key: HTTP %s", status)
	}
	// With a valid key the body is read, for at most the body timeout.
	status, elapsed = trickle(t, e, e.admin, time.Hour)
	if elapsed > 5*time.Second || status == "200" {
		t.Fatalf("trickled body with a valid key: HTTP %q after %s", status, elapsed)
	}
}

// trickle sends the headers of a POST with a large body and then nothing,
// and returns the status line's code and how long the answer took.
func trickle(t *testing.T, e *env, token string, wait time.Duration) (string, time.Duration) {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(e.httpBase, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	auth := ""
	if token != "" {
		auth = "Authorization: Bearer " + token + "\r\n"
	}
	start := time.Now()
	fmt.Fprintf(c, "POST /api/v1/audit/events HTTP/1.1\r\nHost: x\r\n%sContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{", auth)
	c.SetReadDeadline(time.Now().Add(min(wait, 10*time.Second)))
	b := make([]byte, 64)
	n, _ := c.Read(b)
	fields := strings.Fields(string(b[:n]))
	if len(fields) < 2 {
		return "", time.Since(start)
	}
	return fields[1], time.Since(start)
}
