package server

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/trailaudit/trail/engine"
	"github.com/trailaudit/trail/merkle"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
	"github.com/trailaudit/trail/witness"
)

// cosigVerifier verifies Ed25519 cosignature/v1 signatures as a third
// party would, from the text of c2sp.org/tlog-cosignature alone (key ID
// SHA-256(name || "\n" || 0x04 || key)[:4]; signature = 8-byte timestamp
// || Ed25519 over "cosignature/v1\ntime <t>\n" and the note body), through
// x/mod/sumdb/note. It shares no code with the witness.
type cosigVerifier struct {
	name string
	pub  ed25519.PublicKey
}

func newCosigVerifier(t testing.TB, vkey string) cosigVerifier {
	t.Helper()
	parts := strings.SplitN(vkey, "+", 3) // the base64 key may contain '+'
	raw, err := base64.StdEncoding.DecodeString(parts[len(parts)-1])
	if len(parts) != 3 || err != nil || len(raw) != 33 || raw[0] != 0x04 {
		t.Fatalf("not a cosignature/v1 verifier key: %q", vkey)
	}
	return cosigVerifier{name: parts[0], pub: raw[1:]}
}

func (v cosigVerifier) Name() string { return v.name }
func (v cosigVerifier) KeyHash() uint32 {
	h := sha256.Sum256(append([]byte(v.name+"\n\x04"), v.pub...))
	return binary.BigEndian.Uint32(h[:4])
}
func (v cosigVerifier) Verify(msg, sig []byte) bool {
	if len(sig) != 72 {
		return false
	}
	m := fmt.Appendf(nil, "cosignature/v1\ntime %d\n%s", binary.BigEndian.Uint64(sig), msg)
	return ed25519.Verify(v.pub, m, sig[8:])
}

// witnessFixture is a real witness (package witness, as `trailctl witness
// serve` runs it) on loopback HTTP, whose URL is known before the Trail
// server that submits to it is built, and whose log key is set after.
type witnessFixture struct {
	http *httptest.Server
	skey string
	vkey string
}

func newWitnessFixture(t *testing.T) *witnessFixture {
	t.Helper()
	skey, vkey, err := witness.GenerateKey("witness.test/w1")
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(nil)
	t.Cleanup(hs.Close)
	return &witnessFixture{http: hs, skey: skey, vkey: vkey}
}

func (w *witnessFixture) url() string { return "http://" + w.http.Listener.Addr().String() }

func (w *witnessFixture) tune(cfg *Config) {
	cfg.Witnesses = []Witness{{URL: w.url(), VerifierKey: w.vkey}}
	cfg.WitnessInterval = -1 // rounds run when the test says
}

// start serves the witness for the log key v.
func (w *witnessFixture) start(t *testing.T, v note.Verifier) {
	t.Helper()
	srv, err := witness.NewServer(witness.Config{
		CosignerKey: w.skey, StateDir: t.TempDir(),
		Logs: []witness.Log{{Verifier: v, OriginPrefix: testLogName + "/"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	w.http.Config.Handler = srv.Handler()
	w.http.Start()
}

// monitored is the witness's latest cosigned checkpoint of origin.
func (w *witnessFixture) monitored(t *testing.T, origin string) (int, string) {
	t.Helper()
	sum := sha256.Sum256([]byte(origin))
	resp, err := http.Get(fmt.Sprintf("%s/%x/checkpoint", w.url(), sum))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// cosignedSize opens signed with the log key and, as a third party, the
// witness's cosignature; it returns the size, or fails.
func cosignedSize(t *testing.T, e *env, w *witnessFixture, signed string) uint64 {
	t.Helper()
	if _, err := note.Open([]byte(signed), note.VerifierList(e.verifier)); err != nil {
		t.Fatalf("log signature: %v\n%s", err, signed)
	}
	n, err := note.Open([]byte(signed), note.VerifierList(newCosigVerifier(t, w.vkey)))
	if err != nil {
		t.Fatalf("witness cosignature: %v\n%s", err, signed)
	}
	cp, err := merkle.ParseCheckpoint([]byte(n.Text))
	if err != nil {
		t.Fatal(err)
	}
	return cp.Size
}

// TestWitnessCosignsCheckpoints: the leader submits every partition's
// checkpoint to a real witness over HTTP, first without and then with a
// consistency proof; the cosignatures are stored and served with the
// checkpoint, in proofs too, and verify as the spec says.
func TestWitnessCosignsCheckpoints(t *testing.T) {
	w := newWitnessFixture(t)
	e := newEnv(t, envOptions{tune: w.tune})
	w.start(t, e.verifier)
	ctx := context.Background()
	auditor := e.key(trailv1.Role_ROLE_AUDITOR, "acme")

	part := e.appendAll(e.admin, events("acme", "a", 5))[0].GetPartition()
	origin := testLogName + "/acme/" + part
	if err := e.srv.WitnessNow(ctx); err != nil {
		t.Fatalf("first round: %v", err)
	}
	cp, err := e.proofs.GetCheckpoint(e.ctx(auditor), &trailv1.GetCheckpointRequest{TenantId: "acme", Partition: part})
	if err != nil {
		t.Fatal(err)
	}
	if got := cosignedSize(t, e, w, cp.GetCheckpoint().GetSignedNote()); got != 5 {
		t.Fatalf("cosigned size %d, want 5", got)
	}
	e.openCheckpoint([]byte(cp.GetCheckpoint().GetSignedNote()), "acme", part) // still a valid checkpoint to every other parser

	// The tree grows: the next round proves consistency from 5.
	e.appendAll(e.admin, events("acme", "b", 3))
	if err := e.srv.WitnessNow(ctx); err != nil {
		t.Fatalf("second round: %v", err)
	}
	if code, stored := w.monitored(t, origin); code != http.StatusOK || cosignedSize(t, e, w, stored) != 8 {
		t.Fatalf("witness state: %d\n%s", code, stored)
	}
	pr, err := e.proofs.GetInclusionProof(e.ctx(auditor), &trailv1.GetInclusionProofRequest{TenantId: "acme", EventId: "a-2"})
	if err != nil {
		t.Fatal(err)
	}
	if got := cosignedSize(t, e, w, pr.GetCheckpoint().GetSignedNote()); got != 8 {
		t.Fatalf("inclusion proof's checkpoint cosigned at %d, want 8", got)
	}
	e.verifyInclusion(pr, "acme")

	// The REST note, as witnesses and auditors fetch it, carries it too.
	code, body, _ := e.rest("GET", "/api/v1/audit/tenants/acme/partitions/"+part+"/checkpoint", auditor, nil)
	if code != http.StatusOK || cosignedSize(t, e, w, string(body)) != 8 {
		t.Fatalf("REST checkpoint: %d\n%s", code, body)
	}

	// A checkpoint no witness saw is served as before: no cosignature.
	old, err := e.proofs.GetCheckpoint(e.ctx(auditor), &trailv1.GetCheckpointRequest{TenantId: "acme", Partition: part, TreeSize: 5})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := note.Open([]byte(old.GetCheckpoint().GetSignedNote()), note.VerifierList(newCosigVerifier(t, w.vkey))); err == nil {
		t.Fatalf("the size-5 checkpoint still carries a cosignature; the record is of size 8")
	}

	if got := counterValue(t, e.srv.metrics.witnessed.WithLabelValues("witness.test/w1", "cosigned")); got < 2 {
		t.Fatalf("trail_witness_submissions_total{result=cosigned} = %v, want at least 2", got)
	}

	// Nothing new: a round submits nothing and changes nothing.
	before, err := e.node.Engine().Setting(witnessedKey(origin))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.srv.WitnessNow(ctx); err != nil {
		t.Fatal(err)
	}
	after, err := e.node.Engine().Setting(witnessedKey(origin))
	if err != nil || string(after) != string(before) {
		t.Fatalf("an idle round rewrote the record (%v)", err)
	}
}

// TestWitnessRefusesForkedLog: a second log holding the same key (a
// stolen key, or a node restored from an old backup and written to)
// signs a different tree for the same origin. The witness, which
// cosigned the first log's tree, refuses it, and the forked log stores and
// serves no cosignature.
func TestWitnessRefusesForkedLog(t *testing.T) {
	w := newWitnessFixture(t)
	e := newEnv(t, envOptions{tune: w.tune})
	w.start(t, e.verifier)
	ctx := context.Background()
	part := e.appendAll(e.admin, events("acme", "a", 6))[0].GetPartition()
	origin := testLogName + "/acme/" + part
	if err := e.srv.WitnessNow(ctx); err != nil {
		t.Fatal(err)
	}
	_, witnessed := w.monitored(t, origin)

	for _, tc := range []struct {
		name string
		n    int
		want string
	}{
		{"forked to a larger tree", 9, "HTTP 422"},
		{"forked, same size", 6, "HTTP 422"},
		{"rolled back to a smaller tree", 3, "above this log's 3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fork := newEnv(t, envOptions{tune: func(c *Config) {
				w.tune(c)
				c.Signer = e.srv.cfg.Signer // the same log key
			}})
			fork.appendAll(fork.admin, events("acme", "fork", tc.n))
			err := fork.srv.WitnessNow(ctx)
			if err == nil || !strings.Contains(err.Error(), origin) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("WitnessNow on the fork = %v, want a refusal of %s mentioning %q", err, origin, tc.want)
			}
			if _, err := fork.node.Engine().Setting(witnessedKey(origin)); !errors.Is(err, engine.ErrNotFound) {
				t.Fatalf("the fork stored cosignatures of %s: %v", origin, err)
			}
			if got := counterValue(t, fork.srv.metrics.witnessed.WithLabelValues("witness.test/w1", "inconsistent")); got < 1 {
				t.Fatalf("trail_witness_submissions_total{result=inconsistent} = %v, want at least 1", got)
			}
			if _, now := w.monitored(t, origin); now != witnessed {
				t.Fatalf("the witness's state changed:\n%s\nwas\n%s", now, witnessed)
			}
		})
	}
}

// TestWitnessCosignaturesReplicate: cosignatures the leader collects go
// through Raft, so a follower serves the same cosigned checkpoint.
func TestWitnessCosignaturesReplicate(t *testing.T) {
	w := newWitnessFixture(t)
	e := newScenarioEnv(t)
	w.start(t, e.verifier)
	// The cluster's servers have no witnesses; a second server on the
	// leader's node has (it needs no listener to submit).
	cfg := Config{Cluster: e.node, Signer: e.srv.cfg.Signer, Logger: testLogger(), Plaintext: true}
	w.tune(&cfg)
	submitter, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { submitter.Shutdown(context.Background()) })

	part := e.appendAll(e.admin, events("acme", "a", 4))[0].GetPartition()
	if err := submitter.WitnessNow(context.Background()); err != nil {
		t.Fatal(err)
	}
	lead, err := e.proofs.GetCheckpoint(e.ctx(e.admin), &trailv1.GetCheckpointRequest{TenantId: "acme", Partition: part})
	if err != nil {
		t.Fatal(err)
	}
	f := scenarioFollower(t, e)
	cp, err := f.proofs.GetCheckpoint(f.ctx(e.admin), &trailv1.GetCheckpointRequest{TenantId: "acme", Partition: part})
	if err != nil {
		t.Fatal(err)
	}
	// The partition holds the events and what the compliance detector
	// added to them; whatever its size, both nodes serve it cosigned.
	got := cp.GetCheckpoint().GetSignedNote()
	if size := cosignedSize(t, e, w, got); size < 4 || got != lead.GetCheckpoint().GetSignedNote() {
		t.Fatalf("follower serves\n%s\nleader serves\n%s", got, lead.GetCheckpoint().GetSignedNote())
	}
}
