package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/trailaudit/trail/merkle"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// verifyCase runs "trailctl verify" on files the setup writes.
type verifyCase struct {
	name     string
	setup    func(f *fixture) []string // returns the arguments after "verify"
	stdin    func(f *fixture) string
	wantCode int
	wantOut  []string // substrings of stdout
	wantErr  string   // substring of stderr
}

func runVerifyCases(t *testing.T, cases []verifyCase) {
	t.Helper()
	f := standardFixture(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			stdin := ""
			if tc.stdin != nil {
				stdin = tc.stdin(f)
			}
			r := runCLI(t, stdin, append([]string{"verify"}, tc.setup(f)...)...)
			if r.code != tc.wantCode {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, tc.wantCode, r.stdout, r.stderr)
			}
			for _, s := range tc.wantOut {
				if !strings.Contains(r.stdout, s) {
					t.Errorf("stdout lacks %q:\n%s", s, r.stdout)
				}
			}
			if !strings.Contains(r.stderr, tc.wantErr) {
				t.Errorf("stderr lacks %q:\n%s", tc.wantErr, r.stderr)
			}
			if tc.wantCode == exitFailed && !strings.Contains(r.stderr, "FAILED") {
				t.Errorf("a verification failure must say FAILED:\n%s", r.stderr)
			}
		})
	}
}

func TestVerifyProof(t *testing.T) {
	proofArgs := func(f *fixture, name string, pf proofFile) []string {
		return []string{"--vkey", f.vkeyFile, "--proof", f.writeProof(name, pf)}
	}
	runVerifyCases(t, []verifyCase{{
		name:     "current size",
		setup:    func(f *fixture) []string { return proofArgs(f, "p.json", f.proof("acme", "acme-17", 0)) },
		wantCode: exitOK,
		wantOut: []string{
			"OK checkpoint test/acme/2026-11 size 40 root ",
			"signed by key test+",
			"OK inclusion of leaf 17 (event acme-17) in tree of size 40 of test/acme/2026-11",
		},
	}, {
		name:     "earlier size",
		setup:    func(f *fixture) []string { return proofArgs(f, "p.json", f.proof("acme", "acme-3", 20)) },
		wantCode: exitOK,
		wantOut:  []string{"OK inclusion of leaf 3 (event acme-3) in tree of size 20"},
	}, {
		name:     "last leaf of a later partition",
		setup:    func(f *fixture) []string { return proofArgs(f, "p.json", f.proof("acme", "acme-49", 0)) },
		wantCode: exitOK,
		wantOut:  []string{"OK inclusion of leaf 9 (event acme-49) in tree of size 10 of test/acme/2026-12"},
	}, {
		name: "expectations met",
		setup: func(f *fixture) []string {
			return append(proofArgs(f, "p.json", f.proof("acme", "acme-1", 0)), "--tenant", "acme", "--partition", "2026-11", "--event", "acme-1")
		},
		wantCode: exitOK,
	}, {
		name: "from stdin",
		setup: func(f *fixture) []string {
			return []string{"--vkey", f.vkeyFile, "--proof", "-"}
		},
		stdin: func(f *fixture) string {
			b, _ := encodeProofFile(f.proof("acme", "acme-2", 0))
			return string(b)
		},
		wantCode: exitOK,
		wantOut:  []string{"OK inclusion of leaf 2"},
	}, {
		name: "pruned payload proves the leaf hash only",
		setup: func(f *fixture) []string {
			pf := f.proof("acme", "acme-5", 0)
			pf.Proof.EntryBytes = nil
			return proofArgs(f, "p.json", pf)
		},
		wantCode: exitOK,
		wantOut:  []string{"OK inclusion of leaf 5 (payload pruned: only its leaf hash"},
	}, {
		name: "tampered entry byte",
		setup: func(f *fixture) []string {
			pf := f.proof("acme", "acme-17", 0)
			pf.Proof.EntryBytes[len(pf.Proof.EntryBytes)/2] ^= 1
			return proofArgs(f, "p.json", pf)
		},
		wantCode: exitFailed,
		wantErr:  "the entry was altered",
	}, {
		name: "tampered entry byte and leaf hash dropped",
		setup: func(f *fixture) []string {
			pf := f.proof("acme", "acme-17", 0)
			// Still a well-formed entry: the action becomes "record.viex".
			i := bytes.Index(pf.Proof.EntryBytes, []byte("record.view"))
			pf.Proof.EntryBytes[i+len("record.view")-1]++
			pf.Proof.LeafHash = nil
			return proofArgs(f, "p.json", pf)
		},
		wantCode: exitFailed,
		wantErr:  "computed root",
	}, {
		name: "tampered proof hash",
		setup: func(f *fixture) []string {
			pf := f.proof("acme", "acme-17", 0)
			pf.Proof.Proof[1][0] ^= 0x80
			return proofArgs(f, "p.json", pf)
		},
		wantCode: exitFailed,
		wantErr:  "leaf 17 is not proven in test/acme/2026-11 at size 40",
	}, {
		name: "proof hash dropped",
		setup: func(f *fixture) []string {
			pf := f.proof("acme", "acme-17", 0)
			pf.Proof.Proof = pf.Proof.Proof[1:]
			return proofArgs(f, "p.json", pf)
		},
		wantCode: exitFailed,
		wantErr:  "invalid proof",
	}, {
		name: "short proof hash",
		setup: func(f *fixture) []string {
			pf := f.proof("acme", "acme-17", 0)
			pf.Proof.Proof[0] = pf.Proof.Proof[0][:31]
			return proofArgs(f, "p.json", pf)
		},
		wantCode: exitFailed,
		wantErr:  "proof element 0: hash is 31 bytes, want 32",
	}, {
		name: "wrong vkey",
		setup: func(f *fixture) []string {
			return []string{"--vkey", f.otherKeyFile(), "--proof", f.writeProof("p.json", f.proof("acme", "acme-17", 0))}
		},
		wantCode: exitFailed,
		wantErr:  "checkpoint is not signed by key test+",
	}, {
		name: "wrong tree size",
		setup: func(f *fixture) []string {
			pf := f.proof("acme", "acme-17", 20)
			pf.Proof.TreeSize = 40
			return proofArgs(f, "p.json", pf)
		},
		wantCode: exitFailed,
		wantErr:  "proof is for tree size 40 but its checkpoint is for size 20",
	}, {
		name: "checkpoint of the right size swapped in",
		setup: func(f *fixture) []string {
			pf := f.proof("acme", "acme-17", 20)
			pf.Proof.Checkpoint = f.checkpoint("acme", "2026-11", 0)
			pf.Proof.TreeSize = 40
			return proofArgs(f, "p.json", pf)
		},
		wantCode: exitFailed,
		wantErr:  "leaf 17 is not proven",
	}, {
		name: "edited unsigned tree_size",
		setup: func(f *fixture) []string {
			pf := f.proof("acme", "acme-17", 0)
			pf.Proof.Checkpoint.TreeSize = 41
			return proofArgs(f, "p.json", pf)
		},
		wantCode: exitFailed,
		wantErr:  "checkpoint field tree_size 41 differs from the signed size 40",
	}, {
		name: "checkpoint of another partition",
		setup: func(f *fixture) []string {
			pf := f.proof("acme", "acme-17", 0)
			pf.Proof.Checkpoint = f.checkpoint("acme", "2026-12", 0)
			return proofArgs(f, "p.json", pf)
		},
		wantCode: exitFailed,
		wantErr:  "checkpoint test/acme/2026-12 is not for tenant \"acme\" partition \"2026-11\"",
	}, {
		name: "checkpoint of another tenant",
		setup: func(f *fixture) []string {
			pf := f.proof("acme", "acme-2", 0)
			pf.TenantID = "other"
			return proofArgs(f, "p.json", pf)
		},
		wantCode: exitFailed,
		wantErr:  "is not for tenant \"other\"",
	}, {
		name: "another tenant's entry under this tenant's checkpoint",
		setup: func(f *fixture) []string {
			pf := f.proof("acme", "acme-2", 0)
			other := f.proof("other", "other-2", 0)
			pf.Proof.EntryBytes, pf.Proof.LeafHash = other.Proof.EntryBytes, other.Proof.LeafHash
			return proofArgs(f, "p.json", pf)
		},
		wantCode: exitFailed,
		wantErr:  "entry belongs to tenant \"other\", not \"acme\"",
	}, {
		name: "entry of another leaf",
		setup: func(f *fixture) []string {
			pf := f.proof("acme", "acme-2", 0)
			pf.Proof.EntryBytes = f.proof("acme", "acme-3", 0).Proof.EntryBytes
			pf.Proof.LeafHash = nil
			return proofArgs(f, "p.json", pf)
		},
		wantCode: exitFailed,
		wantErr:  "entry records leaf index 3, not 2",
	}, {
		name: "checkpoint of another log",
		setup: func(f *fixture) []string {
			pf := f.proof("acme", "acme-17", 0)
			cp := f.mustOpen(pf.Proof.Checkpoint)
			cp.Origin = "prod/acme/2026-11"
			pf.Proof.Checkpoint = signCheckpoint(f.t, f.signer, cp)
			return proofArgs(f, "p.json", pf)
		},
		wantCode: exitFailed,
		wantErr:  "checkpoint origin \"prod/acme/2026-11\" belongs to log \"prod\", want log \"test\"",
	}, {
		name: "--log accepts another log name",
		setup: func(f *fixture) []string {
			pf := f.proof("acme", "acme-17", 0)
			return append(proofArgs(f, "p.json", pf), "--log", "prod")
		},
		wantCode: exitFailed,
		wantErr:  "want log \"prod\"",
	}, {
		name: "unexpected event",
		setup: func(f *fixture) []string {
			return append(proofArgs(f, "p.json", f.proof("acme", "acme-1", 0)), "--event", "acme-2")
		},
		wantCode: exitFailed,
		wantErr:  "the proof is of event \"acme-1\", not \"acme-2\"",
	}, {
		name: "unexpected tenant",
		setup: func(f *fixture) []string {
			return append(proofArgs(f, "p.json", f.proof("acme", "acme-1", 0)), "--tenant", "other")
		},
		wantCode: exitFailed,
		wantErr:  "the evidence is about tenant \"acme\", not \"other\"",
	}, {
		name: "truncated file",
		setup: func(f *fixture) []string {
			b, _ := encodeProofFile(f.proof("acme", "acme-17", 0))
			return []string{"--vkey", f.vkeyFile, "--proof", f.write("p.json", b[:len(b)/2])}
		},
		wantCode: exitFailed,
		wantErr:  "proof file is not a JSON object",
	}, {
		name: "garbage file",
		setup: func(f *fixture) []string {
			return []string{"--vkey", f.vkeyFile, "--proof", f.write("p.json", []byte("\x00\x01garbage\xff"))}
		},
		wantCode: exitFailed,
		wantErr:  "proof file is not a JSON object",
	}, {
		name: "unknown field",
		setup: func(f *fixture) []string {
			return []string{"--vkey", f.vkeyFile, "--proof", f.write("p.json", []byte(`{"tenant_id":"acme","leaf":3}`))}
		},
		wantCode: exitFailed,
		wantErr:  "unknown field",
	}, {
		name: "no tenant",
		setup: func(f *fixture) []string {
			return []string{"--vkey", f.vkeyFile, "--proof", f.write("p.json", []byte(`{"partition":"2026-11"}`))}
		},
		wantCode: exitFailed,
		wantErr:  "proof file has no \"tenant_id\"",
	}, {
		name:     "missing file",
		setup:    func(f *fixture) []string { return []string{"--vkey", f.vkeyFile, "--proof", f.dir + "/nope.json"} },
		wantCode: exitIO,
		wantErr:  "no such file",
	}})
}

// mustOpen returns a signed checkpoint's body, for re-signing variants.
func (f *fixture) mustOpen(pb *trailv1.Checkpoint) merkle.Checkpoint {
	f.t.Helper()
	v, err := merkle.NewVerifier(f.vkey)
	if err != nil {
		f.t.Fatal(err)
	}
	cp, err := merkle.OpenCheckpoint([]byte(pb.GetSignedNote()), v)
	if err != nil {
		f.t.Fatal(err)
	}
	return cp
}

func TestVerifyConsistency(t *testing.T) {
	args := func(f *fixture, r *trailv1.GetConsistencyProofResponse) []string {
		return []string{"--vkey", f.vkeyFile, "--consistency", f.writeConsistency("c.json", r)}
	}
	runVerifyCases(t, []verifyCase{{
		name:     "prefix",
		setup:    func(f *fixture) []string { return args(f, f.consistency("acme", "2026-11", 13, 40)) },
		wantCode: exitOK,
		wantOut: []string{
			"OK checkpoint test/acme/2026-11 size 13 ",
			"OK checkpoint test/acme/2026-11 size 40 ",
			"OK consistency of test/acme/2026-11 from size 13 to size 40",
		},
	}, {
		name:     "power of two",
		setup:    func(f *fixture) []string { return args(f, f.consistency("acme", "2026-11", 32, 40)) },
		wantCode: exitOK,
	}, {
		name:     "same size",
		setup:    func(f *fixture) []string { return args(f, f.consistency("acme", "2026-12", 10, 10)) },
		wantCode: exitOK,
		wantOut:  []string{"OK consistency of test/acme/2026-12 from size 10 to size 10"},
	}, {
		name: "tampered proof hash",
		setup: func(f *fixture) []string {
			r := f.consistency("acme", "2026-11", 13, 40)
			r.Proof[0][5] ^= 1
			return args(f, r)
		},
		wantCode: exitFailed,
		wantErr:  "test/acme/2026-11 at size 13 is not proven a prefix of size 40",
	}, {
		name: "wrong vkey",
		setup: func(f *fixture) []string {
			return []string{"--vkey", f.otherKeyFile(), "--consistency", f.writeConsistency("c.json", f.consistency("acme", "2026-11", 13, 40))}
		},
		wantCode: exitFailed,
		wantErr:  "from_checkpoint: checkpoint is not signed by key",
	}, {
		name: "checkpoints of different partitions",
		setup: func(f *fixture) []string {
			r := f.consistency("acme", "2026-11", 5, 10)
			r.ToCheckpoint = f.checkpoint("acme", "2026-12", 10)
			return args(f, r)
		},
		wantCode: exitFailed,
		wantErr:  "the checkpoints are for different partitions: test/acme/2026-11 and test/acme/2026-12",
	}, {
		name: "wrong size",
		setup: func(f *fixture) []string {
			r := f.consistency("acme", "2026-11", 13, 40)
			r.FromSize = 12
			return args(f, r)
		},
		wantCode: exitFailed,
		wantErr:  "proof is for sizes 12..40 but the checkpoints are for sizes 13..40",
	}, {
		name: "checkpoint of a forked log",
		setup: func(f *fixture) []string {
			r := f.consistency("acme", "2026-11", 13, 40)
			fork := forkedFixture(f.t, f)
			r.ToCheckpoint = fork.checkpoint("acme", "2026-11", 40)
			return args(f, r)
		},
		wantCode: exitFailed,
		wantErr:  "root mismatch",
	}, {
		name: "truncated file",
		setup: func(f *fixture) []string {
			b, _ := encodeConsistencyFile(f.consistency("acme", "2026-11", 13, 40))
			return []string{"--vkey", f.vkeyFile, "--consistency", f.write("c.json", b[:len(b)-20])}
		},
		wantCode: exitFailed,
		wantErr:  "consistency file",
	}})
}

// forkedFixture is a second log under the same key whose tenant acme has
// the same shape as standardFixture's but different events: the picture of
// a log that was rewritten and re-signed.
func forkedFixture(t testing.TB, base *fixture) *fixture {
	f := newFixture(t)
	f.signer, f.vkey, f.vkeyFile = base.signer, base.vkey, base.vkeyFile
	f.appendEvents("acme", "forked", 0, 25, nov)
	f.appendEvents("acme", "forked", 25, 15, nov.Add(time.Hour))
	f.appendEvents("acme", "forked", 40, 10, dec)
	return f
}

func TestVerifyCheckpoint(t *testing.T) {
	note := func(f *fixture, pb *trailv1.Checkpoint) string { return f.write("cp.note", []byte(pb.GetSignedNote())) }
	runVerifyCases(t, []verifyCase{{
		name: "valid",
		setup: func(f *fixture) []string {
			return []string{"--vkey", f.vkeyFile, "--checkpoint", note(f, f.checkpoint("acme", "2026-11", 0))}
		},
		wantCode: exitOK,
		wantOut:  []string{"OK checkpoint test/acme/2026-11 size 40 root "},
	}, {
		name: "wrong vkey",
		setup: func(f *fixture) []string {
			return []string{"--vkey", f.otherKeyFile(), "--checkpoint", note(f, f.checkpoint("acme", "2026-11", 0))}
		},
		wantCode: exitFailed,
		wantErr:  "not signed by key",
	}, {
		name: "edited size",
		setup: func(f *fixture) []string {
			n := strings.Replace(f.checkpoint("acme", "2026-11", 0).GetSignedNote(), "\n40\n", "\n41\n", 1)
			return []string{"--vkey", f.vkeyFile, "--checkpoint", f.write("cp.note", []byte(n))}
		},
		wantCode: exitFailed,
		wantErr:  "not signed by key",
	}, {
		name: "other partition than expected",
		setup: func(f *fixture) []string {
			return []string{"--vkey", f.vkeyFile, "--checkpoint", note(f, f.checkpoint("acme", "2026-11", 0)), "--partition", "2026-12"}
		},
		wantCode: exitFailed,
		wantErr:  "the evidence is about partition 2026-11, not 2026-12",
	}, {
		name: "garbage",
		setup: func(f *fixture) []string {
			return []string{"--vkey", f.vkeyFile, "--checkpoint", f.write("cp.note", []byte("hello\n"))}
		},
		wantCode: exitFailed,
		wantErr:  "not signed by key",
	}})
}

func TestVerifyUsage(t *testing.T) {
	runVerifyCases(t, []verifyCase{{
		name:     "no evidence",
		setup:    func(f *fixture) []string { return []string{"--vkey", f.vkeyFile} },
		wantCode: exitUsage,
		wantErr:  "give one of --proof, --consistency, --checkpoint and --chain",
	}, {
		name:     "two kinds",
		setup:    func(f *fixture) []string { return []string{"--vkey", f.vkeyFile, "--proof", "a", "--chain", "b"} },
		wantCode: exitUsage,
		wantErr:  "give one of --proof, --consistency and --chain",
	}, {
		name:     "no vkey",
		setup:    func(f *fixture) []string { return []string{"--proof", "a"} },
		wantCode: exitUsage,
		wantErr:  "--vkey FILE is required",
	}, {
		name: "bad vkey",
		setup: func(f *fixture) []string {
			return []string{"--vkey", f.write("bad.vkey", []byte("not a key")), "--checkpoint", "x"}
		},
		wantCode: exitUsage,
		wantErr:  "parse verifier key",
	}, {
		name:     "unknown flag",
		setup:    func(f *fixture) []string { return []string{"--vkey", f.vkeyFile, "--addr", "x:1"} },
		wantCode: exitUsage,
		wantErr:  "flag provided but not defined: -addr",
	}, {
		name:     "positional argument",
		setup:    func(f *fixture) []string { return []string{"--vkey", f.vkeyFile, "proof.json"} },
		wantCode: exitUsage,
		wantErr:  "usage: trailctl verify",
	}, {
		name: "bad partition",
		setup: func(f *fixture) []string {
			return []string{"--vkey", f.vkeyFile, "--checkpoint", "x", "--partition", "2026-13"}
		},
		wantCode: exitUsage,
		wantErr:  "invalid partition",
	}})
}

// TestVerifyIsOffline shows verify has no way to reach a server: it
// registers no connection flags, and it verifies with TRAIL_ADDR pointing
// at a port nothing listens on (runCLI's environment).
func TestVerifyIsOffline(t *testing.T) {
	r := runCLI(t, "", "verify", "-h")
	if r.code != exitOK {
		t.Fatalf("verify -h: exit %d: %s", r.code, r.stderr)
	}
	for _, flag := range []string{"-addr", "-token", "-tls", "-insecure", "-timeout"} {
		if strings.Contains(r.stdout, flag+" ") {
			t.Errorf("verify has the connection flag %s:\n%s", flag, r.stdout)
		}
	}
	f := standardFixture(t)
	r = runCLI(t, "", "verify", "--vkey", f.vkeyFile, "--proof", f.writeProof("p.json", f.proof("acme", "acme-1", 0)))
	if r.code != exitOK {
		t.Fatalf("offline verify: exit %d: %s", r.code, r.stderr)
	}
}

func TestVerifyJSON(t *testing.T) {
	f := standardFixture(t)
	for _, tc := range []struct {
		name   string
		tamper bool
		code   int
	}{{"ok", false, exitOK}, {"failed", true, exitFailed}} {
		t.Run(tc.name, func(t *testing.T) {
			pf := f.proof("acme", "acme-4", 0)
			if tc.tamper {
				pf.Proof.Proof[0][0] ^= 1
			}
			r := runCLI(t, "", "verify", "--json", "--vkey", f.vkeyFile, "--proof", f.writeProof("p.json", pf))
			if r.code != tc.code {
				t.Fatalf("exit %d, want %d: %s", r.code, tc.code, r.stderr)
			}
			var res verifyResult
			if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
				t.Fatalf("stdout is not JSON: %v\n%s", err, r.stdout)
			}
			if res.OK != !tc.tamper || (res.Error != "") != tc.tamper {
				t.Errorf("result %+v", res)
			}
			if !tc.tamper && len(res.Verified) != 2 {
				t.Errorf("verified %q, want the checkpoint and the inclusion", res.Verified)
			}
		})
	}
}

// TestProofFileRoundTrip checks the proof file format: tenant_id added
// beside the response's own fields, and nothing lost.
func TestProofFileRoundTrip(t *testing.T) {
	f := standardFixture(t)
	pf := f.proof("acme", "acme-9", 0)
	b, err := encodeProofFile(pf)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"tenant_id", "partition", "leaf_index", "tree_size", "leaf_hash", "proof", "checkpoint", "entry_bytes"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("proof file lacks %q:\n%s", k, b)
		}
	}
	back, err := decodeProofFile(b)
	if err != nil {
		t.Fatal(err)
	}
	if back.TenantID != "acme" || !proto.Equal(back.Proof, pf.Proof) {
		t.Errorf("round trip changed the proof")
	}
}
