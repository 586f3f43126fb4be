package bundle

import (
	"bytes"
	"context"
	"errors"
	"testing"
)

// FuzzVerify feeds arbitrary bytes to the verifier: it must never panic,
// every failure must be an *Error, and only the untouched seed bundle (or
// one differing in the manifest line's layout, which the digest does not
// cover) may verify.
func FuzzVerify(f *testing.F) {
	key := newTestKey(f, testLog)
	good := newFakeLog(f, key, 4, 3).export(exportOpts{})
	linked := newFakeLog(f, key, 4, 3).export(exportOpts{cpSize: map[string]uint64{"2026-10": 2}})
	pruned := func() []byte {
		l := newFakeLog(f, key, 3)
		l.prune(0, 1)
		return l.export(exportOpts{})
	}()
	// Runs split by a gap, and runs cut at two leaves.
	split := newFakeLog(f, key, 5).export(exportOpts{skip: func(_ string, leaf uint64) bool { return leaf == 2 }})
	capped := newFakeLog(f, key, 5).export(exportOpts{maxRun: 2})
	opened := sealedLog(f, key).export(exportOpts{opening: func(part string, leaf uint64, entry []byte) *Opening {
		if leaf%2 == 0 {
			return &Opening{Partition: part, LeafIndex: leaf, State: OpeningErased}
		}
		return &Opening{Partition: part, LeafIndex: leaf, State: OpeningOpened, Key: eventKeyOf(f, entry)}
	}})
	for _, seed := range [][]byte{
		good, linked, pruned, split, capped, opened,
		good[:len(good)/3],
		bytes.Join(lines(good)[:3], nil),
		[]byte(`{"type":"header"}` + "\n"),
		[]byte("\n\n"),
		{},
	} {
		f.Add(seed)
	}
	v, err := NewVerifier(key.vkey)
	if err != nil {
		f.Fatal(err)
	}
	v.MaxLine = 1 << 16
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := v.Verify(context.Background(), bytes.NewReader(b))
		if err != nil {
			var be *Error
			if !errors.As(err, &be) {
				t.Fatalf("error %v is not a *bundle.Error", err)
			}
			return
		}
		if r.Entries > 0 && !sameBody(b, good) && !sameBody(b, linked) && !sameBody(b, pruned) &&
			!sameBody(b, split) && !sameBody(b, capped) && !sameBody(b, opened) {
			t.Fatalf("a bundle other than the seeds verified:\n%s", b)
		}
	})
}

// sameBody reports whether a and b agree on every line before the last.
func sameBody(a, b []byte) bool {
	la, lb := lines(a), lines(b)
	if len(la) == 0 || len(la) != len(lb) {
		return false
	}
	return bytes.Equal(bytes.Join(la[:len(la)-1], nil), bytes.Join(lb[:len(lb)-1], nil))
}
