package server

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// API key tokens have the form "trail_<id>_<secret>": the id names the key
// record (it is not secret, and appears in logs and audit events); only the
// SHA-256 of the secret is stored. Both parts are lowercase hex of a fixed
// length, so a token has exactly one spelling and parsing is trivial to get
// right.
const (
	tokenPrefix  = "trail_"
	keyIDBytes   = 8  // 16 hex digits
	secretBytes  = 32 // 64 hex digits: 256 bits, beyond guessing
	keyIDLen     = 2 * keyIDBytes
	secretLen    = 2 * secretBytes
	tokenLen     = len(tokenPrefix) + keyIDLen + 1 + secretLen
	bearerScheme = "bearer"
)

// errMalformedToken is deliberately vague: the client learns that the token
// is unusable, not which part is wrong.
var errMalformedToken = errors.New("malformed API key")

// newToken returns a fresh key id and secret, and the token joining them.
func newToken() (id, secret, token string, err error) {
	var b [keyIDBytes + secretBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", "", fmt.Errorf("generate API key: %w", err)
	}
	id = hex.EncodeToString(b[:keyIDBytes])
	secret = hex.EncodeToString(b[keyIDBytes:])
	return id, secret, tokenPrefix + id + "_" + secret, nil
}

// parseToken splits a token into its key id and secret.
func parseToken(tok string) (id, secret string, err error) {
	if len(tok) != tokenLen || !strings.HasPrefix(tok, tokenPrefix) {
		return "", "", errMalformedToken
	}
	rest := tok[len(tokenPrefix):]
	if rest[keyIDLen] != '_' {
		return "", "", errMalformedToken
	}
	id, secret = rest[:keyIDLen], rest[keyIDLen+1:]
	if !isLowerHex(id) || !isLowerHex(secret) {
		return "", "", errMalformedToken
	}
	return id, secret, nil
}

// parseBearer extracts the token from the value of an authorization header:
// "Bearer <token>", the scheme matched case-insensitively (RFC 9110 §11.1).
func parseBearer(v string) (string, error) {
	scheme, tok, ok := strings.Cut(v, " ")
	if !ok || !strings.EqualFold(scheme, bearerScheme) {
		return "", errMalformedToken
	}
	return strings.TrimLeft(tok, " "), nil
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// validKeyID reports whether id could name a key; used on ids taken from
// requests (RevokeAPIKey) before they become part of a settings key.
func validKeyID(id string) bool { return len(id) == keyIDLen && isLowerHex(id) }
