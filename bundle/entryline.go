package bundle

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
)

// Entry lines are most of a bundle, so they have one fixed layout, the one
// encoding/json gives an Entry (fields in declaration order, no spaces):
//
//	{"type":"entry","partition":"2026-10","leaf_index":7,"leaf_hash":"<b64>","entry":"<b64>"}
//	{"type":"entry","partition":"2026-10","leaf_index":7,"leaf_hash":"<b64>","pruned":true}
//
// The writer produces exactly these bytes and the verifier reads them with
// byte operations, without reflection or allocation. Anything else (other
// spacing, key order, escapes, an unknown key) is refused as malformed:
// the writer never produces it, and a verifier vouches only for what it
// reads.

const (
	entryPrefix    = `{"type":"entry","partition":"`
	entryLeafIndex = `","leaf_index":`
	entryLeafHash  = `,"leaf_hash":"`
	entryBytes     = `","entry":"`
	entryPruned    = `","pruned":true}` + "\n"
	entryEnd       = `"}` + "\n"
)

var (
	// b64LeafHash is the length of a leaf hash in base64.
	b64LeafHash = base64.StdEncoding.EncodedLen(32)
	// strictB64 refuses non-zero padding bits, so every byte string has
	// one encoding. (Strict returns a copy: made once, here.)
	strictB64 = base64.StdEncoding.Strict()
)

// appendEntryLine appends e's line, "\n" included, to b.
func appendEntryLine(b []byte, e *Entry) []byte {
	b = append(b, entryPrefix...)
	b = append(b, e.Partition...)
	b = append(b, entryLeafIndex...)
	b = strconv.AppendUint(b, e.LeafIndex, 10)
	b = append(b, entryLeafHash...)
	b = base64.StdEncoding.AppendEncode(b, e.LeafHash)
	if e.Pruned {
		return append(b, entryPruned...)
	}
	b = append(b, entryBytes...)
	b = base64.StdEncoding.AppendEncode(b, e.Entry)
	return append(b, entryEnd...)
}

// entryLine is a parsed entry line. partition and entry point into the
// line and the verifier's buffer: valid until the next line.
type entryLine struct {
	partition []byte
	leafIndex uint64
	leafHash  [32]byte
	pruned    bool
	entry     []byte // the decoded entry bytes; nil when pruned
}

// parseEntryLine reads an entry line in the fixed layout. The entry bytes
// are decoded into buf[1:] (grown as needed, and returned), leaving buf[0]
// for the caller's leaf-hash prefix byte.
func parseEntryLine(line []byte, e *entryLine, buf []byte) ([]byte, error) {
	rest, ok := bytes.CutPrefix(line, []byte(entryPrefix))
	if !ok {
		return buf, layoutError(line, line, `{"type":"entry","partition":"`)
	}
	i := bytes.IndexByte(rest, '"')
	if i < 0 || i > 16 {
		return buf, layoutError(line, rest, "a partition")
	}
	e.partition, rest = rest[:i], rest[i:]
	if rest, ok = bytes.CutPrefix(rest, []byte(entryLeafIndex)); !ok {
		return buf, layoutError(line, rest, `","leaf_index":`)
	}
	var err error
	if e.leafIndex, rest, err = parseUint(rest); err != nil {
		return buf, fmt.Errorf("entry line: leaf_index: %v: %w", err, ErrMalformed)
	}
	if rest, ok = bytes.CutPrefix(rest, []byte(entryLeafHash)); !ok {
		return buf, layoutError(line, rest, `,"leaf_hash":"`)
	}
	if len(rest) < b64LeafHash {
		return buf, layoutError(line, rest, "a base64 leaf hash")
	}
	if n, err := strictB64.Decode(e.leafHash[:], rest[:b64LeafHash]); err != nil || n != 32 {
		return buf, fmt.Errorf("entry line: leaf_hash is not 32 bytes of base64: %w", ErrMalformed)
	}
	rest = rest[b64LeafHash:]
	if bytes.Equal(rest, []byte(entryPruned)) {
		e.pruned, e.entry = true, nil
		return buf, nil
	}
	if rest, ok = bytes.CutPrefix(rest, []byte(entryBytes)); !ok {
		return buf, layoutError(line, rest, `","entry":"`)
	}
	src, ok := bytes.CutSuffix(rest, []byte(entryEnd))
	if !ok || bytes.IndexByte(src, '"') >= 0 {
		return buf, layoutError(line, rest, `base64 entry bytes and "}`)
	}
	return decodeEntryBytes(e, src, buf)
}

// decodeEntryBytes decodes the base64 entry bytes src into buf[1:].
func decodeEntryBytes(e *entryLine, src, buf []byte) ([]byte, error) {
	// The decoder skips '\r' and '\n'; neither is part of the layout.
	if bytes.IndexByte(src, '\r') >= 0 {
		return buf, fmt.Errorf("entry line: a carriage return in the entry bytes: %w", ErrMalformed)
	}
	// decodeBase64 writes up to 8 bytes past the decoded length.
	need := 1 + base64.StdEncoding.DecodedLen(len(src)) + 8
	if cap(buf) < need {
		buf = make([]byte, need, need+need/4)
	}
	buf = buf[:need]
	n, err := decodeBase64(buf[1:], src)
	if err != nil {
		return buf, fmt.Errorf("entry line: entry bytes are not base64: %v: %w", err, ErrMalformed)
	}
	if n == 0 {
		return buf, fmt.Errorf("entry line: no entry bytes, and not marked pruned: %w", ErrMalformed)
	}
	e.pruned, e.entry = false, buf[1:1+n]
	return buf, nil
}

// parseUint reads a decimal without sign or leading zeros, as JSON writes
// a uint64.
func parseUint(b []byte) (uint64, []byte, error) {
	i := 0
	for i < len(b) && i < 21 && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	switch {
	case i == 0:
		return 0, b, fmt.Errorf("not a number")
	case i > 1 && b[0] == '0':
		return 0, b, fmt.Errorf("leading zero")
	}
	var v uint64
	for _, c := range b[:i] {
		d := uint64(c - '0')
		if v > (1<<64-1-d)/10 {
			return 0, b, fmt.Errorf("%s overflows 64 bits", b[:i])
		}
		v = v*10 + d
	}
	return v, b[i:], nil
}

// layoutError reports where an entry line leaves the fixed layout. An
// unrecognized key there is named as an unknown field, as the JSON decoder
// of the other lines does.
func layoutError(line, at []byte, want string) error {
	pos := len(line) - len(at)
	got := at[:min(len(at), 24)]
	return fmt.Errorf("entry line: unknown field or layout at byte %d: %q, want %s: %w", pos, got, want, ErrMalformed)
}

// b64Pairs maps two characters of the standard base64 alphabet, as
// c0<<8|c1, to the 12 bits they encode; pairs with any other character
// map to a value with bit 15 set.
var b64Pairs = func() *[1 << 16]uint16 {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	var t [1 << 16]uint16
	for i := range t {
		t[i] = 0xffff
	}
	for i := range len(alphabet) {
		for j := range len(alphabet) {
			t[uint16(alphabet[i])<<8|uint16(alphabet[j])] = uint16(i<<6 | j)
		}
	}
	return &t
}()

// decodeBase64 decodes standard, padded base64 as strictB64.Decode does,
// but refuses "\r" and "\n" rather than skip them, and is about half as
// fast again: eight characters take four lookups in a 128 KiB table of
// character pairs and one 8-byte store. The last one or two quanta, which
// may hold padding, go to the standard decoder. dst needs room for 8
// bytes beyond the decoded length.
func decodeBase64(dst, src []byte) (int, error) {
	n := 0
	var bad uint16
	for len(src) > 8 && len(dst)-n >= 8 {
		p0 := b64Pairs[uint16(src[0])<<8|uint16(src[1])]
		p1 := b64Pairs[uint16(src[2])<<8|uint16(src[3])]
		p2 := b64Pairs[uint16(src[4])<<8|uint16(src[5])]
		p3 := b64Pairs[uint16(src[6])<<8|uint16(src[7])]
		bad |= p0 | p1 | p2 | p3
		binary.BigEndian.PutUint64(dst[n:], uint64(p0)<<52|uint64(p1)<<40|uint64(p2)<<28|uint64(p3)<<16)
		n += 6
		src = src[8:]
	}
	if bad&0x8000 != 0 {
		return 0, errors.New("a character outside the base64 alphabet")
	}
	m, err := strictB64.Decode(dst[n:], src)
	return n + m, err
}
