package merkle

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
)

// HashSize is the size in bytes of every hash in the tree (SHA-256).
const HashSize = sha256.Size

// Hash is a SHA-256 digest: a leaf hash, an interior node hash or a root.
type Hash [HashSize]byte

// Domain separation prefixes from RFC 9162 §2.1.1: without them a leaf could
// be passed off as an interior node (a second-preimage attack).
const (
	leafPrefix = 0x00
	nodePrefix = 0x01
)

// String returns the hash in lowercase hex.
func (h Hash) String() string {
	return hex.EncodeToString(h[:])
}

// ParseHash parses a hash written as 64 hex digits, as String writes it.
func ParseHash(s string) (Hash, error) {
	var h Hash
	if hex.DecodedLen(len(s)) != HashSize {
		return h, fmt.Errorf("merkle: parse hash: %d hex digits, want %d", len(s), 2*HashSize)
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return Hash{}, fmt.Errorf("merkle: parse hash: %w", err)
	}
	return h, nil
}

// LeafHash returns the hash of a leaf holding data: SHA-256(0x00 || data).
func LeafHash(data []byte) Hash {
	d := sha256.New()
	d.Write([]byte{leafPrefix})
	d.Write(data)
	var h Hash
	d.Sum(h[:0])
	return h
}

// NodeHash returns the hash of an interior node with the given children:
// SHA-256(0x01 || left || right).
func NodeHash(left, right Hash) Hash {
	// A fixed-size buffer keeps this allocation-free: it runs for every
	// interior node of every append and every proof step.
	var buf [1 + 2*HashSize]byte
	buf[0] = nodePrefix
	copy(buf[1:], left[:])
	copy(buf[1+HashSize:], right[:])
	return sha256.Sum256(buf[:])
}

// EmptyRoot returns the root of the tree of size 0, the SHA-256 of the empty
// string (RFC 9162 §2.1.1).
func EmptyRoot() Hash {
	return sha256.Sum256(nil)
}
