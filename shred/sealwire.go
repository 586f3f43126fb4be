package shred

import (
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/trailaudit/trail/engine/eventwire"
)

// Field numbers sealing moves between trail.v1.Event, SealedFields and
// SealedPayload (proto/trail/v1/event.proto; never renumbered).
const (
	eventChanges     = 11
	eventAttributes  = 15
	eventSealed      = 16
	sealedChanges    = 1
	sealedAttributes = 2
	payloadKeyID     = 1
	payloadNonce     = 2
	payloadCipher    = 3
)

// SealEncoded is SealEvent on an event's canonical encoding, without
// decoding it: the append path has events only as bytes, and decoding,
// sealing and re-encoding cost more than the encryption. In a canonical
// event the changes and then the attributes (sorted by key) are the
// elements of fields 11 and 15; re-tagged as fields 1 and 2 they are the
// canonical encoding of SealedFields, so the plaintext is the bytes
// SealEvent would marshal. The other fields are kept as they are and the
// payload goes last, as field 16. The result is scanned into ev and must
// be canonical: an event with unknown fields (which Go writes after field
// 16) is left to SealEvent, and ok is false.
func SealEncoded(event []byte, dk DataKey, ev *eventwire.Event) (out []byte, ok bool) {
	plain := make([]byte, 0, len(event))
	out = make([]byte, 0, len(event)+64)
	for b := event; len(b) > 0; {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, false
		}
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		if m < 0 {
			return nil, false
		}
		switch {
		case typ != protowire.BytesType:
			out = append(out, b[:n+m]...)
		case num == eventChanges:
			plain = protowire.AppendTag(plain, sealedChanges, protowire.BytesType)
			plain = append(plain, b[n:n+m]...) // length and value, unchanged
		case num == eventAttributes:
			plain = protowire.AppendTag(plain, sealedAttributes, protowire.BytesType)
			plain = append(plain, b[n:n+m]...)
		default:
			out = append(out, b[:n+m]...)
		}
		b = b[n+m:]
	}
	if len(plain) == 0 {
		return nil, false
	}
	if err := eventwire.Scan(event, ev); err != nil {
		return nil, false
	}
	nonce, ct := sealPlain(plain, string(ev.TenantID), string(ev.EventID), string(ev.SubjectID), dk)
	payload := make([]byte, 0, 3*2+len(dk.ID)+len(nonce)+len(ct)+4)
	payload = protowire.AppendTag(payload, payloadKeyID, protowire.BytesType)
	payload = protowire.AppendBytes(payload, dk.ID[:])
	payload = protowire.AppendTag(payload, payloadNonce, protowire.BytesType)
	payload = protowire.AppendBytes(payload, nonce)
	payload = protowire.AppendTag(payload, payloadCipher, protowire.BytesType)
	payload = protowire.AppendBytes(payload, ct)
	out = protowire.AppendTag(out, eventSealed, protowire.BytesType)
	out = protowire.AppendBytes(out, payload)
	if eventwire.Scan(out, ev) != nil {
		return nil, false
	}
	return out, true
}
