package shred

import (
	"bytes"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/trailaudit/trail/merkle"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

func testKeyring(t testing.TB, secret string) *Keyring {
	t.Helper()
	k, err := NewKeyring([]byte(secret + strings.Repeat("-", SecretSize)))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func testDataKey(t testing.TB) DataKey {
	t.Helper()
	dk, err := NewDataKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return dk
}

func subjectEvent() *trailv1.Event {
	return &trailv1.Event{
		TenantId: "acme", EventId: "e-1", SubjectId: "citizen-7",
		Category: trailv1.Category_CATEGORY_DATA_MODIFICATION, Action: "record.update", Outcome: trailv1.Outcome_OUTCOME_SUCCESS,
		Actor:      &trailv1.Actor{Id: "clerk"},
		Changes:    []*trailv1.Change{{Field: "address", Before: "1 Old Road", After: "2 New Street"}},
		Attributes: map[string]string{"comment": "moved", "b": "2", "a": "1"},
		OccurredAt: timestamppb.New(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)),
	}
}

func TestWrapUnwrap(t *testing.T) {
	k := testKeyring(t, "cluster secret")
	dk := testDataKey(t)
	rec, err := k.Wrap(k.CheckValue(), "acme", "citizen-7", dk, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if id, err := RecordKeyID(rec); err != nil || !bytes.Equal(id, dk.ID[:]) {
		t.Fatalf("RecordKeyID: %x %v", id, err)
	}
	got, err := k.Unwrap("acme", "citizen-7", rec)
	if err != nil || got != dk {
		t.Fatalf("Unwrap: %v", err)
	}
	flipped := bytes.Clone(rec)
	flipped[len(flipped)-1] ^= 1
	tests := []struct {
		name            string
		k               *Keyring
		tenant, subject string
		rec             []byte
		want            error
	}{
		{"other secret", testKeyring(t, "another secret"), "acme", "citizen-7", rec, ErrWrongSecret},
		{"other tenant", k, "acme2", "citizen-7", rec, ErrWrongSecret},
		{"other subject", k, "acme", "citizen-8", rec, ErrWrongSecret},
		{"altered", k, "acme", "citizen-7", flipped, ErrWrongSecret},
		{"truncated", k, "acme", "citizen-7", rec[:len(rec)-1], ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tt.k.Unwrap(tt.tenant, tt.subject, tt.rec); !errors.Is(err, tt.want) {
				t.Fatalf("Unwrap: %v, want %v", err, tt.want)
			}
		})
	}
	if bytes.Equal(k.CheckValue(), testKeyring(t, "another secret").CheckValue()) {
		t.Fatal("two secrets share a check value")
	}
	if _, err := NewKeyring(make([]byte, SecretSize-1)); err == nil {
		t.Fatal("a short secret was accepted")
	}
}

func TestSealOpen(t *testing.T) {
	dk := testDataKey(t)
	ev := subjectEvent()
	if !Sealable(ev) {
		t.Fatal("a subject's change is not sealable")
	}
	if err := SealEvent(ev, dk); err != nil {
		t.Fatal(err)
	}
	if len(ev.GetChanges()) != 0 || len(ev.GetAttributes()) != 0 || Sealable(ev) {
		t.Fatal("sealing left the fields in clear")
	}
	// Deterministic: sealing the same event again gives the same bytes.
	again := subjectEvent()
	if err := SealEvent(again, dk); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(ev, again) {
		t.Fatal("sealing is not deterministic")
	}
	key := EventKey(dk, "acme", "e-1")
	fields, err := Open(ev, key)
	if err != nil {
		t.Fatal(err)
	}
	want := subjectEvent()
	if !proto.Equal(fields, &trailv1.SealedFields{Changes: want.Changes, Attributes: want.Attributes}) {
		t.Fatalf("opened %v", fields)
	}

	other := testDataKey(t)
	tests := []struct {
		name   string
		mutate func(ev *trailv1.Event) []byte // returns the key to open with
		want   error
	}{
		{"another event's key", func(*trailv1.Event) []byte { return EventKey(dk, "acme", "e-2") }, ErrNotOpened},
		{"another subject's key", func(*trailv1.Event) []byte { return EventKey(other, "acme", "e-1") }, ErrNotOpened},
		{"moved to another event", func(ev *trailv1.Event) []byte { ev.EventId = "e-2"; return EventKey(dk, "acme", "e-2") }, ErrNotOpened},
		{"moved to another subject", func(ev *trailv1.Event) []byte { ev.SubjectId = "citizen-8"; return key }, ErrNotOpened},
		{"ciphertext altered", func(ev *trailv1.Event) []byte { ev.Sealed.Ciphertext[0] ^= 1; return key }, ErrNotOpened},
		{"key id altered", func(ev *trailv1.Event) []byte { ev.Sealed.KeyId[0] ^= 1; return key }, ErrNotOpened},
		{"short key", func(*trailv1.Event) []byte { return key[:16] }, ErrMalformed},
		{"no payload", func(ev *trailv1.Event) []byte { ev.Sealed = nil; return key }, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := proto.Clone(ev).(*trailv1.Event)
			k := tt.mutate(c)
			if _, err := Open(c, k); !errors.Is(err, tt.want) {
				t.Fatalf("Open: %v, want %v", err, tt.want)
			}
		})
	}
}

// TestRandomNonceRefused: a payload encrypted correctly but with a nonce
// not derived from its plaintext is not one Trail wrote.
func TestRandomNonceRefused(t *testing.T) {
	dk := testDataKey(t)
	ev := subjectEvent()
	if err := SealEvent(ev, dk); err != nil {
		t.Fatal(err)
	}
	key := EventKey(dk, "acme", "e-1")
	plain, err := Open(ev, key)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(plain)
	nonce := make([]byte, nonceSize)
	rand.Read(nonce)
	ev.Sealed.Nonce = nonce
	enc, _ := subkeys(key)
	ev.Sealed.Ciphertext = newGCM(enc).Seal(nil, nonce, b, sealAD(ev.GetTenantId(), ev.GetEventId(), ev.GetSubjectId(), dk.ID[:]))
	if _, err := Open(ev, key); !errors.Is(err, ErrNotOpened) {
		t.Fatalf("Open with a random nonce: %v", err)
	}
}

func testErasure() *Erasure {
	return &Erasure{
		Log: "trail.example", Tenant: "acme", Subject: "citizen 7/x", KeyID: bytes.Repeat([]byte{7}, KeyIDSize),
		ErasedAt: time.Date(2026, 12, 7, 3, 0, 0, 5, time.UTC), ErasedBy: "apikey:abc", Reason: "Art. 17(1)(b): consent withdrawn",
		Record: Record{Partition: "2026-12", LeafIndex: 42, LeafHash: bytes.Repeat([]byte{1}, 32)},
	}
}

func TestErasureStatement(t *testing.T) {
	skey, vkey, err := merkle.GenerateKey("trail.example", nil)
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := merkle.NewSigner(skey)
	verifier, _ := merkle.NewVerifier(vkey)
	msg, err := SignErasure(testErasure(), signer)
	if err != nil {
		t.Fatal(err)
	}
	got, err := VerifyErasure(msg, verifier)
	if err != nil {
		t.Fatal(err)
	}
	want := testErasure()
	if got.Subject != want.Subject || !got.ErasedAt.Equal(want.ErasedAt) || got.Reference != "" || got.Record.LeafIndex != 42 {
		t.Fatalf("statement read back: %+v", got)
	}
	// Any subject id has a statement, control characters included.
	odd := testErasure()
	odd.Subject = "frank\nx\t\"y\" "
	text, err := odd.Text()
	if err != nil {
		t.Fatal(err)
	}
	if back, err := ParseErasure(text); err != nil || back.Subject != odd.Subject {
		t.Fatalf("odd subject read back as %q: %v", back.Subject, err)
	}
	// Third-party check: any signed-note library opens it.
	if _, err := note.Open(msg, note.VerifierList(verifier)); err != nil {
		t.Fatal(err)
	}
	tampered := bytes.Replace(msg, []byte("citizen 7/x"), []byte("citizen 8/x"), 1)
	if _, err := VerifyErasure(tampered, verifier); err == nil {
		t.Fatal("a tampered receipt verified")
	}

	bad := []struct {
		name   string
		mutate func(*Erasure)
	}{
		{"no reason", func(e *Erasure) { e.Reason = " " }},
		{"newline in reason", func(e *Erasure) { e.Reason = "a\nb" }},
		{"no subject", func(e *Erasure) { e.Subject = "" }},
		{"short key id", func(e *Erasure) { e.KeyID = e.KeyID[:3] }},
		{"trailing space", func(e *Erasure) { e.Reference = "x " }},
		{"C1 control", func(e *Erasure) { e.Reason = "a\u0085b" }},
		{"line separator", func(e *Erasure) { e.Reason = "a\u2028b" }},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			e := testErasure()
			tt.mutate(e)
			if _, err := e.Text(); !errors.Is(err, ErrMalformed) {
				t.Fatalf("Text: %v", err)
			}
		})
	}
}

// TestRotation: a keyring holding the new secret and the old one unwraps
// records of both and re-wraps old ones under the new; once the old
// secret is gone, records still wrapped under it (residues) never unwrap.
func TestRotation(t *testing.T) {
	oldSecret := []byte(strings.Repeat("o", SecretSize))
	newSecret := []byte(strings.Repeat("n", SecretSize))
	old, _ := NewKeyring(oldSecret)
	both, err := NewKeyring(newSecret, oldSecret)
	if err != nil {
		t.Fatal(err)
	}
	after, _ := NewKeyring(newSecret)
	dk := testDataKey(t)
	rec, err := old.Wrap(old.CheckValue(), "acme", "s", dk, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if !both.Holds(old.CheckValue()) || !both.Holds(after.CheckValue()) || after.Holds(old.CheckValue()) {
		t.Fatal("Holds")
	}
	if got, err := both.Unwrap("acme", "s", rec); err != nil || got != dk {
		t.Fatalf("old record with both secrets: %v", err)
	}
	re, changed, err := both.Rewrap(both.CheckValue(), "acme", "s", rec, rand.Reader)
	if err != nil || !changed {
		t.Fatalf("Rewrap: %v %v", changed, err)
	}
	if again, changed, err := both.Rewrap(both.CheckValue(), "acme", "s", re, rand.Reader); err != nil || changed || !bytes.Equal(again, re) {
		t.Fatalf("Rewrap of a current record: %v %v", changed, err)
	}
	if got, err := after.Unwrap("acme", "s", re); err != nil || got != dk {
		t.Fatalf("re-wrapped record with the new secret alone: %v", err)
	}
	if _, err := after.Unwrap("acme", "s", rec); !errors.Is(err, ErrWrongSecret) {
		t.Fatalf("a residue under the old secret unwrapped without it: %v", err)
	}
	if _, err := old.Wrap(after.CheckValue(), "acme", "s", dk, rand.Reader); !errors.Is(err, ErrWrongSecret) {
		t.Fatalf("wrapped under a secret the keyring lacks: %v", err)
	}
}
