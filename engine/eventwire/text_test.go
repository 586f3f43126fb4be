package eventwire

import (
	"math/rand/v2"
	"testing"
)

// The word-at-a-time helpers are checked against byte-at-a-time definitions
// on strings of every short length, placed both at the end of their buffer
// and followed by bytes that must not count (high bytes, NULs).
func TestTextHelpers(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []byte{0x00, 0x01, 'a', 0x7e, 0x7f, 0x80, 0xc3, 0xff}
	for n := range 41 {
		for range 300 {
			v := make([]byte, n, n+9)
			for i := range v {
				if rng.IntN(4) == 0 {
					v[i] = alphabet[rng.IntN(len(alphabet))]
				} else {
					v[i] = byte('a' + rng.IntN(26))
				}
			}
			tail := v[n : n+9]
			for i := range tail {
				tail[i] = alphabet[rng.IntN(len(alphabet))]
			}
			for _, x := range [][]byte{v[:n:n], v[: n : n+9]} {
				checkText(t, x)
			}
		}
	}
}

func checkText(t *testing.T, v []byte) {
	t.Helper()
	wantPlain, wantPrefix := true, len(v)
	for i, c := range v {
		if c == 0 || c >= 0x80 {
			wantPlain = false
		}
		if c >= 0x80 {
			wantPrefix = min(wantPrefix, i)
		}
	}
	if got := plain(v); got != wantPlain {
		t.Fatalf("plain(% x) (cap %d) = %v", v, cap(v), got)
	}
	if got := asciiPrefix(v); got != wantPrefix {
		t.Fatalf("asciiPrefix(% x) = %d, want %d", v, got, wantPrefix)
	}
}

func TestGreater(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	alphabet := []byte{0x00, 0x01, 'a', 'b', 0x7f, 0x80, 0xff}
	word := func() []byte {
		n := rng.IntN(11)
		b := make([]byte, n, n+8)
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		for range 8 { // junk after the key, inside its capacity
			b = append(b, alphabet[rng.IntN(len(alphabet))])
		}
		if rng.IntN(3) == 0 {
			return b[:n:n]
		}
		return b[:n]
	}
	for range 100000 {
		a, b := word(), word()
		if got, want := greater(a, b), string(a) > string(b); got != want {
			t.Fatalf("greater(% x, % x) = %v, want %v", a, b, got, want)
		}
		if greater(a, a) {
			t.Fatalf("greater(% x, itself)", a)
		}
	}
}
