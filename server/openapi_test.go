package server

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// The served OpenAPI document, as far as these tests read it.
type apiDoc struct {
	Produces    []string                          `json:"produces"`
	Paths       map[string]map[string]*apiOp      `json:"paths"`
	Definitions map[string]*apiSchema             `json:"definitions"`
	Security    []map[string][]string             `json:"security"`
	SecDefs     map[string]map[string]interface{} `json:"securityDefinitions"`
}

type apiOp struct {
	OperationID string                  `json:"operationId"`
	Parameters  []apiParam              `json:"parameters"`
	Produces    []string                `json:"produces"`
	Responses   map[string]*apiResponse `json:"responses"`
	path        string
	method      string
}

type apiParam struct {
	Name   string     `json:"name"`
	In     string     `json:"in"`
	Type   string     `json:"type"`
	Enum   []string   `json:"enum"`
	Items  *apiSchema `json:"items"`
	Schema *apiSchema `json:"schema"`
}

// enum is the documented values of p, or of its items.
func (p apiParam) enum() []string {
	if p.Items != nil {
		return p.Items.Enum
	}
	return p.Enum
}

type apiResponse struct {
	Schema *apiSchema `json:"schema"`
}

type apiSchema struct {
	Ref                  string                `json:"$ref"`
	Type                 string                `json:"type"`
	Title                string                `json:"title"`
	Enum                 []string              `json:"enum"`
	Properties           map[string]*apiSchema `json:"properties"`
	Items                *apiSchema            `json:"items"`
	AdditionalProperties json.RawMessage       `json:"additionalProperties"`
}

func (d *apiDoc) resolve(s *apiSchema) *apiSchema {
	for s != nil && s.Ref != "" {
		s = d.Definitions[strings.TrimPrefix(s.Ref, "#/definitions/")]
	}
	return s
}

// conforms checks a JSON value against schema s: every object key must be
// a documented property, every enum value a documented one. where names
// the value in errors.
func (d *apiDoc) conforms(s *apiSchema, v any, where string) error {
	s = d.resolve(s)
	if s == nil {
		return nil
	}
	switch v := v.(type) {
	case map[string]any:
		if s.Properties == nil {
			return nil // a map, Struct or Any: keys are data
		}
		for k, val := range v {
			p, ok := s.Properties[k]
			if !ok {
				return fmt.Errorf("%s: %q is not a documented property (have %s)", where, k, strings.Join(sortedKeys(s.Properties), ", "))
			}
			if err := d.conforms(p, val, where+"."+k); err != nil {
				return err
			}
		}
	case []any:
		for i, it := range v {
			if err := d.conforms(s.Items, it, fmt.Sprintf("%s[%d]", where, i)); err != nil {
				return err
			}
		}
	case string:
		if len(s.Enum) > 0 && !slices.Contains(s.Enum, v) {
			return fmt.Errorf("%s: %q is not in the documented enum %v", where, v, s.Enum)
		}
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// servedOpenAPI fetches and parses the document the server serves.
func (e *env) servedOpenAPI(t *testing.T) *apiDoc {
	t.Helper()
	code, body, hdr := e.rest("GET", "/api/v1/openapi.json", "", nil)
	if code != http.StatusOK || !strings.HasPrefix(hdr.Get("Content-Type"), "application/json") {
		t.Fatalf("GET openapi.json: HTTP %d %s", code, hdr.Get("Content-Type"))
	}
	var doc apiDoc
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	for path, ops := range doc.Paths {
		for method, op := range ops {
			op.path, op.method = path, strings.ToUpper(method)
		}
	}
	return &doc
}

// apiCall is one operation of the document, called as it documents.
type apiCall struct {
	op   string
	path map[string]string // path parameter values beyond apiPathValues
	// query holds values for documented query parameters beyond (or
	// instead of) apiQueryValues; "" sends the name with an empty value,
	// which the server takes as absent.
	query  map[string]string
	body   any // JSON body, checked against the documented schema
	status int // expected status, 200 if 0
	stream bool
	check  func(t *testing.T, res *apiResult)
}

type apiResult struct {
	status int
	header http.Header
	body   []byte
	json   map[string]any
}

func (r *apiResult) str(path ...string) string {
	var v any = r.json
	for _, p := range path {
		m, _ := v.(map[string]any)
		v = m[p]
	}
	switch v := v.(type) {
	case string:
		return v
	case nil:
		return ""
	case []any:
		return strconv.Itoa(len(v))
	}
	return fmt.Sprint(v)
}

const appliedNow = "<applied index>"

// TestOpenAPIMatchesServer calls every operation of the served OpenAPI
// document the way the document says, parameter names and enum values
// taken from it, and checks that the server understood: the call
// succeeds, the values took effect, and what comes back is what the
// document describes (issue 13, item 16).
func TestOpenAPIMatchesServer(t *testing.T) {
	e := newEnv(t, envOptions{})
	doc := e.servedOpenAPI(t)
	if len(doc.Security) == 0 || doc.SecDefs["api_key"]["name"] != "Authorization" {
		t.Errorf("the document does not say that calls need an API key: %v %v", doc.Security, doc.SecDefs)
	}
	ops := map[string]*apiOp{}
	for _, byMethod := range doc.Paths {
		for _, op := range byMethod {
			ops[op.OperationID] = op
		}
	}

	now := time.Now().UTC()
	apiEvent := func(id string) map[string]any {
		return map[string]any{
			"tenant_id": "acme", "event_id": id, "category": "CATEGORY_DATA_ACCESS", "action": "record.view",
			"outcome": "OUTCOME_SUCCESS", "actor": map[string]any{"id": "alice", "type": "user"},
			"subject_id": "citizen-1", "target": map[string]any{"type": "record", "id": "r-1"},
			"pii_fields_accessed": []any{"name"}, "purpose_code": "care",
			"occurred_at": now.Format(time.RFC3339Nano), "attributes": map[string]any{"k": "v"},
		}
	}
	seed := event("acme", "oa-0")
	seed.Actor.Id, seed.SubjectId, seed.Target.Id, seed.PurposeCode, seed.PiiFieldsAccessed = "alice", "citizen-1", "r-1", "care", []string{"name"}
	part := e.appendAll(e.admin, []*trailv1.Event{seed})[0].GetPartition()
	st, err := e.adm.ClusterStatus(e.ctx(e.admin), &trailv1.ClusterStatusRequest{})
	if err != nil {
		t.Fatal(err)
	}

	pathValues := map[string]string{
		"tenant_id": "acme", "rules.tenant_id": "acme", "settings.tenant_id": "acme", "partition": part, "leaf_index": "0", "event_id": "oa-0",
		"subject_id": "citizen-1", "target_type": "record", "target_id": "r-1",
	}
	queryValues := map[string]string{
		"tenant_id": "acme", "min_index": appliedNow,
		"from": now.Add(-time.Hour).Format(time.RFC3339), "to": now.Add(time.Hour).Format(time.RFC3339),
		"actor_id": "alice", "subject_id": "citizen-1", "target_type": "record", "target_id": "r-1",
		"category": "CATEGORY_DATA_ACCESS", "action": "record.view", "purpose_code": "care", "pii_field": "name",
		"newest_first": "true", "limit": "10", "cursor": "", "tree_size": "1", "from_size": "1", "to_size": "2",
		"as_of": now.Format(time.RFC3339), "include_released": "true", "partition": part, "from_leaf": "0",
		"types": "audit.event.recorded", "event_id": "", "leaf_index": "",
		"filter.actor_ids": "alice", "filter.subject_ids": "citizen-1", "filter.categories": "CATEGORY_DATA_ACCESS",
		"filter.actions": "record.view", "filter.purpose_codes": "care", "filter.pii_fields": "name",
		"filter.from": now.Add(-time.Hour).Format(time.RFC3339), "filter.to": now.Add(time.Hour).Format(time.RFC3339),
		"filter.exclude.actor_ids": "mallory", "filter.exclude.subject_ids": "", "filter.exclude.categories": "CATEGORY_SYSTEM",
		"filter.exclude.actions": "", "filter.exclude.purpose_codes": "", "filter.exclude.pii_fields": "",
		"filter.text": "", "filter.query": "", "with_proofs": "true", "cosigned": "false", "group_by": "GROUP_BY_ACTION",
	}
	// Search and export take a filter in two spellings, one at a time:
	// search is called with the single-valued fields, export with the
	// filter.
	noFilter, noLegacy := map[string]string{}, map[string]string{}
	for name := range queryValues {
		if strings.HasPrefix(name, "filter.") {
			noFilter[name] = ""
		}
	}
	for _, name := range []string{"actor_id", "subject_id", "target_type", "target_id", "category", "action", "from", "to"} {
		noLegacy[name] = ""
	}
	state := map[string]string{}
	eventIDs := func(t *testing.T, entries any) []string {
		var ids []string
		list, _ := entries.([]any)
		for _, it := range list {
			en, _ := it.(map[string]any)["entry"].(map[string]any)
			ev, _ := en["event"].(map[string]any)
			ids = append(ids, fmt.Sprint(ev["event_id"]))
			if ev["category"] != "CATEGORY_DATA_ACCESS" || ev["actor"].(map[string]any)["id"] != "alice" {
				t.Errorf("entry %v does not match the filters", ev)
			}
		}
		return ids
	}
	want := func(t *testing.T, what, got, want string) {
		t.Helper()
		if got != want {
			t.Errorf("%s = %q, want %q", what, got, want)
		}
	}
	contentType := func(t *testing.T, res *apiResult, want string) {
		t.Helper()
		if mt, _, _ := mime.ParseMediaType(res.header.Get("Content-Type")); mt != want {
			t.Errorf("Content-Type %q, want %s", res.header.Get("Content-Type"), want)
		}
	}

	calls := []apiCall{
		{op: "IngestService_Append", body: apiEvent("oa-1"), check: func(t *testing.T, r *apiResult) {
			want(t, "receipt event_id", r.str("event_id"), "oa-1")
		}},
		{op: "IngestService_AppendBatch", body: map[string]any{"events": []any{apiEvent("oa-2"), apiEvent("oa-3")}}, check: func(t *testing.T, r *apiResult) {
			want(t, "results", r.str("results"), "2")
			want(t, "failed", r.str("failed"), "")
		}},
		{op: "ReadService_GetEvent", query: map[string]string{"partition": "", "leaf_index": ""}, check: func(t *testing.T, r *apiResult) {
			want(t, "event", r.str("entry", "entry", "event", "event_id"), "oa-0")
		}},
		{op: "ReadService_GetEvent2", check: func(t *testing.T, r *apiResult) {
			want(t, "event", r.str("entry", "entry", "event", "event_id"), "oa-0")
		}},
		{op: "ProofService_GetInclusionProof", query: map[string]string{"partition": "", "leaf_index": ""}, check: func(t *testing.T, r *apiResult) {
			want(t, "tree_size", r.str("tree_size"), "1")
		}},
		{op: "ProofService_GetInclusionProof2", check: func(t *testing.T, r *apiResult) {
			want(t, "tree_size", r.str("tree_size"), "1")
		}},
		{op: "ReadService_Search", query: noFilter, check: func(t *testing.T, r *apiResult) {
			ids := eventIDs(t, r.json["entries"])
			if want := []string{"oa-3", "oa-2", "oa-1", "oa-0"}; !slices.Equal(ids, want) {
				t.Errorf("search found %v, want %v (newest first)", ids, want)
			}
		}},
		{op: "ReadService_Aggregate", check: func(t *testing.T, r *apiResult) {
			want(t, "total", r.str("total"), "4")
			groups, _ := r.json["groups"].([]any)
			if len(groups) != 1 || groups[0].(map[string]any)["key"] != "record.view" {
				t.Errorf("groups %v, want record.view alone", groups)
			}
		}},
		{op: "AdminService_SetSearchSettings", body: map[string]any{"text_attributes": []any{"reason", "note"}}, check: func(t *testing.T, r *apiResult) {
			want(t, "text_attributes", r.str("text_attributes"), "2")
		}},
		{op: "AdminService_GetSearchSettings", check: func(t *testing.T, r *apiResult) {
			if r.str("text_attributes") != "2" || !bytes.Contains(r.body, []byte(`"reason"`)) {
				t.Errorf("search settings %s", r.body)
			}
		}},
		{op: "ProofService_ListPartitions", check: func(t *testing.T, r *apiResult) {
			parts, _ := r.json["partitions"].([]any)
			if len(parts) != 1 || parts[0].(map[string]any)["partition"] != part {
				t.Errorf("partitions %v", parts)
			}
		}},
		{op: "ProofService_GetCheckpoint", check: func(t *testing.T, r *apiResult) {
			contentType(t, r, "text/plain")
			lines := strings.Split(string(r.body), "\n")
			if len(lines) < 2 || lines[1] != "1" {
				t.Errorf("checkpoint at tree_size 1 says size %q", lines[1:2])
			}
		}},
		{op: "ProofService_GetConsistencyProof", check: func(t *testing.T, r *apiResult) {
			want(t, "from_size", r.str("from_size"), "1")
			want(t, "to_size", r.str("to_size"), "2")
		}},
		{op: "ComplianceService_PIIAccessReport", query: map[string]string{"format": "REPORT_FORMAT_PDF"}, check: func(t *testing.T, r *apiResult) {
			contentType(t, r, "application/pdf")
			if !bytes.HasPrefix(r.body, []byte("%PDF")) {
				t.Errorf("not a PDF: %.40q", r.body)
			}
		}},
		{op: "ComplianceService_EntityHistory", query: map[string]string{"format": "REPORT_FORMAT_CSV"}, check: func(t *testing.T, r *apiResult) {
			contentType(t, r, "text/csv")
		}},
		{op: "ComplianceService_Export", query: noLegacy, check: func(t *testing.T, r *apiResult) {
			contentType(t, r, "application/x-ndjson")
			header, _, _ := bytes.Cut(r.body, []byte("\n"))
			for _, f := range []string{`"alice"`, `"citizen-1"`, `"CATEGORY_DATA_ACCESS"`, `"record.view"`, `"care"`, `"name"`} {
				if !bytes.Contains(header, []byte(f)) {
					t.Errorf("export header lacks the filter value %s: %s", f, header)
				}
			}
			if n := bytes.Count(r.body, []byte(`"type":"entry"`)); n != 4 {
				t.Errorf("export holds %d entries, want 4", n)
			}
		}},
		{op: "ReadService_Tail", stream: true, check: func(t *testing.T, r *apiResult) {
			want(t, "first entry", r.str("result", "entry", "leaf_index"), "")
			want(t, "first entry's partition", r.str("result", "entry", "partition"), part)
		}},
		{op: "ComplianceService_Subscribe", stream: true, check: func(t *testing.T, r *apiResult) {
			want(t, "domain event", r.str("result", "type"), "audit.event.recorded")
		}},
		{op: "AdminService_WhoAmI", check: func(t *testing.T, r *apiResult) {
			want(t, "role", r.str("role"), "ROLE_ADMIN")
			want(t, "all_tenants", r.str("all_tenants"), "true")
		}},
		{op: "AdminService_ClusterStatus", check: func(t *testing.T, r *apiResult) {
			want(t, "node_id", r.str("node_id"), "n1")
		}},
		{op: "AdminService_AddNode", body: map[string]any{"id": "n1", "raft_address": st.GetNodes()[0].GetRaftAddress()}},
		{op: "AdminService_RemoveNode", path: map[string]string{"id": "ghost"}},
		{op: "AdminService_TransferLeadership", body: map[string]any{"id": "ghost"}, status: http.StatusNotFound},
		{op: "AdminService_CreateAPIKey", body: map[string]any{"role": "ROLE_AUDITOR", "tenants": []any{"acme"}, "description": "openapi"}, check: func(t *testing.T, r *apiResult) {
			want(t, "role", r.str("key", "role"), "ROLE_AUDITOR")
			state["key"] = r.str("key", "id")
		}},
		{op: "AdminService_ListAPIKeys", check: func(t *testing.T, r *apiResult) {
			if !bytes.Contains(r.body, []byte(state["key"])) {
				t.Errorf("key %s not listed", state["key"])
			}
		}},
		{op: "AdminService_RevokeAPIKey", path: map[string]string{"id": "<key>"}},
		{op: "ComplianceService_SetRetentionPolicy", body: map[string]any{"category": "CATEGORY_FINANCIAL", "retention_days": 3653}, check: func(t *testing.T, r *apiResult) {
			want(t, "category", r.str("policy", "category"), "CATEGORY_FINANCIAL")
			want(t, "retention_days", r.str("policy", "retention_days"), "3653")
		}},
		{op: "ComplianceService_ListRetentionPolicies", check: func(t *testing.T, r *apiResult) {
			policies, _ := r.json["policies"].([]any)
			if !slices.ContainsFunc(policies, func(p any) bool {
				m := p.(map[string]any)
				return m["category"] == "CATEGORY_FINANCIAL" && m["retention_days"] == 3653.0 && m["is_default"] == nil
			}) {
				t.Errorf("policy not listed: %s", r.body)
			}
		}},
		{op: "ComplianceService_RetentionDryRun"},
		{op: "ComplianceService_RunRetentionSweep", body: map[string]any{"tenant_id": "acme"}},
		{op: "ComplianceService_CreateLegalHold", body: map[string]any{"tenant_id": "acme", "subject_id": "citizen-1", "category": "CATEGORY_DATA_ACCESS", "case_reference": "case-1", "reason": "openapi"}, check: func(t *testing.T, r *apiResult) {
			want(t, "category", r.str("hold", "category"), "CATEGORY_DATA_ACCESS")
			state["hold"] = r.str("hold", "id")
		}},
		{op: "ComplianceService_ListLegalHolds", check: func(t *testing.T, r *apiResult) {
			want(t, "holds", r.str("holds"), "1")
		}},
		{op: "ComplianceService_ReleaseLegalHold", path: map[string]string{"id": "<hold>"}, body: map[string]any{"reason": "done"}, check: func(t *testing.T, r *apiResult) {
			want(t, "release_reason", r.str("hold", "release_reason"), "done")
		}},
		{op: "ComplianceService_SetPrivacySettings", body: map[string]any{"seal_subject_payloads": true}, check: func(t *testing.T, r *apiResult) {
			want(t, "seal_subject_payloads", r.str("seal_subject_payloads"), "true")
			// citizen-1 gets a data key, for the erasure below (the hold
			// on them was released above).
			e.appendAll(e.admin, []*trailv1.Event{changeEvent("acme", "openapi-sealed", "citizen-1")})
		}},
		{op: "ComplianceService_GetPrivacySettings", check: func(t *testing.T, r *apiResult) {
			want(t, "seal_subject_payloads", r.str("seal_subject_payloads"), "true")
		}},
		{op: "ComplianceService_EraseSubject", body: map[string]any{"reason": "Art. 17(1)(a)", "reference": "openapi"}, check: func(t *testing.T, r *apiResult) {
			want(t, "subject_id", r.str("receipt", "subject_id"), "citizen-1")
			if !strings.HasPrefix(r.str("receipt", "note"), "trail erasure receipt v1\n") {
				t.Errorf("receipt note: %q", r.str("receipt", "note"))
			}
		}},
		{op: "ComplianceService_ListErasures", check: func(t *testing.T, r *apiResult) {
			want(t, "receipts", r.str("receipts"), "1")
		}},
		{op: "ComplianceService_RotateSealingKey", body: map[string]any{}, check: func(t *testing.T, r *apiResult) {
			// The node's secret is the cluster's already: nothing to re-wrap.
			if r.str("check_value") == "" || r.str("check_value") != r.str("previous_check_value") || r.str("rewrapped") != "" {
				t.Errorf("rotation to the current secret: %s", r.body)
			}
		}},
		{op: "ComplianceService_VerifyIntegrity", body: map[string]any{"tenant_id": "acme", "partition": part}, check: func(t *testing.T, r *apiResult) {
			want(t, "ok", r.str("report", "ok"), "true")
		}},
		{op: "ComplianceService_SetAnomalyRules", body: map[string]any{"max_distinct_subjects_per_hour": 200, "valid_purpose_codes": []any{"care"}}},
		{op: "ComplianceService_GetAnomalyRules", check: func(t *testing.T, r *apiResult) {
			want(t, "threshold", r.str("rules", "max_distinct_subjects_per_hour"), "200")
		}},
	}

	covered := map[string]bool{}
	for _, c := range calls {
		covered[c.op] = true
		op := ops[c.op]
		t.Run(c.op, func(t *testing.T) {
			if op == nil {
				t.Fatalf("%s is not in the document", c.op)
			}
			req, err := e.apiRequest(doc, op, c, pathValues, queryValues, state)
			if err != nil {
				t.Fatal(err)
			}
			res := e.apiDo(t, req, c.stream)
			if want := cmp.Or(c.status, http.StatusOK); res.status != want {
				t.Fatalf("%s %s: HTTP %d, want %d: %s", req.Method, req.URL, res.status, want, res.body)
			}
			if res.status != http.StatusOK {
				return
			}
			e.apiCheckResponse(t, doc, op, res)
			if c.check != nil {
				c.check(t, res)
			}
		})
	}
	for id := range ops {
		if !covered[id] {
			t.Errorf("operation %s of the document is not exercised", id)
		}
	}

	// min_index is honoured wherever it is documented: a read asking for
	// an index this node has not applied waits (up to maxReadWait) rather
	// than answering at once. And a parameter the document does not list
	// is refused.
	for _, c := range calls {
		op := ops[c.op]
		if op == nil || op.method != "GET" {
			continue
		}
		// grpc-gateway reads no query string for a request with no field
		// outside the path: there is no parameter to misspell.
		takesQuery := slices.ContainsFunc(op.Parameters, func(p apiParam) bool { return p.In == "query" })
		t.Run(c.op+"/unknown parameter", func(t *testing.T) {
			if !takesQuery {
				t.Skip("the operation takes no query parameters")
			}
			req, err := e.apiRequest(doc, op, c, pathValues, queryValues, state)
			if err != nil {
				t.Fatal(err)
			}
			req.URL.RawQuery += "&minindex=1"
			res := e.apiDo(t, req, false)
			if res.status != http.StatusBadRequest || !strings.Contains(string(res.body), `unknown query parameter \"minindex\"`) {
				t.Fatalf("HTTP %d %s, want 400 naming the parameter", res.status, res.body)
			}
		})
		if !slices.ContainsFunc(op.Parameters, func(p apiParam) bool { return p.Name == "min_index" && p.In == "query" }) {
			continue
		}
		t.Run(c.op+"/min_index waits", func(t *testing.T) {
			req, err := e.apiRequest(doc, op, c, pathValues, queryValues, state)
			if err != nil {
				t.Fatal(err)
			}
			q := req.URL.Query()
			q.Set("min_index", strconv.FormatUint(e.node.AppliedIndex()+1000, 10))
			req.URL.RawQuery = q.Encode()
			ctx, cancel := context.WithTimeout(req.Context(), 500*time.Millisecond)
			defer cancel()
			resp, err := e.http.Do(req.WithContext(ctx))
			if err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				t.Fatalf("answered HTTP %d at once, without waiting for min_index: %.300s", resp.StatusCode, b)
			}
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatal(err)
			}
		})
	}
}

// apiRequest builds c's request from what op documents.
func (e *env) apiRequest(doc *apiDoc, op *apiOp, c apiCall, pathValues, queryValues, state map[string]string) (*http.Request, error) {
	fill := func(v string) string {
		if v == appliedNow {
			return strconv.FormatUint(e.node.AppliedIndex(), 10)
		}
		if s, ok := strings.CutPrefix(v, "<"); ok {
			return state[strings.TrimSuffix(s, ">")]
		}
		return v
	}
	path := op.path
	q := url.Values{}
	var body io.Reader
	documented := map[string]bool{}
	for _, p := range op.Parameters {
		documented[p.Name] = true
		switch p.In {
		case "path":
			v, ok := c.path[p.Name]
			if !ok {
				v, ok = pathValues[p.Name]
			}
			if !ok {
				return nil, fmt.Errorf("no value for path parameter %s", p.Name)
			}
			path = strings.Replace(path, "{"+p.Name+"}", url.PathEscape(fill(v)), 1)
		case "query":
			v, ok := c.query[p.Name]
			if !ok {
				v, ok = queryValues[p.Name]
			}
			if !ok {
				return nil, fmt.Errorf("no value for documented query parameter %s", p.Name)
			}
			v = fill(v)
			if enum := p.enum(); len(enum) > 0 && v != "" && !slices.Contains(enum, v) {
				return nil, fmt.Errorf("%s=%s is not one of the documented values %v", p.Name, v, enum)
			}
			q.Set(p.Name, v)
		case "body":
			if c.body == nil {
				return nil, fmt.Errorf("no body for documented body parameter %s", p.Name)
			}
			b, err := json.Marshal(c.body)
			if err != nil {
				return nil, err
			}
			var generic any
			json.Unmarshal(b, &generic)
			if err := doc.conforms(p.Schema, generic, "body"); err != nil {
				return nil, err
			}
			body = bytes.NewReader(b)
		default:
			return nil, fmt.Errorf("parameter %s in %s", p.Name, p.In)
		}
	}
	for name := range c.query {
		if !documented[name] {
			return nil, fmt.Errorf("the test sets %s, which the document does not list", name)
		}
	}
	if c.body != nil && body == nil {
		return nil, fmt.Errorf("the test sends a body, which the document does not describe")
	}
	req, err := http.NewRequest(op.method, e.httpBase+path+"?"+q.Encode(), body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+e.admin)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req, nil
}

// apiDo sends req; of a stream it reads the first message, appending
// events until one comes (a subscription sees only new ones).
func (e *env) apiDo(t *testing.T, req *http.Request, stream bool) *apiResult {
	t.Helper()
	if !stream {
		resp, err := e.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		res := &apiResult{status: resp.StatusCode, header: resp.Header, body: b}
		json.Unmarshal(b, &res.json)
		return res
	}
	ctx, cancel := context.WithTimeout(req.Context(), 20*time.Second)
	defer cancel()
	got := make(chan *apiResult, 1)
	go func() {
		res := &apiResult{}
		defer func() { got <- res }()
		resp, err := e.http.Do(req.WithContext(ctx))
		if err != nil {
			return
		}
		defer resp.Body.Close()
		res.status, res.header = resp.StatusCode, resp.Header
		line, _ := bufio.NewReader(resp.Body).ReadBytes('\n')
		res.body = line
		json.Unmarshal(line, &res.json)
	}()
	for i := 0; ; i++ {
		select {
		case res := <-got:
			if res.status == 0 {
				t.Fatalf("%s %s: no answer", req.Method, req.URL)
			}
			return res
		case <-time.After(200 * time.Millisecond):
			e.appendAll(e.admin, []*trailv1.Event{event("acme", fmt.Sprintf("stream-%d-%d", time.Now().UnixNano(), i))})
		}
	}
}

// apiCheckResponse checks a successful answer against what op documents:
// its media type, and for JSON every field name and enum value.
func (e *env) apiCheckResponse(t *testing.T, doc *apiDoc, op *apiOp, res *apiResult) {
	t.Helper()
	produces := op.Produces
	if len(produces) == 0 {
		produces = doc.Produces
	}
	mt, _, _ := mime.ParseMediaType(res.header.Get("Content-Type"))
	if !slices.Contains(produces, mt) {
		t.Errorf("Content-Type %q; the document says %v", res.header.Get("Content-Type"), produces)
	}
	if mt != "application/json" {
		return
	}
	if res.json == nil {
		t.Fatalf("not a JSON object: %.300s", res.body)
	}
	var generic any
	json.Unmarshal(res.body, &generic)
	if err := doc.conforms(op.Responses["200"].Schema, generic, "response"); err != nil {
		t.Error(err)
	}
}

// Enum values are accepted by their short names as well as their full
// names and numbers, in JSON bodies and query strings alike; a name no
// value has is refused with a message listing the names. Output keeps the
// full names.
func TestRESTEnumNames(t *testing.T) {
	e := newEnv(t, envOptions{})
	tok := e.admin
	// body is a valid event as JSON, with its category spelt as given.
	body := func(id, category string) string {
		m := map[string]any{}
		if err := json.Unmarshal([]byte(jsonEvent(t, id)), &m); err != nil {
			t.Fatal(err)
		}
		m["category"] = category
		out, _ := json.Marshal(m)
		return string(out)
	}
	for _, c := range []struct{ id, category, want string }{
		{"short", "data_access", "CATEGORY_DATA_ACCESS"},
		{"full", "CATEGORY_SECURITY", "CATEGORY_SECURITY"},
		{"upper-short", "FINANCIAL", "CATEGORY_FINANCIAL"},
		{"number", "7", "CATEGORY_COMPLIANCE"},
	} {
		code, resp := e.restRaw("POST", "/api/v1/audit/events", tok, body(c.id, c.category))
		if code != http.StatusOK {
			t.Fatalf("category %q: HTTP %d %s", c.category, code, resp)
		}
		// Output spells it in full.
		_, raw, _ := e.rest("GET", "/api/v1/audit/events/"+c.id+"?tenant_id=acme", tok, nil)
		var got struct {
			Entry struct {
				Entry struct{ Event struct{ Category string } }
			}
		}
		if err := json.Unmarshal(raw, &got); err != nil || got.Entry.Entry.Event.Category != c.want {
			t.Errorf("category %q stored as %q (%v), want %s", c.category, got.Entry.Entry.Event.Category, err, c.want)
		}
	}
	// A batch, nested: the short name deep in a list.
	batch := `{"events":[` + body("b-1", "authentication") + `,` + body("b-2", "CATEGORY_SYSTEM") + `]}`
	if code, resp := e.restRaw("POST", "/api/v1/audit/events/batch", tok, batch); code != http.StatusOK || strings.Contains(resp, `"error"`) {
		t.Fatalf("batch with short names: HTTP %d %s", code, resp)
	}
	// A body field that is a message of its own (CreateLegalHold's hold),
	// and enums of other types (roles).
	var hold trailv1.CreateLegalHoldResponse
	e.restJSONRaw("POST", "/api/v1/admin/holds", `{"tenant_id":"acme","category":"data_access","case_reference":"c","reason":"r"}`, &hold)
	if hold.GetHold().GetCategory() != trailv1.Category_CATEGORY_DATA_ACCESS {
		t.Errorf("legal hold with a short category: %v", &hold)
	}
	var key trailv1.CreateAPIKeyResponse
	e.restJSONRaw("POST", "/api/v1/admin/keys", `{"role":"privacy_officer","tenants":["acme"]}`, &key)
	if key.GetKey().GetRole() != trailv1.Role_ROLE_PRIVACY_OFFICER {
		t.Errorf("API key with a short role: %v", &key)
	}

	// Query strings: search (the gateway), export and reports (by hand).
	search := func(category string) (int, string) {
		return e.restRaw("GET", "/api/v1/audit/search?tenant_id=acme&category="+category, tok, "")
	}
	_, want := search("CATEGORY_DATA_ACCESS")
	var found trailv1.SearchResponse
	if err := protojson.Unmarshal([]byte(want), &found); err != nil || len(found.GetEntries()) != 1 ||
		found.GetEntries()[0].GetEntry().GetEvent().GetEventId() != "short" {
		t.Fatalf("search by category: %s (%v)", want, err)
	}
	for _, spelling := range []string{"data_access", "Data_Access", "3"} {
		if code, got := search(spelling); code != http.StatusOK || got != want {
			t.Errorf("search category=%s: HTTP %d %s, want the result of CATEGORY_DATA_ACCESS", spelling, code, got)
		}
	}
	for _, spelling := range []string{"data_access", "CATEGORY_DATA_ACCESS"} {
		code, hdr, b := e.download("/api/v1/audit/tenants/acme/export?category=" + spelling)
		if code != http.StatusOK || !strings.Contains(hdr.Get("Content-Type"), "ndjson") || !bytes.Contains(b, []byte(`"CATEGORY_DATA_ACCESS"`)) {
			t.Errorf("export category=%s: HTTP %d %.300s", spelling, code, b)
		}
	}
	for _, c := range []struct{ format, ctype string }{
		{"pdf", "application/pdf"}, {"REPORT_FORMAT_PDF", "application/pdf"}, {"csv", "text/csv"},
		{"REPORT_FORMAT_CSV", "text/csv"}, {"json", "application/json"}, {"REPORT_FORMAT_JSON", "application/json"},
		{"", "application/json"},
	} {
		code, hdr, b := e.download("/api/v1/audit/tenants/acme/subjects/" + event("acme", "x").GetSubjectId() + "/pii-access?format=" + c.format)
		if mt, _, _ := mime.ParseMediaType(hdr.Get("Content-Type")); code != http.StatusOK || mt != c.ctype {
			t.Errorf("report format=%s: HTTP %d %s %.200s, want %s", c.format, code, hdr.Get("Content-Type"), b, c.ctype)
		}
	}

	// A name no value has: 400, saying what would do.
	for _, c := range []struct{ method, path, body, msg string }{
		{"POST", "/api/v1/audit/events", body("bad-1", "bogus"), `category: \"bogus\" is not a Category: want one of authentication, authorization, data_access`},
		{"POST", "/api/v1/audit/events/batch", `{"events":[` + body("bad-2", "data_acess") + `]}`, `events[0].category: \"data_acess\" is not a Category`},
		{"POST", "/api/v1/admin/keys", `{"role":"root"}`, `role: \"root\" is not a Role: want one of producer, auditor, privacy_officer, admin`},
		{"GET", "/api/v1/audit/search?tenant_id=acme&category=bogus", "", `category: \"bogus\" is not a Category`},
		{"GET", "/api/v1/audit/tenants/acme/export?category=bogus", "", `category: \"bogus\" is not a Category`},
		{"GET", "/api/v1/audit/tenants/acme/subjects/s/pii-access?format=xml", "", `format: \"xml\" is not a ReportFormat: want one of json, csv, pdf`},
		{"GET", "/api/v1/audit/tenants/acme/entities/record/r/history?format=docx", "", `format: \"docx\" is not a ReportFormat`},
	} {
		code, resp := e.restRaw(c.method, c.path, tok, c.body)
		if code != http.StatusBadRequest || !strings.Contains(resp, c.msg) {
			t.Errorf("%s %s: HTTP %d %s, want 400 containing %s", c.method, c.path, code, resp, c.msg)
		}
	}
	if _, _, err := e.node.Engine().EntryByEventID(e.ctx(tok), "acme", "bad-1"); err == nil {
		t.Error("an event with a bad category was stored")
	}
}

// Query parameters take the proto names the document lists and the JSON
// names grpc-gateway also accepts, on the routes served by hand as on the
// gateway's; naming one field twice, or none, is refused.
func TestRESTQueryNames(t *testing.T) {
	e := newEnv(t, envOptions{})
	rc := e.appendAll(e.admin, events("acme", "q", 3))
	part := rc[0].GetPartition()
	checkpoint := "/api/v1/audit/tenants/acme/partitions/" + part + "/checkpoint"
	for _, q := range []string{"tree_size=2", "treeSize=2"} {
		code, _, b := e.download(checkpoint + "?" + q)
		if lines := strings.Split(string(b), "\n"); code != http.StatusOK || len(lines) < 2 || lines[1] != "2" {
			t.Errorf("checkpoint?%s: HTTP %d %s", q, code, b)
		}
	}
	for _, c := range []struct{ path, msg string }{
		{checkpoint + "?tree_size=1&treeSize=2", "duplicate field"},
		{checkpoint + "?size=2", `unknown query parameter \"size\": GetCheckpointRequest takes tenant_id, partition, tree_size, min_index`},
		{checkpoint + "?tree_size=-1", "tree_size"},
		{"/api/v1/audit/tenants/acme/export?actor=alice", `unknown query parameter \"actor\"`},
		{"/api/v1/audit/tenants/acme/export?from=yesterday", "from"},
		{"/api/v1/audit/tenants/acme/subjects/s/pii-access?min_index=x", "min_index"},
		{"/api/v1/audit/search?tenant_id=acme&actor=alice&subject=s", `unknown query parameter \"actor\", \"subject\"`},
	} {
		code, resp := e.restRaw("GET", c.path, e.admin, "")
		if code != http.StatusBadRequest || !strings.Contains(resp, c.msg) {
			t.Errorf("GET %s: HTTP %d %s, want 400 containing %s", c.path, code, resp, c.msg)
		}
	}
	// The JSON name of min_index is honoured on a route served by hand.
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", e.httpBase+"/api/v1/audit/tenants/acme/export?minIndex="+strconv.FormatUint(e.node.AppliedIndex()+1000, 10), nil)
	req.Header.Set("Authorization", "Bearer "+e.admin)
	if resp, err := e.http.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("export?minIndex= answered HTTP %d without waiting", resp.StatusCode)
	}
	// Empty values are absent ones, as in an HTML form.
	if code, resp := e.restRaw("GET", "/api/v1/audit/tenants/acme/subjects/s/pii-access?from=&to=&format=&min_index=", e.admin, ""); code != http.StatusOK {
		t.Errorf("empty parameters: HTTP %d %.300s", code, resp)
	}
}

// restJSONRaw sends body as it is, as the admin, and decodes the answer,
// which must be 200.
func (e *env) restJSONRaw(method, path, body string, out proto.Message) {
	e.t.Helper()
	code, resp := e.restRaw(method, path, e.admin, body)
	if code != http.StatusOK {
		e.t.Fatalf("%s %s: HTTP %d %s", method, path, code, resp)
	}
	if err := protojson.Unmarshal([]byte(resp), out); err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
}

// download GETs path as the admin and returns status, header and body.
func (e *env) download(path string) (int, http.Header, []byte) {
	e.t.Helper()
	code, b, hdr := e.rest("GET", path, e.admin, nil)
	return code, hdr, b
}
