package merkle

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
)

// ParseDecimal parses an ASCII decimal without sign or leading zeros ("0"
// for zero), the one spelling of sizes and indexes in the C2SP text
// formats (tlog-proof, tlog-witness).
func ParseDecimal(s string) (uint64, error) {
	if s == "" {
		return 0, errors.New("empty number")
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("%q is not a decimal number", clip([]byte(s)))
		}
	}
	if len(s) > 1 && s[0] == '0' {
		return 0, fmt.Errorf("%q has leading zeros", s)
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q: %w", clip([]byte(s)), err)
	}
	return n, nil
}

// ParseBase64Hash parses one hash in padded standard base64, accepting only
// the canonical spelling (the decoder would skip '\r' and ignore non-zero
// padding bits).
func ParseBase64Hash(s string) (Hash, error) {
	var h Hash
	if len(s) != base64.StdEncoding.EncodedLen(HashSize) {
		return h, fmt.Errorf("hash %q: %d base64 characters, want %d", clip([]byte(s)), len(s), base64.StdEncoding.EncodedLen(HashSize))
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil || len(raw) != HashSize {
		return h, fmt.Errorf("hash %q is not base64 of %d bytes", s, HashSize)
	}
	copy(h[:], raw)
	if base64.StdEncoding.EncodeToString(h[:]) != s {
		return h, fmt.Errorf("hash %q is not canonical base64", s)
	}
	return h, nil
}

// clip shortens what an error quotes from untrusted input.
func clip(b []byte) []byte {
	const max = 80
	if len(b) > max {
		return b[:max]
	}
	return b
}
