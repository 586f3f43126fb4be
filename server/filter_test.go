package server

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/trailaudit/trail/bundle"
	"github.com/trailaudit/trail/filter"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// filterFixture appends 24 events to acme: categories cycle through
// authentication, data_access and security; data accesses alternate
// between purpose "case-handling" with PII fields name and address, and
// purpose "billing" reading "iban".
func filterFixture(e *env) {
	prod := e.key(trailv1.Role_ROLE_PRODUCER, "acme")
	var evs []*trailv1.Event
	for i := range 24 {
		ev := event("acme", fmt.Sprintf("f-%02d", i))
		switch i % 3 {
		case 0:
			ev.Category, ev.Action = trailv1.Category_CATEGORY_AUTHENTICATION, "user.login"
		case 1:
			ev.Category = trailv1.Category_CATEGORY_DATA_ACCESS
			if i%2 == 0 {
				ev.PurposeCode, ev.PiiFieldsAccessed = "case-handling", []string{"name", "address"}
			} else {
				ev.PurposeCode, ev.PiiFieldsAccessed = "billing", []string{"iban"}
			}
		case 2:
			ev.Category, ev.Action = trailv1.Category_CATEGORY_SECURITY, "alert"
		}
		evs = append(evs, ev)
	}
	e.appendAll(prod, evs)
}

// TestOneFilterModel: search and export take the same Filter, with sets
// of values, purpose codes and PII fields; export's bundle records it and
// verifies against it; the older single-valued fields still work, and a
// field given both ways is refused.
func TestOneFilterModel(t *testing.T) {
	e := newEnv(t, envOptions{})
	filterFixture(e)
	auditor := e.key(trailv1.Role_ROLE_AUDITOR, "acme")
	po := e.key(trailv1.Role_ROLE_PRIVACY_OFFICER, "acme")
	two := []trailv1.Category{trailv1.Category_CATEGORY_SECURITY, trailv1.Category_CATEGORY_AUTHENTICATION}

	tests := []struct {
		name   string
		token  string
		filter *trailv1.Filter
		want   []string // event ids, in log order
	}{
		{"two categories", auditor, &trailv1.Filter{Categories: two}, ids(0, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18, 20, 21, 23)},
		{"purpose", auditor, &trailv1.Filter{PurposeCodes: []string{"billing"}}, ids(1, 7, 13, 19)},
		{"PII fields, either", po, &trailv1.Filter{PiiFields: []string{"iban", "address"}}, ids(1, 4, 7, 10, 13, 16, 19, 22)},
		{"categories and actions", auditor, &trailv1.Filter{Categories: two, Actions: []string{"alert", "nothing"}}, ids(2, 5, 8, 11, 14, 17, 20, 23)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			req := &trailv1.SearchRequest{TenantId: "acme", Filter: tt.filter, Limit: 5}
			for {
				resp, err := e.read.Search(e.ctx(tt.token), req)
				if err != nil {
					t.Fatalf("Search: %v", err)
				}
				for _, h := range resp.GetEntries() {
					got = append(got, h.GetEntry().GetEvent().GetEventId())
				}
				if req.Cursor = resp.GetNextCursor(); req.Cursor == "" {
					break
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("search found %v, want %v", got, tt.want)
			}

			b, err := exportBundle(t, e.ctx(tt.token), e.comp, &trailv1.ExportRequest{TenantId: "acme", Filter: tt.filter})
			if err != nil {
				t.Fatalf("export: %v", err)
			}
			r, err := bundle.NewKeyVerifier(e.verifier).Verify(context.Background(), bytes.NewReader(b))
			if err != nil {
				t.Fatalf("verify export: %v", err)
			}
			want, err := filter.FromProto(tt.filter)
			if err != nil {
				t.Fatal(err)
			}
			if r.Entries != uint64(len(tt.want)) || r.Filter.String() != want.String() {
				t.Fatalf("export holds %d entries under %q, want %d under %q", r.Entries, r.Filter.String(), len(tt.want), want.String())
			}
		})
	}

	// The older spelling is a one-value filter, and may be combined with
	// a Filter on other fields.
	resp, err := e.read.Search(e.ctx(auditor), &trailv1.SearchRequest{TenantId: "acme", Category: trailv1.Category_CATEGORY_DATA_ACCESS,
		Filter: &trailv1.Filter{PurposeCodes: []string{"case-handling"}}})
	if err != nil || len(resp.GetEntries()) != 4 {
		t.Fatalf("legacy category with a filter: %d entries, %v; want 4", len(resp.GetEntries()), err)
	}

	refused := []struct {
		name  string
		token string
		req   *trailv1.SearchRequest
		code  codes.Code
	}{
		{"category both ways", auditor, &trailv1.SearchRequest{TenantId: "acme", Category: trailv1.Category_CATEGORY_SECURITY,
			Filter: &trailv1.Filter{Categories: two}}, codes.InvalidArgument},
		{"an unknown category", auditor, &trailv1.SearchRequest{TenantId: "acme", Filter: &trailv1.Filter{Categories: []trailv1.Category{77}}}, codes.InvalidArgument},
		{"an empty value", auditor, &trailv1.SearchRequest{TenantId: "acme", Filter: &trailv1.Filter{ActorIds: []string{""}}}, codes.InvalidArgument},
		{"PII fields need the privacy officer", auditor, &trailv1.SearchRequest{TenantId: "acme", Filter: &trailv1.Filter{PiiFields: []string{"iban"}}}, codes.PermissionDenied},
		{"subjects need the privacy officer", auditor, &trailv1.SearchRequest{TenantId: "acme", Filter: &trailv1.Filter{SubjectIds: []string{"citizen-1"}}}, codes.PermissionDenied},
	}
	for _, tt := range refused {
		_, err := e.read.Search(e.ctx(tt.token), tt.req)
		wantCode(t, err, tt.code)
		_, err = exportBundle(t, e.ctx(tt.token), e.comp, &trailv1.ExportRequest{TenantId: "acme", Category: tt.req.GetCategory(), Filter: tt.req.GetFilter()})
		wantCode(t, err, tt.code)
	}

	// REST: repeated query parameters are a set.
	q := url.Values{"filter.categories": {"CATEGORY_SECURITY", "CATEGORY_AUTHENTICATION"}, "filter.actions": {"alert"}}
	var sr trailv1.SearchResponse
	e.restJSON(http.MethodGet, "/api/v1/audit/search?tenant_id=acme&"+q.Encode(), auditor, nil, &sr)
	if len(sr.GetEntries()) != 8 {
		t.Fatalf("REST search with a set of categories: %d entries, want 8", len(sr.GetEntries()))
	}
	code, body, _ := e.rest(http.MethodGet, "/api/v1/audit/tenants/acme/export?"+q.Encode(), auditor, nil)
	if code != http.StatusOK {
		t.Fatalf("REST export with a filter: HTTP %d: %.300s", code, body)
	}
	r, err := bundle.NewKeyVerifier(e.verifier).Verify(context.Background(), bytes.NewReader(body))
	if err != nil || r.Entries != 8 {
		t.Fatalf("REST export: %v, %+v", err, r)
	}
}

func ids(n ...int) []string {
	out := make([]string, len(n))
	for i, v := range n {
		out[i] = fmt.Sprintf("f-%02d", v)
	}
	return out
}
