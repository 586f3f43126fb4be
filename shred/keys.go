package shred

import (
	"bytes"
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

// Keyring is a node's sealing secrets: the current one and, while the
// cluster rotates to it, the previous ones. A tenant's KEK is derived on
// use. A wrapped record names the secret it was wrapped under by the
// first bytes of that secret's check value, so records wrapped under an
// old secret still unwrap during a rotation, and a node can tell which
// records are left to re-wrap.
type Keyring struct {
	secrets []secret // [0] is the current one
}

type secret struct {
	key   [keySize]byte
	check []byte
}

// checkInRecord is how many bytes of a check value a record carries.
const checkInRecord = 8

// NewKeyring extracts a keyring from secret material of at least
// SecretSize bytes (e.g. the log key's private key text): the current
// secret, then any previous ones a rotation still needs.
func NewKeyring(material []byte, previous ...[]byte) (*Keyring, error) {
	k := new(Keyring)
	for _, m := range append([][]byte{material}, previous...) {
		if len(m) < SecretSize {
			return nil, fmt.Errorf("shred: sealing secret of %d bytes, need at least %d", len(m), SecretSize)
		}
		prk, err := hkdf.Extract(sha256.New, m, []byte("trail/v1 sealing secret"))
		if err != nil {
			return nil, fmt.Errorf("shred: keyring: %w", err)
		}
		var sec secret
		copy(sec.key[:], prk)
		mac := hmac.New(sha256.New, sec.key[:])
		mac.Write([]byte("trail/v1 sealing check value"))
		sec.check = mac.Sum(nil)[:16]
		k.secrets = append(k.secrets, sec)
	}
	return k, nil
}

// CheckValue identifies the current secret without revealing it. The
// first tenant to seal records it as a replicated setting, so a node
// configured with another secret refuses to seal or open instead of
// writing records its peers cannot read; a rotation replaces it.
func (k *Keyring) CheckValue() []byte { return bytes.Clone(k.secrets[0].check) }

// Holds reports whether the keyring has the secret of check value check.
func (k *Keyring) Holds(check []byte) bool { return k.secret(check) != nil }

// secret returns the secret whose check value starts with check.
func (k *Keyring) secret(check []byte) *secret {
	if len(check) < checkInRecord {
		return nil
	}
	for i := range k.secrets {
		if bytes.HasPrefix(k.secrets[i].check, check) {
			return &k.secrets[i]
		}
	}
	return nil
}

func (sec *secret) kek(tenant string) cipher.AEAD {
	key, err := hkdf.Expand(sha256.New, sec.key[:], "trail/v1 tenant kek\x00"+tenant, keySize)
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

// recordSize is the length of a wrapped record: key id, check value of
// the wrapping secret, nonce, wrapped key and tag.
const recordSize = KeyIDSize + checkInRecord + nonceSize + keySize + 16

// Wrap returns the record a data key is stored as: its id, the check
// value of the secret it is wrapped under (the one of check value check,
// the cluster's), a random nonce and the key encrypted under the tenant's
// KEK of that secret.
func (k *Keyring) Wrap(check []byte, tenant, subject string, dk DataKey, r io.Reader) ([]byte, error) {
	sec := k.secret(check)
	if sec == nil {
		return nil, fmt.Errorf("%w: no secret of check value %x", ErrWrongSecret, check)
	}
	head := KeyIDSize + checkInRecord
	rec := make([]byte, head+nonceSize, recordSize)
	copy(rec, dk.ID[:])
	copy(rec[KeyIDSize:], sec.check[:checkInRecord])
	if _, err := io.ReadFull(r, rec[head:]); err != nil {
		return nil, fmt.Errorf("shred: wrap: %w", err)
	}
	return sec.kek(tenant).Seal(rec, rec[head:], dk.Key[:], wrapAD(tenant, subject, rec[:head])), nil
}

// RecordKeyID returns the id of a wrapped record, without unwrapping it.
func RecordKeyID(rec []byte) ([]byte, error) {
	if len(rec) != recordSize {
		return nil, fmt.Errorf("%w: data key record of %d bytes", ErrMalformed, len(rec))
	}
	return rec[:KeyIDSize], nil
}

// RecordCheck returns the check value bytes of the secret a record was
// wrapped under.
func RecordCheck(rec []byte) ([]byte, error) {
	if _, err := RecordKeyID(rec); err != nil {
		return nil, err
	}
	return rec[KeyIDSize : KeyIDSize+checkInRecord], nil
}

// Unwrap returns the data key of a record made by Wrap for tenant and
// subject, under whichever of the keyring's secrets wrapped it.
func (k *Keyring) Unwrap(tenant, subject string, rec []byte) (DataKey, error) {
	check, err := RecordCheck(rec)
	if err != nil {
		return DataKey{}, err
	}
	sec := k.secret(check)
	if sec == nil {
		return DataKey{}, ErrWrongSecret
	}
	head := KeyIDSize + checkInRecord
	key, err := sec.kek(tenant).Open(nil, rec[head:head+nonceSize], rec[head+nonceSize:], wrapAD(tenant, subject, rec[:head]))
	if err != nil {
		return DataKey{}, ErrWrongSecret
	}
	var dk DataKey
	copy(dk.ID[:], rec[:KeyIDSize])
	copy(dk.Key[:], key)
	return dk, nil
}

// Rewrap returns rec wrapped under the secret of check value check
// instead, and whether it had to change: a rotation's step.
func (k *Keyring) Rewrap(check []byte, tenant, subject string, rec []byte, r io.Reader) ([]byte, bool, error) {
	had, err := RecordCheck(rec)
	if err != nil {
		return nil, false, err
	}
	if bytes.HasPrefix(check, had) {
		return rec, false, nil
	}
	dk, err := k.Unwrap(tenant, subject, rec)
	if err != nil {
		return nil, false, err
	}
	out, err := k.Wrap(check, tenant, subject, dk, r)
	return out, err == nil, err
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
