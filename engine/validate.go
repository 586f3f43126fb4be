package engine

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// Limits on what one event may carry. They bound the work and memory of one
// append and keep every index key small.
const (
	MaxTenantIDLen  = 64
	MaxEventIDLen   = 128
	MaxIndexedLen   = 256 // actor, subject, target, action, purpose, PII field names
	DefaultMaxEntry = 1 << 20
	SystemTenant    = "_system"
	maxPIIFields    = 256
	maxChanges      = 1024
	maxAttributes   = 256
)

// ErrInvalidEvent is wrapped by every validation failure.
var ErrInvalidEvent = errors.New("invalid event")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidEvent, fmt.Sprintf(format, args...))
}

// ValidateTenantID checks the tenant id syntax: 1..64 of [A-Za-z0-9._-], not
// starting with '_' except the system tenant, which only Trail itself writes.
func ValidateTenantID(id string) error {
	if id == "" {
		return invalid("tenant_id is required")
	}
	if len(id) > MaxTenantIDLen {
		return invalid("tenant_id longer than %d bytes", MaxTenantIDLen)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_'
		if !ok {
			return invalid("tenant_id %q: only letters, digits, '.', '-' and '_' are allowed", id)
		}
	}
	if id[0] == '_' && id != SystemTenant {
		return invalid("tenant_id %q: names starting with '_' are reserved", id)
	}
	return nil
}

// ValidateEvent checks the fields required at ingest (DESIGN.md "Event
// model") and the limits above. It does not check the encoded size; Apply
// does that on the exact bytes.
func ValidateEvent(ev *trailv1.Event) error {
	if ev == nil {
		return invalid("event is empty")
	}
	if err := ValidateTenantID(ev.GetTenantId()); err != nil {
		return err
	}
	checks := []struct {
		name, value string
		max         int
		required    bool
	}{
		{"event_id", ev.GetEventId(), MaxEventIDLen, true},
		{"action", ev.GetAction(), MaxIndexedLen, true},
		{"actor.id", ev.GetActor().GetId(), MaxIndexedLen, true},
		{"subject_id", ev.GetSubjectId(), MaxIndexedLen, false},
		{"target.type", ev.GetTarget().GetType(), MaxIndexedLen, false},
		{"target.id", ev.GetTarget().GetId(), MaxIndexedLen, false},
		{"purpose_code", ev.GetPurposeCode(), MaxIndexedLen, false},
	}
	for _, c := range checks {
		if err := checkIndexed(c.name, c.value, c.max, c.required); err != nil {
			return err
		}
	}
	if ev.GetCategory() == trailv1.Category_CATEGORY_UNSPECIFIED {
		return invalid("category is required")
	}
	if _, ok := trailv1.Category_name[int32(ev.GetCategory())]; !ok {
		return invalid("unknown category %d", ev.GetCategory())
	}
	if ev.GetOutcome() == trailv1.Outcome_OUTCOME_UNSPECIFIED {
		return invalid("outcome is required")
	}
	if _, ok := trailv1.Outcome_name[int32(ev.GetOutcome())]; !ok {
		return invalid("unknown outcome %d", ev.GetOutcome())
	}
	if ev.GetOccurredAt() == nil {
		return invalid("occurred_at is required")
	}
	if err := ev.GetOccurredAt().CheckValid(); err != nil {
		return invalid("occurred_at: %v", err)
	}
	return validateLists(ev)
}

func validateLists(ev *trailv1.Event) error {
	pii := ev.GetPiiFieldsAccessed()
	if len(pii) > maxPIIFields {
		return invalid("more than %d pii_fields_accessed", maxPIIFields)
	}
	for _, f := range pii {
		if err := checkIndexed("pii_fields_accessed", f, MaxIndexedLen, true); err != nil {
			return err
		}
	}
	if len(pii) > 0 && ev.GetCategory() == trailv1.Category_CATEGORY_DATA_ACCESS && ev.GetPurposeCode() == "" {
		return invalid("purpose_code is required for data_access events that list pii_fields_accessed")
	}
	if len(ev.GetChanges()) > maxChanges {
		return invalid("more than %d changes", maxChanges)
	}
	for i, c := range ev.GetChanges() {
		if c.GetField() == "" {
			return invalid("changes[%d].field is required", i)
		}
	}
	if len(ev.GetAttributes()) > maxAttributes {
		return invalid("more than %d attributes", maxAttributes)
	}
	return nil
}

func checkIndexed(name, v string, max int, required bool) error {
	switch {
	case v == "" && required:
		return invalid("%s is required", name)
	case len(v) > max:
		return invalid("%s longer than %d bytes", name, max)
	case !utf8.ValidString(v):
		return invalid("%s is not valid UTF-8", name)
	case strings.IndexByte(v, 0) >= 0:
		return invalid("%s contains a NUL byte", name)
	}
	return nil
}
