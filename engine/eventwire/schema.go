package eventwire

import "google.golang.org/protobuf/encoding/protowire"

// The schema of trail.v1.Event and its nested messages, hard-coded from
// proto/trail/v1/event.proto and google/protobuf/timestamp.proto. Field
// numbers are never renumbered or retyped (event.proto says so), so the
// tables only ever grow. The tables are read-only after initialization.

// kind is how a field is encoded, and so what its canonical form is.
type kind uint8

const (
	kindUnknown  kind = iota // not a field of the message
	kindString               // proto3 string: omitted when empty
	kindInt32                // int32 or enum: omitted when 0, negative values sign-extended to 64 bits
	kindInt64                // int64: omitted when 0
	kindMessage              // singular message: written when set, even when empty
	kindStrings              // repeated string: every element written, even when empty
	kindMessages             // repeated message
	kindMap                  // map<string, string>: entries sorted by key, each with key and value
	kindBytes                // proto3 bytes: omitted when empty, any content
)

// wireType is the only wire type Go's decoder accepts for the kind; a field
// with another wire type is an unknown field to it.
func (k kind) wireType() protowire.Type {
	if k == kindInt32 || k == kindInt64 {
		return protowire.VarintType
	}
	return protowire.BytesType
}

// repeated reports whether the field may occur several times in a row.
func (k kind) repeated() bool {
	return k == kindStrings || k == kindMessages || k == kindMap
}

// slot says where Scan stores a field's value in Event.
type slot uint8

const (
	slotNone slot = iota
	slotTenantID
	slotEventID
	slotCategory
	slotAction
	slotOutcome
	slotActor
	slotActorID
	slotSubjectID
	slotTarget
	slotTargetType
	slotTargetID
	slotPIIField
	slotPurposeCode
	slotChanges
	slotTraceID
	slotDisplayName
	slotOccurredAt
	slotSeconds
	slotNanos
	slotAttributes
	slotSealed
	slotSealedKeyID
	slotSourceService
)

type fieldSpec struct {
	name string
	kind kind
	slot slot
	msg  *msgSpec // for kindMessage and kindMessages
	fast fastField
}

// fastField is what the scanner's loop needs of a field, small enough to sit
// in msgSpec.byTag by value: finding a field costs one load, not two.
type fastField struct {
	kind kind
	slot slot
	num  protowire.Number
	// after is the highest field number that may precede this field: its
	// own if it is repeated, else the one below it.
	after protowire.Number
}

type msgSpec struct {
	fields []fieldSpec // indexed by field number; kindUnknown where there is none
	// byTag maps a one-byte tag to its field when the tag has the field's
	// wire type (kindUnknown elsewhere): the scanner's fast path.
	byTag [0x80]fastField
}

// newMsgSpec completes the specs of a message's fields, indexed by number.
func newMsgSpec(fields []fieldSpec) *msgSpec {
	m := &msgSpec{fields: fields}
	for num := range fields {
		f := &fields[num]
		if f.kind == kindUnknown {
			continue
		}
		if num >= 64 {
			// The scanner keeps a bit per field number in a uint64.
			panic("eventwire: field number above 63 in the schema")
		}
		f.fast = fastField{kind: f.kind, slot: f.slot, num: protowire.Number(num), after: protowire.Number(num) - 1}
		if f.kind.repeated() {
			f.fast.after++
		}
		if tag := protowire.EncodeTag(f.fast.num, f.kind.wireType()); tag < 0x80 {
			m.byTag[tag] = f.fast
		}
	}
	return m
}

// field returns the spec of field num, or nil if the message has no such field.
func (m *msgSpec) field(num protowire.Number) *fieldSpec {
	if int(num) < len(m.fields) && m.fields[num].kind != kindUnknown {
		return &m.fields[num]
	}
	return nil
}

// changeFieldNumber is Change.field, required by Validate.
const changeFieldNumber = 1

var (
	actorSpec = newMsgSpec([]fieldSpec{ // trail.v1.Actor
		1: {name: "id", kind: kindString, slot: slotActorID},
		2: {name: "type", kind: kindString},
		3: {name: "display_name", kind: kindString, slot: slotDisplayName},
		4: {name: "roles", kind: kindStrings},
		5: {name: "ip", kind: kindString},
		6: {name: "user_agent", kind: kindString},
		7: {name: "session_id", kind: kindString},
	})
	targetSpec = newMsgSpec([]fieldSpec{ // trail.v1.Target
		1: {name: "type", kind: kindString, slot: slotTargetType},
		2: {name: "id", kind: kindString, slot: slotTargetID},
	})
	changeSpec = newMsgSpec([]fieldSpec{ // trail.v1.Change
		changeFieldNumber: {name: "field", kind: kindString},
		2:                 {name: "before", kind: kindString},
		3:                 {name: "after", kind: kindString},
	})
	timestampSpec = newMsgSpec([]fieldSpec{ // google.protobuf.Timestamp
		1: {name: "seconds", kind: kindInt64, slot: slotSeconds},
		2: {name: "nanos", kind: kindInt32, slot: slotNanos},
	})
	sealedSpec = newMsgSpec([]fieldSpec{ // trail.v1.SealedPayload
		1: {name: "key_id", kind: kindBytes, slot: slotSealedKeyID},
		2: {name: "nonce", kind: kindBytes},
		3: {name: "ciphertext", kind: kindBytes},
	})
	eventSpec = newMsgSpec([]fieldSpec{ // trail.v1.Event
		1:  {name: "tenant_id", kind: kindString, slot: slotTenantID},
		2:  {name: "event_id", kind: kindString, slot: slotEventID},
		3:  {name: "category", kind: kindInt32, slot: slotCategory},
		4:  {name: "action", kind: kindString, slot: slotAction},
		5:  {name: "outcome", kind: kindInt32, slot: slotOutcome},
		6:  {name: "actor", kind: kindMessage, slot: slotActor, msg: actorSpec},
		7:  {name: "subject_id", kind: kindString, slot: slotSubjectID},
		8:  {name: "target", kind: kindMessage, slot: slotTarget, msg: targetSpec},
		9:  {name: "pii_fields_accessed", kind: kindStrings, slot: slotPIIField},
		10: {name: "purpose_code", kind: kindString, slot: slotPurposeCode},
		11: {name: "changes", kind: kindMessages, slot: slotChanges, msg: changeSpec},
		12: {name: "source_service", kind: kindString, slot: slotSourceService},
		13: {name: "trace_id", kind: kindString, slot: slotTraceID},
		14: {name: "occurred_at", kind: kindMessage, slot: slotOccurredAt, msg: timestampSpec},
		15: {name: "attributes", kind: kindMap, slot: slotAttributes},
		16: {name: "sealed", kind: kindMessage, slot: slotSealed, msg: sealedSpec},
	})
)
