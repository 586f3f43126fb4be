package server

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"slices"
	"testing"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"google.golang.org/grpc/codes"

	"github.com/trailaudit/trail/bundle"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// textFixture appends five events with free text in their attributes.
func textEvents(e *env) {
	prod := e.key(trailv1.Role_ROLE_PRODUCER, "acme")
	reasons := []string{"Bulk export for the FOI request", "routine check", "bulk download", "export of one case", "EXPORTED in bulk"}
	var evs []*trailv1.Event
	for i, r := range reasons {
		ev := event("acme", "txt-"+string(rune('a'+i)))
		ev.Attributes = map[string]string{"reason": r, "ticket": "T-77"}
		evs = append(evs, ev)
	}
	e.appendAll(prod, evs)
}

func searchIDs(t *testing.T, e *env, token string, req *trailv1.SearchRequest) []string {
	t.Helper()
	resp, err := e.read.Search(e.ctx(token), req)
	if err != nil {
		t.Fatalf("Search(%v): %v", req, err)
	}
	var out []string
	for _, h := range resp.GetEntries() {
		out = append(out, h.GetEntry().GetEvent().GetEventId())
	}
	return out
}

// TestSearchQueryTextAndProofs: the query syntax, full text, exclusions,
// provable hits, search settings and aggregations, over gRPC and REST.
func TestSearchQueryTextAndProofs(t *testing.T) {
	e := newEnv(t, envOptions{})
	filterFixture(e)
	textEvents(e)
	auditor := e.key(trailv1.Role_ROLE_AUDITOR, "acme")
	po := e.key(trailv1.Role_ROLE_PRIVACY_OFFICER, "acme")
	waitFor(t, 5e9, "applied", func() bool { return e.node.AppliedIndex() >= e.node.Status().CommitIndex })

	for _, tt := range []struct {
		query string
		want  []string
	}{
		{`category:security -action:nothing`, ids(2, 5, 8, 11, 14, 17, 20, 23)},
		{`purpose:billing,case-handling -purpose:billing`, ids(4, 10, 16, 22)},
		{`bulk`, []string{"txt-a", "txt-c", "txt-e"}},
		{`"bulk export"`, []string{"txt-a"}},
		{`export*`, []string{"txt-a", "txt-d", "txt-e"}},
		{`export* -text:x`, nil},
	} {
		req := &trailv1.SearchRequest{TenantId: "acme", Filter: &trailv1.Filter{Query: tt.query}, Limit: 100}
		if tt.want == nil {
			_, err := e.read.Search(e.ctx(auditor), req)
			wantCode(t, err, codes.InvalidArgument)
			continue
		}
		if got := searchIDs(t, e, auditor, req); !slices.Equal(got, tt.want) {
			t.Errorf("query %q found %v, want %v", tt.query, got, tt.want)
		}
	}

	// Every hit provable against the signed checkpoint in the response.
	resp, err := e.read.Search(e.ctx(auditor), &trailv1.SearchRequest{TenantId: "acme", Filter: &trailv1.Filter{Query: "export*"}, WithProofs: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetProofs()) != len(resp.GetEntries()) || len(resp.GetCheckpoints()) != 1 {
		t.Fatalf("%d proofs and %d checkpoints for %d hits", len(resp.GetProofs()), len(resp.GetCheckpoints()), len(resp.GetEntries()))
	}
	cp := resp.GetCheckpoints()[0]
	opened := e.openCheckpoint([]byte(cp.GetCheckpoint().GetSignedNote()), "acme", cp.GetPartition())
	for i, h := range resp.GetEntries() {
		p := resp.GetProofs()[i]
		leaf := rfc6962.DefaultHasher.HashLeaf(h.GetEntryBytes())
		if p.GetTreeSize() != opened.Size || p.GetLeafIndex() != h.GetLeafIndex() {
			t.Fatalf("proof %d at size %d for leaf %d, checkpoint %d, hit leaf %d", i, p.GetTreeSize(), p.GetLeafIndex(), opened.Size, h.GetLeafIndex())
		}
		if err := proof.VerifyInclusion(rfc6962.DefaultHasher, p.GetLeafIndex(), opened.Size, leaf, p.GetProof(), opened.Hash); err != nil {
			t.Fatalf("hit %d: %v", i, err)
		}
		tampered := bytes.Clone(h.GetEntryBytes())
		tampered[len(tampered)/2] ^= 1
		if proof.VerifyInclusion(rfc6962.DefaultHasher, p.GetLeafIndex(), opened.Size, rfc6962.DefaultHasher.HashLeaf(tampered), p.GetProof(), opened.Hash) == nil {
			t.Fatal("a tampered hit verified")
		}
	}

	// The ticket attribute is not indexed until the tenant says so, and
	// then only for events appended after.
	if got := searchIDs(t, e, auditor, &trailv1.SearchRequest{TenantId: "acme", Filter: &trailv1.Filter{Text: []string{"t 77"}}}); len(got) != 0 {
		t.Fatalf("an attribute not indexed was searched: %v", got)
	}
	settings, err := e.adm.SetSearchSettings(e.ctx(e.admin), &trailv1.SetSearchSettingsRequest{TenantId: "acme", TextAttributes: []string{"ticket", "reason"}})
	if err != nil || !slices.Equal(settings.GetTextAttributes(), []string{"reason", "ticket"}) || settings.GetDefault() {
		t.Fatalf("SetSearchSettings = %v, %v", settings, err)
	}
	_, err = e.adm.SetSearchSettings(e.ctx(auditor), &trailv1.SetSearchSettingsRequest{TenantId: "acme", Reset_: true})
	wantCode(t, err, codes.PermissionDenied)
	late := event("acme", "txt-late")
	late.Attributes = map[string]string{"ticket": "T-77"}
	e.appendAll(e.key(trailv1.Role_ROLE_PRODUCER, "acme"), []*trailv1.Event{late})
	waitFor(t, 5e9, "the late event", func() bool {
		return slices.Equal(searchIDs(t, e, auditor, &trailv1.SearchRequest{TenantId: "acme", Filter: &trailv1.Filter{Text: []string{"t 77"}}}), []string{"txt-late"})
	})

	// Aggregations: by category, by day, and the permissions they need.
	agg, err := e.read.Aggregate(e.ctx(auditor), &trailv1.AggregateRequest{TenantId: "acme", GroupBy: trailv1.GroupBy_GROUP_BY_CATEGORY,
		Filter: &trailv1.Filter{Query: "-category:data_access"}})
	if err != nil {
		t.Fatal(err)
	}
	if agg.GetTotal() != 16 || len(agg.GetGroups()) != 2 || agg.GetGroups()[0].GetCount() != 8 {
		t.Fatalf("aggregate by category: %v", agg)
	}
	day, err := e.read.Aggregate(e.ctx(auditor), &trailv1.AggregateRequest{TenantId: "acme", GroupBy: trailv1.GroupBy_GROUP_BY_DAY})
	if err != nil || day.GetTotal() != 30 || len(day.GetGroups()) == 0 || day.GetGroups()[0].GetStart() == nil {
		t.Fatalf("aggregate by day: %v, %v", day, err)
	}
	var sum uint64
	for _, g := range day.GetGroups() {
		sum += g.GetCount()
	}
	if sum != day.GetTotal() {
		t.Fatalf("days sum to %d of %d", sum, day.GetTotal())
	}
	_, err = e.read.Aggregate(e.ctx(auditor), &trailv1.AggregateRequest{TenantId: "acme", GroupBy: trailv1.GroupBy_GROUP_BY_SUBJECT})
	wantCode(t, err, codes.PermissionDenied)
	if _, err := e.read.Aggregate(e.ctx(po), &trailv1.AggregateRequest{TenantId: "acme", GroupBy: trailv1.GroupBy_GROUP_BY_SUBJECT}); err != nil {
		t.Fatalf("a privacy officer grouping by subject: %v", err)
	}
	_, err = e.read.Aggregate(e.ctx(auditor), &trailv1.AggregateRequest{TenantId: "acme"})
	wantCode(t, err, codes.InvalidArgument)

	// REST: the same, by query string.
	var ar trailv1.AggregateResponse
	q := url.Values{"tenant_id": {"acme"}, "group_by": {"action"}, "filter.query": {"category:security,authentication"}, "limit": {"1"}}
	e.restJSON(http.MethodGet, "/api/v1/audit/aggregate?"+q.Encode(), auditor, nil, &ar)
	if ar.GetTotal() != 16 || len(ar.GetGroups()) != 1 {
		t.Fatalf("REST aggregate: %v", &ar)
	}
	var sr trailv1.SearchResponse
	e.restJSON(http.MethodGet, "/api/v1/audit/search?"+url.Values{"tenant_id": {"acme"}, "filter.query": {`"bulk export"`}, "with_proofs": {"true"}}.Encode(), auditor, nil, &sr)
	if len(sr.GetEntries()) != 1 || len(sr.GetProofs()) != 1 {
		t.Fatalf("REST search with proofs: %v", &sr)
	}
	var ss trailv1.SearchSettings
	e.restJSON(http.MethodGet, "/api/v1/admin/tenants/acme/search-settings", e.admin, nil, &ss)
	if !slices.Equal(ss.GetTextAttributes(), []string{"reason", "ticket"}) {
		t.Fatalf("REST search settings: %v", &ss)
	}

	// An export by text records what it read, and verifies offline.
	b, err := exportBundle(t, e.ctx(auditor), e.comp, &trailv1.ExportRequest{TenantId: "acme", Filter: &trailv1.Filter{Query: "bulk"}})
	if err != nil {
		t.Fatal(err)
	}
	r, err := bundle.NewKeyVerifier(e.verifier).Verify(context.Background(), bytes.NewReader(b))
	if err != nil || r.Entries != 3 || !slices.Equal(r.Filter.TextAttributes, []string{"reason", "ticket"}) {
		t.Fatalf("text export: %v, %+v", err, r)
	}
}
