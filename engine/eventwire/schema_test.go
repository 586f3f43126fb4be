package eventwire

import (
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// TestSchemaMatchesProto checks the hard-coded schema against the generated
// descriptors: a field added to event.proto must be added to the scanner,
// or Scan would take it for an unknown field (and skip its UTF-8 check).
func TestSchemaMatchesProto(t *testing.T) {
	specs := map[protoreflect.FullName]*msgSpec{
		(&trailv1.Event{}).ProtoReflect().Descriptor().FullName():         eventSpec,
		(&trailv1.Actor{}).ProtoReflect().Descriptor().FullName():         actorSpec,
		(&trailv1.Target{}).ProtoReflect().Descriptor().FullName():        targetSpec,
		(&trailv1.Change{}).ProtoReflect().Descriptor().FullName():        changeSpec,
		(&timestamppb.Timestamp{}).ProtoReflect().Descriptor().FullName(): timestampSpec,
		(&trailv1.SealedPayload{}).ProtoReflect().Descriptor().FullName(): sealedSpec,
	}
	for _, md := range []protoreflect.MessageDescriptor{
		(&trailv1.Event{}).ProtoReflect().Descriptor(),
		(&trailv1.Actor{}).ProtoReflect().Descriptor(),
		(&trailv1.Target{}).ProtoReflect().Descriptor(),
		(&trailv1.Change{}).ProtoReflect().Descriptor(),
		(&timestamppb.Timestamp{}).ProtoReflect().Descriptor(),
		(&trailv1.SealedPayload{}).ProtoReflect().Descriptor(),
	} {
		m := specs[md.FullName()]
		known := 0
		for num := range m.fields {
			if m.fields[num].kind != kindUnknown {
				known++
			}
		}
		if known != md.Fields().Len() {
			t.Errorf("%s: the schema has %d fields, the proto %d", md.FullName(), known, md.Fields().Len())
		}
		for i := range md.Fields().Len() {
			fd := md.Fields().Get(i)
			f := m.field(fd.Number())
			if f == nil {
				t.Errorf("%s: field %d (%s) is missing from the schema", md.FullName(), fd.Number(), fd.Name())
				continue
			}
			if f.name != string(fd.Name()) {
				t.Errorf("%s: field %d is %s in the schema, %s in the proto", md.FullName(), fd.Number(), f.name, fd.Name())
			}
			if want := kindOf(fd); f.kind != want {
				t.Errorf("%s.%s: kind %d in the schema, want %d", md.FullName(), fd.Name(), f.kind, want)
			}
			if fd.Message() != nil && !fd.IsMap() && f.msg != specs[fd.Message().FullName()] {
				t.Errorf("%s.%s: wrong message spec", md.FullName(), fd.Name())
			}
		}
	}
}

// kindOf is the schema kind of a field the scanner supports, kindUnknown
// for one it does not (an optional scalar, say: it is written even when
// zero).
func kindOf(fd protoreflect.FieldDescriptor) kind {
	switch {
	case fd.HasPresence() && fd.Kind() != protoreflect.MessageKind:
	case fd.IsMap():
		if fd.MapKey().Kind() == protoreflect.StringKind && fd.MapValue().Kind() == protoreflect.StringKind {
			return kindMap
		}
	case fd.IsList() && fd.Kind() == protoreflect.StringKind:
		return kindStrings
	case fd.IsList() && fd.Kind() == protoreflect.MessageKind:
		return kindMessages
	case fd.IsList():
	case fd.Kind() == protoreflect.StringKind:
		return kindString
	case fd.Kind() == protoreflect.BytesKind:
		return kindBytes
	case fd.Kind() == protoreflect.EnumKind, fd.Kind() == protoreflect.Int32Kind:
		return kindInt32
	case fd.Kind() == protoreflect.Int64Kind:
		return kindInt64
	case fd.Kind() == protoreflect.MessageKind:
		return kindMessage
	}
	return kindUnknown
}
