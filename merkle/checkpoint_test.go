package merkle

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/note"
)

// seededRand is a deterministic io.Reader for key generation in tests.
type seededRand struct{ r *rand.ChaCha8 }

func newSeededRand(seed byte) seededRand {
	return seededRand{rand.NewChaCha8([32]byte{seed})}
}

func (s seededRand) Read(p []byte) (int, error) { return s.r.Read(p) }

func testKey(t testing.TB, name string, seed byte) (note.Signer, note.Verifier, string) {
	t.Helper()
	skey, vkey, err := GenerateKey(name, newSeededRand(seed))
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return s, v, vkey
}

func TestCheckpointSignOpen(t *testing.T) {
	signer, verifier, vkey := testKey(t, "trail.example", 1)
	_, otherVerifier, _ := testKey(t, "trail.example", 2)
	id, err := KeyID(vkey)
	if err != nil || id != verifier.KeyHash() {
		t.Errorf("KeyID = %d, %v, want %d", id, err, verifier.KeyHash())
	}
	rng := rand.New(rand.NewPCG(13, 14))
	for _, c := range []Checkpoint{
		{Origin: "trail.example/acme/2026-11", Size: 0, Root: EmptyRoot()},
		{Origin: "trail.example/acme/2026-11", Size: 1, Root: LeafHash(nil)},
		{Origin: "trail.example/tenant with spaces/2026-01", Size: 1<<64 - 1, Root: randomLeaves(rng, 1)[0]},
		{Origin: "trail.example/ü/2026-02", Size: 20852163, Root: randomLeaves(rng, 1)[0], Extension: "ext one\next two\n"},
	} {
		msg, err := SignCheckpoint(c, signer)
		if err != nil {
			t.Fatalf("SignCheckpoint(%+v): %v", c, err)
		}
		got, err := OpenCheckpoint(msg, verifier)
		if err != nil || got != c {
			t.Errorf("OpenCheckpoint = %+v, %v, want %+v", got, err, c)
		}

		// Independent verifiers: x/mod's note.Open and transparency-dev's
		// checkpoint parser.
		n, err := note.Open(msg, note.VerifierList(verifier))
		if err != nil || n.Text != string(c.Marshal()) {
			t.Errorf("note.Open = %v, %v", n, err)
		}
		ref, rest, _, err := log.ParseCheckpoint(msg, c.Origin, verifier)
		if err != nil {
			t.Fatalf("log.ParseCheckpoint: %v", err)
		}
		if ref.Origin != c.Origin || ref.Size != c.Size || !bytes.Equal(ref.Hash, c.Root[:]) || string(rest) != c.Extension {
			t.Errorf("log.ParseCheckpoint = %+v, rest %q, want %+v", ref, rest, c)
		}

		if _, err := OpenCheckpoint(msg, otherVerifier); !errors.Is(err, ErrUnverified) {
			t.Errorf("OpenCheckpoint with another key = %v, want ErrUnverified", err)
		}
		tampered := bytes.Replace(msg, []byte(c.Origin), []byte(c.Origin+"x"), 1)
		if _, err := OpenCheckpoint(tampered, verifier); !errors.Is(err, ErrUnverified) {
			t.Errorf("OpenCheckpoint of a tampered note = %v, want ErrUnverified", err)
		}
	}
}

func TestCheckpointOpenRejects(t *testing.T) {
	signer, verifier, _ := testKey(t, "trail.example", 1)
	otherSigner, _, _ := testKey(t, "other.example", 3)
	c := Checkpoint{Origin: "trail.example/acme/2026-11", Size: 7, Root: LeafHash(nil)}
	good, err := SignCheckpoint(c, signer)
	if err != nil {
		t.Fatal(err)
	}
	byOther, err := SignCheckpoint(c, otherSigner)
	if err != nil {
		t.Fatal(err)
	}
	// A body the log would never sign, signed with the right key anyway.
	badBody, err := note.Sign(&note.Note{Text: "trail.example/acme/2026-11\n07\n" + "x\n"}, signer)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		msg  []byte
		want error
	}{
		{"signed by another key", byOther, ErrUnverified},
		{"no signature", []byte(string(c.Marshal()) + "\n"), ErrUnverified},
		{"body only", c.Marshal(), ErrUnverified},
		{"empty", nil, ErrUnverified},
		{"signature line truncated", good[:len(good)-5], ErrUnverified},
		{"size changed", bytes.Replace(good, []byte("\n7\n"), []byte("\n8\n"), 1), ErrUnverified},
		{"malformed body", badBody, ErrInvalidCheckpoint},
	} {
		if _, err := OpenCheckpoint(tc.msg, verifier); !errors.Is(err, tc.want) {
			t.Errorf("%s: OpenCheckpoint = %v, want %v", tc.name, err, tc.want)
		}
	}
}

func TestSignCheckpointRefusesUnparsable(t *testing.T) {
	signer, _, _ := testKey(t, "trail.example", 1)
	for _, c := range []Checkpoint{
		{Origin: "", Size: 1},
		{Origin: "a\n5", Size: 1},
		{Origin: "tab\there", Size: 1},
		{Origin: "ok", Extension: "no newline"},
		{Origin: "ok", Extension: "\n"},
		{Origin: "ok", Extension: "a\n\nb\n"},
	} {
		if _, err := SignCheckpoint(c, signer); !errors.Is(err, ErrInvalidCheckpoint) {
			t.Errorf("SignCheckpoint(%+v) = %v, want ErrInvalidCheckpoint", c, err)
		}
	}
}

func TestParseCheckpoint(t *testing.T) {
	root := LeafHash(nil)
	b64 := "bjQLnP+zepicpUTmu3gKLHiQHT+zNzh2hRGjBhevoB0="
	if got := string(Checkpoint{Origin: "o", Size: 5, Root: root}.Marshal()); got != "o\n5\n"+b64+"\n" {
		t.Fatalf("Marshal = %q", got)
	}
	good := []struct {
		body string
		want Checkpoint
	}{
		{"o\n5\n" + b64 + "\n", Checkpoint{Origin: "o", Size: 5, Root: root}},
		{"o\n0\n" + b64 + "\n", Checkpoint{Origin: "o", Size: 0, Root: root}},
		{"o\n18446744073709551615\n" + b64 + "\n", Checkpoint{Origin: "o", Size: 1<<64 - 1, Root: root}},
		{"example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n", Checkpoint{
			Origin: "example.com/behind-the-sofa", Size: 20852163,
			Root: mustHash(t, "0ac5186a91863e8e1d90c808014aa89bf5da8e3ee1d9f07630f0378f68f1ab62"),
		}},
		{"o\n5\n" + b64 + "\next\n", Checkpoint{Origin: "o", Size: 5, Root: root, Extension: "ext\n"}},
		{"o\n5\n" + b64 + "\na\nb\n", Checkpoint{Origin: "o", Size: 5, Root: root, Extension: "a\nb\n"}},
	}
	for _, tc := range good {
		got, err := ParseCheckpoint([]byte(tc.body))
		if err != nil || got != tc.want {
			t.Errorf("ParseCheckpoint(%q) = %+v, %v, want %+v", tc.body, got, err, tc.want)
		}
		if string(got.Marshal()) != tc.body {
			t.Errorf("ParseCheckpoint(%q).Marshal() = %q", tc.body, got.Marshal())
		}
	}
	short := "AAAA" // 3 bytes
	for _, tc := range []struct{ name, body string }{
		{"empty", ""},
		{"missing final newline", "o\n5\n" + b64},
		{"two lines", "o\n5\n"},
		{"empty origin", "\n5\n" + b64 + "\n"},
		{"empty size", "o\n\n" + b64 + "\n"},
		{"negative size", "o\n-5\n" + b64 + "\n"},
		{"plus sign", "o\n+5\n" + b64 + "\n"},
		{"leading zero", "o\n05\n" + b64 + "\n"},
		{"double zero", "o\n00\n" + b64 + "\n"},
		{"hex size", "o\n0x5\n" + b64 + "\n"},
		{"size with space", "o\n 5\n" + b64 + "\n"},
		{"size overflow", "o\n18446744073709551616\n" + b64 + "\n"},
		{"empty root", "o\n5\n\n"},
		{"short root", "o\n5\n" + short + "\n"},
		{"long root", "o\n5\n" + strings.Repeat("A", 48) + "\n"},
		{"root unpadded", "o\n5\n" + strings.TrimSuffix(b64, "=") + "\n"},
		{"root url encoding", "o\n5\n" + strings.NewReplacer("+", "-", "/", "_").Replace(b64) + "\n"},
		{"root bad character", "o\n5\n" + "!" + b64[1:] + "\n"},
		{"root non-canonical padding bits", "o\n5\n" + b64[:42] + "1=" + "\n"},
		{"root 31 bytes", "o\n5\n" + strings.Repeat("A", 40) + "AA==\n"},
		{"root with carriage return", "o\n5\n" + b64 + "\r\n"},
		{"blank line after root", "o\n5\n" + b64 + "\n\n"},
		{"blank extension line", "o\n5\n" + b64 + "\na\n\nb\n"},
		{"control character in origin", "o\x00\n5\n" + b64 + "\n"},
		{"tab in origin", "o\tx\n5\n" + b64 + "\n"},
		{"invalid UTF-8", "o\xff\n5\n" + b64 + "\n"},
		{"leading blank line", "\no\n5\n" + b64 + "\n"},
	} {
		if _, err := ParseCheckpoint([]byte(tc.body)); !errors.Is(err, ErrInvalidCheckpoint) {
			t.Errorf("%s: ParseCheckpoint(%q) = %v, want ErrInvalidCheckpoint", tc.name, tc.body, err)
		}
	}
}

func TestKeyErrors(t *testing.T) {
	if _, err := NewSigner("PRIVATE+KEY+bad"); err == nil {
		t.Error("NewSigner accepted a malformed key")
	}
	if _, err := NewVerifier("bad"); err == nil {
		t.Error("NewVerifier accepted a malformed key")
	}
	if _, err := KeyID("bad"); err == nil {
		t.Error("KeyID accepted a malformed key")
	}
	if _, _, err := GenerateKey("bad name+with plus", nil); err == nil {
		t.Error("GenerateKey accepted an invalid name")
	}
	skey, vkey, err := GenerateKey("trail.example", nil) // nil: crypto/rand
	if err != nil || !strings.HasPrefix(skey, "PRIVATE+KEY+trail.example+") || !strings.HasPrefix(vkey, "trail.example+") {
		t.Errorf("GenerateKey = %q, %q, %v", skey[:20], vkey, err)
	}
}
