package shred

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
)

// Sizes of the key material.
const (
	KeyIDSize = 16
	keySize   = 32
	nonceSize = 12
	// SecretSize is the least a sealing secret must have.
	SecretSize = 32
)

// Errors.
var (
	// ErrWrongSecret means a record was wrapped under another sealing
	// secret than this node's, or was altered.
	ErrWrongSecret = errors.New("shred: data key record does not unwrap with this node's sealing secret")
	// ErrMalformed is wrapped by every failure to parse a record, payload
	// or statement.
	ErrMalformed = errors.New("shred: malformed")
	// ErrNotOpened means an event key does not open a sealed payload: the
	// key is not that event's, or the payload was altered.
	ErrNotOpened = errors.New("shred: the key does not open this sealed payload")
)

// DataKey is one subject's data key.
type DataKey struct {
	ID  [KeyIDSize]byte
	Key [keySize]byte
}

// NewDataKey draws a data key from r (crypto/rand.Reader in production).
func NewDataKey(r io.Reader) (DataKey, error) {
	var dk DataKey
	if _, err := io.ReadFull(r, dk.ID[:]); err != nil {
		return DataKey{}, fmt.Errorf("shred: new data key: %w", err)
	}
	if _, err := io.ReadFull(r, dk.Key[:]); err != nil {
		return DataKey{}, fmt.Errorf("shred: new data key: %w", err)
	}
	return dk, nil
}

// Keyring is a node's sealing secret. It holds no per-tenant state: a
// tenant's KEK is derived on use.
type Keyring struct {
	secret [keySize]byte
}

// NewKeyring extracts a keyring from secret material of at least
// SecretSize bytes (e.g. the log key's private key text).
func NewKeyring(material []byte) (*Keyring, error) {
	if len(material) < SecretSize {
		return nil, fmt.Errorf("shred: sealing secret of %d bytes, need at least %d", len(material), SecretSize)
	}
	prk, err := hkdf.Extract(sha256.New, material, []byte("trail/v1 sealing secret"))
	if err != nil {
		return nil, fmt.Errorf("shred: keyring: %w", err)
	}
	k := new(Keyring)
	copy(k.secret[:], prk)
	return k, nil
}

// CheckValue identifies the secret without revealing it. The first
// tenant to seal records it as a replicated setting, so a node configured
// with another secret refuses to seal or open instead of writing records
// its peers cannot read.
func (k *Keyring) CheckValue() []byte {
	m := hmac.New(sha256.New, k.secret[:])
	m.Write([]byte("trail/v1 sealing check value"))
	return m.Sum(nil)[:16]
}

func (k *Keyring) kek(tenant string) cipher.AEAD {
	key, err := hkdf.Expand(sha256.New, k.secret[:], "trail/v1 tenant kek\x00"+tenant, keySize)
	if err != nil {
		panic(err) // only for lengths above 255 hash sizes
	}
	return newGCM(key)
}

func newGCM(key []byte) cipher.AEAD {
	block, err := aes.NewCipher(key)
	if err != nil {
		panic(err) // key is always 32 bytes
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic(err)
	}
	return aead
}

// wrapAD binds a wrapped key to its tenant, subject and id: a record
// copied to another subject does not unwrap.
func wrapAD(tenant, subject string, id []byte) []byte {
	ad := make([]byte, 0, len(tenant)+len(subject)+len(id)+2)
	ad = append(ad, tenant...)
	ad = append(ad, 0)
	ad = append(ad, subject...)
	ad = append(ad, 0)
	return append(ad, id...)
}

// Wrap returns the record a data key is stored as: its id, a random nonce
// and the key encrypted under the tenant's KEK.
func (k *Keyring) Wrap(tenant, subject string, dk DataKey, r io.Reader) ([]byte, error) {
	rec := make([]byte, KeyIDSize+nonceSize, KeyIDSize+nonceSize+keySize+16)
	copy(rec, dk.ID[:])
	if _, err := io.ReadFull(r, rec[KeyIDSize:]); err != nil {
		return nil, fmt.Errorf("shred: wrap: %w", err)
	}
	return k.kek(tenant).Seal(rec, rec[KeyIDSize:], dk.Key[:], wrapAD(tenant, subject, dk.ID[:])), nil
}

// RecordKeyID returns the id of a wrapped record, without unwrapping it.
func RecordKeyID(rec []byte) ([]byte, error) {
	if len(rec) != KeyIDSize+nonceSize+keySize+16 {
		return nil, fmt.Errorf("%w: data key record of %d bytes", ErrMalformed, len(rec))
	}
	return rec[:KeyIDSize], nil
}

// Unwrap returns the data key of a record made by Wrap for tenant and
// subject.
func (k *Keyring) Unwrap(tenant, subject string, rec []byte) (DataKey, error) {
	id, err := RecordKeyID(rec)
	if err != nil {
		return DataKey{}, err
	}
	nonce := rec[KeyIDSize : KeyIDSize+nonceSize]
	key, err := k.kek(tenant).Open(nil, nonce, rec[KeyIDSize+nonceSize:], wrapAD(tenant, subject, id))
	if err != nil {
		return DataKey{}, ErrWrongSecret
	}
	var dk DataKey
	copy(dk.ID[:], id)
	copy(dk.Key[:], key)
	return dk, nil
}

// EventKey derives the key that seals the payload of one event. It is
// what an export hands an auditor for each event it opens.
//
// A data key is 32 uniformly random bytes, a pseudorandom key as HKDF's
// expand step takes it (RFC 5869, 2.3), so the extract step is skipped:
// one HMAC per event instead of two.
func EventKey(dk DataKey, tenant, eventID string) []byte {
	key, err := hkdf.Expand(sha256.New, dk.Key[:], "trail/v1 event key\x00"+string(dk.ID[:])+"\x00"+tenant+"\x00"+eventID, keySize)
	if err != nil {
		panic(err) // only for lengths above 255 hash sizes
	}
	return key
}
