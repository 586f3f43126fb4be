package server

import (
	"testing"

	"github.com/trailaudit/trail/merkle"
)

// A cached note is byte-identical to a fresh signature, and the cache stays
// bounded however many checkpoints pass through it.
func TestSignCache(t *testing.T) {
	signer, verifier, err := generateTestKey()
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{cfg: Config{Signer: signer}}
	cp := merkle.Checkpoint{Origin: testLogName + "/acme/2026-11", Size: 7, Root: merkle.Hash{1}}
	first, err := s.sign(cp)
	if err != nil {
		t.Fatal(err)
	}
	again, err := s.sign(cp)
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := merkle.SignCheckpoint(cp, signer)
	if err != nil {
		t.Fatal(err)
	}
	if first.GetSignedNote() != again.GetSignedNote() || again.GetSignedNote() != string(fresh) {
		t.Fatal("cached note differs from a fresh signature")
	}
	if _, err := merkle.OpenCheckpoint([]byte(again.GetSignedNote()), verifier); err != nil {
		t.Fatalf("cached note does not verify: %v", err)
	}
	other := cp
	other.Size = 8
	if n, _ := s.sign(other); n.GetSignedNote() == first.GetSignedNote() {
		t.Fatal("two checkpoints share a note")
	}
	for i := range 3 * signCacheSize {
		cp.Size = uint64(i)
		if _, err := s.sign(cp); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(s.signs.notes); n > signCacheSize {
		t.Fatalf("cache holds %d notes, bound %d", n, signCacheSize)
	}
}

func BenchmarkSignCached(b *testing.B) {
	signer, _, err := generateTestKey()
	if err != nil {
		b.Fatal(err)
	}
	s := &Server{cfg: Config{Signer: signer}}
	cp := merkle.Checkpoint{Origin: testLogName + "/acme/2026-11", Size: 7}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.sign(cp); err != nil {
			b.Fatal(err)
		}
	}
}
