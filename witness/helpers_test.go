package witness

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/trailaudit/trail/merkle"
)

// specVerifier is a cosignature/v1 verifier written from the text of
// c2sp.org/tlog-cosignature alone, as a third party would: it shares no
// code with the signer, so a cosignature it accepts is one any verifier
// of the spec accepts. It plugs into x/mod/sumdb/note as a note.Verifier.
type specVerifier struct {
	name string
	pub  ed25519.PublicKey
	hash uint32
}

// newSpecVerifier reads a cosignature verifier key "name+hash+base64(0x04
// || key)".
func newSpecVerifier(t testing.TB, vkey string) *specVerifier {
	t.Helper()
	// The base64 key may itself contain '+': split at the first two only.
	parts := strings.SplitN(vkey, "+", 3)
	if len(parts) != 3 {
		t.Fatalf("verifier key %q", vkey)
	}
	raw, err := base64.StdEncoding.DecodeString(parts[2])
	if err != nil || len(raw) != 1+ed25519.PublicKeySize || raw[0] != 0x04 {
		t.Fatalf("verifier key %q is not an Ed25519 cosignature/v1 key", vkey)
	}
	// Key ID: SHA-256(<name> || "\n" || 0x04 || 32-byte key)[:4].
	h := sha256.Sum256(append([]byte(parts[0]+"\n"), raw...))
	v := &specVerifier{name: parts[0], pub: ed25519.PublicKey(raw[1:]), hash: binary.BigEndian.Uint32(h[:4])}
	if want := fmt.Sprintf("%08x", v.hash); parts[1] != want {
		t.Fatalf("verifier key %q names key ID %s, the spec computes %s", vkey, parts[1], want)
	}
	return v
}

func (v *specVerifier) Name() string    { return v.name }
func (v *specVerifier) KeyHash() uint32 { return v.hash }

// Verify checks a timestamped_signature (8-byte big-endian timestamp,
// 64-byte Ed25519 signature) over "cosignature/v1\ntime <t>\n" and the
// note body.
func (v *specVerifier) Verify(msg, sig []byte) bool {
	if len(sig) != 8+ed25519.SignatureSize {
		return false
	}
	ts := binary.BigEndian.Uint64(sig[:8])
	if ts == 0 || ts > 1<<63-1 {
		return false
	}
	signed := fmt.Appendf(nil, "cosignature/v1\ntime %d\n%s", ts, msg)
	return ed25519.Verify(v.pub, signed, sig[8:])
}

// testLog is a log: a key and a tree that grows.
type testLog struct {
	t        testing.TB
	name     string
	signer   note.Signer
	verifier note.Verifier
	leaves   []merkle.Hash
}

func newTestLog(t testing.TB, name string) *testLog {
	t.Helper()
	skey, vkey, err := merkle.GenerateKey(name, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := merkle.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	v, err := merkle.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return &testLog{t: t, name: name, signer: s, verifier: v}
}

func (l *testLog) origin() string { return l.name + "/acme/2026-12" }

// grow appends n leaves.
func (l *testLog) grow(n int) {
	for range n {
		l.leaves = append(l.leaves, merkle.LeafHash(fmt.Appendf(nil, "%s leaf %d", l.name, len(l.leaves))))
	}
}

func (l *testLog) tree(size uint64) *merkle.MemoryNodes {
	return merkle.NewMemoryNodes(l.leaves[:size])
}

// checkpoint signs the tree of size leaves.
func (l *testLog) checkpoint(size uint64) []byte {
	return l.sign(merkle.Checkpoint{Origin: l.origin(), Size: size, Root: l.tree(size).Root()})
}

func (l *testLog) sign(cp merkle.Checkpoint) []byte {
	l.t.Helper()
	b, err := merkle.SignCheckpoint(cp, l.signer)
	if err != nil {
		l.t.Fatal(err)
	}
	return b
}

// proof is the consistency proof from old to size.
func (l *testLog) proof(old, size uint64) []merkle.Hash {
	l.t.Helper()
	if old == 0 || old == size {
		return nil
	}
	p, err := merkle.ConsistencyProof(context.Background(), old, size, l.tree(size))
	if err != nil {
		l.t.Fatal(err)
	}
	return p
}

// request is an honest add-checkpoint request from old to size.
func (l *testLog) request(old, size uint64) AddCheckpointRequest {
	return AddCheckpointRequest{OldSize: old, Proof: l.proof(old, size), Checkpoint: l.checkpoint(size)}
}

// testWitness is a witness served over loopback HTTP.
type testWitness struct {
	srv    *Server
	http   *httptest.Server
	vkey   string
	skey   string
	dir    string
	client *Client
}

func startWitness(t testing.TB, logs ...*testLog) *testWitness {
	t.Helper()
	skey, vkey, err := GenerateKey("witness.test/w1")
	if err != nil {
		t.Fatal(err)
	}
	return startWitnessWith(t, skey, vkey, t.TempDir(), logs...)
}

func startWitnessWith(t testing.TB, skey, vkey, dir string, logs ...*testLog) *testWitness {
	t.Helper()
	cfg := Config{CosignerKey: skey, StateDir: dir}
	for _, l := range logs {
		cfg.Logs = append(cfg.Logs, Log{Verifier: l.verifier, OriginPrefix: l.name + "/"})
	}
	srv, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	v, err := NewCosignatureVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return &testWitness{srv: srv, http: hs, vkey: vkey, skey: skey, dir: dir,
		client: &Client{URL: hs.URL, Verifier: v, HTTP: hs.Client()}}
}
