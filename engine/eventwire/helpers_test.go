package eventwire

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/trailaudit/trail/internal/eventgen"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// deterministic is the oracle: Go's deterministic encoding of e.
func deterministic(t testing.TB, e proto.Message) []byte {
	t.Helper()
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(e)
	if err != nil {
		t.Fatalf("deterministic marshal: %v", err)
	}
	return b
}

// generated returns n realistic ~512-byte events.
func generated(n int) []*trailv1.Event {
	g := eventgen.New(eventgen.Config{Seed: 7, Tenants: 4, TargetBytes: 512})
	evs := make([]*trailv1.Event, n)
	for i := range evs {
		evs[i] = g.Next()
	}
	return evs
}

// expected is what Scan must extract from the encoding of e, from e's getters.
func expected(e *trailv1.Event) Event {
	w := Event{
		TenantID:        []byte(e.GetTenantId()),
		EventID:         []byte(e.GetEventId()),
		Action:          []byte(e.GetAction()),
		ActorID:         []byte(e.GetActor().GetId()),
		SubjectID:       []byte(e.GetSubjectId()),
		TargetType:      []byte(e.GetTarget().GetType()),
		TargetID:        []byte(e.GetTarget().GetId()),
		PurposeCode:     []byte(e.GetPurposeCode()),
		TraceID:         []byte(e.GetTraceId()),
		SourceService:   []byte(e.GetSourceService()),
		DisplayName:     []byte(e.GetActor().GetDisplayName()),
		Category:        int32(e.GetCategory()),
		Outcome:         int32(e.GetOutcome()),
		HasActor:        e.GetActor() != nil,
		HasTarget:       e.GetTarget() != nil,
		HasOccurredAt:   e.GetOccurredAt() != nil,
		HasSealed:       e.GetSealed() != nil,
		SealedKeyID:     e.GetSealed().GetKeyId(),
		OccurredSeconds: e.GetOccurredAt().GetSeconds(),
		OccurredNanos:   e.GetOccurredAt().GetNanos(),
		Changes:         len(e.GetChanges()),
		Attributes:      len(e.GetAttributes()),
	}
	for _, f := range e.GetPiiFieldsAccessed() {
		w.PIIFields = append(w.PIIFields, []byte(f))
	}
	keys := slices.Sorted(maps.Keys(e.GetAttributes()))
	for _, k := range keys {
		w.AttrKeys = append(w.AttrKeys, []byte(k))
		w.AttrValues = append(w.AttrValues, []byte(e.GetAttributes()[k]))
	}
	for _, c := range e.GetChanges() {
		if c.GetField() == "" {
			w.ChangesWithoutField++
		}
	}
	return w
}

// diffEvent describes how got differs from want ("" if it does not). A nil
// and an empty []byte are equal: both are the absent proto3 string.
func diffEvent(got, want *Event) string {
	var d []string
	strs := []struct {
		name      string
		got, want []byte
	}{
		{"TenantID", got.TenantID, want.TenantID},
		{"EventID", got.EventID, want.EventID},
		{"Action", got.Action, want.Action},
		{"ActorID", got.ActorID, want.ActorID},
		{"SubjectID", got.SubjectID, want.SubjectID},
		{"TargetType", got.TargetType, want.TargetType},
		{"TargetID", got.TargetID, want.TargetID},
		{"PurposeCode", got.PurposeCode, want.PurposeCode},
		{"TraceID", got.TraceID, want.TraceID},
		{"DisplayName", got.DisplayName, want.DisplayName},
		{"SealedKeyID", got.SealedKeyID, want.SealedKeyID},
		{"SourceService", got.SourceService, want.SourceService},
	}
	for _, s := range strs {
		if !bytes.Equal(s.got, s.want) {
			d = append(d, fmt.Sprintf("%s = %q, want %q", s.name, s.got, s.want))
		}
	}
	g, w := *got, *want
	g.PIIFields, w.PIIFields = nil, nil
	for _, s := range []*Event{&g, &w} {
		s.TenantID, s.EventID, s.Action, s.ActorID, s.SubjectID = nil, nil, nil, nil, nil
		s.TargetType, s.TargetID, s.PurposeCode, s.TraceID, s.DisplayName = nil, nil, nil, nil, nil
		s.SealedKeyID, s.SourceService = nil, nil
		s.AttrKeys, s.AttrValues = nil, nil
	}
	// A canonical event holds each attribute once, sorted by key, as the
	// decoded map lists them.
	if fmt.Sprintf("%q %q", got.AttrKeys, got.AttrValues) != fmt.Sprintf("%q %q", want.AttrKeys, want.AttrValues) {
		d = append(d, fmt.Sprintf("attributes = %q %q, want %q %q", got.AttrKeys, got.AttrValues, want.AttrKeys, want.AttrValues))
	}
	if fmt.Sprintf("%+v", g) != fmt.Sprintf("%+v", w) {
		d = append(d, fmt.Sprintf("scalars = %+v, want %+v", g, w))
	}
	if len(got.PIIFields) != len(want.PIIFields) {
		d = append(d, fmt.Sprintf("PIIFields = %q, want %q", got.PIIFields, want.PIIFields))
	} else {
		for i := range got.PIIFields {
			if !bytes.Equal(got.PIIFields[i], want.PIIFields[i]) {
				d = append(d, fmt.Sprintf("PIIFields[%d] = %q, want %q", i, got.PIIFields[i], want.PIIFields[i]))
			}
		}
	}
	return strings.Join(d, "; ")
}

// full is a valid event that sets every field, with values long enough for
// multi-byte lengths and several attributes.
func full() *trailv1.Event {
	return &trailv1.Event{
		TenantId: "tenant-01",
		EventId:  "evt-0001",
		Category: trailv1.Category_CATEGORY_DATA_ACCESS,
		Action:   "record.view",
		Outcome:  trailv1.Outcome_OUTCOME_SUCCESS,
		Actor: &trailv1.Actor{
			Id: "user-00042", Type: "user", DisplayName: "Zoë Ämter",
			Roles: []string{"caseworker", "auditor"}, Ip: "10.0.0.1",
			UserAgent: strings.Repeat("Mozilla/5.0 ", 12), SessionId: "sess-1",
		},
		SubjectId:         "citizen-0000007",
		Target:            &trailv1.Target{Type: "citizen_record", Id: "obj-1"},
		PiiFieldsAccessed: []string{"name", "national_id", "address"},
		PurposeCode:       "CASE_MGMT",
		Changes: []*trailv1.Change{
			{Field: "address", Before: "Old St 1", After: "New St 2"},
			{Field: "phone", After: "+1 555"},
		},
		SourceService: "crm",
		TraceId:       "0123456789abcdef0123456789abcdef",
		OccurredAt:    &timestamppb.Timestamp{Seconds: 1793520000, Nanos: 123456789},
		Attributes:    map[string]string{"region": "eu-west", "a": "", "": "empty key", "zz": "last", "ä": "multibyte"},
	}
}

// rawField is one top-level field of an encoding, tag included.
type rawField struct {
	num protowire.Number
	raw []byte
}

// split cuts a well-formed encoding into its fields.
func split(t testing.TB, b []byte) []rawField {
	t.Helper()
	var fs []rawField
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			t.Fatalf("split: %v", protowire.ParseError(n))
		}
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		if m < 0 {
			t.Fatalf("split: %v", protowire.ParseError(m))
		}
		fs = append(fs, rawField{num, b[:n+m]})
		b = b[n+m:]
	}
	return fs
}

func join(fs []rawField) []byte {
	var b []byte
	for _, f := range fs {
		b = append(b, f.raw...)
	}
	return b
}

// insert puts raw before the first field numbered above num, where a field
// numbered num belongs.
func insert(fs []rawField, num protowire.Number, raw []byte) []rawField {
	i := 0
	for i < len(fs) && fs[i].num <= num {
		i++
	}
	out := append([]rawField{}, fs[:i]...)
	out = append(out, rawField{num, raw})
	return append(out, fs[i:]...)
}

// replace replaces the first field numbered num with raw.
func replace(t testing.TB, fs []rawField, num protowire.Number, raw []byte) []rawField {
	t.Helper()
	out := append([]rawField{}, fs...)
	for i := range out {
		if out[i].num == num {
			out[i].raw = raw
			return out
		}
	}
	t.Fatalf("replace: no field %d", num)
	return nil
}

// without drops every field numbered num.
func without(fs []rawField, num protowire.Number) []rawField {
	var out []rawField
	for _, f := range fs {
		if f.num != num {
			out = append(out, f)
		}
	}
	return out
}

// fieldsOf returns the raw fields numbered num.
func fieldsOf(fs []rawField, num protowire.Number) []rawField {
	var out []rawField
	for _, f := range fs {
		if f.num == num {
			out = append(out, f)
		}
	}
	return out
}

// bytesField encodes a length-delimited field with a minimal tag and length.
func bytesField(num protowire.Number, v []byte) []byte {
	return protowire.AppendBytes(protowire.AppendTag(nil, num, protowire.BytesType), v)
}

func varintField(num protowire.Number, v uint64) []byte {
	return protowire.AppendVarint(protowire.AppendTag(nil, num, protowire.VarintType), v)
}

func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// longVarint encodes v in exactly n bytes (n above the minimum: not minimal).
func longVarint(v uint64, n int) []byte {
	b := make([]byte, n)
	for i := range n - 1 {
		b[i] = byte(v&0x7f) | 0x80
		v >>= 7
	}
	b[n-1] = byte(v)
	return b
}
