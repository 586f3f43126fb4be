package server

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"google.golang.org/grpc/metadata"

	"github.com/trailaudit/trail/engine"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// Authentication and authorization errors.
var (
	errNoCredentials = errors.New("missing API key: send \"authorization: Bearer trail_<id>_<secret>\"")
	// errUnknownKey covers unknown ids, wrong secrets and revoked keys
	// alike, so that a client cannot probe which ids exist.
	errUnknownKey = errors.New("unknown or revoked API key")
	errDenied     = errors.New("permission denied")
)

// permission is what a call needs from its caller.
type permission int

const (
	// permAppend: append events to a tenant (producer, admin).
	permAppend permission = iota
	// permRead: read, search, tail and prove a tenant's log (auditor,
	// privacy officer, admin).
	permRead
	// permPIIReport: search a tenant's log by data subject or PII field,
	// i.e. report whose personal data was accessed (privacy officer,
	// admin). Auditors verify the log; they need no per-person reports.
	permPIIReport
	// permAdmin: API keys and cluster membership (admin).
	permAdmin
)

func (p permission) String() string {
	switch p {
	case permAppend:
		return "append to"
	case permRead:
		return "read"
	case permPIIReport:
		return "run PII reports on"
	}
	return "administer"
}

// roleGrants lists the permissions of each role.
var roleGrants = map[trailv1.Role][]permission{
	trailv1.Role_ROLE_PRODUCER:        {permAppend},
	trailv1.Role_ROLE_AUDITOR:         {permRead},
	trailv1.Role_ROLE_PRIVACY_OFFICER: {permRead, permPIIReport},
	trailv1.Role_ROLE_ADMIN:           {permAppend, permRead, permPIIReport, permAdmin},
}

// principal is an authenticated caller.
type principal struct {
	keyID   string
	role    trailv1.Role
	tenants map[string]bool // nil: every tenant (admin)
}

func newPrincipal(rec *keyRecord) *principal {
	p := &principal{keyID: rec.ID, role: rec.role()}
	if p.role != trailv1.Role_ROLE_ADMIN {
		p.tenants = make(map[string]bool, len(rec.Tenants))
		for _, t := range rec.Tenants {
			p.tenants[t] = true
		}
	}
	return p
}

// roleName is the role as audit events and logs show it: "auditor".
func (p *principal) roleName() string {
	return strings.ToLower(strings.TrimPrefix(p.role.String(), "ROLE_"))
}

// may reports whether p holds perm on tenant ("" for permAdmin). Nobody
// appends to the system tenant: only the server writes it.
func (p *principal) may(perm permission, tenant string) bool {
	if perm == permAppend && tenant == engine.SystemTenant {
		return false
	}
	for _, g := range roleGrants[p.role] {
		if g == perm {
			return perm == permAdmin || p.tenants == nil || p.tenants[tenant]
		}
	}
	return false
}

func (p *principal) check(perm permission, tenant string) error {
	if p.may(perm, tenant) {
		return nil
	}
	if perm == permAdmin {
		return fmt.Errorf("%w: API key %s (%s) may not %s the cluster", errDenied, p.keyID, p.roleName(), perm)
	}
	return fmt.Errorf("%w: API key %s (%s) may not %s tenant %q", errDenied, p.keyID, p.roleName(), perm, tenant)
}

type principalKey struct{}

func withPrincipal(ctx context.Context, p *principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// principalFrom returns the caller the interceptor authenticated. Every RPC
// is authenticated, so a missing principal is a server bug; it fails closed.
func principalFrom(ctx context.Context) (*principal, error) {
	p, ok := ctx.Value(principalKey{}).(*principal)
	if !ok {
		return nil, errNoCredentials
	}
	return p, nil
}

// authenticate finds the caller of an incoming call from its metadata.
// Exactly one authorization value is accepted: the gateway forwards the
// Authorization header, and a second value (say from a
// Grpc-Metadata-Authorization header) would make it ambiguous which one
// was meant.
func authenticate(ctx context.Context, ks keyStore) (*principal, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	return authenticateHeader(md.Get("authorization"), ks)
}

// authenticateHeader authenticates the values of an authorization header.
func authenticateHeader(vals []string, ks keyStore) (*principal, error) {
	switch len(vals) {
	case 0:
		return nil, errNoCredentials
	case 1:
	default:
		return nil, fmt.Errorf("%w: more than one authorization value", errMalformedToken)
	}
	tok, err := parseBearer(vals[0])
	if err != nil {
		return nil, err
	}
	return ks.lookup(tok)
}

// checkTenant validates a tenant id from a request.
func checkTenant(id string) error {
	if err := engine.ValidateTenantID(id); err != nil {
		msg := strings.TrimPrefix(err.Error(), engine.ErrInvalidEvent.Error()+": ")
		return fmt.Errorf("%w: %s", errBadRequest, msg)
	}
	return nil
}
