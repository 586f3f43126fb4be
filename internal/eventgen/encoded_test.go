package eventgen

import (
	"bytes"
	"testing"

	"google.golang.org/protobuf/proto"
)

func TestTemplateStampsIDs(t *testing.T) {
	g := New(Config{Seed: 3, TargetBytes: 512})
	for range 50 {
		ev := g.Next()
		tmpl, err := NewTemplate(ev)
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{"x", "evt-0001", ""} {
			ev.EventId = id
			want, err := proto.MarshalOptions{Deterministic: true}.Marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			got := tmpl.Append(nil, id)
			if !bytes.Equal(got, want) || tmpl.Len(len(id)) != len(want) {
				t.Fatalf("id %q: template gives %x, marshal %x", id, got, want)
			}
		}
	}
}
