package shred

import (
	"crypto/rand"
	"testing"

	"google.golang.org/protobuf/proto"

	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// BenchmarkSealEvent is the per-event cost sealing adds to an append of a
// sealing tenant (beyond decoding and re-encoding the event).
func BenchmarkSealEvent(b *testing.B) {
	dk := testDataKey(b)
	src := subjectEvent()
	evs := make([]*trailv1.Event, b.N)
	for i := range evs {
		evs[i] = proto.CloneOf(src)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if err := SealEvent(evs[i], dk); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOpen is what a read of a sealed entry costs on top of its
// decoding.
func BenchmarkOpen(b *testing.B) {
	dk := testDataKey(b)
	ev := subjectEvent()
	if err := SealEvent(ev, dk); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Open(ev, EventKey(dk, ev.GetTenantId(), ev.GetEventId())); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkUnwrap is the cost of a data key cache miss.
func BenchmarkUnwrap(b *testing.B) {
	k := testKeyring(b, "bench")
	rec, err := k.Wrap(k.CheckValue(), "acme", "citizen-7", testDataKey(b), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := k.Unwrap("acme", "citizen-7", rec); err != nil {
			b.Fatal(err)
		}
	}
}
