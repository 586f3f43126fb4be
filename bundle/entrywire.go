package bundle

import (
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/trailaudit/trail/filter"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// The verifier reads an entry's protobuf bytes only as far as its checks
// need, with protowire rather than proto.Unmarshal: a full decode builds
// the whole message (attributes map, changes, strings) for every entry and
// was most of the verifier's time after JSON. The fields below follow
// trail.v1.Entry and trail.v1.Event (proto/trail/v1/event.proto).
//
// The reading follows protobuf's rules for what a full decode would see:
// for a repeated scalar field the last occurrence wins, and occurrences of
// a message field merge, so a crafted entry cannot show one value here and
// another to a proto.Unmarshal. Fields not read are skipped, their wire
// structure still checked; they are covered by the leaf hash like every
// other byte, and the auditor's tools decode them in full when reading.

// Field numbers of trail.v1.Entry.
const (
	fieldEntryEvent         = 1
	fieldEntrySequencerTime = 2
	fieldEntryPartition     = 3
	fieldEntryLeafIndex     = 4
	fieldEntryPrevLeafHash  = 5
	fieldEntryPrevPartition = 6
)

// Field numbers of trail.v1.Event, Actor, Target and Timestamp.
const (
	fieldEventTenantID  = 1
	fieldEventCategory  = 3
	fieldEventAction    = 4
	fieldEventActor     = 6
	fieldEventSubjectID = 7
	fieldEventTarget    = 8
	fieldEventPIIFields = 9
	fieldEventPurpose   = 10
	fieldEventAttrs     = 15
	fieldEventSealed    = 16
	fieldEventSource    = 12
	fieldActorID        = 1
	fieldActorName      = 3
	fieldTargetType     = 1
	fieldTargetID       = 2
	fieldTimeSeconds    = 1
	fieldTimeNanos      = 2
)

// Bounds of a valid google.protobuf.Timestamp (years 1 to 9999), as
// timestamppb's IsValid checks them.
const (
	minTimeSeconds = -62135596800
	maxTimeSeconds = 253402300799
)

// entryFields is what the checks read of an entry. Byte slices point into
// the entry bytes: valid until the next entry. Absent fields are zero, as
// proto3 reads them.
type entryFields struct {
	tenant, partition, action    []byte
	actorID, subjectID           []byte
	targetType, targetID         []byte
	purposeCode, displayName     []byte
	piiFields                    []string
	attrs                        map[string]string
	prevLeafHash                 []byte
	category                     int32
	leafIndex                    uint64
	seqSeconds                   int64
	seqNanos                     int32
	hasSeqTime, hasPrevPartition bool
	sealed                       bool
	source                       []byte
}

var errWire = errors.New("invalid protobuf wire data")

// decodeEntryFields reads f from the entry bytes b. The loops are
// written out, without callbacks: this runs for every entry.
func decodeEntryFields(b []byte, f *entryFields) error {
	*f = entryFields{}
	for len(b) > 0 {
		num, typ, v, x, n := nextField(b)
		if n < 0 {
			return wireError(num, n)
		}
		b = b[n:]
		var err error
		switch num {
		case fieldEntryEvent:
			if err = want(typ, protowire.BytesType, "event"); err == nil {
				err = decodeEvent(v, f)
			}
		case fieldEntrySequencerTime:
			f.hasSeqTime = true
			if err = want(typ, protowire.BytesType, "sequencer_time"); err == nil {
				err = decodeTime(v, f)
			}
		case fieldEntryPartition:
			err = want(typ, protowire.BytesType, "partition")
			f.partition = v
		case fieldEntryLeafIndex:
			err = want(typ, protowire.VarintType, "leaf_index")
			f.leafIndex = x
		case fieldEntryPrevLeafHash:
			err = want(typ, protowire.BytesType, "prev_leaf_hash")
			f.prevLeafHash = v
		case fieldEntryPrevPartition:
			err = want(typ, protowire.BytesType, "prev_partition")
			f.hasPrevPartition = true
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func decodeEvent(b []byte, f *entryFields) error {
	for len(b) > 0 {
		num, typ, v, x, n := nextField(b)
		if n < 0 {
			return wireError(num, n)
		}
		b = b[n:]
		var err error
		switch num {
		case fieldEventTenantID:
			err = want(typ, protowire.BytesType, "tenant_id")
			f.tenant = v
		case fieldEventCategory:
			err = want(typ, protowire.VarintType, "category")
			f.category = int32(x)
		case fieldEventAction:
			err = want(typ, protowire.BytesType, "action")
			f.action = v
		case fieldEventActor:
			if err = want(typ, protowire.BytesType, "actor"); err == nil {
				err = decodeActor(v, f)
			}
		case fieldEventSubjectID:
			err = want(typ, protowire.BytesType, "subject_id")
			f.subjectID = v
		case fieldEventTarget:
			if err = want(typ, protowire.BytesType, "target"); err == nil {
				err = decodeTarget(v, f)
			}
		case fieldEventPIIFields:
			err = want(typ, protowire.BytesType, "pii_fields_accessed")
			f.piiFields = append(f.piiFields, string(v))
		case fieldEventAttrs:
			if err = want(typ, protowire.BytesType, "attributes"); err == nil {
				err = decodeAttr(v, f)
			}
		case fieldEventSource:
			err = want(typ, protowire.BytesType, "source_service")
			f.source = v
		case fieldEventSealed:
			err = want(typ, protowire.BytesType, "sealed")
			f.sealed = true
		case fieldEventPurpose:
			err = want(typ, protowire.BytesType, "purpose_code")
			f.purposeCode = v
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// decodeAttr reads one attributes map entry (key 1, value 2); a later
// entry of the same key wins, as in Go's decoder.
func decodeAttr(b []byte, f *entryFields) error {
	var key, value []byte
	for len(b) > 0 {
		num, typ, v, _, n := nextField(b)
		if n < 0 {
			return wireError(num, n)
		}
		b = b[n:]
		switch num {
		case 1:
			if err := want(typ, protowire.BytesType, "attributes key"); err != nil {
				return err
			}
			key = v
		case 2:
			if err := want(typ, protowire.BytesType, "attributes value"); err != nil {
				return err
			}
			value = v
		}
	}
	if f.attrs == nil {
		f.attrs = map[string]string{}
	}
	f.attrs[string(key)] = string(value)
	return nil
}

func decodeActor(b []byte, f *entryFields) error {
	for len(b) > 0 {
		num, typ, v, _, n := nextField(b)
		if n < 0 {
			return wireError(num, n)
		}
		b = b[n:]
		switch num {
		case fieldActorID:
			if err := want(typ, protowire.BytesType, "actor.id"); err != nil {
				return err
			}
			f.actorID = v
		case fieldActorName:
			if err := want(typ, protowire.BytesType, "actor.display_name"); err != nil {
				return err
			}
			f.displayName = v
		}
	}
	return nil
}

func decodeTarget(b []byte, f *entryFields) error {
	for len(b) > 0 {
		num, typ, v, _, n := nextField(b)
		if n < 0 {
			return wireError(num, n)
		}
		b = b[n:]
		var err error
		switch num {
		case fieldTargetType:
			err = want(typ, protowire.BytesType, "target.type")
			f.targetType = v
		case fieldTargetID:
			err = want(typ, protowire.BytesType, "target.id")
			f.targetID = v
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func decodeTime(b []byte, f *entryFields) error {
	for len(b) > 0 {
		num, typ, _, x, n := nextField(b)
		if n < 0 {
			return wireError(num, n)
		}
		b = b[n:]
		var err error
		switch num {
		case fieldTimeSeconds:
			err = want(typ, protowire.VarintType, "seconds")
			f.seqSeconds = int64(x)
		case fieldTimeNanos:
			err = want(typ, protowire.VarintType, "nanos")
			f.seqNanos = int32(x)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// want refuses a known field whose wire type is not the one its
// declaration gives it, rather than guess at it. (The caller's assignment
// of a value read with another wire type is then never used.)
func want(got, typ protowire.Type, name string) error {
	if got != typ {
		return fmt.Errorf("field %s has wire type %d, want %d: %w", name, got, typ, errWire)
	}
	return nil
}

// nextField reads the field at the start of b: v holds a length-delimited
// field's bytes, x a varint field's value; other wire types are checked
// and skipped. n is the bytes read, or a protowire error code below 0.
func nextField(b []byte) (num protowire.Number, typ protowire.Type, v []byte, x uint64, n int) {
	num, typ, n = protowire.ConsumeTag(b)
	if n < 0 {
		return num, typ, nil, 0, n
	}
	var m int
	switch typ {
	case protowire.BytesType:
		v, m = protowire.ConsumeBytes(b[n:])
	case protowire.VarintType:
		x, m = protowire.ConsumeVarint(b[n:])
	default:
		m = protowire.ConsumeFieldValue(num, typ, b[n:])
	}
	if m < 0 {
		return num, typ, nil, 0, m
	}
	return num, typ, v, x, n + m
}

func wireError(num protowire.Number, code int) error {
	return fmt.Errorf("field %d: %w: %w", num, protowire.ParseError(code), errWire)
}

// sequencerTime returns the entry's sequencer time, or false when it has
// none or it is not a valid timestamp.
func (f *entryFields) sequencerTime() (time.Time, bool) {
	if !f.hasSeqTime || f.seqSeconds < minTimeSeconds || f.seqSeconds > maxTimeSeconds ||
		f.seqNanos < 0 || f.seqNanos >= 1e9 {
		return time.Time{}, false
	}
	return time.Unix(f.seqSeconds, int64(f.seqNanos)).UTC(), true
}

// mismatch names the first field of the export's filter the entry does
// not match, or returns "". t is its sequencer time.
func mismatch(f *filter.Filter, en *entryFields, t time.Time) string {
	ev := filter.Event{
		SequencerTime: t, ActorID: string(en.actorID), SubjectID: string(en.subjectID),
		TargetType: string(en.targetType), TargetID: string(en.targetID), Category: trailv1.Category(en.category),
		Action: string(en.action), PurposeCode: string(en.purposeCode), PIIFields: en.piiFields,
		DisplayName: string(en.displayName), Attributes: en.attrs,
	}
	if why := f.Mismatch(&ev); why != "" {
		return why + ", outside the export's filter"
	}
	return ""
}
