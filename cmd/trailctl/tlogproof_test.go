package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/trailaudit/trail/internal/syncbuf"
	"github.com/trailaudit/trail/merkle"
	tlogwitness "github.com/trailaudit/trail/witness"
)

// cosign adds a witness cosignature, made with skey, to a signed note.
func cosign(t *testing.T, signed string, logV note.Verifier, skey string) string {
	t.Helper()
	n, err := note.Open([]byte(signed), note.VerifierList(logV))
	if err != nil {
		t.Fatal(err)
	}
	s, err := tlogwitness.NewCosigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	out, err := note.Sign(n, s)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// witnessKey writes a witness key pair with "witness keygen" and returns
// the private key text and the verifier key file.
func witnessKey(t *testing.T, dir, name string) (skey, vkeyFile string) {
	t.Helper()
	out := filepath.Join(dir, name+".key")
	r := runCLI(t, "", "witness", "keygen", name, "--out", out)
	wantExit(t, r, exitOK, name+"+")
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(out); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("private key file mode: %v %v", st.Mode(), err)
	}
	return strings.TrimSpace(string(b)), out + ".pub"
}

func TestTLogProofVerifyOffline(t *testing.T) {
	f := standardFixture(t)
	logV, err := merkle.NewVerifier(f.vkey)
	if err != nil {
		t.Fatal(err)
	}
	w1Key, w1File := witnessKey(t, f.dir, "w1.test")
	_, w2File := witnessKey(t, f.dir, "w2.test")

	pf := f.proof("acme", "acme-17", 0)
	plain := encodeTLogProof(pf.Proof)
	pf.Proof.Checkpoint.SignedNote = cosign(t, pf.Proof.Checkpoint.GetSignedNote(), logV, w1Key)
	cosigned := encodeTLogProof(pf.Proof)
	tp, err := merkle.ParseTLogProof(cosigned)
	if err != nil {
		t.Fatal(err)
	}
	pruned := tp
	pruned.Extra = nil
	leafHash := merkle.LeafHash(tp.Extra).String()
	tampered := tp
	tampered.Extra = bytes.Replace(tp.Extra, []byte("acme-17"), []byte("acme-18"), 1)
	wrongIndex := tp
	wrongIndex.Index = 16
	otherLog := tp
	otherLog.Checkpoint = []byte(f.checkpoint("acme", "2026-12", 0).GetSignedNote())

	file := func(name string, b []byte) string { return f.write(name, b) }
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"log signature only", []string{"--tlog-proof", file("plain.tlog-proof", plain)}, exitOK, "OK inclusion of leaf 17 (event acme-17) in tree of size 40 of test/acme/2026-11"},
		{"with the witness", []string{"--tlog-proof", file("cosigned.tlog-proof", cosigned), "--witness-vkey", w1File}, exitOK, "OK cosignature by witness w1.test+"},
		{"one of two witnesses", []string{"--tlog-proof", file("cosigned.tlog-proof", cosigned), "--witness-vkey", w1File, "--witness-vkey", w2File, "--min-witnesses", "1"}, exitOK, "OK cosignature by witness w1.test+"},
		{"both witnesses required", []string{"--tlog-proof", file("cosigned.tlog-proof", cosigned), "--witness-vkey", w1File, "--witness-vkey", w2File}, exitFailed, "cosigned by 1 of the 2 witnesses given, 2 required"},
		{"witness missing", []string{"--tlog-proof", file("plain.tlog-proof", plain), "--witness-vkey", w1File}, exitFailed, "cosigned by 0 of the 1"},
		{"event expected", []string{"--tlog-proof", file("cosigned.tlog-proof", cosigned), "--event", "acme-17", "--tenant", "acme"}, exitOK, "OK inclusion"},
		{"another event expected", []string{"--tlog-proof", file("cosigned.tlog-proof", cosigned), "--event", "acme-18"}, exitFailed, "not \"acme-18\""},
		{"entry altered", []string{"--tlog-proof", file("tampered.tlog-proof", tampered.Marshal())}, exitFailed, "FAILED"},
		{"wrong index", []string{"--tlog-proof", file("index.tlog-proof", wrongIndex.Marshal())}, exitFailed, "FAILED"},
		{"checkpoint of another partition", []string{"--tlog-proof", file("other.tlog-proof", otherLog.Marshal())}, exitFailed, "FAILED"},
		{"pruned, no leaf hash", []string{"--tlog-proof", file("pruned.tlog-proof", pruned.Marshal())}, exitFailed, "--leaf-hash"},
		{"pruned, leaf hash given", []string{"--tlog-proof", file("pruned.tlog-proof", pruned.Marshal()), "--leaf-hash", leafHash}, exitOK, "payload pruned"},
		{"not a tlog-proof", []string{"--tlog-proof", file("junk.tlog-proof", []byte("c2sp.org/tlog-proof@v1\nindex 01\n\n"))}, exitFailed, "leading zeros"},
		{"cosigned checkpoint", []string{"--checkpoint", file("cp", []byte(pf.Proof.Checkpoint.GetSignedNote())), "--witness-vkey", w1File}, exitOK, "OK cosignature by witness w1.test+"},
		{"checkpoint without the cosignature", []string{"--checkpoint", file("plain-cp", []byte(f.checkpoint("acme", "2026-11", 0).GetSignedNote())), "--witness-vkey", w1File}, exitFailed, "cosigned by 0 of the 1"},
		{"witness flags with a proof file", []string{"--proof", f.writeProof("p.json", f.proof("acme", "acme-17", 0)), "--witness-vkey", w1File}, exitUsage, ""},
		{"min-witnesses without keys", []string{"--tlog-proof", file("cosigned.tlog-proof", cosigned), "--min-witnesses", "0"}, exitUsage, ""},
		{"leaf hash without a tlog-proof", []string{"--checkpoint", file("cp", []byte(pf.Proof.Checkpoint.GetSignedNote())), "--leaf-hash", leafHash}, exitUsage, ""},
		{"more witnesses required than given", []string{"--tlog-proof", file("cosigned.tlog-proof", cosigned), "--witness-vkey", w1File, "--min-witnesses", "2"}, exitUsage, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"verify", "--vkey", f.vkeyFile}, tc.args...)
			r := runCLI(t, "", args...)
			if r.code != tc.code || !strings.Contains(r.stdout+r.stderr, tc.want) {
				t.Fatalf("exit %d, want %d mentioning %q\nstdout:\n%s\nstderr:\n%s", r.code, tc.code, tc.want, r.stdout, r.stderr)
			}
		})
	}
	// A different log key refuses everything.
	r := runCLI(t, "", "verify", "--vkey", f.otherKeyFile(), "--tlog-proof", file("cosigned.tlog-proof", cosigned))
	wantExit(t, r, exitFailed)
}

func TestProveWritesTLogProof(t *testing.T) {
	f := standardFixture(t)
	s := startFakeServer(t, f)
	out := filepath.Join(t.TempDir(), "e.tlog-proof")
	wantExit(t, s.cli(t, "", "prove", "acme", "acme-42", "--vkey", f.vkeyFile, "--tlog-proof", out), exitOK, "OK inclusion of leaf 2")
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte("c2sp.org/tlog-proof@v1\nextra ")) {
		t.Fatalf("not a tlog-proof with extra data:\n%s", b)
	}
	wantExit(t, runCLI(t, "", "verify", "--vkey", f.vkeyFile, "--tlog-proof", out), exitOK, "OK inclusion of leaf 2 (event acme-42) in tree of size 10 of test/acme/2026-12")
}

// TestWitnessServeCommand runs "trailctl witness serve" and has it cosign
// a log's checkpoints over HTTP; the cosigned checkpoint makes a
// tlog-proof that verifies with the witness's published key. A forked
// checkpoint is refused and the witness's state stays as it was.
func TestWitnessServeCommand(t *testing.T) {
	f := standardFixture(t)
	_, wvkeyFile := witnessKey(t, f.dir, "w1.test")
	state := filepath.Join(t.TempDir(), "state")

	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr syncbuf.Buffer
	done := make(chan int, 1)
	go func() {
		e := &env{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr, getenv: offlineEnv, now: time.Now}
		done <- run(ctx, e, []string{"witness", "serve", "--listen", "127.0.0.1:0", "--state-dir", state,
			"--key", filepath.Join(f.dir, "w1.test.key"), "--log-vkey", f.vkeyFile})
	}()
	defer func() {
		cancel()
		if code := <-done; code != exitOK {
			t.Errorf("witness serve exited %d\n%s", code, stderr.String())
		}
	}()
	addrRE := regexp.MustCompile(`serving on (http://[0-9.:]+)`)
	var url string
	for deadline := time.Now().Add(10 * time.Second); url == ""; time.Sleep(10 * time.Millisecond) {
		if m := addrRE.FindStringSubmatch(stderr.String()); m != nil {
			url = m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("witness serve did not start:\n%s", stderr.String())
		}
	}
	vkey, err := os.ReadFile(wvkeyFile)
	if err != nil {
		t.Fatal(err)
	}
	wv, err := tlogwitness.NewCosignatureVerifier(strings.TrimSpace(string(vkey)))
	if err != nil {
		t.Fatal(err)
	}
	client := &tlogwitness.Client{URL: url, Verifier: wv}

	cp20 := f.checkpoint("acme", "2026-11", 20).GetSignedNote()
	if _, err := client.AddCheckpoint(ctx, tlogwitness.AddCheckpointRequest{OldSize: 0, Checkpoint: []byte(cp20)}); err != nil {
		t.Fatal(err)
	}

	// An auditor proves an event against the checkpoint the witness
	// cosigned (size 20, while the log has 40), asking the witness which.
	s := startFakeServer(t, f)
	witnessed := filepath.Join(t.TempDir(), "w.tlog-proof")
	wantExit(t, s.cli(t, "", "prove", "acme", "acme-3", "--vkey", f.vkeyFile, "--witness-url", url, "--tlog-proof", witnessed),
		exitOK, "OK inclusion of leaf 3 (event acme-3) in tree of size 20 of test/acme/2026-11")
	wantExit(t, runCLI(t, "", "verify", "--vkey", f.vkeyFile, "--tlog-proof", witnessed, "--witness-vkey", wvkeyFile),
		exitOK, "OK cosignature by witness w1.test+", "in tree of size 20")
	r := s.cli(t, "", "prove", "acme", "acme-30", "--vkey", f.vkeyFile, "--witness-url", url)
	if r.code != exitFailed || !strings.Contains(r.stderr, "does not contain leaf 30 yet") {
		t.Fatalf("proving a leaf the witness has not seen: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = s.cli(t, "", "prove", "acme", "acme-42", "--vkey", f.vkeyFile, "--witness-url", url)
	if r.code != exitFailed || !strings.Contains(r.stderr, "no checkpoint of this origin cosigned") {
		t.Fatalf("proving in a partition the witness never saw: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	pf := f.proof("acme", "acme-17", 0) // at size 40
	c := f.consistency("acme", "2026-11", 20, 40)
	proof := make([]merkle.Hash, len(c.GetProof()))
	for i, h := range c.GetProof() {
		copy(proof[i][:], h)
	}
	sigs, err := client.AddCheckpoint(ctx, tlogwitness.AddCheckpointRequest{OldSize: 20, Proof: proof, Checkpoint: []byte(pf.Proof.Checkpoint.GetSignedNote())})
	if err != nil {
		t.Fatal(err)
	}
	pf.Proof.Checkpoint.SignedNote += string(sigs)
	out := f.write("cosigned.tlog-proof", encodeTLogProof(pf.Proof))
	wantExit(t, runCLI(t, "", "verify", "--vkey", f.vkeyFile, "--tlog-proof", out, "--witness-vkey", wvkeyFile),
		exitOK, "OK cosignature by witness w1.test+", "OK inclusion of leaf 17")

	// A fork: the same key signs another root at size 40.
	cp, err := f.eng.Checkpoint(ctx, f.partition("acme", "2026-11"), 40)
	if err != nil {
		t.Fatal(err)
	}
	cp.Root[0] ^= 1
	forked := signCheckpoint(t, f.signer, cp).GetSignedNote()
	var refused *tlogwitness.StatusError
	if _, err := client.AddCheckpoint(ctx, tlogwitness.AddCheckpointRequest{OldSize: 40, Checkpoint: []byte(forked)}); !errors.As(err, &refused) || refused.Code != 422 {
		t.Fatalf("forked checkpoint: %v, want HTTP 422", err)
	}
	// The witness still holds, and serves, the honest checkpoint.
	sum := sha256.Sum256([]byte("test/acme/2026-11"))
	stored, err := os.ReadFile(filepath.Join(state, hex.EncodeToString(sum[:])))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(stored), strings.SplitN(pf.Proof.Checkpoint.GetSignedNote(), "\n\n", 2)[0]) {
		t.Fatalf("witness state after the fork:\n%s", stored)
	}
}
