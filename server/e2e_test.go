package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// TestAppendGRPCProveREST appends over gRPC and fetches and verifies the
// inclusion proof, the entry and the checkpoint over REST.
func TestAppendGRPCProveREST(t *testing.T) {
	e := newEnv(t, envOptions{})
	producer := e.key(trailv1.Role_ROLE_PRODUCER, "acme")
	auditor := e.key(trailv1.Role_ROLE_AUDITOR, "acme")

	first := event("acme", "login-1")
	resp, err := e.ingest.Append(e.ctx(producer), &trailv1.AppendRequest{Event: first})
	if err != nil {
		t.Fatal(err)
	}
	rc := resp.GetReceipt()
	if rc.GetLeafIndex() != 0 || rc.GetTreeSize() != 1 || rc.GetDuplicate() || rc.GetAppliedIndex() == 0 {
		t.Fatalf("receipt %v", rc)
	}
	e.appendAll(producer, events("acme", "bulk", 40))

	for _, tc := range []struct {
		name, query string
		treeSize    uint64
	}{
		{"current size", query("tenant_id", "acme"), 41},
		{"receipt size", query("tenant_id", "acme", "tree_size", "1"), 1},
		{"between", query("tenant_id", "acme", "tree_size", "20"), 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var pr trailv1.GetInclusionProofResponse
			e.restJSON("GET", "/api/v1/audit/events/login-1/proof"+tc.query, auditor, nil, &pr)
			if pr.GetTreeSize() != tc.treeSize || pr.GetLeafIndex() != 0 {
				t.Fatalf("proof of leaf %d at size %d, want 0 at %d", pr.GetLeafIndex(), pr.GetTreeSize(), tc.treeSize)
			}
			e.verifyInclusion(&pr, "acme")
		})
	}

	// The entry served over REST decodes to exactly the event appended.
	var got trailv1.GetEventResponse
	e.restJSON("GET", "/api/v1/audit/events/login-1"+query("tenant_id", "acme"), auditor, nil, &got)
	var entry trailv1.Entry
	if err := proto.Unmarshal(got.GetEntry().GetEntryBytes(), &entry); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(entry.GetEvent(), first) {
		t.Fatalf("stored event %v, appended %v", entry.GetEvent(), first)
	}
	if !bytes.Equal(got.GetReceipt().GetLeafHash(), rc.GetLeafHash()) || got.GetReceipt().GetTreeSize() != 1 {
		t.Fatalf("receipt from GetEvent %v, from Append %v", got.GetReceipt(), rc)
	}
}

// TestAppendRESTProveGRPC appends over REST and verifies over gRPC.
func TestAppendRESTProveGRPC(t *testing.T) {
	e := newEnv(t, envOptions{})
	producer := e.key(trailv1.Role_ROLE_PRODUCER, "globex")
	auditor := e.key(trailv1.Role_ROLE_AUDITOR, "globex")

	var rc trailv1.Receipt
	ev := event("globex", "rest-1")
	e.restJSON("POST", "/api/v1/audit/events", producer, ev, &rc)
	if rc.GetEventId() != "rest-1" || rc.GetTreeSize() != 1 {
		t.Fatalf("receipt %v", &rc)
	}
	var batch trailv1.AppendBatchResponse
	e.restJSON("POST", "/api/v1/audit/events/batch", producer, &trailv1.AppendBatchRequest{Events: events("globex", "rb", 9)}, &batch)
	if len(batch.GetResults()) != 9 || batch.GetResults()[8].GetReceipt().GetTreeSize() != 10 {
		t.Fatalf("batch results %v", batch.GetResults())
	}
	// A retried append returns the original receipt.
	var again trailv1.Receipt
	e.restJSON("POST", "/api/v1/audit/events", producer, ev, &again)
	if !again.GetDuplicate() || !bytes.Equal(again.GetLeafHash(), rc.GetLeafHash()) {
		t.Fatalf("retry receipt %v, original %v", &again, &rc)
	}

	for leaf := range uint64(10) {
		pr, err := e.proofs.GetInclusionProof(e.ctx(auditor), &trailv1.GetInclusionProofRequest{
			TenantId: "globex", Partition: rc.GetPartition(), LeafIndex: leaf})
		if err != nil {
			t.Fatal(err)
		}
		e.verifyInclusion(pr, "globex")
	}
}

// TestConsistencyAndCheckpoints checks consistency proofs over both
// protocols, and that the text/plain checkpoint route serves the same
// signed note as gRPC: signatures are deterministic.
func TestConsistencyAndCheckpoints(t *testing.T) {
	e := newEnv(t, envOptions{})
	producer := e.key(trailv1.Role_ROLE_PRODUCER, "acme")
	auditor := e.key(trailv1.Role_ROLE_AUDITOR, "acme")
	part := e.appendAll(producer, events("acme", "a", 7))[0].GetPartition()
	old, err := e.proofs.GetCheckpoint(e.ctx(auditor), &trailv1.GetCheckpointRequest{TenantId: "acme", Partition: part})
	if err != nil {
		t.Fatal(err)
	}
	e.appendAll(producer, events("acme", "b", 30))

	// text/plain route == gRPC note, byte for byte.
	code, body, hdr := e.rest("GET", "/api/v1/audit/tenants/acme/partitions/"+part+"/checkpoint"+query("tree_size", "7"), auditor, nil)
	if code != http.StatusOK || !strings.HasPrefix(hdr.Get("Content-Type"), "text/plain") {
		t.Fatalf("checkpoint route: HTTP %d %s: %s", code, hdr.Get("Content-Type"), body)
	}
	if string(body) != old.GetCheckpoint().GetSignedNote() {
		t.Fatalf("REST note\n%s\ndiffers from gRPC note\n%s", body, old.GetCheckpoint().GetSignedNote())
	}
	cpOld := e.openCheckpoint(body, "acme", part)

	var viaREST trailv1.GetConsistencyProofResponse
	e.restJSON("GET", "/api/v1/audit/tenants/acme/partitions/"+part+"/consistency"+query("from_size", "7"), auditor, nil, &viaREST)
	viaGRPC, err := e.proofs.GetConsistencyProof(e.ctx(auditor), &trailv1.GetConsistencyProofRequest{TenantId: "acme", Partition: part, FromSize: 7})
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(&viaREST, viaGRPC) {
		t.Fatalf("REST and gRPC consistency proofs differ:\n%v\n%v", &viaREST, viaGRPC)
	}
	from := e.openCheckpoint([]byte(viaGRPC.GetFromCheckpoint().GetSignedNote()), "acme", part)
	to := e.openCheckpoint([]byte(viaGRPC.GetToCheckpoint().GetSignedNote()), "acme", part)
	if from.Size != 7 || to.Size != 37 || !bytes.Equal(from.Hash, cpOld.Hash) {
		t.Fatalf("checkpoints %d/%x -> %d, want 7/%x -> 37", from.Size, from.Hash, to.Size, cpOld.Hash)
	}
	if err := proof.VerifyConsistency(rfc6962.DefaultHasher, from.Size, to.Size, viaGRPC.GetProof(), from.Hash, to.Hash); err != nil {
		t.Fatalf("consistency proof: %v", err)
	}

	// ListPartitions agrees with the latest checkpoint.
	var lp trailv1.ListPartitionsResponse
	e.restJSON("GET", "/api/v1/audit/tenants/acme/partitions", auditor, nil, &lp)
	if len(lp.GetPartitions()) != 1 {
		t.Fatalf("partitions %v", lp.GetPartitions())
	}
	p := lp.GetPartitions()[0]
	if p.GetPartition() != part || p.GetSize() != 37 || !bytes.Equal(p.GetRootHash(), to.Hash) || p.GetSealed() || p.GetFinalCheckpoint() != nil {
		t.Fatalf("partition %v", p)
	}
}

// TestReadYourWrites: a receipt's applied_index makes a read wait until the
// node has applied the event; an index never reached ends at the deadline.
func TestReadYourWrites(t *testing.T) {
	e := newEnv(t, envOptions{})
	admin := e.admin
	rc := e.appendAll(admin, []*trailv1.Event{event("acme", "ryw")})[0]
	got, err := e.read.GetEvent(e.ctx(admin), &trailv1.GetEventRequest{TenantId: "acme", EventId: "ryw", MinIndex: rc.GetAppliedIndex()})
	if err != nil || got.GetEntry().GetEntry().GetEvent().GetEventId() != "ryw" {
		t.Fatalf("GetEvent at applied index: %v, %v", got, err)
	}
	ctx, cancel := context.WithTimeout(e.ctx(admin), 300*time.Millisecond)
	defer cancel()
	_, err = e.read.GetEvent(ctx, &trailv1.GetEventRequest{TenantId: "acme", EventId: "ryw", MinIndex: rc.GetAppliedIndex() + 1_000_000})
	wantCode(t, err, codes.DeadlineExceeded)
}

func TestSearch(t *testing.T) {
	e := newEnv(t, envOptions{})
	producer := e.key(trailv1.Role_ROLE_PRODUCER, "acme")
	auditor := e.key(trailv1.Role_ROLE_AUDITOR, "acme")
	privacy := e.key(trailv1.Role_ROLE_PRIVACY_OFFICER, "acme")
	evs := events("acme", "s", 30)
	for i, ev := range evs {
		ev.Actor.Id = fmt.Sprintf("actor-%d", i%3)
		ev.SubjectId = fmt.Sprintf("subject-%d", i%2)
	}
	e.appendAll(producer, evs)

	// Pages of an actor's events, oldest first, over REST.
	var ids []string
	cursor := ""
	for {
		var page trailv1.SearchResponse
		e.restJSON("GET", "/api/v1/audit/search"+query("tenant_id", "acme", "actor_id", "actor-1", "limit", "4", "cursor", cursor), auditor, nil, &page)
		for _, en := range page.GetEntries() {
			ids = append(ids, en.GetEntry().GetEvent().GetEventId())
		}
		if cursor = page.GetNextCursor(); cursor == "" {
			break
		}
	}
	want := []string{"s-1", "s-4", "s-7", "s-10", "s-13", "s-16", "s-19", "s-22", "s-25", "s-28"}
	if fmt.Sprint(ids) != fmt.Sprint(want) {
		t.Fatalf("actor-1 events %v, want %v", ids, want)
	}

	// A per-person report needs the privacy officer role.
	_, err := e.read.Search(e.ctx(auditor), &trailv1.SearchRequest{TenantId: "acme", SubjectId: "subject-0"})
	wantCode(t, err, codes.PermissionDenied)
	res, err := e.read.Search(e.ctx(privacy), &trailv1.SearchRequest{TenantId: "acme", SubjectId: "subject-0", NewestFirst: true})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(res.GetEntries()); n != 15 || res.GetEntries()[0].GetEntry().GetEvent().GetEventId() != "s-28" {
		t.Fatalf("subject-0 report: %d entries, first %v", n, res.GetEntries()[0].GetEntry().GetEvent().GetEventId())
	}
	// Every hit carries what is needed to prove it.
	for _, en := range res.GetEntries() {
		if !bytes.Equal(rfc6962.DefaultHasher.HashLeaf(en.GetEntryBytes()), en.GetLeafHash()) {
			t.Fatalf("hit %d: leaf hash does not match its bytes", en.GetLeafIndex())
		}
	}
}

func TestHTTPEndpoints(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.appendAll(e.admin, []*trailv1.Event{event("acme", "m")})
	for _, tc := range []struct {
		path, contains string
	}{
		{"/healthz", "ok"},
		{"/readyz", "Leader"},
		{"/metrics", `trail_raft_state{state="Leader"} 1`},
		{"/metrics", `trail_append_events_total{result="appended"} 1`},
		{"/metrics", `trail_rpc_requests_total{code="OK",method="/trail.v1.IngestService/AppendBatch"} 1`},
		{"/api/v1/openapi.json", `"swagger"`},
	} {
		code, body, _ := e.rest("GET", tc.path, "", nil)
		if code != http.StatusOK || !strings.Contains(string(body), tc.contains) {
			t.Errorf("GET %s: HTTP %d, want 200 containing %q; body:\n%.2000s", tc.path, code, tc.contains, body)
		}
	}
	_, body, _ := e.rest("GET", "/api/v1/openapi.json", "", nil)
	if !json.Valid(body) {
		t.Error("openapi.json is not valid JSON")
	}
	if code, _, _ := e.rest("GET", "/nope", "", nil); code != http.StatusNotFound {
		t.Errorf("GET /nope: HTTP %d", code)
	}
}

func TestBootstrapOnce(t *testing.T) {
	e := newEnv(t, envOptions{})
	if _, err := Bootstrap(e.ctx(""), e.node, "again"); err != ErrAlreadyBootstrapped {
		t.Fatalf("second Bootstrap: %v, want ErrAlreadyBootstrapped", err)
	}
}

// TestAPIKeyLifecycle: keys are stored hashed, listed without secrets and
// stop working when revoked.
func TestAPIKeyLifecycle(t *testing.T) {
	e := newEnv(t, envOptions{})
	resp, err := e.adm.CreateAPIKey(e.ctx(e.admin), &trailv1.CreateAPIKeyRequest{
		Role: trailv1.Role_ROLE_AUDITOR, Tenants: []string{"acme", "acme", "globex"}, Description: "siem"})
	if err != nil {
		t.Fatal(err)
	}
	id, secret, err := parseToken(resp.GetToken())
	if err != nil || id != resp.GetKey().GetId() {
		t.Fatalf("token %q: %v", resp.GetToken(), err)
	}
	stored, err := e.node.Engine().Setting(keyPrefix + id)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(stored, []byte(secret)) {
		t.Fatal("the stored key record contains the secret")
	}
	if _, err := e.read.Search(e.ctx(resp.GetToken()), &trailv1.SearchRequest{TenantId: "globex"}); err != nil {
		t.Fatalf("search with new key: %v", err)
	}
	list, err := e.adm.ListAPIKeys(e.ctx(e.admin), &trailv1.ListAPIKeysRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var found *trailv1.APIKey
	for _, k := range list.GetKeys() {
		if k.GetId() == id {
			found = k
		}
	}
	if found == nil || fmt.Sprint(found.GetTenants()) != "[acme globex]" || found.GetRevoked() {
		t.Fatalf("listed key %v", found)
	}
	code, _, _ := e.rest("DELETE", "/api/v1/admin/keys/"+id, e.admin, nil)
	if code != http.StatusOK {
		t.Fatalf("revoke over REST: HTTP %d", code)
	}
	_, err = e.read.Search(e.ctx(resp.GetToken()), &trailv1.SearchRequest{TenantId: "globex"})
	wantCode(t, err, codes.Unauthenticated)
	_, err = e.adm.RevokeAPIKey(e.ctx(e.admin), &trailv1.RevokeAPIKeyRequest{Id: "0123456789abcdef"})
	wantCode(t, err, codes.NotFound)
}

// TestSearchPageByteBound: a page whose entries exceed the byte bound is
// cut short, and its cursor resumes right after the last entry returned.
func TestSearchPageByteBound(t *testing.T) {
	e := newEnv(t, envOptions{tune: func(c *Config) { c.searchBytes = 5000 }})
	evs := events("acme", "big", 30)
	for _, ev := range evs {
		ev.Attributes["padding"] = strings.Repeat("x", 1000)
	}
	e.appendAll(e.admin, evs)
	var ids []string
	pages := 0
	for cursor := ""; ; pages++ {
		res, err := e.read.Search(e.ctx(e.admin), &trailv1.SearchRequest{TenantId: "acme", Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		if n := len(res.GetEntries()); n == 0 || n > 5 {
			t.Fatalf("page %d: %d entries", pages, n)
		}
		for _, en := range res.GetEntries() {
			ids = append(ids, en.GetEntry().GetEvent().GetEventId())
		}
		if cursor = res.GetNextCursor(); cursor == "" {
			break
		}
	}
	for i, id := range ids {
		if id != fmt.Sprintf("big-%d", i) {
			t.Fatalf("entry %d is %s; all: %v", i, id, ids)
		}
	}
	if len(ids) != 30 || pages < 6 {
		t.Fatalf("%d entries in %d pages", len(ids), pages)
	}
}
