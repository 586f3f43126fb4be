package bundle

import (
	"errors"

	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
	"github.com/trailaudit/trail/shred"
)

// subjectKey is a fixed data key per subject, for tests.
func subjectKey(subject string) shred.DataKey {
	var dk shred.DataKey
	copy(dk.ID[:], subject)
	copy(dk.Key[:], "key of "+subject)
	return dk
}

// sealedLog is a log whose events are sealed as a sealing tenant's are.
func sealedLog(t testing.TB, key testKey) *fakeLog {
	return newBadLog(t, key, func(en *trailv1.Entry) {
		ev := en.GetEvent()
		ev.Changes = []*trailv1.Change{{Field: "phone", Before: "555-" + ev.GetEventId(), After: "556"}}
		if err := shred.SealEvent(ev, subjectKey(ev.GetSubjectId())); err != nil {
			t.Fatal(err)
		}
	}, 7, 5)
}

func eventKeyOf(t testing.TB, entry []byte) []byte {
	en := new(trailv1.Entry)
	if err := proto.Unmarshal(entry, en); err != nil {
		t.Fatal(err)
	}
	ev := en.GetEvent()
	return shred.EventKey(subjectKey(ev.GetSubjectId()), ev.GetTenantId(), ev.GetEventId())
}

// TestOpenings: a bundle of sealed entries opens some with their event
// keys (checked against the ciphertext) and says others were erased; a
// wrong key, an opening of a clear entry or a second opening fail.
func TestOpenings(t *testing.T) {
	key := newTestKey(t, testLog)
	log := sealedLog(t, key)
	open := func(part string, leaf uint64, entry []byte) *Opening {
		if leaf%3 == 0 {
			return &Opening{Partition: part, LeafIndex: leaf, State: OpeningErased}
		}
		return &Opening{Partition: part, LeafIndex: leaf, State: OpeningOpened, Key: eventKeyOf(t, entry)}
	}
	r, err := verify(t, key.vkey, log.export(exportOpts{opening: open}))
	if err != nil {
		t.Fatal(err)
	}
	// Leaves 0, 3, 6 of the first partition and 0, 3 of the second.
	// The fake log holds no erasure records: every "erased" is the
	// server's word, and the report says so.
	if r.Sealed != 12 || r.Erased != 5 || r.Opened != 7 || r.ErasedRecorded != 0 {
		t.Fatalf("sealed %d opened %d erased %d", r.Sealed, r.Opened, r.Erased)
	}
	if s := strings.Join(r.Summary(), "\n"); !strings.Contains(s, "OK sealed payloads: 12 entries, 7 opened") {
		t.Fatalf("summary:\n%s", s)
	}

	// Without opening lines every entry still verifies, as sealed.
	r, err = verify(t, key.vkey, log.export(exportOpts{}))
	if err != nil || r.Sealed != 12 || r.Opened != 0 {
		t.Fatalf("no openings: %+v %v", r, err)
	}

	tests := []struct {
		name string
		log  *fakeLog
		open func(part string, leaf uint64, entry []byte) *Opening
		want error
		msg  string
	}{
		{"another event's key", log, func(part string, leaf uint64, entry []byte) *Opening {
			if leaf != 2 {
				return nil
			}
			return &Opening{Partition: part, LeafIndex: leaf, State: OpeningOpened, Key: eventKeyOf(t, log.parts[0].entries[1])}
		}, ErrEntry, "does not open its sealed payload"},
		{"erasure claimed of a clear entry", newFakeLog(t, key, 3), func(part string, leaf uint64, _ []byte) *Opening {
			return &Opening{Partition: part, LeafIndex: leaf, State: OpeningErased}
		}, ErrMalformed, "does not follow that sealed entry"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			expectFailure(t, key.vkey, tc.log.export(exportOpts{opening: tc.open}), tc.want, tc.msg)
		})
	}

	t.Run("two openings of one entry", func(t *testing.T) {
		ls := lines(log.export(exportOpts{opening: open}))
		var out [][]byte
		for _, l := range ls {
			out = append(out, l)
			if strings.Contains(string(l), `"type":"opening"`) && len(out) < 8 {
				out = append(out, l)
			}
		}
		out = redigest(t, out, func(m *Manifest) {})
		resign(t, key, out)
		_, err := verify(t, key.vkey, joinLines(out))
		if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "does not follow that sealed entry") {
			t.Fatalf("verify: %v", err)
		}
	})
}

func joinLines(ls [][]byte) []byte {
	var b []byte
	for _, l := range ls {
		b = append(b, l...)
	}
	return b
}
