package server

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/trailaudit/trail/engine"
	"github.com/trailaudit/trail/merkle"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// TestWhoAmI: every role learns its own key, role and tenants (an admin
// the tenants with a log), never anyone else's; a call without a valid key
// learns nothing; each call is audited as an authentication event.
func TestWhoAmI(t *testing.T) {
	e := newEnv(t, envOptions{tune: func(c *Config) { c.VerifierKey = "" }})
	e.appendAll(e.admin, []*trailv1.Event{event("acme", "w-1"), event("globex", "w-2")})
	tests := []struct {
		name        string
		role        trailv1.Role
		tenants     []string
		wantTenants []string
		wantAll     bool
	}{
		{"admin", trailv1.Role_ROLE_ADMIN, nil, []string{"acme", "globex"}, true},
		{"auditor", trailv1.Role_ROLE_AUDITOR, []string{"globex", "acme"}, []string{"acme", "globex"}, false},
		{"privacy officer", trailv1.Role_ROLE_PRIVACY_OFFICER, []string{"acme"}, []string{"acme"}, false},
		{"producer", trailv1.Role_ROLE_PRODUCER, []string{"acme"}, []string{"acme"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok := e.key(tc.role, tc.tenants...)
			id, _, _ := parseToken(tok)
			var got trailv1.WhoAmIResponse
			e.restJSON("GET", "/api/v1/whoami", tok, nil, &got)
			if got.GetKeyId() != id || got.GetRole() != tc.role || got.GetAllTenants() != tc.wantAll || got.GetNodeId() != "n1" {
				t.Errorf("whoami = %v, want key %s role %s all_tenants %v", &got, id, tc.role, tc.wantAll)
			}
			// The admin also sees the _system tenant once access events
			// were recorded; the rest must match exactly.
			tenants := slices.DeleteFunc(got.GetTenants(), func(s string) bool { return s == engine.SystemTenant })
			if !slices.Equal(tenants, tc.wantTenants) {
				t.Errorf("tenants = %v, want %v", got.GetTenants(), tc.wantTenants)
			}
			if got.GetLogName() != testLogName {
				t.Errorf("log_name = %q, want %q", got.GetLogName(), testLogName)
			}
			waitFor(t, 10*time.Second, "the whoami access event", func() bool {
				res, err := e.read.Search(e.ctx(e.admin), &trailv1.SearchRequest{TenantId: engine.SystemTenant,
					ActorId: "apikey:" + id, Action: "trail.v1.AdminService.WhoAmI"})
				if err != nil {
					t.Fatal(err)
				}
				for _, se := range res.GetEntries() {
					if ev := se.GetEntry().GetEvent(); ev.GetCategory() == trailv1.Category_CATEGORY_AUTHENTICATION &&
						ev.GetOutcome() == trailv1.Outcome_OUTCOME_SUCCESS {
						return true
					}
				}
				return false
			})
		})
	}

	t.Run("no key", func(t *testing.T) {
		if code, body, _ := e.rest("GET", "/api/v1/whoami", "", nil); code != http.StatusUnauthorized {
			t.Errorf("whoami without a key: HTTP %d %s, want 401", code, body)
		}
		_, err := e.adm.WhoAmI(e.ctx("trail_nosuchkey_secret"), &trailv1.WhoAmIRequest{})
		wantCode(t, err, codes.Unauthenticated)
	})
}

// TestWhoAmIVerifierKey: the verifier key the server was given is what
// whoami publishes.
func TestWhoAmIVerifierKey(t *testing.T) {
	skey, vkey, err := merkle.GenerateKey(testLogName, nil)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := merkle.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, envOptions{tune: func(c *Config) { c.Signer, c.VerifierKey = signer, vkey }})
	got, err := e.adm.WhoAmI(e.ctx(e.admin), &trailv1.WhoAmIRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if got.GetLogVerifierKey() != vkey {
		t.Errorf("log_verifier_key = %q, want %q", got.GetLogVerifierKey(), vkey)
	}
}
