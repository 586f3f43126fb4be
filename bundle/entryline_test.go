package bundle

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"testing"
)

// decodeBase64 agrees with the standard strict decoder: same bytes for
// valid input, an error for invalid input (it also refuses newlines,
// which the standard decoder skips and an entry line never holds).
func TestDecodeBase64(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
	check := func(src []byte) {
		t.Helper()
		want := make([]byte, base64.StdEncoding.DecodedLen(len(src)))
		wn, werr := strictB64.Decode(want, src)
		got := make([]byte, len(want)+8)
		gn, gerr := decodeBase64(got, src)
		if (werr != nil) != (gerr != nil) && !(gerr != nil && bytes.ContainsAny(src, "\r\n")) {
			t.Fatalf("%q: error %v, standard decoder %v", src, gerr, werr)
		}
		if werr == nil && gerr == nil && !bytes.Equal(got[:gn], want[:wn]) {
			t.Fatalf("%q: decoded %x, standard decoder %x", src, got[:gn], want[:wn])
		}
	}
	for n := range 200 {
		data := make([]byte, n)
		for i := range data {
			data[i] = byte(rng.Uint32())
		}
		src := base64.StdEncoding.AppendEncode(nil, data)
		check(src)
		for range 20 { // one character changed, to any byte
			bad := bytes.Clone(src)
			if len(bad) > 0 {
				i := rng.IntN(len(bad))
				if rng.IntN(2) == 0 {
					bad[i] = alphabet[rng.IntN(len(alphabet))]
				} else {
					bad[i] = byte(rng.Uint32())
				}
			}
			check(bad)
			check(bad[:len(bad)*3/4])
		}
	}
}

func FuzzDecodeBase64(f *testing.F) {
	f.Add([]byte("aGVsbG8gd29ybGQ="))
	f.Add([]byte("QUJDREVGR0g="))
	f.Fuzz(func(t *testing.T, src []byte) {
		want := make([]byte, base64.StdEncoding.DecodedLen(len(src)))
		wn, werr := strictB64.Decode(want, src)
		got := make([]byte, len(want)+8)
		gn, gerr := decodeBase64(got, src)
		switch {
		case gerr == nil && werr != nil:
			t.Fatalf("%q decoded, the standard decoder says %v", src, werr)
		case gerr != nil && werr == nil && !bytes.ContainsAny(src, "\r\n"):
			t.Fatalf("%q refused (%v), the standard decoder reads it", src, gerr)
		case gerr == nil && !bytes.Equal(got[:gn], want[:wn]):
			t.Fatalf("%q: %x, want %x", src, got[:gn], want[:wn])
		}
	})
}

// The writer's fixed layout is what encoding/json writes for an Entry, and
// the verifier's parser reads back what was written.
func TestEntryLineLayout(t *testing.T) {
	h := bytes.Repeat([]byte{0xfb}, 32)
	for _, e := range []Entry{
		{Type: TypeEntry, Partition: "2026-10", LeafIndex: 0, LeafHash: h, Entry: []byte("\x0a\x03abc")},
		{Type: TypeEntry, Partition: "2026-11", LeafIndex: 1<<64 - 1, LeafHash: h, Entry: bytes.Repeat([]byte{0xff}, 1001)},
		{Type: TypeEntry, Partition: "2026-12", LeafIndex: 42, LeafHash: h, Pruned: true},
	} {
		line := appendEntryLine(nil, &e)
		want, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		if string(line) != string(want)+"\n" {
			t.Fatalf("layout\n%s\nencoding/json\n%s", line, want)
		}
		var got entryLine
		if _, err := parseEntryLine(line, &got, nil); err != nil {
			t.Fatal(err)
		}
		if string(got.partition) != e.Partition || got.leafIndex != e.LeafIndex || !bytes.Equal(got.leafHash[:], h) ||
			got.pruned != e.Pruned || !bytes.Equal(got.entry, e.Entry) {
			t.Fatalf("parsed %+v from %s", got, line)
		}
	}
	for _, bad := range []string{
		`{"type":"entry","partition":"2026-10","leaf_index":01,"leaf_hash":"` + base64.StdEncoding.EncodeToString(h) + `","pruned":true}` + "\n",
		`{"type":"entry","partition":"2026-10","leaf_index":18446744073709551616,"leaf_hash":"` + base64.StdEncoding.EncodeToString(h) + `","pruned":true}` + "\n",
		`{"type":"entry","partition":"2026-10","leaf_index":1,"leaf_hash":"` + base64.StdEncoding.EncodeToString(h) + `","entry":""}` + "\n",
		`{"type":"entry","partition":"2026-10","leaf_index":1,"leaf_hash":"` + base64.StdEncoding.EncodeToString(h) + `","entry":"QUJD\r"}` + "\n",
		`{"type":"entry","partition":"2026-10","leaf_index":1,"leaf_hash":"` + base64.StdEncoding.EncodeToString(h) + `","entry":"QUJD","pruned":true}` + "\n",
	} {
		if _, err := parseEntryLine([]byte(bad), new(entryLine), nil); !errors.Is(err, ErrMalformed) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}
