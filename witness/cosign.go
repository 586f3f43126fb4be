package witness

import (
	"crypto/rand"
	"fmt"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
)

// GenerateKey returns a new witness key pair named name: the private key
// in signed-note format, and the public key as a cosignature/v1 verifier
// key (signature type 0x04), the form witnesses publish.
func GenerateKey(name string) (skey, vkey string, err error) {
	skey, v1, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		return "", "", fmt.Errorf("witness: generate key %q: %w", name, err)
	}
	if vkey, err = fnote.VKeyToCosignatureV1(v1); err != nil {
		return "", "", fmt.Errorf("witness: generate key %q: %w", name, err)
	}
	return skey, vkey, nil
}

// NewCosigner returns a note.Signer that produces Ed25519 cosignature/v1
// signatures (timestamped, over "cosignature/v1\ntime T\n" and the
// checkpoint body) from a signed-note private key.
func NewCosigner(skey string) (note.Signer, error) {
	s, err := fnote.NewSignerForCosignatureV1(skey)
	if err != nil {
		// The key is secret: never echo it.
		return nil, fmt.Errorf("witness: parse cosigner key: %w", err)
	}
	return s, nil
}

// NewCosignatureVerifier returns a note.Verifier of cosignature/v1
// signatures for a witness's public key, given as a cosignature verifier
// key (type 0x04) or as a plain Ed25519 one (type 0x01), which names the
// same key.
func NewCosignatureVerifier(vkey string) (note.Verifier, error) {
	v, err := fnote.NewVerifierForCosignatureV1(vkey)
	if err != nil {
		return nil, fmt.Errorf("witness: parse cosignature verifier key %q: %w", vkey, err)
	}
	return v, nil
}
