package bundle

import (
	"bytes"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// The partial decoder reads what proto.Unmarshal reads, including the
// protobuf rules for repeated occurrences: last scalar wins, messages
// merge (a concatenation of two encodings is their merge).
func TestDecodeEntryFields(t *testing.T) {
	marshal := func(en *trailv1.Entry) []byte {
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(en)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	full := &trailv1.Entry{
		Event: &trailv1.Event{
			TenantId: "acme", Category: trailv1.Category_CATEGORY_SECURITY, Action: "key.rotate",
			Actor: &trailv1.Actor{Id: "alice", Type: "user"}, SubjectId: "s-1",
			Target: &trailv1.Target{Type: "key", Id: "k-9"}, Attributes: map[string]string{"a": "b"},
		},
		SequencerTime: timestamppb.New(time.Date(2026, 11, 2, 3, 4, 5, 6, time.UTC)),
		Partition:     "2026-11", LeafIndex: 42, PrevLeafHash: bytes.Repeat([]byte{7}, 32),
	}
	later := &trailv1.Entry{Event: &trailv1.Event{Actor: &trailv1.Actor{Id: "bob"}}, LeafIndex: 43}
	tests := []struct {
		name string
		b    []byte
	}{
		{"full", marshal(full)},
		{"empty", nil},
		{"leaf 0 with a link", marshal(&trailv1.Entry{Partition: "2026-12", PrevPartition: &trailv1.PartitionLink{Partition: "2026-11", Size: 3}})},
		{"merged", append(marshal(full), marshal(later)...)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkEntryFields(t, tc.b)
		})
	}
	var f entryFields
	if err := decodeEntryFields([]byte{0x0a, 0x05, 0x01}, &f); err == nil {
		t.Error("a truncated event decoded")
	}
	if err := decodeEntryFields([]byte{0x20 | 2, 0}, &f); err == nil { // leaf_index as bytes
		t.Error("a field of the wrong wire type decoded")
	}
}

// checkEntryFields compares the partial decoder with proto.Unmarshal.
func checkEntryFields(t *testing.T, b []byte) {
	t.Helper()
	var f entryFields
	en := new(trailv1.Entry)
	perr := proto.Unmarshal(b, en)
	err := decodeEntryFields(b, &f)
	if perr != nil || err != nil {
		if perr == nil && err != nil {
			t.Logf("refused what proto.Unmarshal reads: %v", err) // stricter on wire types only
		}
		return
	}
	ev := en.GetEvent()
	ts := en.GetSequencerTime()
	switch {
	case string(f.tenant) != ev.GetTenantId(), string(f.action) != ev.GetAction(),
		string(f.actorID) != ev.GetActor().GetId(), string(f.subjectID) != ev.GetSubjectId(),
		string(f.targetType) != ev.GetTarget().GetType(), string(f.targetID) != ev.GetTarget().GetId(),
		f.category != int32(ev.GetCategory()), string(f.partition) != en.GetPartition(),
		f.leafIndex != en.GetLeafIndex(), !bytes.Equal(f.prevLeafHash, en.GetPrevLeafHash()),
		f.hasPrevPartition != (en.GetPrevPartition() != nil), f.hasSeqTime != (ts != nil),
		f.seqSeconds != ts.GetSeconds(), f.seqNanos != ts.GetNanos():
		t.Fatalf("partial decode %+v, proto.Unmarshal %v", f, en)
	}
}

func FuzzDecodeEntryFields(f *testing.F) {
	l := newFakeLog(f, newTestKey(f, testLog), 2, 1)
	for _, p := range l.parts {
		for _, e := range p.entries {
			f.Add(e)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) { checkEntryFields(t, b) })
}
