package shred

import (
	"bytes"
	"fmt"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/trailaudit/trail/engine/eventwire"
	"github.com/trailaudit/trail/internal/eventgen"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// slowSeal is the reference: decode, SealEvent, canonical encoding.
func slowSeal(t testing.TB, event []byte, dk DataKey) []byte {
	var ev trailv1.Event
	if err := proto.Unmarshal(event, &ev); err != nil {
		t.Fatal(err)
	}
	if err := SealEvent(&ev, dk); err != nil {
		t.Fatal(err)
	}
	var scanned eventwire.Event
	b, err := eventwire.Marshal(&ev, &scanned)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSealEncodedMatchesSealEvent: on realistic events (changes, many
// attributes, odd keys) the byte path gives exactly the bytes of decoding,
// sealing and encoding.
func TestSealEncodedMatchesSealEvent(t *testing.T) {
	dk := DataKey{ID: [KeyIDSize]byte{5}, Key: [keySize]byte{6}}
	g := eventgen.New(eventgen.Config{Seed: 7, Tenants: 3, TargetBytes: 700})
	checked := 0
	for i := range 2000 {
		ev := g.Next()
		if i%7 == 0 {
			ev.Attributes = map[string]string{"": "empty key", "ä": "multibyte", "z": ""}
		}
		var scanned eventwire.Event
		event, err := eventwire.Marshal(ev, &scanned)
		if err != nil {
			t.Fatal(err)
		}
		if ev.GetSubjectId() == "" || len(ev.GetChanges())+len(ev.GetAttributes()) == 0 {
			continue
		}
		got, ok := SealEncoded(event, dk, &scanned)
		if !ok {
			t.Fatalf("event %d: the byte path declined a canonical event", i)
		}
		if want := slowSeal(t, event, dk); !bytes.Equal(got, want) {
			t.Fatalf("event %d: byte path and SealEvent differ:\n%x\n%x", i, got, want)
		}
		if !scanned.HasSealed || scanned.Changes != 0 || scanned.Attributes != 0 || eventwire.Validate(&scanned) != nil {
			t.Fatalf("event %d: scanned result %+v", i, scanned)
		}
		checked++
	}
	if checked < 500 {
		t.Fatalf("only %d events checked", checked)
	}
}

// TestSealEncodedDeclines: what the byte path cannot seal canonically it
// leaves to SealEvent.
func TestSealEncodedDeclines(t *testing.T) {
	dk := DataKey{ID: [KeyIDSize]byte{5}, Key: [keySize]byte{6}}
	base := subjectEvent()
	canonical := func(ev *trailv1.Event) []byte {
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	unknown := proto.CloneOf(base)
	unknown.ProtoReflect().SetUnknown([]byte{0xa2, 0x06, 0x01, 'x'}) // field 100
	noPayload := proto.CloneOf(base)
	noPayload.Changes, noPayload.Attributes = nil, nil
	reordered := append(canonical(noPayload), canonical(&trailv1.Event{Changes: base.Changes})...)
	for name, b := range map[string][]byte{
		"unknown field": canonical(unknown),
		"no payload":    canonical(noPayload),
		"not canonical": reordered,
		"truncated":     canonical(base)[:20],
	} {
		t.Run(name, func(t *testing.T) {
			var ev eventwire.Event
			if out, ok := SealEncoded(b, dk, &ev); ok {
				t.Fatalf("sealed %s: %x", name, out)
			}
		})
	}
}

// FuzzSealEncoded: whatever the bytes, the byte path either declines or
// agrees with SealEvent.
func FuzzSealEncoded(f *testing.F) {
	dk := DataKey{ID: [KeyIDSize]byte{5}, Key: [keySize]byte{6}}
	b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(subjectEvent())
	f.Add(b)
	f.Fuzz(func(t *testing.T, event []byte) {
		var ev eventwire.Event
		out, ok := SealEncoded(event, dk, &ev)
		if !ok {
			return
		}
		if want := slowSeal(t, event, dk); !bytes.Equal(out, want) {
			t.Fatalf("byte path and SealEvent differ on %x", event)
		}
	})
}

// sealableEvents returns n canonical generated events that carry a
// subject's payload.
func sealableEvents(n int) [][]byte {
	g := eventgen.New(eventgen.Config{Seed: 7, Tenants: 1, TargetBytes: 512})
	var evs [][]byte
	for len(evs) < n {
		ev := g.Next()
		var scanned eventwire.Event
		event, err := eventwire.Marshal(ev, &scanned)
		if err == nil && ev.GetSubjectId() != "" && len(ev.GetChanges())+len(ev.GetAttributes()) > 0 {
			evs = append(evs, event)
		}
	}
	return evs
}

func BenchmarkSealEncoded(b *testing.B) {
	dk := testDataKey(b)
	evs := sealableEvents(256)
	var ev eventwire.Event
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, ok := SealEncoded(evs[i%len(evs)], dk, &ev); !ok {
			b.Fatal(fmt.Sprint("declined ", i))
		}
		i++
	}
}

// BenchmarkSealDecoded is what SealEncoded replaces on the append path:
// decode, SealEvent, encode canonically.
func BenchmarkSealDecoded(b *testing.B) {
	dk := testDataKey(b)
	evs := sealableEvents(256)
	var scanned eventwire.Event
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		var ev trailv1.Event
		if err := proto.Unmarshal(evs[i%len(evs)], &ev); err != nil {
			b.Fatal(err)
		}
		if err := SealEvent(&ev, dk); err != nil {
			b.Fatal(err)
		}
		if _, err := eventwire.Marshal(&ev, &scanned); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
