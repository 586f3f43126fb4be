package shred

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"fmt"

	"google.golang.org/protobuf/proto"

	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// Sealable reports whether ev carries what sealing protects: the data of
// a subject (subject_id set) in changes or attributes, not sealed yet.
func Sealable(ev *trailv1.Event) bool {
	return ev.GetSubjectId() != "" && ev.GetSealed() == nil && (len(ev.GetChanges()) > 0 || len(ev.GetAttributes()) > 0)
}

// SealEvent moves ev's changes and attributes into a payload sealed under
// the subject's data key dk. The result is a function of ev and dk alone.
func SealEvent(ev *trailv1.Event, dk DataKey) error {
	plain, err := proto.MarshalOptions{Deterministic: true}.Marshal(&trailv1.SealedFields{
		Changes: ev.GetChanges(), Attributes: ev.GetAttributes(),
	})
	if err != nil {
		return fmt.Errorf("shred: seal event %q: %w", ev.GetEventId(), err)
	}
	nonce, ct := sealPlain(plain, ev.GetTenantId(), ev.GetEventId(), ev.GetSubjectId(), dk)
	ev.Changes, ev.Attributes = nil, nil
	ev.Sealed = &trailv1.SealedPayload{KeyId: dk.ID[:], Nonce: nonce, Ciphertext: ct}
	return nil
}

// sealPlain encrypts the encoded SealedFields of one event.
func sealPlain(plain []byte, tenant, eventID, subject string, dk DataKey) (nonce, ct []byte) {
	enc, mac := subkeys(EventKey(dk, tenant, eventID))
	nonce = syntheticNonce(mac, plain)
	return nonce, newGCM(enc).Seal(nil, nonce, plain, sealAD(tenant, eventID, subject, dk.ID[:]))
}

// subkeys splits an event key into the AES-GCM key and the key of the
// synthetic nonce's HMAC, so that no key serves two primitives.
func subkeys(eventKey []byte) (enc, mac []byte) {
	k, err := hkdf.Expand(sha256.New, eventKey, "trail/v1 seal subkeys", 2*keySize)
	if err != nil {
		panic(err) // only for lengths above 255 hash sizes
	}
	return k[:keySize], k[keySize:]
}

// syntheticNonce derives the nonce from its key and the plaintext.
func syntheticNonce(mac, plain []byte) []byte {
	m := hmac.New(sha256.New, mac)
	m.Write(plain)
	return m.Sum(nil)[:nonceSize]
}

// sealAD binds a sealed payload to its format, tenant, event, subject and
// data key: it opens in no other event, not even under the same key.
func sealAD(tenant, eventID, subject string, keyID []byte) []byte {
	ad := make([]byte, 0, 64+len(tenant)+len(eventID)+len(subject))
	ad = append(ad, "trail/v1 sealed\x00"...)
	for _, s := range []string{tenant, eventID, subject} {
		ad = append(append(ad, s...), 0)
	}
	return append(ad, keyID...)
}

// Open returns the sealed fields of ev, given its event key.
func Open(ev *trailv1.Event, eventKey []byte) (*trailv1.SealedFields, error) {
	p := ev.GetSealed()
	if p == nil {
		return nil, fmt.Errorf("%w: event %q has no sealed payload", ErrMalformed, ev.GetEventId())
	}
	if len(eventKey) != keySize || len(p.GetNonce()) != nonceSize || len(p.GetKeyId()) != KeyIDSize {
		return nil, fmt.Errorf("%w: event %q: key of %d bytes, nonce of %d, key id of %d", ErrMalformed, ev.GetEventId(), len(eventKey), len(p.GetNonce()), len(p.GetKeyId()))
	}
	enc, mac := subkeys(eventKey)
	plain, err := newGCM(enc).Open(nil, p.GetNonce(), p.GetCiphertext(), sealAD(ev.GetTenantId(), ev.GetEventId(), ev.GetSubjectId(), p.GetKeyId()))
	if err != nil {
		return nil, fmt.Errorf("event %q: %w", ev.GetEventId(), ErrNotOpened)
	}
	// The nonce is a function of key and plaintext: a payload sealed any
	// other way is not one Trail wrote.
	if !hmac.Equal(syntheticNonce(mac, plain), p.GetNonce()) {
		return nil, fmt.Errorf("event %q: %w: nonce is not derived from the plaintext", ev.GetEventId(), ErrNotOpened)
	}
	fields := new(trailv1.SealedFields)
	if err := proto.Unmarshal(plain, fields); err != nil {
		return nil, fmt.Errorf("%w: event %q: sealed fields: %v", ErrMalformed, ev.GetEventId(), err)
	}
	return fields, nil
}
