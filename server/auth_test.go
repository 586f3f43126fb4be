package server

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/trailaudit/trail/engine"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// caller is one principal of the auth matrix.
type caller struct {
	name  string
	token string
	// role is what the key may do; "" for callers that must not
	// authenticate at all.
	role string
}

// call is one RPC of the matrix, made as some caller on some tenant. It
// returns the call's error (for REST, the error matching its HTTP status).
type call struct {
	name string
	need string // "append", "read", "pii" or "admin"
	do   func(ctx context.Context, tenant string) error
	// authorized is the code a permitted caller gets (default OK): admin
	// calls are made with arguments that fail after authorization, so the
	// matrix never changes the cluster's membership.
	authorized codes.Code
	admin      bool // not tenant-scoped
}

// TestAuthMatrix tries every RPC (and the REST routes) as every kind of
// caller, on the caller's own tenant and on another one.
func TestAuthMatrix(t *testing.T) {
	e := newEnv(t, envOptions{})
	const own, other = "acme", "globex"
	seeds := map[string]*trailv1.Receipt{}
	for _, tenant := range []string{own, other} {
		seeds[tenant] = e.appendAll(e.admin, []*trailv1.Event{event(tenant, "seed")})[0]
	}
	revoked := e.key(trailv1.Role_ROLE_AUDITOR, own)
	revokedID, _, _ := parseToken(revoked)
	if _, err := e.adm.RevokeAPIKey(e.ctx(e.admin), &trailv1.RevokeAPIKeyRequest{Id: revokedID}); err != nil {
		t.Fatal(err)
	}
	callers := []caller{
		{"no key", "", ""},
		{"malformed key", "trail_nope", ""},
		{"unknown key", "trail_0123456789abcdef_" + strings.Repeat("ab", secretBytes), ""},
		{"revoked key", revoked, ""},
		{"producer", e.key(trailv1.Role_ROLE_PRODUCER, own), "producer"},
		{"auditor", e.key(trailv1.Role_ROLE_AUDITOR, own), "auditor"},
		{"privacy officer", e.key(trailv1.Role_ROLE_PRIVACY_OFFICER, own), "privacy_officer"},
		{"admin", e.admin, "admin"},
	}
	grants := map[string][]string{
		"append": {"producer", "admin"},
		"read":   {"auditor", "privacy_officer", "admin"},
		"pii":    {"privacy_officer", "admin"},
		"admin":  {"admin"},
	}
	appended := map[string]int{own: 1, other: 1}

	for _, c := range matrixCalls(e, seeds) {
		tenants := []string{own, other}
		if c.admin {
			tenants = []string{""}
		}
		for _, tenant := range tenants {
			for _, who := range callers {
				want := codes.Unauthenticated
				if who.role != "" {
					want = codes.PermissionDenied
					for _, r := range grants[c.need] {
						if r == who.role && (who.role == "admin" || tenant == "" || tenant == own) {
							want = c.authorized
						}
					}
				}
				scope := tenant
				if scope == "" {
					scope = "cluster"
				}
				name := fmt.Sprintf("%s/%s/%s", c.name, who.name, scope)
				t.Run(name, func(t *testing.T) {
					ctx := e.ctx(who.token)
					err := c.do(ctx, tenant)
					if got := status.Code(err); got != want {
						t.Fatalf("got %v (%v), want %v", got, err, want)
					}
					if err == nil && c.need == "append" {
						appended[tenant]++
					}
				})
			}
		}
	}

	// Refused appends left no trace in either log.
	for tenant, n := range appended {
		parts, err := e.node.Engine().Partitions(context.Background(), tenant)
		if err != nil || len(parts) != 1 || parts[0].Size != uint64(n) {
			t.Errorf("tenant %s: partitions %v (%v), want one of %d entries", tenant, parts, err, n)
		}
	}
}

// TestAuthSystemTenant: nobody appends to the system tenant, nor can a key
// be made that would.
func TestAuthSystemTenant(t *testing.T) {
	e := newEnv(t, envOptions{})
	_, err := e.ingest.Append(e.ctx(e.admin), &trailv1.AppendRequest{Event: event(engine.SystemTenant, "forged")})
	wantCode(t, err, codes.PermissionDenied)
	_, err = e.adm.CreateAPIKey(e.ctx(e.admin), &trailv1.CreateAPIKeyRequest{Role: trailv1.Role_ROLE_PRODUCER, Tenants: []string{engine.SystemTenant}})
	wantCode(t, err, codes.InvalidArgument)
	// A batch that reaches into another tenant is refused whole.
	producer := e.key(trailv1.Role_ROLE_PRODUCER, "acme")
	_, err = e.ingest.AppendBatch(e.ctx(producer), &trailv1.AppendBatchRequest{Events: []*trailv1.Event{event("acme", "ok"), event("globex", "sneaky")}})
	wantCode(t, err, codes.PermissionDenied)
	if _, err := e.node.Engine().Partitions(context.Background(), "acme"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.node.Engine().EntryByEventID(context.Background(), "acme", "ok"); err == nil {
		t.Fatal("the allowed half of a refused batch was appended")
	}
	// Two authorization values are ambiguous and refused.
	ctx := metadata.AppendToOutgoingContext(e.ctx(e.admin), "authorization", "Bearer "+producer)
	_, err = e.adm.ListAPIKeys(ctx, &trailv1.ListAPIKeysRequest{})
	wantCode(t, err, codes.Unauthenticated)
}

func matrixCalls(e *env, seeds map[string]*trailv1.Receipt) []call {
	n := 0
	nextID := func() string { n++; return fmt.Sprintf("m-%d", n) }
	part := func(tenant string) string { return seeds[tenant].GetPartition() }
	restCode := func(method, path, token string, body *trailv1.Event) error {
		code, b, _ := e.rest(method, path, token, body)
		return httpError(code, b)
	}
	tokenOf := func(ctx context.Context) string {
		md, _ := metadata.FromOutgoingContext(ctx)
		if v := md.Get("authorization"); len(v) > 0 {
			return strings.TrimPrefix(v[0], "Bearer ")
		}
		return ""
	}
	return []call{
		{name: "Append", need: "append", do: func(ctx context.Context, tenant string) error {
			_, err := e.ingest.Append(ctx, &trailv1.AppendRequest{Event: event(tenant, nextID())})
			return err
		}},
		{name: "AppendBatch", need: "append", do: func(ctx context.Context, tenant string) error {
			_, err := e.ingest.AppendBatch(ctx, &trailv1.AppendBatchRequest{Events: []*trailv1.Event{event(tenant, nextID())}})
			return err
		}},
		{name: "AppendStream", need: "append", do: func(ctx context.Context, tenant string) error {
			st, err := e.ingest.AppendStream(ctx)
			if err != nil {
				return err
			}
			if err := st.Send(&trailv1.AppendBatchRequest{Events: []*trailv1.Event{event(tenant, nextID())}}); err != nil && err != io.EOF {
				return err
			}
			_, err = st.Recv()
			st.CloseSend()
			return err
		}},
		{name: "REST Append", need: "append", do: func(ctx context.Context, tenant string) error {
			return restCode("POST", "/api/v1/audit/events", tokenOf(ctx), event(tenant, nextID()))
		}},
		{name: "GetEvent", need: "read", do: func(ctx context.Context, tenant string) error {
			_, err := e.read.GetEvent(ctx, &trailv1.GetEventRequest{TenantId: tenant, EventId: "seed"})
			return err
		}},
		{name: "REST GetEvent", need: "read", do: func(ctx context.Context, tenant string) error {
			return restCode("GET", "/api/v1/audit/events/seed?tenant_id="+tenant, tokenOf(ctx), nil)
		}},
		{name: "Search", need: "read", do: func(ctx context.Context, tenant string) error {
			_, err := e.read.Search(ctx, &trailv1.SearchRequest{TenantId: tenant, Action: "record.view"})
			return err
		}},
		{name: "Search by subject", need: "pii", do: func(ctx context.Context, tenant string) error {
			_, err := e.read.Search(ctx, &trailv1.SearchRequest{TenantId: tenant, SubjectId: "citizen-1"})
			return err
		}},
		{name: "Search by PII field", need: "pii", do: func(ctx context.Context, tenant string) error {
			_, err := e.read.Search(ctx, &trailv1.SearchRequest{TenantId: tenant, PiiField: "email"})
			return err
		}},
		{name: "Tail", need: "read", do: func(ctx context.Context, tenant string) error {
			ctx, cancel := context.WithCancel(ctx)
			defer cancel()
			st, err := e.read.Tail(ctx, &trailv1.TailRequest{TenantId: tenant, Partition: part(tenant)})
			if err != nil {
				return err
			}
			_, err = st.Recv()
			return err
		}},
		{name: "GetCheckpoint", need: "read", do: func(ctx context.Context, tenant string) error {
			_, err := e.proofs.GetCheckpoint(ctx, &trailv1.GetCheckpointRequest{TenantId: tenant, Partition: part(tenant)})
			return err
		}},
		{name: "REST checkpoint note", need: "read", do: func(ctx context.Context, tenant string) error {
			return restCode("GET", "/api/v1/audit/tenants/"+tenant+"/partitions/"+part(tenant)+"/checkpoint", tokenOf(ctx), nil)
		}},
		{name: "GetInclusionProof", need: "read", do: func(ctx context.Context, tenant string) error {
			_, err := e.proofs.GetInclusionProof(ctx, &trailv1.GetInclusionProofRequest{TenantId: tenant, EventId: "seed"})
			return err
		}},
		{name: "GetConsistencyProof", need: "read", do: func(ctx context.Context, tenant string) error {
			_, err := e.proofs.GetConsistencyProof(ctx, &trailv1.GetConsistencyProofRequest{TenantId: tenant, Partition: part(tenant), FromSize: 1})
			return err
		}},
		{name: "ListPartitions", need: "read", do: func(ctx context.Context, tenant string) error {
			_, err := e.proofs.ListPartitions(ctx, &trailv1.ListPartitionsRequest{TenantId: tenant})
			return err
		}},
		{name: "ClusterStatus", need: "admin", admin: true, do: func(ctx context.Context, _ string) error {
			_, err := e.adm.ClusterStatus(ctx, &trailv1.ClusterStatusRequest{})
			return err
		}},
		{name: "REST ClusterStatus", need: "admin", admin: true, do: func(ctx context.Context, _ string) error {
			return restCode("GET", "/api/v1/admin/cluster", tokenOf(ctx), nil)
		}},
		{name: "AddNode", need: "admin", admin: true, authorized: codes.InvalidArgument, do: func(ctx context.Context, _ string) error {
			_, err := e.adm.AddNode(ctx, &trailv1.AddNodeRequest{Id: "n9"}) // no address
			return err
		}},
		{name: "RemoveNode", need: "admin", admin: true, authorized: codes.InvalidArgument, do: func(ctx context.Context, _ string) error {
			_, err := e.adm.RemoveNode(ctx, &trailv1.RemoveNodeRequest{Id: ""})
			return err
		}},
		{name: "TransferLeadership", need: "admin", admin: true, authorized: codes.NotFound, do: func(ctx context.Context, _ string) error {
			_, err := e.adm.TransferLeadership(ctx, &trailv1.TransferLeadershipRequest{Id: "n9"}) // no such member
			return err
		}},
		{name: "CreateAPIKey", need: "admin", admin: true, do: func(ctx context.Context, _ string) error {
			_, err := e.adm.CreateAPIKey(ctx, &trailv1.CreateAPIKeyRequest{Role: trailv1.Role_ROLE_AUDITOR, Tenants: []string{"acme"}})
			return err
		}},
		{name: "ListAPIKeys", need: "admin", admin: true, do: func(ctx context.Context, _ string) error {
			_, err := e.adm.ListAPIKeys(ctx, &trailv1.ListAPIKeysRequest{})
			return err
		}},
		{name: "RevokeAPIKey", need: "admin", admin: true, do: func(ctx context.Context, _ string) error {
			victim, _, _ := parseToken(e.key(trailv1.Role_ROLE_AUDITOR, "acme"))
			_, err := e.adm.RevokeAPIKey(ctx, &trailv1.RevokeAPIKeyRequest{Id: victim})
			return err
		}},
	}
}

// httpError turns an HTTP status into the gRPC code the gateway derived it
// from, for the codes the matrix expects.
func httpError(code int, body []byte) error {
	switch code {
	case http.StatusOK:
		return nil
	case http.StatusUnauthorized:
		return status.Error(codes.Unauthenticated, string(body))
	case http.StatusForbidden:
		return status.Error(codes.PermissionDenied, string(body))
	}
	return status.Errorf(codes.Unknown, "HTTP %d: %s", code, body)
}

// TestKeyCacheFollowsRevocation: a key that has authenticated (and is
// therefore cached) stops working as soon as its revocation is applied, and
// a cached key id with a wrong secret is still refused.
func TestKeyCacheFollowsRevocation(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.appendAll(e.admin, []*trailv1.Event{event("acme", "seed")})
	auditor := e.key(trailv1.Role_ROLE_AUDITOR, "acme")
	prove := func(token string) error {
		_, err := e.proofs.GetInclusionProof(e.ctx(token), &trailv1.GetInclusionProofRequest{TenantId: "acme", EventId: "seed"})
		return err
	}
	for range 2 { // the second call is served from the cache
		if err := prove(auditor); err != nil {
			t.Fatalf("before revocation: %v", err)
		}
	}
	id, _, err := parseToken(auditor)
	if err != nil {
		t.Fatal(err)
	}
	wrong := "trail_" + id + "_" + strings.Repeat("cd", secretBytes)
	wantCode(t, prove(wrong), codes.Unauthenticated)
	if _, err := e.adm.RevokeAPIKey(e.ctx(e.admin), &trailv1.RevokeAPIKeyRequest{Id: id}); err != nil {
		t.Fatal(err)
	}
	wantCode(t, prove(auditor), codes.Unauthenticated)
}
