package engine

import (
	"fmt"

	"github.com/trailaudit/trail/engine/eventwire"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// Limits on what one event may carry; package eventwire owns the rules.
const (
	MaxTenantIDLen  = eventwire.MaxTenantIDLen
	MaxEventIDLen   = eventwire.MaxEventIDLen
	MaxIndexedLen   = eventwire.MaxIndexedLen // actor, subject, target, action, purpose, PII field names
	DefaultMaxEntry = 1 << 20
	SystemTenant    = eventwire.SystemTenant
)

// ErrInvalidEvent is wrapped by every validation failure.
var ErrInvalidEvent = eventwire.ErrInvalidEvent

// ValidateTenantID checks the tenant id grammar: [a-z0-9][a-z0-9_-]{0,62},
// or the system tenant, which only Trail itself writes. Tenant ids name
// directories, so the grammar admits no separator and no dot name.
func ValidateTenantID(id string) error { return eventwire.ValidateTenantID(id) }

// ValidateEvent checks a decoded event against the ingest rules (package
// eventwire), on its canonical encoding: the same check Apply makes on
// the bytes a Raft entry carries. It does not check the encoded entry's
// size; Apply does that on the exact bytes.
func ValidateEvent(ev *trailv1.Event) error {
	if ev == nil {
		return fmt.Errorf("%w: event is empty", ErrInvalidEvent)
	}
	var w eventwire.Event
	if _, err := eventwire.Marshal(ev, &w); err != nil {
		return err
	}
	return eventwire.Validate(&w)
}
