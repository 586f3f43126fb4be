// Package eventwire owns the canonical wire form of a trail.v1.Event: the
// exact bytes that are hashed, stored and served.
//
// The write path must never build Go structs for events: proto.Unmarshal of
// a 512-byte event followed by a deterministic proto.Marshal costs several
// microseconds, while the budget of an append is a few hundred nanoseconds.
// So Scan reads an encoded event directly from its protobuf wire bytes,
// checks that they are canonical, and extracts the fields the storage engine
// indexes; Validate then applies the ingest rules to what Scan extracted.
//
// Canonical means a fixed point of Go's deterministic marshalling:
// proto.MarshalOptions{Deterministic: true}.Marshal(unmarshal(b)) == b. No
// library checks that without decoding, so the scanner is hand-written
// against the small, fixed schema of Event and its nested messages (field
// numbers are never renumbered or retyped). It accepts exactly what Go's
// decoder accepts, and calls canonical only bytes that Go's deterministic
// encoder would reproduce byte for byte. Events in any other valid encoding
// take the slow path, Canonicalize, which re-encodes them.
//
// One consequence of following Go exactly: Go's decoder keeps a known field
// number that arrives with another wire type (tenant_id as a varint, say)
// as an unknown field, and its encoder writes unknown fields after all known
// ones, byte for byte. Such a field is therefore canonical at the end of its
// message, and not canonical anywhere else (Canonicalize moves it to the
// end). Rejecting it outright would leave Canonicalize, for those bytes,
// nothing canonical to return.
package eventwire

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"

	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// ErrInvalidEvent is wrapped by every validation failure (the engine
// re-exports it as engine.ErrInvalidEvent).
var ErrInvalidEvent = errors.New("invalid event")

// ErrNotCanonical means the bytes are a valid Event but not in canonical
// form: Canonicalize fixes that.
var ErrNotCanonical = errors.New("eventwire: not in canonical form")

// Event is what the storage engine needs of an encoded event. Every []byte
// aliases the scanned buffer. After a failed Scan its contents are
// unspecified.
type Event struct {
	TenantID, EventID, Action, ActorID, SubjectID, TargetType, TargetID, PurposeCode, TraceID []byte

	// SourceService is the producing service (TrailSource for Trail's own
	// records).
	SourceService []byte

	// DisplayName is the actor's display name.
	DisplayName []byte

	Category, Outcome int32

	HasActor, HasTarget, HasOccurredAt bool

	// HasSealed is set when the event carries a sealed payload, and
	// SealedKeyID is the data key it names (package shred).
	HasSealed   bool
	SealedKeyID []byte

	OccurredSeconds int64
	OccurredNanos   int32

	// PIIFields is pii_fields_accessed, in order. Scan reuses the backing
	// array of the Event passed in.
	PIIFields [][]byte

	// AttrKeys and AttrValues are the attributes' entries, in order (by
	// key, when canonical). Scan reuses their backing arrays.
	AttrKeys, AttrValues [][]byte

	// Counts: changes, changes with an empty field, attribute entries.
	Changes, ChangesWithoutField, Attributes int
}

// Attr returns the value of the attribute key, if the event has it.
func (ev *Event) Attr(key string) ([]byte, bool) {
	for i, k := range ev.AttrKeys {
		if string(k) == key {
			return ev.AttrValues[i], true
		}
	}
	return nil, false
}

// Scan reads b into ev, without allocating when b is canonical (beyond
// growing ev.PIIFields). It returns nil only when b is canonical;
// ErrNotCanonical (wrapped) when b is a well-formed Event in another
// encoding; an error wrapping ErrInvalidEvent when b is not a well-formed
// Event at all, exactly when proto.Unmarshal would fail too (truncated, bad
// wire type, field number out of range, invalid UTF-8 in a string field).
// Errors name the field and the byte offset. Scan does not validate: call
// Validate.
func Scan(b []byte, ev *Event) error {
	*ev = Event{PIIFields: ev.PIIFields[:0], AttrKeys: ev.AttrKeys[:0], AttrValues: ev.AttrValues[:0]}
	// Capping b keeps every subslice's capacity inside it: the scanner
	// computes offsets from capacities.
	b = b[:len(b):len(b)]
	s := scanner{buf: b, ev: ev, at: eventPath}
	if _, err := s.message(b, eventSpec); err != nil {
		return err
	}
	return s.nonCanonical
}

// Canonicalize returns b if it is canonical, else the deterministic encoding
// of the event b decodes to (proto.Unmarshal then
// proto.MarshalOptions{Deterministic: true}.Marshal), scanned into ev. The
// returned bytes are always canonical, and ev describes them; they alias b
// when b was canonical already. A b that is not an Event at all gives an
// error wrapping ErrInvalidEvent. It does not validate: call Validate.
func Canonicalize(b []byte, ev *Event) ([]byte, error) {
	err := Scan(b, ev)
	if err == nil {
		return b, nil
	}
	if !errors.Is(err, ErrNotCanonical) {
		return nil, err
	}
	var e trailv1.Event
	if uerr := proto.Unmarshal(b, &e); uerr != nil {
		// Scan found b well formed, so this is a disagreement with Go's
		// decoder; Go's decoder decides.
		return nil, fmt.Errorf("%w: %v", ErrInvalidEvent, uerr)
	}
	return Marshal(&e, ev)
}

// Marshal is the canonical encoding of a decoded event (its deterministic
// marshalling), scanned into ev.
func Marshal(e *trailv1.Event, ev *Event) ([]byte, error) {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(e)
	if err != nil {
		// Go refuses to encode invalid UTF-8 in a string field.
		return nil, fmt.Errorf("%w: encode: %v", ErrInvalidEvent, err)
	}
	if err := Scan(b, ev); err != nil {
		// Only an event whose unknown fields were set by hand can get here:
		// malformed unknown bytes, or unknown bytes that carry a known field.
		// A decoded event's unknown fields always re-encode canonically.
		return nil, fmt.Errorf("%w: its deterministic encoding does not scan as canonical: %v", ErrInvalidEvent, err)
	}
	return b, nil
}
