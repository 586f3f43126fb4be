package eventwire

import (
	"encoding/binary"
	"math/bits"
)

// Nearly every string in an audit event is short printable ASCII. The
// helpers here recognize that a word at a time, so that checking UTF-8
// (Scan) and NUL bytes (Validate) costs a few nanoseconds per string;
// anything else takes the exact, slower check (utf8.Valid, bytes.IndexByte).

const (
	lo64 = 0x0101010101010101
	hi64 = 0x8080808080808080
)

// plain reports whether every byte of v is in 0x01..0x7f: ASCII without
// NUL. It reads no byte outside v: Validate may get slices of any buffer.
func plain(v []byte) bool {
	n := len(v)
	switch {
	case n >= 8:
		// The last word overlaps the loop's: harmless for an OR.
		acc := notPlain(binary.LittleEndian.Uint64(v[n-8:]))
		for i := 0; i+8 < n; i += 8 {
			acc |= notPlain(binary.LittleEndian.Uint64(v[i:]))
		}
		return acc == 0
	case n >= 4:
		// Two halves that overlap when n < 8.
		x := uint64(binary.LittleEndian.Uint32(v)) | uint64(binary.LittleEndian.Uint32(v[n-4:]))<<32
		return notPlain(x) == 0
	}
	for _, c := range v {
		if c == 0 || c >= 0x80 {
			return false
		}
	}
	return true
}

// notPlain has the high bit of each byte of x set that is 0 or >= 0x80, and
// maybe of bytes above such a byte. (x - lo) | x: the lowest bad byte gets no
// borrow from below, so it wraps (0) or keeps its high bit; the bytes below
// it are in range and set none.
func notPlain(x uint64) uint64 { return ((x - lo64) | x) & hi64 }

// asciiPrefix returns the length of the longest ASCII prefix of b.
func asciiPrefix(b []byte) int {
	i := 0
	for ; i+32 <= len(b); i += 32 {
		w := (*[32]byte)(b[i:])
		x := binary.LittleEndian.Uint64(w[:8]) | binary.LittleEndian.Uint64(w[8:16]) |
			binary.LittleEndian.Uint64(w[16:24]) | binary.LittleEndian.Uint64(w[24:])
		if x&hi64 != 0 {
			break
		}
	}
	for ; i+8 <= len(b); i += 8 {
		if x := binary.LittleEndian.Uint64(b[i:]) & hi64; x != 0 {
			return i + bits.TrailingZeros64(x)/8
		}
	}
	for ; i < len(b); i++ {
		if b[i] >= 0x80 {
			return i
		}
	}
	return len(b)
}

// greater reports whether string(a) > string(b), comparing keys of up to 8
// bytes as words when the buffer has room: map keys are short. It may read
// up to 8 bytes from the start of a and b: the scanner's input is capped at
// its end (see Scan), so that stays inside the input.
func greater(a, b []byte) bool {
	if len(a) > 8 || len(b) > 8 || cap(a) < 8 || cap(b) < 8 {
		return string(a) > string(b)
	}
	// Keep the first len bytes of each word, in order of significance:
	// comparing the zero-padded words, then the lengths, is comparing the
	// strings byte by byte.
	x := binary.BigEndian.Uint64(a[:8]) &^ (^uint64(0) >> (8 * uint(len(a))))
	y := binary.BigEndian.Uint64(b[:8]) &^ (^uint64(0) >> (8 * uint(len(b))))
	return x > y || x == y && len(a) > len(b)
}
