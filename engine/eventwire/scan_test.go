package eventwire

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// withUnknown returns m with raw unknown fields appended after its own.
func withUnknown[M proto.Message](m M, raw ...[]byte) M {
	r := m.ProtoReflect()
	r.SetUnknown(append(r.GetUnknown(), cat(raw...)...))
	return m
}

// edgeCases are valid-to-encode events at the corners of the canonical form.
func edgeCases() map[string]*trailv1.Event {
	wrongType := cat(
		bytesField(3, []byte("category as bytes")), // known number, wrong wire type
		varintField(1, 42),                         // tenant_id as a varint
	)
	group := cat(protowire.AppendTag(nil, 40, protowire.StartGroupType), varintField(1, 5),
		protowire.AppendTag(nil, 40, protowire.EndGroupType))
	unknown := cat(
		varintField(16, 1),
		bytesField(100, []byte("opaque")),
		protowire.AppendFixed32(protowire.AppendTag(nil, 17, protowire.Fixed32Type), 7),
		protowire.AppendFixed64(protowire.AppendTag(nil, protowire.MaxValidNumber, protowire.Fixed64Type), 9),
		group,
		cat(protowire.AppendTag(nil, 18, protowire.BytesType), longVarint(3, 4), []byte("raw")),
	)
	long := strings.Repeat("x", 20000)
	return map[string]*trailv1.Event{
		"empty event":           {},
		"empty sub-messages":    {Actor: &trailv1.Actor{}, Target: &trailv1.Target{}, OccurredAt: &timestamppb.Timestamp{}, Changes: []*trailv1.Change{{}, {}}},
		"empty map key/value":   {Attributes: map[string]string{"": "", "a": "", "b": "x"}},
		"empty repeated items":  {PiiFieldsAccessed: []string{"", "", "x", ""}, Actor: &trailv1.Actor{Roles: []string{""}}},
		"negative nanos":        {OccurredAt: &timestamppb.Timestamp{Seconds: -1, Nanos: -5}},
		"extreme seconds":       {OccurredAt: &timestamppb.Timestamp{Seconds: math.MinInt64, Nanos: math.MinInt32}},
		"max seconds":           {OccurredAt: &timestamppb.Timestamp{Seconds: math.MaxInt64, Nanos: math.MaxInt32}},
		"negative enums":        {Category: -1, Outcome: math.MinInt32},
		"unknown enums":         {Category: 99, Outcome: 1 << 30},
		"only nanos":            {OccurredAt: &timestamppb.Timestamp{Nanos: 1}},
		"multibyte strings":     {TenantId: "Zürich", Action: "日本語", Attributes: map[string]string{"é": "1", "e": "2", "z": "3", "ÿ": "4", "\u00ff\u0000": "5"}},
		"long strings":          {EventId: long, Actor: &trailv1.Actor{Id: long[:200], Roles: []string{long[:128], long[:127]}}, Attributes: map[string]string{long[:300]: long}},
		"changes without field": {Changes: []*trailv1.Change{{Before: "a"}, {Field: "f"}, {After: "b"}}},
		"many attributes": func() *trailv1.Event {
			e := &trailv1.Event{Attributes: map[string]string{}}
			for i := range 300 {
				e.Attributes[strings.Repeat("k", i%7)+string(rune('a'+i%26))+strings.Repeat("v", i/26)] = "v"
			}
			return e
		}(),
		"unknown fields at the end of every message": func() *trailv1.Event {
			e := full()
			withUnknown(e, unknown)
			withUnknown(e.Actor, unknown)
			withUnknown(e.Target, unknown)
			withUnknown(e.OccurredAt, unknown)
			withUnknown(e.Changes[1], unknown)
			return e
		}(),
		"known numbers with wrong wire types at the end": func() *trailv1.Event {
			e := full()
			withUnknown(e, wrongType)
			withUnknown(e.Actor, varintField(4, 1)) // roles as a varint
			withUnknown(e.OccurredAt, bytesField(1, nil))
			return e
		}(),
		"full": full(),
	}
}

// checkCanonical asserts that b, the deterministic encoding of e, scans
// canonical, yields e's fields, and is returned as is by Canonicalize.
func checkCanonical(t *testing.T, e *trailv1.Event, b []byte) {
	t.Helper()
	var ev Event
	if err := Scan(b, &ev); err != nil {
		t.Fatalf("Scan(% x) = %v, want nil", b, err)
	}
	want := expected(e)
	if d := diffEvent(&ev, &want); d != "" {
		t.Fatalf("Scan extracted: %s", d)
	}
	out, err := Canonicalize(b, &ev)
	if err != nil {
		t.Fatalf("Canonicalize: %v", err)
	}
	if len(b) > 0 && &out[0] != &b[0] {
		t.Fatalf("Canonicalize copied canonical bytes")
	}
	if d := diffEvent(&ev, &want); d != "" {
		t.Fatalf("Canonicalize extracted: %s", d)
	}
}

func TestMarshalScansCanonical(t *testing.T) {
	for name, e := range edgeCases() {
		t.Run(name, func(t *testing.T) {
			var ev Event
			b, err := Marshal(e, &ev)
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			if want := deterministic(t, e); !bytes.Equal(b, want) {
				t.Fatalf("Marshal = % x\nwant      % x", b, want)
			}
			want := expected(e)
			if d := diffEvent(&ev, &want); d != "" {
				t.Fatalf("Marshal extracted: %s", d)
			}
			checkCanonical(t, e, b)
		})
	}
}

func TestGeneratedEventsScanCanonical(t *testing.T) {
	for i, e := range generated(2000) {
		var ev Event
		b, err := Marshal(e, &ev)
		if err != nil {
			t.Fatalf("event %d: Marshal: %v", i, err)
		}
		checkCanonical(t, e, b)
		if err := Validate(&ev); err != nil {
			t.Fatalf("event %d: Validate: %v", i, err)
		}
	}
}

func TestScanResetsTheEvent(t *testing.T) {
	var ev Event
	big := full()
	if _, err := Marshal(big, &ev); err != nil {
		t.Fatal(err)
	}
	small := &trailv1.Event{TenantId: "t", PiiFieldsAccessed: []string{"x"}}
	b := deterministic(t, small)
	if err := Scan(b, &ev); err != nil {
		t.Fatal(err)
	}
	want := expected(small)
	if d := diffEvent(&ev, &want); d != "" {
		t.Fatalf("after reuse: %s", d)
	}
}

// notCanonicalCases are well-formed encodings of an event that Go's
// deterministic marshalling would write differently.
func notCanonicalCases(t testing.TB) map[string][]byte {
	e := full()
	fs := split(t, deterministic(t, e))
	field := func(num protowire.Number) []byte { return fieldsOf(fs, num)[0].raw }
	actor := split(t, deterministic(t, e.Actor))
	ts := split(t, deterministic(t, e.OccurredAt))
	attrs := fieldsOf(fs, 15)
	noSubject := without(fs, 7)
	entry := func(parts ...[]byte) []byte { return bytesField(15, cat(parts...)) }
	unknown := varintField(99, 1)

	return map[string][]byte{
		"fields swapped":                                       join(append([]rawField{fs[1], fs[0]}, fs[2:]...)),
		"first field moved to the end":                         join(append(append([]rawField{}, fs[1:]...), fs[0])),
		"scalar duplicated":                                    join(insert(fs, 1, bytesField(1, []byte("tenant-02")))),
		"scalar repeated identically":                          join(insert(fs, 1, field(1))),
		"enum duplicated":                                      join(insert(fs, 3, varintField(3, 4))),
		"zero enum present":                                    join(insert(without(fs, 5), 5, varintField(5, 0))),
		"empty string present":                                 join(insert(noSubject, 7, bytesField(7, nil))),
		"zero seconds present":                                 join(replace(t, fs, 14, bytesField(14, cat(varintField(1, 0), ts[1].raw)))),
		"zero nanos present":                                   join(replace(t, fs, 14, bytesField(14, cat(ts[0].raw, varintField(2, 0))))),
		"timestamp fields reversed":                            join(replace(t, fs, 14, bytesField(14, cat(ts[1].raw, ts[0].raw)))),
		"nanos as a 32-bit varint":                             join(replace(t, fs, 14, bytesField(14, cat(ts[0].raw, varintField(2, 0xffffffff))))),
		"enum above 32 bits":                                   join(replace(t, fs, 3, varintField(3, 1<<32|3))),
		"enum truncating to zero":                              join(replace(t, fs, 3, varintField(3, 1<<32))),
		"non-minimal tag":                                      join(replace(t, fs, 1, cat([]byte{0x8a, 0x00}, field(1)[1:]))),
		"non-minimal length":                                   join(replace(t, fs, 1, cat([]byte{0x0a}, longVarint(uint64(len(e.TenantId)), 2), []byte(e.TenantId)))),
		"non-minimal varint":                                   join(replace(t, fs, 3, cat([]byte{0x18}, longVarint(uint64(e.Category), 3)))),
		"non-minimal nested length":                            join(replace(t, fs, 6, bytesField(6, cat([]byte{0x0a}, longVarint(uint64(len(e.Actor.Id)), 2), []byte(e.Actor.Id), join(actor[1:]))))),
		"non-minimal sub-message length":                       join(replace(t, fs, 8, cat([]byte{0x42}, longVarint(uint64(len(field(8))-2), 2), field(8)[2:]))),
		"non-minimal unknown tag":                              cat(join(fs), []byte{0x98, 0x86, 0x00, 0x01}),
		"ten-byte varint of a small value":                     join(replace(t, fs, 14, bytesField(14, cat(ts[0].raw, []byte{0x10}, longVarint(5, 10))))),
		"unknown field first":                                  cat(unknown, join(fs)),
		"unknown field in the middle":                          join(insert(fs, 8, unknown)),
		"unknown field before a known one in a nested message": join(replace(t, fs, 6, bytesField(6, cat(unknown, join(actor))))),
		"known number with a wrong wire type first":            cat(bytesField(3, []byte("x")), join(fs)),
		"known number with a wrong wire type in the middle":    join(insert(fs, 4, varintField(7, 1))),
		"repeated string split":                                join(insert(fs, 10, fieldsOf(fs, 9)[0].raw)),
		"repeated message split":                               join(insert(fs, 12, fieldsOf(fs, 11)[0].raw)),
		"nested repeated string split":                         join(replace(t, fs, 6, bytesField(6, join(append(actor, actor[3]))))),
		"sub-message twice (merged)":                           join(insert(fs, 6, bytesField(6, varintField(99, 1)))),
		"sub-message split in two":                             join(replace(t, fs, 6, cat(bytesField(6, actor[0].raw), bytesField(6, join(actor[1:]))))),
		"map entries unsorted":                                 join(append(without(fs, 15), attrs[1], attrs[0])),
		"map entries split":                                    join(append(append(without(fs, 15), attrs[0], rawField{99, unknown}), attrs[1:]...)),
		"map key duplicated":                                   join(append(fs, rawField{15, attrs[len(attrs)-1].raw})),
		"map key duplicated, other value":                      join(append(fs, rawField{15, entry(bytesField(1, []byte("zz")), bytesField(2, []byte("other")))})),
		"map entry without key":                                join(insert(fs, 15, entry(bytesField(2, []byte("v"))))),
		"map entry without value":                              join(append(fs, rawField{15, entry(bytesField(1, []byte("zzz")))})),
		"map entry empty":                                      join(insert(without(fs, 15), 15, bytesField(15, nil))),
		"map entry value before key":                           join(append(fs, rawField{15, entry(bytesField(2, []byte("v")), bytesField(1, []byte("zzz")))})),
		"map entry key twice":                                  join(append(fs, rawField{15, entry(bytesField(1, []byte("zzy")), bytesField(1, []byte("zzz")), bytesField(2, nil))})),
		"map entry with unknown field":                         join(append(fs, rawField{15, entry(bytesField(1, []byte("zzz")), bytesField(2, nil), varintField(3, 1))})),
		"map key with a wrong wire type":                       join(insert(without(fs, 15), 15, entry(varintField(1, 1), bytesField(2, []byte("v"))))),
		"map entry non-minimal key length":                     join(append(fs, rawField{15, entry([]byte{0x0a}, longVarint(3, 2), []byte("zzz"), bytesField(2, nil))})),
		"map entry non-minimal key tag":                        join(append(fs, rawField{15, entry([]byte{0x8a, 0x00}, protowire.AppendBytes(nil, []byte("zzz")), bytesField(2, nil))})),
		"empty string in a nested message":                     join(replace(t, fs, 8, bytesField(8, cat(bytesField(1, nil), bytesField(2, []byte("x")))))),
	}
}

func TestNotCanonical(t *testing.T) {
	for name, b := range notCanonicalCases(t) {
		t.Run(name, func(t *testing.T) {
			var decoded trailv1.Event
			if err := proto.Unmarshal(b, &decoded); err != nil {
				t.Fatalf("test case is not a valid event: %v", err)
			}
			want := deterministic(t, &decoded)
			if bytes.Equal(b, want) {
				t.Fatalf("test case is canonical")
			}
			var ev Event
			err := Scan(b, &ev)
			if !errors.Is(err, ErrNotCanonical) || errors.Is(err, ErrInvalidEvent) {
				t.Fatalf("Scan = %v, want ErrNotCanonical", err)
			}
			got, err := Canonicalize(b, &ev)
			if err != nil {
				t.Fatalf("Canonicalize: %v", err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("Canonicalize = % x\nwant           % x", got, want)
			}
			wantEv := expected(&decoded)
			if d := diffEvent(&ev, &wantEv); d != "" {
				t.Fatalf("Canonicalize extracted: %s", d)
			}
			if err := Scan(got, &ev); err != nil {
				t.Fatalf("Scan(Canonicalize) = %v", err)
			}
		})
	}
}

// invalidCases are not events at all: Go's decoder rejects them.
func invalidCases(t testing.TB) map[string][]byte {
	e := full()
	fs := split(t, deterministic(t, e))
	canonical := join(fs)
	actor := split(t, deterministic(t, e.Actor))
	badUTF8 := []byte("ok\xffno")
	entry := func(parts ...[]byte) []byte { return bytesField(15, cat(parts...)) }
	return map[string][]byte{
		"truncated string":              canonical[:3],
		"truncated tag":                 cat(canonical, []byte{0x80}),
		"truncated varint":              cat(canonical, []byte{0x80, 0x01, 0xff}),
		"truncated nested message":      join(replace(t, fs, 6, bytesField(6, join(actor)[:10]))),
		"length beyond the end":         cat(canonical, []byte{0x82, 0x01, 0x05, 'a'}),
		"nested length beyond parent":   join(replace(t, fs, 8, bytesField(8, []byte{0x0a, 0x09, 'a'}))),
		"varint overflow":               cat(canonical, []byte{0x80, 0x01}, bytes.Repeat([]byte{0xff}, 10), []byte{0x01}),
		"tag overflow":                  cat(bytes.Repeat([]byte{0xff}, 10), []byte{0x01}),
		"field number 0":                cat([]byte{0x02, 0x00}, canonical),
		"field number 0 nested":         join(replace(t, fs, 8, bytesField(8, []byte{0x00, 0x00}))),
		"field number too large":        cat(canonical, protowire.AppendVarint(nil, uint64(protowire.MaxValidNumber+1)<<3), []byte{0x00}),
		"wire type 6":                   cat(canonical, []byte{0x86, 0x01}),
		"wire type 7 on a known field":  cat([]byte{0x0f}, canonical),
		"end group at the top":          cat(canonical, protowire.AppendTag(nil, 40, protowire.EndGroupType)),
		"end group in a sub-message":    join(replace(t, fs, 6, bytesField(6, cat(join(actor), protowire.AppendTag(nil, 40, protowire.EndGroupType))))),
		"unterminated group":            cat(canonical, protowire.AppendTag(nil, 40, protowire.StartGroupType), varintField(1, 1)),
		"mismatched end group":          cat(canonical, protowire.AppendTag(nil, 40, protowire.StartGroupType), protowire.AppendTag(nil, 41, protowire.EndGroupType)),
		"invalid UTF-8 tenant_id":       join(replace(t, fs, 1, bytesField(1, badUTF8))),
		"invalid UTF-8 source_service":  join(replace(t, fs, 12, bytesField(12, badUTF8))),
		"invalid UTF-8 pii field":       join(insert(fs, 9, bytesField(9, badUTF8))),
		"invalid UTF-8 actor role":      join(replace(t, fs, 6, bytesField(6, join(append(actor, rawField{4, bytesField(4, badUTF8)}))))),
		"invalid UTF-8 target id":       join(replace(t, fs, 8, bytesField(8, bytesField(2, badUTF8)))),
		"invalid UTF-8 change before":   join(insert(fs, 11, bytesField(11, cat(bytesField(1, []byte("f")), bytesField(2, badUTF8))))),
		"invalid UTF-8 map key":         join(append(fs, rawField{15, entry(bytesField(1, badUTF8), bytesField(2, nil))})),
		"invalid UTF-8 map value":       join(append(fs, rawField{15, entry(bytesField(1, []byte("zzz")), bytesField(2, badUTF8))})),
		"invalid UTF-8 map value twice": join(append(fs, rawField{15, entry(bytesField(1, []byte("zzz")), bytesField(2, nil), bytesField(2, badUTF8))})),
		"map entry truncated":           join(append(fs, rawField{15, entry([]byte{0x0a, 0x05, 'a'})})),
		"map entry field number 0":      join(append(fs, rawField{15, entry(bytesField(1, []byte("zzz")), bytesField(2, nil), []byte{0x00, 0x00})})),
		"map entry bad unknown field":   join(append(fs, rawField{15, entry(bytesField(1, []byte("zzz")), bytesField(2, nil), []byte{0x1a, 0x05})})),
		// Not canonical first (fields swapped), then malformed: malformed wins.
		"not canonical, then invalid UTF-8": cat(fs[1].raw, fs[0].raw, bytesField(12, badUTF8)),
		"not canonical, then truncated":     cat(fs[1].raw, fs[0].raw, []byte{0x62, 0x05}),
	}
}

func TestInvalid(t *testing.T) {
	for name, b := range invalidCases(t) {
		t.Run(name, func(t *testing.T) {
			if err := proto.Unmarshal(b, new(trailv1.Event)); err == nil {
				t.Fatalf("test case is a valid event to Go")
			}
			var ev Event
			err := Scan(b, &ev)
			if !errors.Is(err, ErrInvalidEvent) || errors.Is(err, ErrNotCanonical) {
				t.Fatalf("Scan = %v, want ErrInvalidEvent", err)
			}
			if !strings.HasPrefix(err.Error(), "invalid event: event") {
				t.Fatalf("Scan error %q does not say where", err)
			}
			if _, err := Canonicalize(b, &ev); !errors.Is(err, ErrInvalidEvent) {
				t.Fatalf("Canonicalize = %v, want ErrInvalidEvent", err)
			}
		})
	}
}

// TestEveryPrefix checks every truncation of realistic events: a prefix is
// malformed exactly when Go's decoder says so (a cut at a field boundary is
// a valid, smaller event).
func TestEveryPrefix(t *testing.T) {
	events := append(generated(20), full())
	for _, e := range events {
		b := deterministic(t, withUnknown(e, varintField(16, 300)))
		for n := range len(b) {
			checkAgreesWithGo(t, b[:n])
		}
	}
}

// TestShortInputs checks every input of up to two bytes.
func TestShortInputs(t *testing.T) {
	checkAgreesWithGo(t, nil)
	for i := range 1 << 8 {
		checkAgreesWithGo(t, []byte{byte(i)})
	}
	for i := range 1 << 16 {
		checkAgreesWithGo(t, []byte{byte(i), byte(i >> 8)})
	}
}

func TestWrongWireTypeAtTheEndIsCanonical(t *testing.T) {
	// Go's decoder keeps a known field number with another wire type as an
	// unknown field and writes it back after the known fields: at the end of
	// a message it is a fixed point, so Canonicalize could not do better.
	for _, b := range [][]byte{
		bytesField(3, nil),
		varintField(1, 1),
		cat(bytesField(1, []byte("t")), varintField(1, 1)),
		bytesField(6, bytesField(14, cat(varintField(1, 1), bytesField(2, nil)))),
	} {
		if err := Scan(b, new(Event)); err != nil {
			t.Errorf("Scan(% x) = %v, want nil", b, err)
		}
		checkAgreesWithGo(t, b)
	}
}

func TestErrorsSayWhere(t *testing.T) {
	fs := split(t, deterministic(t, full()))
	tests := []struct {
		name string
		b    []byte
		want string
	}{
		{"swapped", cat(fs[1].raw, fs[0].raw), "eventwire: not in canonical form: event.tenant_id: field 1 follows field 2 (byte 10)"},
		{"bad utf8 in role", bytesField(6, bytesField(4, []byte{0xff})), "invalid event: event.actor.roles: string is not valid UTF-8 (byte 4)"},
		{"map order", cat(bytesField(15, cat(bytesField(1, []byte("b")), bytesField(2, nil))), bytesField(15, cat(bytesField(1, []byte("a")), bytesField(2, nil)))),
			"eventwire: not in canonical form: event.attributes[1].key: not greater than the previous entry's key (byte 9)"},
		{"second change", cat(bytesField(11, nil), bytesField(11, bytesField(1, nil))), "eventwire: not in canonical form: event.changes[1].field: empty string is present (Go omits it) (byte 6)"},
		{"zero enum", varintField(3, 0), "eventwire: not in canonical form: event.category: zero value is present (Go omits it) (byte 1)"},
	}
	for _, tt := range tests {
		err := Scan(tt.b, new(Event))
		if err == nil || err.Error() != tt.want {
			t.Errorf("%s: Scan = %v\nwant        %s", tt.name, err, tt.want)
		}
	}
}

func TestMarshalRejects(t *testing.T) {
	tests := map[string]*trailv1.Event{
		"invalid UTF-8":                  {TenantId: "a\xff"},
		"malformed unknown fields":       withUnknown(&trailv1.Event{}, []byte{0x82, 0x01, 0x05}),
		"unknown bytes of a known field": withUnknown(&trailv1.Event{TenantId: "b"}, bytesField(1, []byte("a"))),
	}
	for name, e := range tests {
		if _, err := Marshal(e, new(Event)); !errors.Is(err, ErrInvalidEvent) {
			t.Errorf("%s: Marshal = %v, want ErrInvalidEvent", name, err)
		}
	}
}

// checkAgreesWithGo checks Scan and Canonicalize against Go's decoder and
// deterministic encoder on b: the properties FuzzScan checks.
func checkAgreesWithGo(t testing.TB, b []byte) {
	t.Helper()
	var ev Event
	scanErr := Scan(b, &ev)
	var decoded trailv1.Event
	decodeErr := proto.Unmarshal(b, &decoded)
	if decodeErr != nil {
		if !errors.Is(scanErr, ErrInvalidEvent) || errors.Is(scanErr, ErrNotCanonical) {
			t.Fatalf("Scan(% x) = %v; Go's decoder fails (%v)", b, scanErr, decodeErr)
		}
		if _, err := Canonicalize(b, &ev); !errors.Is(err, ErrInvalidEvent) {
			t.Fatalf("Canonicalize(% x) = %v; Go's decoder fails (%v)", b, err, decodeErr)
		}
		return
	}
	want := deterministic(t, &decoded)
	wantEv := expected(&decoded)
	switch {
	case scanErr == nil:
		if !bytes.Equal(b, want) {
			t.Fatalf("Scan(% x) = nil, but Go re-encodes it as % x", b, want)
		}
		if d := diffEvent(&ev, &wantEv); d != "" {
			t.Fatalf("Scan(% x) extracted: %s", b, d)
		}
	case errors.Is(scanErr, ErrNotCanonical) && !errors.Is(scanErr, ErrInvalidEvent):
	default:
		t.Fatalf("Scan(% x) = %v; Go decodes it", b, scanErr)
	}
	got, err := Canonicalize(b, &ev)
	if err != nil {
		t.Fatalf("Canonicalize(% x) = %v; Go decodes it", b, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("Canonicalize(% x) = % x, want % x", b, got, want)
	}
	if d := diffEvent(&ev, &wantEv); d != "" {
		t.Fatalf("Canonicalize(% x) extracted: %s", b, d)
	}
	if err := Scan(got, new(Event)); err != nil {
		t.Fatalf("Scan(Canonicalize(% x)) = %v", b, err)
	}
}
