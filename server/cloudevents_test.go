package server

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

func ceEvent(id string) string {
	return `{"tenant_id":"acme","event_id":"` + id + `","category":"data_access","action":"record.view","outcome":"success",` +
		`"actor":{"id":"clerk-1"},"subject_id":"EE-1","pii_fields_accessed":["name"],"purpose_code":"case","occurred_at":"2026-11-03T10:00:00Z"}`
}

func ceEnvelope(id string) string {
	return `{"specversion":"1.0","id":"ce-` + id + `","source":"/registry","type":"org.example.audit","data":` + ceEvent(id) + `}`
}

// CloudEvents (structured mode, JSON) are accepted on the REST append
// routes, one or a batch, under the same authorization; a broken envelope
// is refused with its reason and nothing is appended.
func TestRESTCloudEvents(t *testing.T) {
	e := newEnv(t, envOptions{})
	post := func(path, ct, token, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("POST", e.httpBase+path, strings.NewReader(body))
		req.Header.Set("Content-Type", ct)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := e.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	producer := e.key(trailv1.Role_ROLE_PRODUCER, "acme")

	code, body := post("/api/v1/audit/events", "application/cloudevents+json; charset=utf-8", producer, ceEnvelope("one"))
	var receipt map[string]any
	if code != 200 || json.Unmarshal([]byte(body), &receipt) != nil || receipt["event_id"] != "one" {
		t.Fatalf("single: %d %s", code, body)
	}
	code, body = post("/api/v1/audit/events/batch", "application/cloudevents-batch+json", producer, "["+ceEnvelope("two")+","+ceEnvelope("three")+"]")
	var batch struct {
		Results []map[string]any `json:"results"`
	}
	if code != 200 || json.Unmarshal([]byte(body), &batch) != nil || len(batch.Results) != 2 {
		t.Fatalf("batch: %d %s", code, body)
	}
	for _, id := range []string{"one", "two", "three"} {
		if _, err := e.read.GetEvent(e.ctx(e.admin), &trailv1.GetEventRequest{TenantId: "acme", EventId: id}); err != nil {
			t.Errorf("%s not in the log: %v", id, err)
		}
	}

	refusals := []struct {
		name, path, ct, token, body, want string
		code                              int
	}{
		{"no key", "/api/v1/audit/events", "application/cloudevents+json", "", ceEnvelope("x1"), "", 401},
		{"another tenant's key", "/api/v1/audit/events", "application/cloudevents+json", e.key(trailv1.Role_ROLE_PRODUCER, "beta"), ceEnvelope("x2"), "", 403},
		{"no id", "/api/v1/audit/events", "application/cloudevents+json", producer,
			`{"specversion":"1.0","source":"/s","type":"t","data":` + ceEvent("x3") + `}`, `attribute \"id\" is required`, 400},
		{"not an array", "/api/v1/audit/events/batch", "application/cloudevents-batch+json", producer, ceEnvelope("x4"), "JSON array", 400},
		{"one bad envelope refuses the batch", "/api/v1/audit/events/batch", "application/cloudevents-batch+json", producer,
			"[" + ceEnvelope("x5") + `,{"specversion":"0.3","id":"1","source":"/s","type":"t","data":` + ceEvent("x6") + "}]", "CloudEvent 1", 400},
		{"invalid event inside", "/api/v1/audit/events", "application/cloudevents+json", producer,
			`{"specversion":"1.0","id":"1","source":"/s","type":"t","data":{"tenant_id":"acme","event_id":"x7"}}`, "invalid event", 400},
	}
	for _, tc := range refusals {
		code, body := post(tc.path, tc.ct, tc.token, tc.body)
		if code != tc.code || !strings.Contains(body, tc.want) {
			t.Errorf("%s: %d %s, want %d with %q", tc.name, code, body, tc.code, tc.want)
		}
	}
	for _, id := range []string{"x1", "x2", "x3", "x4", "x5", "x6", "x7"} {
		if _, err := e.read.GetEvent(e.ctx(e.admin), &trailv1.GetEventRequest{TenantId: "acme", EventId: id}); err == nil {
			t.Errorf("refused %s was appended", id)
		}
	}
	// The plain JSON route is unchanged.
	if code, body := post("/api/v1/audit/events", "application/json", producer, ceEvent("plain")); code != 200 {
		t.Errorf("plain JSON: %d %s", code, body)
	}
}
