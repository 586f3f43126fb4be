package eventgen

import (
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// Template is an event's canonical encoding split around its event_id, so
// that a benchmark can stamp it with a fresh id per use for the cost of a
// copy instead of a marshal: a load generator that marshals every event
// spends more CPU than the server it measures.
type Template struct {
	head, tail []byte // the fields before and after event_id (field 2)
}

// NewTemplate encodes ev deterministically (canonically) and splits it.
func NewTemplate(ev *trailv1.Event) (Template, error) {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(ev)
	if err != nil {
		return Template{}, err
	}
	// Canonical order: tenant_id (1), then event_id (2), then the rest.
	at := 0
	for at < len(b) {
		num, typ, n := protowire.ConsumeTag(b[at:])
		if n < 0 {
			return Template{}, fmt.Errorf("eventgen: template: %v", protowire.ParseError(n))
		}
		m := protowire.ConsumeFieldValue(num, typ, b[at+n:])
		if m < 0 {
			return Template{}, fmt.Errorf("eventgen: template: %v", protowire.ParseError(m))
		}
		if num == 2 {
			return Template{head: b[:at], tail: b[at+n+m:]}, nil
		}
		if num > 2 {
			break
		}
		at += n + m
	}
	return Template{head: b[:at], tail: b[at:]}, nil
}

// Len is the encoded size of the event with an id of n bytes.
func (t Template) Len(n int) int {
	if n == 0 {
		return len(t.head) + len(t.tail)
	}
	return len(t.head) + protowire.SizeTag(2) + protowire.SizeBytes(n) + len(t.tail)
}

// Append appends the event's canonical encoding with event_id id (an
// empty id, like any empty string field, is not written).
func (t Template) Append(b []byte, id string) []byte {
	b = append(b, t.head...)
	if id != "" {
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendString(b, id)
	}
	return append(b, t.tail...)
}
