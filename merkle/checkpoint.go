package merkle

import (
	"encoding/base64"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/mod/sumdb/note"
)

// Checkpoint is a C2SP tlog-checkpoint body: the log's commitment to its tree
// at one size. Trail's origins are "<log name>/<tenant>/<YYYY-MM>".
type Checkpoint struct {
	Origin string
	Size   uint64
	Root   Hash
	// Extension holds the optional extension lines after the root, each
	// ending in "\n", exactly as they appear in the body. Trail's own
	// checkpoints have none; they are kept so that any body ParseCheckpoint
	// accepts marshals back to the same bytes.
	Extension string
}

// Marshal returns the checkpoint body:
// "<origin>\n<size>\n<base64 root>\n" followed by the extension lines.
func (c Checkpoint) Marshal() []byte {
	b := make([]byte, 0, len(c.Origin)+len(c.Extension)+80)
	b = append(b, c.Origin...)
	b = append(b, '\n')
	b = strconv.AppendUint(b, c.Size, 10)
	b = append(b, '\n')
	b = base64.StdEncoding.AppendEncode(b, c.Root[:])
	b = append(b, '\n')
	return append(b, c.Extension...)
}

// ParseCheckpoint parses a checkpoint body strictly, so that a body has
// exactly one meaning and one encoding: a non-empty origin, the size in
// decimal without sign or leading zeros, the root as 32 bytes in padded
// standard base64, then any non-empty extension lines, each line (the last
// included) ending in "\n". Errors wrap ErrInvalidCheckpoint.
func ParseCheckpoint(body []byte) (Checkpoint, error) {
	c, err := parseCheckpoint(body)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("merkle: parse checkpoint: %w: %w", ErrInvalidCheckpoint, err)
	}
	return c, nil
}

func parseCheckpoint(body []byte) (Checkpoint, error) {
	if !utf8.Valid(body) {
		return Checkpoint{}, fmt.Errorf("not valid UTF-8")
	}
	if len(body) == 0 || body[len(body)-1] != '\n' {
		return Checkpoint{}, fmt.Errorf("body does not end in a newline")
	}
	lines := strings.Split(string(body[:len(body)-1]), "\n")
	if len(lines) < 3 {
		return Checkpoint{}, fmt.Errorf("%d lines, want at least 3 (origin, size, root)", len(lines))
	}
	for i, l := range lines {
		if err := checkLine(l); err != nil {
			return Checkpoint{}, fmt.Errorf("%s: %w", lineName(i), err)
		}
	}
	size, err := parseSize(lines[1])
	if err != nil {
		return Checkpoint{}, err
	}
	root, err := parseRoot(lines[2])
	if err != nil {
		return Checkpoint{}, err
	}
	var ext string
	if len(lines) > 3 {
		ext = strings.Join(lines[3:], "\n") + "\n"
	}
	return Checkpoint{Origin: lines[0], Size: size, Root: root, Extension: ext}, nil
}

func lineName(i int) string {
	switch i {
	case 0:
		return "origin"
	case 1:
		return "size"
	case 2:
		return "root"
	}
	return fmt.Sprintf("extension line %d", i-2)
}

// checkLine rejects empty lines (a blank line would end the note text early)
// and control characters, which signed notes cannot carry.
func checkLine(l string) error {
	if l == "" {
		return fmt.Errorf("empty")
	}
	for _, r := range l {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("control character %U", r)
		}
	}
	return nil
}

func parseSize(s string) (uint64, error) {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("size %q is not a decimal number", s)
		}
	}
	if len(s) > 1 && s[0] == '0' {
		return 0, fmt.Errorf("size %q has leading zeros", s)
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("size %q: %w", s, err)
	}
	return n, nil
}

func parseRoot(s string) (Hash, error) {
	var h Hash
	// The decoder skips '\r' and accepts non-zero padding bits, so only the
	// exact canonical text is accepted: one root, one spelling.
	if len(s) != base64.StdEncoding.EncodedLen(HashSize) {
		return h, fmt.Errorf("root %q: %d base64 characters, want %d", s, len(s), base64.StdEncoding.EncodedLen(HashSize))
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil {
		return h, fmt.Errorf("root %q: %w", s, err)
	}
	if len(raw) != HashSize {
		return h, fmt.Errorf("root %q: %d bytes, want %d", s, len(raw), HashSize)
	}
	copy(h[:], raw)
	if base64.StdEncoding.EncodeToString(h[:]) != s {
		return h, fmt.Errorf("root %q: not canonical base64", s)
	}
	return h, nil
}

// GenerateKey returns a new Ed25519 signed-note key pair for the given key
// name, as note.GenerateKey does. rand may be nil for crypto/rand.
func GenerateKey(name string, rand io.Reader) (skey, vkey string, err error) {
	skey, vkey, err = note.GenerateKey(rand, name)
	if err != nil {
		return "", "", fmt.Errorf("merkle: generate key %q: %w", name, err)
	}
	// note.GenerateKey does not check the name; a key with an invalid name
	// could never verify anything, so find out now rather than at first use.
	if _, err := note.NewVerifier(vkey); err != nil {
		return "", "", fmt.Errorf("merkle: generate key %q: invalid key name: %w", name, err)
	}
	return skey, vkey, nil
}

// NewSigner returns a signer for an encoded signed-note private key.
func NewSigner(skey string) (note.Signer, error) {
	s, err := note.NewSigner(skey)
	if err != nil {
		// The key itself is secret: never echo it into the error.
		return nil, fmt.Errorf("merkle: parse signer key: %w", err)
	}
	return s, nil
}

// NewVerifier returns a verifier for an encoded signed-note public key
// ("<name>+<hash>+<base64 key>").
func NewVerifier(vkey string) (note.Verifier, error) {
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, fmt.Errorf("merkle: parse verifier key %q: %w", vkey, err)
	}
	return v, nil
}

// KeyID returns the 32-bit key hash a verifier key is known by in signature
// lines, to tell keys apart in logs and configuration.
func KeyID(vkey string) (uint32, error) {
	v, err := NewVerifier(vkey)
	if err != nil {
		return 0, err
	}
	return v.KeyHash(), nil
}

// SignCheckpoint returns the checkpoint as a signed note signed by s. It
// refuses a checkpoint that would not parse back to itself, for example an
// origin containing a newline, which would make the log sign a different
// statement than the caller meant.
func SignCheckpoint(c Checkpoint, s note.Signer) ([]byte, error) {
	body := c.Marshal()
	if back, err := ParseCheckpoint(body); err != nil {
		return nil, fmt.Errorf("merkle: sign checkpoint: %w", err)
	} else if back != c {
		return nil, fmt.Errorf("merkle: sign checkpoint: body does not parse back to the checkpoint: %w", ErrInvalidCheckpoint)
	}
	msg, err := note.Sign(&note.Note{Text: string(body)}, s)
	if err != nil {
		return nil, fmt.Errorf("merkle: sign checkpoint: %w", err)
	}
	return msg, nil
}

// OpenCheckpoint verifies that msg is a signed note carrying a valid
// signature by v, then parses its text as a checkpoint. Signatures by other
// keys are ignored. Signature failures wrap ErrUnverified (and the note
// package's error); body failures wrap ErrInvalidCheckpoint. The caller
// still checks that the origin is the one it expects.
func OpenCheckpoint(msg []byte, v note.Verifier) (Checkpoint, error) {
	n, err := note.Open(msg, note.VerifierList(v))
	if err != nil {
		return Checkpoint{}, fmt.Errorf("merkle: open checkpoint: %w: %w", ErrUnverified, err)
	}
	c, err := ParseCheckpoint([]byte(n.Text))
	if err != nil {
		return Checkpoint{}, fmt.Errorf("merkle: open checkpoint signed by %s: %w", v.Name(), err)
	}
	return c, nil
}
