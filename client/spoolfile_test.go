package client

import (
	"bytes"
	"errors"
	"testing"
)

func encodeSegment(records ...[]byte) []byte {
	b := []byte(spoolMagic)
	for _, r := range records {
		b = appendRecord(b, r)
	}
	return b
}

// TestDecodeSegment covers each kind of damage: what is detected, as torn
// or corrupt, and which records survive it.
func TestDecodeSegment(t *testing.T) {
	good := encodeSegment([]byte("one"), []byte("two"))
	flip := func(b []byte, i int) []byte {
		b = bytes.Clone(b)
		b[i] ^= 1
		return b
	}
	for _, tc := range []struct {
		name    string
		in      []byte
		records int
		want    error
	}{
		{"empty file", nil, 0, ErrSpoolTorn},
		{"header cut", []byte(spoolMagic[:3]), 0, ErrSpoolTorn},
		{"bad magic", []byte("NOTASPOOLFILE"), 0, ErrSpoolCorrupt},
		{"magic only", []byte(spoolMagic), 0, nil},
		{"two records", good, 2, nil},
		{"record header cut", good[:len(good)-3-5], 1, ErrSpoolTorn},
		{"payload cut", good[:len(good)-1], 1, ErrSpoolTorn},
		{"zero tail", append(bytes.Clone(good), make([]byte, 100)...), 2, ErrSpoolTorn},
		{"payload flipped", flip(good, spoolHeaderSize+recordHeader), 0, ErrSpoolCorrupt},
		{"length flipped", flip(good, spoolHeaderSize+3), 0, ErrSpoolCorrupt},
		{"checksum flipped", flip(good, len(good)-3-1), 1, ErrSpoolCorrupt},
		{"zero length", append(bytes.Clone(good), 0, 0, 0, 0, 1, 2, 3, 4), 2, ErrSpoolCorrupt},
		{"huge length", append(bytes.Clone(good), 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 1), 2, ErrSpoolCorrupt},
	} {
		t.Run(tc.name, func(t *testing.T) {
			recs, valid, err := decodeSegment(tc.in)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
			if len(recs) != tc.records {
				t.Fatalf("%d records, want %d", len(recs), tc.records)
			}
			if valid > 0 && !bytes.Equal(encodeSegment(recs...), tc.in[:valid]) {
				t.Fatalf("intact prefix of %d bytes does not re-encode from the records", valid)
			}
		})
	}
}

// FuzzDecodeSegment: whatever follows a segment's intact records, decoding
// returns those records unchanged (damage after them never costs data
// before it), reports damage as torn or corrupt, and the intact prefix it
// reports is exactly the records it returned.
func FuzzDecodeSegment(f *testing.F) {
	f.Add([]byte("one"), []byte("two"), []byte{})
	f.Add([]byte("x"), []byte{}, []byte{0, 0, 0, 5, 1})
	f.Add([]byte("event"), []byte("event2"), []byte{0, 0, 0, 0})
	f.Add([]byte{}, []byte{}, []byte("TRLSPL01"))
	f.Fuzz(func(t *testing.T, r1, r2, tail []byte) {
		var records [][]byte
		for _, r := range [][]byte{r1, r2} {
			if len(r) > 0 {
				records = append(records, r)
			}
		}
		intact := encodeSegment(records...)
		in := append(bytes.Clone(intact), tail...)
		got, valid, err := decodeSegment(in)
		if len(got) < len(records) {
			t.Fatalf("decoded %d records, fewer than the %d intact ones (err %v)", len(got), len(records), err)
		}
		for i, r := range records {
			if !bytes.Equal(got[i], r) {
				t.Fatalf("record %d = %q, want %q", i, got[i], r)
			}
		}
		if err != nil && !errors.Is(err, ErrSpoolTorn) && !errors.Is(err, ErrSpoolCorrupt) {
			t.Fatalf("error %v is neither torn nor corrupt", err)
		}
		if err == nil && valid != len(in) {
			t.Fatalf("no error but only %d of %d bytes intact", valid, len(in))
		}
		if !bytes.Equal(encodeSegment(got...), in[:valid]) {
			t.Fatalf("the %d intact bytes are not the encoding of the %d records returned", valid, len(got))
		}
		// And arbitrary bytes decode without panicking, to the same rule.
		got, valid, _ = decodeSegment(tail)
		if valid > 0 && !bytes.Equal(encodeSegment(got...), tail[:valid]) {
			t.Fatalf("arbitrary input: intact prefix does not match the records")
		}
	})
}
