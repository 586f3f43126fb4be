package eventwire

import (
	"fmt"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
)

// scanner reads one encoded event. A malformation ends the scan at once (the
// bytes are not an Event), but a departure from the canonical form is only
// noted and the scan goes on: ErrNotCanonical promises a well-formed event,
// so a malformation further on must still be found.
//
// The rules mirror Go's decoder (google.golang.org/protobuf/internal/impl):
// a known field number with another wire type than the field's is an unknown
// field to it, kept as raw bytes and re-encoded after the known fields with a
// minimal tag; unknown fields inside map entries are dropped.
//
// The common case (one-byte tags and lengths, ASCII strings) is handled
// inline; everything else goes through the slower helpers below, which also
// produce the error messages.
type scanner struct {
	buf          []byte // the whole input: errors give offsets into it
	ev           *Event
	at           path   // the message being scanned
	nonCanonical error  // the first reason the bytes are not canonical
	lastKey      []byte // key of the previous attributes entry
	// [asciiFrom, asciiTo) is the run of ASCII bytes of the input that
	// holds the last string checked (see inASCIIRun).
	asciiFrom, asciiTo int
}

// path names the message being scanned, for error messages. Every nested
// message of the schema is a direct child of Event.
type path struct {
	field string // the Event field holding the message; "" for the Event itself
	index int    // element index within a repeated field, or -1
}

var eventPath = path{index: -1}

func (p path) String() string {
	switch {
	case p.field == "":
		return "event"
	case p.index < 0:
		return "event." + p.field
	default:
		return fmt.Sprintf("event.%s[%d]", p.field, p.index)
	}
}

// offset is where b starts in the input. Every slice the scanner handles is
// a subslice of the input running to its end of capacity.
func (s *scanner) offset(b []byte) int { return cap(s.buf) - cap(b) }

func (s *scanner) describe(b []byte, field, why string) string {
	name := s.at.String()
	if field != "" {
		name += "." + field
	}
	return fmt.Sprintf("%s: %s (byte %d)", name, why, s.offset(b))
}

// invalid is the error for bytes Go's decoder rejects too.
func (s *scanner) invalid(b []byte, field, why string) error {
	return fmt.Errorf("%w: %s", ErrInvalidEvent, s.describe(b, field, why))
}

// notCanonical notes a departure from the canonical form; the first one is
// the one reported.
func (s *scanner) notCanonical(b []byte, field, why string) {
	if s.nonCanonical == nil {
		s.nonCanonical = fmt.Errorf("%w: %s", ErrNotCanonical, s.describe(b, field, why))
	}
}

// message scans the fields of one message of type m. It returns a bit per
// known field number that holds a non-empty value. Strings, most of an
// event, are handled inline: this loop is the scanner's hot path.
func (s *scanner) message(b []byte, m *msgSpec) (nonZero uint64, err error) {
	var last protowire.Number // the last field read, or afterUnknown
	for len(b) > 0 {
		f, n := m.byTag[b[0]&0x7f], 1
		if f.kind == kindUnknown || b[0] >= 0x80 {
			var spec *fieldSpec
			if spec, n, err = s.slowTag(b, m); err != nil {
				return 0, err
			}
			if spec == nil { // an unknown field, n bytes long
				b = b[n:]
				last = afterUnknown
				continue
			}
			f = spec.fast
		}
		if last > f.after {
			s.misplaced(b, &m.fields[f.num], last)
		}
		last = f.num
		b = b[n:]
		if f.kind.wireType() == protowire.VarintType {
			var nz bool
			if n, nz, err = s.varintField(b, &m.fields[f.num]); err != nil {
				return 0, err
			}
			if nz {
				nonZero |= 1 << f.num
			}
			b = b[n:]
			continue
		}
		var v []byte
		if len(b) > 0 && b[0] < 0x80 && int(b[0]) < len(b) {
			v, b = b[1:1+b[0]], b[1+b[0]:]
		} else {
			if v, n, err = s.longLength(b, m.fields[f.num].name); err != nil {
				return 0, err
			}
			b = b[n:]
		}
		switch f.kind {
		case kindString, kindStrings:
			if !s.inASCIIRun(v) && !utf8.Valid(v) {
				// proto3 strings must be UTF-8: Go's decoder rejects the message.
				return 0, s.invalid(v, m.fields[f.num].name, "string is not valid UTF-8")
			}
			if len(v) > 0 {
				nonZero |= 1 << f.num
			} else if f.kind == kindString {
				s.notCanonical(v, m.fields[f.num].name, "empty string is present (Go omits it)")
			}
			if f.slot != slotNone {
				s.storeBytes(f.slot, v)
			}
		case kindBytes:
			if len(v) > 0 {
				nonZero |= 1 << f.num
			} else {
				s.notCanonical(v, m.fields[f.num].name, "empty bytes are present (Go omits them)")
			}
			if f.slot != slotNone {
				s.storeBytes(f.slot, v)
			}
		case kindMap:
			err = s.mapEntry(v)
		default:
			err = s.messageField(v, &m.fields[f.num])
		}
		if err != nil {
			return 0, err
		}
	}
	return nonZero, nil
}

// slowTag reads a tag that the fast path does not know: a multi-byte tag, an
// unknown field, a known field number with another wire type, or garbage. It
// returns the known field and the tag's length, or a nil field and the
// length of the unknown field it skipped.
func (s *scanner) slowTag(b []byte, m *msgSpec) (*fieldSpec, int, error) {
	num, typ, n, err := s.longTag(b)
	if err != nil {
		return nil, 0, err
	}
	if f := m.field(num); f != nil && typ == f.kind.wireType() {
		return f, n, nil
	}
	n, err = s.unknown(b, n, num, typ)
	return nil, n, err
}

// longTag reads a tag that is not a single byte, or names field 0.
func (s *scanner) longTag(b []byte) (protowire.Number, protowire.Type, int, error) {
	v, n := protowire.ConsumeVarint(b)
	if n < 0 {
		return 0, 0, 0, s.invalid(b, "", "tag: "+protowire.ParseError(n).Error())
	}
	num := v >> 3
	if num < uint64(protowire.MinValidNumber) || num > uint64(protowire.MaxValidNumber) {
		return 0, 0, 0, s.invalid(b, "", fmt.Sprintf("tag: field number %d out of range", num))
	}
	if n != protowire.SizeVarint(v) {
		// Go re-encodes the tags of unknown fields, and writes known ones anew.
		s.notCanonical(b, fmt.Sprintf("<field %d>", num), "tag is not minimally encoded")
	}
	return protowire.Number(num), protowire.Type(v & 7), n, nil
}

// unknown skips a field the message does not know (or knows with another
// wire type), which Go keeps byte for byte after a re-encoded tag. tagLen is
// the length of its tag at the start of b; it returns the length of the
// whole field.
func (s *scanner) unknown(b []byte, tagLen int, num protowire.Number, typ protowire.Type) (int, error) {
	n := protowire.ConsumeFieldValue(num, typ, b[tagLen:])
	if n < 0 {
		return 0, s.invalid(b, fmt.Sprintf("<field %d>", num), protowire.ParseError(n).Error())
	}
	return tagLen + n, nil
}

// afterUnknown stands for the number of the last field read once an unknown
// field has been read: above every field number, as Go writes unknown fields
// after all known ones.
const afterUnknown = protowire.MaxValidNumber + 1

// misplaced notes a known field that Go's encoder would not have written
// here: it writes known fields in increasing number order, each singular
// field at most once, the elements of a repeated field contiguously, and
// unknown fields last.
func (s *scanner) misplaced(b []byte, f *fieldSpec, last protowire.Number) {
	switch {
	case last == afterUnknown:
		s.notCanonical(b, f.name, "follows an unknown field")
	case f.fast.num < last:
		s.notCanonical(b, f.name, fmt.Sprintf("field %d follows field %d", f.fast.num, last))
	default:
		s.notCanonical(b, f.name, "occurs twice")
	}
}

// varintField reads the value of an int32, enum or int64 field. It returns
// the value's length and whether it is non-zero.
func (s *scanner) varintField(b []byte, f *fieldSpec) (int, bool, error) {
	v, n := uint64(0), 1
	if len(b) > 0 && b[0] < 0x80 {
		v = uint64(b[0])
	} else {
		var err error
		if v, n, err = s.longVarint(b, f.name); err != nil {
			return 0, false, err
		}
	}
	switch {
	case f.kind == kindInt32 && v != uint64(int64(int32(v))):
		// Go keeps the low 32 bits and writes them sign-extended.
		s.notCanonical(b, f.name, "value is not a sign-extended int32")
	case v == 0:
		s.notCanonical(b, f.name, "zero value is present (Go omits it)")
	}
	s.storeVarint(f.slot, v)
	return n, v != 0, nil
}

// longVarint reads a varint of more than one byte, noting a non-minimal one.
func (s *scanner) longVarint(b []byte, field string) (uint64, int, error) {
	v, n := protowire.ConsumeVarint(b)
	if n < 0 {
		return 0, 0, s.invalid(b, field, protowire.ParseError(n).Error())
	}
	if n != protowire.SizeVarint(v) {
		s.notCanonical(b, field, "varint is not minimally encoded")
	}
	return v, n, nil
}

// longLength reads a length-delimited value whose length is not a single
// byte or runs past the end, noting a non-minimal length. It returns the
// value and the length of length and value together.
func (s *scanner) longLength(b []byte, field string) ([]byte, int, error) {
	l, n := protowire.ConsumeVarint(b)
	if n < 0 {
		return nil, 0, s.invalid(b, field, "length: "+protowire.ParseError(n).Error())
	}
	if l > uint64(len(b)-n) {
		return nil, 0, s.invalid(b, field, "truncated: length runs past the end")
	}
	if n != protowire.SizeVarint(l) {
		s.notCanonical(b, field, "length is not minimally encoded")
	}
	return b[n : n+int(l)], n + int(l), nil
}

// messageField scans a nested message (all of them are fields of Event).
func (s *scanner) messageField(v []byte, f *fieldSpec) error {
	s.at = path{field: f.name, index: -1}
	ev := s.ev
	switch f.slot {
	case slotActor:
		ev.HasActor = true
	case slotTarget:
		ev.HasTarget = true
	case slotOccurredAt:
		ev.HasOccurredAt = true
	case slotSealed:
		ev.HasSealed = true
	case slotChanges:
		s.at.index = ev.Changes
		ev.Changes++
	}
	nonZero, err := s.message(v, f.msg)
	if err != nil {
		return err
	}
	s.at = eventPath
	if f.slot == slotChanges && nonZero&(1<<changeFieldNumber) == 0 {
		ev.ChangesWithoutField++
	}
	return nil
}

// mapEntry scans one attributes entry. Go writes an entry as exactly its key
// (field 1) then its value (field 2), both even when empty, sorts entries by
// key, and keeps one entry per key.
func (s *scanner) mapEntry(v []byte) error {
	index := s.ev.Attributes
	s.ev.Attributes++
	key, value, ok := splitEntry(v)
	// A canonical entry with one-byte lengths is ASCII throughout when its
	// key and value are.
	if !ok || !s.inASCIIRun(v) {
		s.at = path{field: "attributes", index: index}
		var err error
		if key, value, err = s.mapEntryFields(v); err != nil {
			return err
		}
		s.at = eventPath
	}
	s.ev.AttrKeys = append(s.ev.AttrKeys, key)
	s.ev.AttrValues = append(s.ev.AttrValues, value)
	if index > 0 && !greater(key, s.lastKey) {
		s.at = path{field: "attributes", index: index}
		s.notCanonical(v, "key", "not greater than the previous entry's key")
		s.at = eventPath
	}
	s.lastKey = key
	return nil
}

// inASCIIRun reports whether v lies in a run of ASCII bytes of the input,
// which makes it valid UTF-8. Nearly all of an event is ASCII: its strings,
// and its tags and lengths under 128; one pass over the bytes up to the next
// non-ASCII one (a timestamp's varint, say) settles every string up to
// there, which is cheaper than a check per string. Strings are checked in
// increasing order of offset, so a run serves until the scan passes its end.
func (s *scanner) inASCIIRun(v []byte) bool {
	start := s.offset(v)
	return start >= s.asciiFrom && start+len(v) <= s.asciiTo || s.newASCIIRun(start, len(v))
}

// newASCIIRun finds the run of ASCII bytes that starts at offset start, and
// reports whether it holds the n bytes there.
func (s *scanner) newASCIIRun(start, n int) bool {
	s.asciiFrom, s.asciiTo = start, start+asciiPrefix(s.buf[start:])
	return start+n <= s.asciiTo
}

// splitEntry returns the key of a map entry laid out as Go writes it, with
// one-byte lengths: 0x0a len key 0x12 len value.
func splitEntry(v []byte) (key, value []byte, ok bool) {
	if len(v) < 4 || v[0] != 0x0a || v[1] >= 0x80 {
		return nil, nil, false
	}
	k := 2 + int(v[1]) // the value's tag
	if k+2 > len(v) || v[k] != 0x12 || v[k+1] >= 0x80 || k+2+int(v[k+1]) != len(v) {
		return nil, nil, false
	}
	return v[2:k], v[k+2:], true
}

// mapEntryFields reads a map entry field by field, as Go's decoder does, and
// returns its key and value (the last of each, as Go keeps).
func (s *scanner) mapEntryFields(v []byte) (key, value []byte, err error) {
	seen := protowire.Number(0) // the last of key (1), value (2) read in canonical order
	for len(v) > 0 {
		num, typ, n, err := s.longTag(v)
		if err != nil {
			return nil, nil, err
		}
		if (num == 1 || num == 2) && typ == protowire.BytesType {
			name := [...]string{1: "key", 2: "value"}[num]
			x, m, err := s.longLength(v[n:], name)
			if err != nil {
				return nil, nil, err
			}
			if !utf8.Valid(x) {
				return nil, nil, s.invalid(x, name, "string is not valid UTF-8")
			}
			if num == 1 {
				key = x
			} else {
				value = x
			}
			if num != seen+1 {
				s.notCanonical(v, name, "entry is not exactly a key then a value")
			}
			seen = num
			v = v[n+m:]
			continue
		}
		if n, err = s.unknown(v, n, num, typ); err != nil {
			return nil, nil, err
		}
		s.notCanonical(v, fmt.Sprintf("<field %d>", num), "unknown field in a map entry (Go drops it)")
		v = v[n:]
	}
	if seen != 2 {
		s.notCanonical(v, "", "entry lacks its key or its value (Go writes both)")
	}
	return key, value, nil
}

func (s *scanner) storeBytes(sl slot, v []byte) {
	ev := s.ev
	switch sl {
	case slotTenantID:
		ev.TenantID = v
	case slotEventID:
		ev.EventID = v
	case slotAction:
		ev.Action = v
	case slotActorID:
		ev.ActorID = v
	case slotSubjectID:
		ev.SubjectID = v
	case slotTargetType:
		ev.TargetType = v
	case slotTargetID:
		ev.TargetID = v
	case slotPIIField:
		ev.PIIFields = append(ev.PIIFields, v)
	case slotPurposeCode:
		ev.PurposeCode = v
	case slotTraceID:
		ev.TraceID = v
	case slotDisplayName:
		ev.DisplayName = v
	case slotSealedKeyID:
		ev.SealedKeyID = v
	case slotSourceService:
		ev.SourceService = v
	}
}

// storeVarint stores a varint the way Go's decoder converts it.
func (s *scanner) storeVarint(sl slot, v uint64) {
	ev := s.ev
	switch sl {
	case slotCategory:
		ev.Category = int32(v)
	case slotOutcome:
		ev.Outcome = int32(v)
	case slotSeconds:
		ev.OccurredSeconds = int64(v)
	case slotNanos:
		ev.OccurredNanos = int32(v)
	}
}
