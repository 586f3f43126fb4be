package eventwire

import (
	"bytes"
	"fmt"
	"unicode/utf8"

	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// Limits on what one event may carry. They bound the work and memory of one
// append and keep every index key small.
const (
	MaxTenantIDLen = 63
	MaxEventIDLen  = 128
	MaxIndexedLen  = 256 // action, actor, subject, target, purpose, PII field names
	MaxPIIFields   = 256
	MaxChanges     = 1024
	MaxAttributes  = 256
)

// SystemTenant is the reserved tenant that only Trail itself writes.
const SystemTenant = "_system"

// TrailSource is the source_service of the records Trail writes itself
// (anomalies, erasures). A tenant that seals subject payloads never has
// them sealed, and producers may not use it.
const TrailSource = "trail"

// TrailIDPrefix starts the event ids of records whose id Trail derives
// (an erasure's is its key's), so that no producer can take one first;
// producers may not use it.
const TrailIDPrefix = "trail:"

// tenantGrammar is stated in every tenant_id error, so a producer learns the
// rule from the first rejection.
const tenantGrammar = `must match [a-z0-9][a-z0-9_-]{0,62} or be the reserved "` + SystemTenant + `"`

// The range of google.protobuf.Timestamp, as timestamppb's CheckValid
// defines it: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z.
const (
	minTimestampSeconds = -62135596800
	maxTimestampSeconds = 253402300799
)

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidEvent, fmt.Sprintf(format, args...))
}

// ValidateTenantID checks the tenant id grammar: [a-z0-9][a-z0-9_-]{0,62},
// or exactly the reserved SystemTenant. Tenant ids name directories, so the
// grammar leaves no room for path traversal ('.', '/') or case folding.
func ValidateTenantID(id string) error { return validateTenantID(id) }

func validateTenantID[T string | []byte](id T) error {
	switch {
	case len(id) == 0:
		return invalid("tenant_id is required: it %s", tenantGrammar)
	case len(id) > MaxTenantIDLen:
		return invalid("tenant_id %s is longer than %d bytes: it %s", quoteShort(id), MaxTenantIDLen, tenantGrammar)
	case !tenantIDOK(id):
		return invalid("tenant_id %s %s", quoteShort(id), tenantGrammar)
	}
	return nil
}

func tenantIDOK[T string | []byte](id T) bool {
	if string(id) == SystemTenant {
		return true
	}
	if !lowerOrDigit(id[0]) {
		return false
	}
	for i := 1; i < len(id); i++ {
		if c := id[i]; !lowerOrDigit(c) && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

func lowerOrDigit(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }

// quoteShort quotes an id for an error message, cut short: the id may be
// anything a producer sent.
func quoteShort[T string | []byte](id T) string {
	const max = 80
	if len(id) > max {
		return fmt.Sprintf("%q...", string(id[:max]))
	}
	return fmt.Sprintf("%q", string(id))
}

// Validate applies the ingest rules to a scanned event: the required fields,
// the tenant id grammar, the limits above, and the shape of indexed strings.
// Every failure wraps ErrInvalidEvent and names the field.
func Validate(ev *Event) error {
	if ev == nil {
		return invalid("event is empty")
	}
	if err := validateTenantID(ev.TenantID); err != nil {
		return err
	}
	if err := validateIndexed(ev); err != nil {
		return err
	}
	if err := validateEnums(ev); err != nil {
		return err
	}
	if err := validateOccurredAt(ev); err != nil {
		return err
	}
	if err := validateLists(ev); err != nil {
		return err
	}
	return validateSealed(ev)
}

// SealedKeyIDLen is the length of a sealed payload's key id (shred.KeyIDSize).
const SealedKeyIDLen = 16

// validateSealed checks the shape of a sealed payload: it belongs to a
// subject, names a data key, and the fields it hides are not also in clear.
// Whether the key is the subject's is the engine's check, at apply.
func validateSealed(ev *Event) error {
	switch {
	case !ev.HasSealed:
		return nil
	case len(ev.SubjectID) == 0:
		return invalid("sealed: an event with a sealed payload needs a subject_id")
	case len(ev.SealedKeyID) != SealedKeyIDLen:
		return invalid("sealed.key_id: %d bytes, want %d", len(ev.SealedKeyID), SealedKeyIDLen)
	case ev.Changes > 0 || ev.Attributes > 0:
		return invalid("sealed: changes and attributes are inside the sealed payload, not beside it")
	}
	return nil
}

// validateIndexed checks the indexed strings, in the engine's order.
func validateIndexed(ev *Event) error {
	if err := checkIndexed("event_id", ev.EventID, MaxEventIDLen, true); err != nil {
		return err
	}
	if err := checkIndexed("action", ev.Action, MaxIndexedLen, true); err != nil {
		return err
	}
	if err := checkIndexed("actor.id", ev.ActorID, MaxIndexedLen, true); err != nil {
		return err
	}
	if err := checkIndexed("subject_id", ev.SubjectID, MaxIndexedLen, false); err != nil {
		return err
	}
	if err := checkIndexed("target.type", ev.TargetType, MaxIndexedLen, false); err != nil {
		return err
	}
	if err := checkIndexed("target.id", ev.TargetID, MaxIndexedLen, false); err != nil {
		return err
	}
	return checkIndexed("purpose_code", ev.PurposeCode, MaxIndexedLen, false)
}

func validateEnums(ev *Event) error {
	switch {
	case ev.Category == int32(trailv1.Category_CATEGORY_UNSPECIFIED):
		return invalid("category is required")
	case !knownCategory(ev.Category):
		return invalid("unknown category %d", ev.Category)
	case ev.Outcome == int32(trailv1.Outcome_OUTCOME_UNSPECIFIED):
		return invalid("outcome is required")
	case !knownOutcome(ev.Outcome):
		return invalid("unknown outcome %d", ev.Outcome)
	}
	return nil
}

// knownCategory reports whether c is a value of the Category enum. Values
// are never removed, so 1..CATEGORY_SECURITY need no map lookup; the
// generated map knows any value added since.
func knownCategory(c int32) bool {
	if c >= 1 && c <= int32(trailv1.Category_CATEGORY_SECURITY) {
		return true
	}
	_, ok := trailv1.Category_name[c]
	return ok
}

// knownOutcome is knownCategory for the Outcome enum.
func knownOutcome(o int32) bool {
	if o >= 1 && o <= int32(trailv1.Outcome_OUTCOME_ERROR) {
		return true
	}
	_, ok := trailv1.Outcome_name[o]
	return ok
}

func validateOccurredAt(ev *Event) error {
	switch {
	case !ev.HasOccurredAt:
		return invalid("occurred_at is required")
	case ev.OccurredSeconds < minTimestampSeconds:
		return invalid("occurred_at: seconds %d is before 0001-01-01", ev.OccurredSeconds)
	case ev.OccurredSeconds > maxTimestampSeconds:
		return invalid("occurred_at: seconds %d is after 9999-12-31", ev.OccurredSeconds)
	case ev.OccurredNanos < 0 || ev.OccurredNanos >= 1e9:
		return invalid("occurred_at: nanos %d is out of range [0, 1e9)", ev.OccurredNanos)
	}
	return nil
}

func validateLists(ev *Event) error {
	if len(ev.PIIFields) > MaxPIIFields {
		return invalid("more than %d pii_fields_accessed", MaxPIIFields)
	}
	for i, f := range ev.PIIFields {
		if checkIndexed("pii_fields_accessed", f, MaxIndexedLen, true) != nil {
			// Name the element only on failure: formatting allocates.
			return checkIndexed(fmt.Sprintf("pii_fields_accessed[%d]", i), f, MaxIndexedLen, true)
		}
	}
	if ev.Changes > MaxChanges {
		return invalid("more than %d changes", MaxChanges)
	}
	if ev.ChangesWithoutField > 0 {
		return invalid("changes.field is required (%d of %d changes lack it)", ev.ChangesWithoutField, ev.Changes)
	}
	if ev.Attributes > MaxAttributes {
		return invalid("more than %d attributes", MaxAttributes)
	}
	return nil
}

// checkIndexed checks a string that is indexed or keys a record: present if
// required, at most max bytes, valid UTF-8 and free of NUL bytes (NUL
// separates the parts of index keys).
func checkIndexed(name string, v []byte, max int, required bool) error {
	switch {
	case len(v) > 0 && len(v) <= max && plain(v):
		return nil // the common case, first
	case len(v) == 0 && required:
		return invalid("%s is required", name)
	case len(v) > max:
		return invalid("%s longer than %d bytes", name, max)
	case !utf8.Valid(v):
		return invalid("%s is not valid UTF-8", name)
	case bytes.IndexByte(v, 0) >= 0:
		return invalid("%s contains a NUL byte", name)
	}
	return nil
}
