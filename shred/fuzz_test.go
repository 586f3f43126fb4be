package shred

import (
	"bytes"
	"testing"

	"google.golang.org/protobuf/proto"

	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// FuzzParseErasure: whatever the text, ParseErasure either refuses it or
// returns a statement whose text is exactly the input.
func FuzzParseErasure(f *testing.F) {
	text, _ := testErasure().Text()
	f.Add(text)
	f.Add("trail erasure receipt v1\n")
	f.Fuzz(func(t *testing.T, s string) {
		e, err := ParseErasure(s)
		if err != nil {
			return
		}
		again, err := e.Text()
		if err != nil || again != s {
			t.Fatalf("parsed %q, writes back %q (%v)", s, again, err)
		}
	})
}

// FuzzOpen: a sealed payload altered in any way never opens to anything
// but its own plaintext.
func FuzzOpen(f *testing.F) {
	dk := DataKey{ID: [KeyIDSize]byte{1}, Key: [keySize]byte{2}}
	ev := subjectEvent()
	if err := SealEvent(ev, dk); err != nil {
		f.Fatal(err)
	}
	key := EventKey(dk, ev.GetTenantId(), ev.GetEventId())
	want, _ := Open(ev, key)
	f.Add(ev.GetSealed().GetNonce(), ev.GetSealed().GetCiphertext(), ev.GetSealed().GetKeyId())
	f.Fuzz(func(t *testing.T, nonce, ct, keyID []byte) {
		c := proto.Clone(ev).(*trailv1.Event)
		c.Sealed = &trailv1.SealedPayload{KeyId: keyID, Nonce: nonce, Ciphertext: ct}
		got, err := Open(c, key)
		if err != nil {
			return
		}
		if !proto.Equal(got, want) || !bytes.Equal(nonce, ev.GetSealed().GetNonce()) {
			t.Fatalf("an altered payload opened to %v", got)
		}
	})
}

// FuzzUnwrap: a record that is not exactly one Wrap made never unwraps.
func FuzzUnwrap(f *testing.F) {
	k, _ := NewKeyring(bytes.Repeat([]byte{9}, SecretSize))
	dk := DataKey{ID: [KeyIDSize]byte{3}, Key: [keySize]byte{4}}
	rec, err := k.Wrap(k.CheckValue(), "acme", "s", dk, bytes.NewReader(make([]byte, 64)))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(rec)
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := k.Unwrap("acme", "s", b)
		if err == nil && (!bytes.Equal(b, rec) || got != dk) {
			t.Fatalf("record %x unwrapped", b)
		}
	})
}
