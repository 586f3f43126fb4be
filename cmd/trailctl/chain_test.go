package main

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

func TestVerifyChain(t *testing.T) {
	chain := func(f *fixture, ses []*trailv1.StoredEntry) []string {
		return []string{"--chain", f.writeChain("chain.jsonl", ses)}
	}
	// all returns every entry of acme: 2026-11 leaves 0..39, 2026-12 0..9.
	all := func(f *fixture) []*trailv1.StoredEntry {
		return append(f.entries("acme", "2026-11", 0, 40), f.entries("acme", "2026-12", 0, 10)...)
	}
	runVerifyCases(t, []verifyCase{{
		name:     "one partition from the first entry",
		setup:    func(f *fixture) []string { return chain(f, f.entries("acme", "2026-11", 0, 40)) },
		wantCode: exitOK,
		wantOut: []string{
			"OK chain of 40 entries, leaves 0..39 of acme/2026-11",
			"NOTE the chain starts at the tenant's first entry (leaf 0 of 2026-11, previous leaf hash zero)",
		},
	}, {
		name:     "across a partition boundary",
		setup:    func(f *fixture) []string { return chain(f, all(f)) },
		wantCode: exitOK,
		wantOut:  []string{"OK chain of 50 entries, leaves 0..39 of acme/2026-11, leaves 0..9 of acme/2026-12"},
	}, {
		name:     "starts at a linked leaf 0",
		setup:    func(f *fixture) []string { return chain(f, f.entries("acme", "2026-12", 0, 10)) },
		wantCode: exitOK,
		wantOut: []string{
			"OK chain of 10 entries, leaves 0..9 of acme/2026-12",
			"NOTE the chain starts at leaf 0 of 2026-12, which links to partition 2026-11 (final size 40, root ",
		},
	}, {
		name:     "starts mid-log",
		setup:    func(f *fixture) []string { return chain(f, f.entries("acme", "2026-11", 10, 31)) },
		wantCode: exitOK,
		wantOut: []string{
			"OK chain of 21 entries, leaves 10..30 of acme/2026-11",
			"NOTE the chain starts at leaf 10 of 2026-11: its link to the entry before",
		},
	}, {
		name:     "mid-log across the boundary leaves the old root unchecked",
		setup:    func(f *fixture) []string { return chain(f, all(f)[30:]) },
		wantCode: exitOK,
		wantOut:  []string{"NOTE the root ", "was not checked: the chain does not hold all of 2026-11"},
	}, {
		name: "with its checkpoint",
		setup: func(f *fixture) []string {
			return append(chain(f, all(f)), "--vkey", f.vkeyFile, "--checkpoint", f.write("cp", []byte(f.checkpoint("acme", "2026-11", 0).GetSignedNote())))
		},
		wantCode: exitOK,
		wantOut: []string{
			"OK checkpoint test/acme/2026-11 size 40 ",
			"OK root of test/acme/2026-11 at size 40 rebuilt from the chain's leaf hashes matches the signed checkpoint",
		},
	}, {
		name: "with an earlier checkpoint",
		setup: func(f *fixture) []string {
			return append(chain(f, all(f)), "--vkey", f.vkeyFile, "--checkpoint", f.write("cp", []byte(f.checkpoint("acme", "2026-11", 21).GetSignedNote())))
		},
		wantCode: exitOK,
		wantOut:  []string{"OK root of test/acme/2026-11 at size 21 rebuilt"},
	}, {
		name: "from stdin",
		setup: func(f *fixture) []string {
			return []string{"--chain", "-"}
		},
		stdin:    func(f *fixture) string { return string(chainBytes(f.t, f.entries("acme", "2026-11", 0, 5))) },
		wantCode: exitOK,
		wantOut:  []string{"OK chain of 5 entries, leaves 0..4"},
	}, {
		name: "pruned entry",
		setup: func(f *fixture) []string {
			ses := f.entries("acme", "2026-11", 0, 40)
			prune(ses[7])
			return append(chain(f, ses), "--vkey", f.vkeyFile, "--checkpoint", f.write("cp", []byte(f.checkpoint("acme", "2026-11", 0).GetSignedNote())))
		},
		wantCode: exitOK,
		wantOut:  []string{"OK root of test/acme/2026-11 at size 40", "NOTE 1 entries are pruned"},
	}, {
		name: "missing entry",
		setup: func(f *fixture) []string {
			ses := f.entries("acme", "2026-11", 0, 40)
			return chain(f, slices.Delete(ses, 12, 13))
		},
		wantCode: exitFailed,
		wantErr:  "line 13: 2026-11 leaf 13: follows leaf 11 of the same partition: entries are missing",
	}, {
		name: "swapped entries",
		setup: func(f *fixture) []string {
			ses := f.entries("acme", "2026-11", 0, 40)
			ses[3], ses[4] = ses[4], ses[3]
			return chain(f, ses)
		},
		wantCode: exitFailed,
		wantErr:  "leaf 4: follows leaf 2",
	}, {
		name: "entry from a forked log",
		setup: func(f *fixture) []string {
			ses := f.entries("acme", "2026-11", 0, 40)
			ses[20] = forkedFixture(f.t, f).entries("acme", "2026-11", 20, 21)[0]
			return chain(f, ses)
		},
		wantCode: exitFailed,
		wantErr:  "2026-11 leaf 20: the chain is broken: merkle: entry 20 records previous leaf hash",
	}, {
		name: "tampered entry byte",
		setup: func(f *fixture) []string {
			ses := f.entries("acme", "2026-11", 0, 40)
			ses[9].EntryBytes[len(ses[9].EntryBytes)/2] ^= 1
			ses[9].Entry = nil
			return chain(f, ses)
		},
		wantCode: exitFailed,
		wantErr:  "the entry was altered",
	}, {
		name: "tampered entry byte without leaf hash breaks the next link",
		setup: func(f *fixture) []string {
			ses := f.entries("acme", "2026-11", 0, 40)
			i := bytes.Index(ses[9].EntryBytes, []byte("record.view"))
			ses[9].EntryBytes[i+len("record.view")-1]++ // still a well-formed entry
			ses[9].Entry, ses[9].LeafHash = nil, nil
			return chain(f, ses)
		},
		wantCode: exitFailed,
		wantErr:  "leaf 10: the chain is broken",
	}, {
		name: "edited decoded entry",
		setup: func(f *fixture) []string {
			ses := f.entries("acme", "2026-11", 0, 40)
			ses[9].Entry.Event.Actor.Id = "mallory"
			return chain(f, ses)
		},
		wantCode: exitFailed,
		wantErr:  "the decoded \"entry\" field differs from entry_bytes",
	}, {
		name: "partition skipped",
		setup: func(f *fixture) []string {
			return chain(f, append(f.entries("acme", "2026-11", 0, 39), f.entries("acme", "2026-12", 0, 10)...))
		},
		wantCode: exitFailed,
		wantErr:  "leaf 0 records a final size of 40 for 2026-11, but the chain's last entry there is leaf 38",
	}, {
		name: "enters a partition mid-way",
		setup: func(f *fixture) []string {
			return chain(f, append(f.entries("acme", "2026-11", 0, 40), f.entries("acme", "2026-12", 1, 10)...))
		},
		wantCode: exitFailed,
		wantErr:  "the chain enters partition 2026-12 at leaf 1, not leaf 0",
	}, {
		name: "another tenant's entry",
		setup: func(f *fixture) []string {
			ses := f.entries("acme", "2026-11", 0, 5)
			return chain(f, append(ses, f.entries("other", "2026-11", 0, 1)...))
		},
		wantCode: exitFailed,
		wantErr:  "entry of tenant \"other\" in a chain of tenant \"acme\"",
	}, {
		name: "checkpoint of a forked log",
		setup: func(f *fixture) []string {
			fork := forkedFixture(f.t, f)
			return append(chain(f, all(f)), "--vkey", f.vkeyFile, "--checkpoint", f.write("cp", []byte(fork.checkpoint("acme", "2026-11", 0).GetSignedNote())))
		},
		wantCode: exitFailed,
		wantErr:  "the chain's leaves 0..39 of 2026-11 hash to root",
	}, {
		name: "checkpoint the chain does not cover",
		setup: func(f *fixture) []string {
			return append(chain(f, f.entries("acme", "2026-11", 1, 40)), "--vkey", f.vkeyFile, "--checkpoint", f.write("cp", []byte(f.checkpoint("acme", "2026-11", 0).GetSignedNote())))
		},
		wantCode: exitFailed,
		wantErr:  "the chain does not hold leaves 0..39 of 2026-11",
	}, {
		name:     "empty",
		setup:    func(f *fixture) []string { return []string{"--chain", f.write("chain.jsonl", []byte("\n\n"))} },
		wantCode: exitFailed,
		wantErr:  "the chain has no entries",
	}, {
		name: "truncated",
		setup: func(f *fixture) []string {
			b := chainBytes(f.t, f.entries("acme", "2026-11", 0, 10))
			return []string{"--chain", f.write("chain.jsonl", b[:len(b)-40])}
		},
		wantCode: exitFailed,
		wantErr:  "line 10: not a StoredEntry",
	}, {
		name:     "garbage",
		setup:    func(f *fixture) []string { return []string{"--chain", f.write("chain.jsonl", []byte("\x00\xff{{{\n"))} },
		wantCode: exitFailed,
		wantErr:  "line 1: not a StoredEntry",
	}})
}

// prune makes se look as retention leaves it: leaf hash kept, payload gone.
func prune(se *trailv1.StoredEntry) {
	se.EntryBytes, se.Entry, se.Pruned = nil, nil, true
}

// TestChainCheckFirstEntry covers the anchoring rule for leaf 0 without a
// partition link: it must be the tenant's first entry.
func TestChainCheckFirstEntry(t *testing.T) {
	f := standardFixture(t)
	dec0 := f.entries("acme", "2026-12", 0, 1)[0]
	en := proto.Clone(dec0.GetEntry()).(*trailv1.Entry)
	en.PrevPartition = nil
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(en)
	if err != nil {
		t.Fatal(err)
	}
	forged := &trailv1.StoredEntry{TenantId: "acme", Partition: "2026-12", EntryBytes: b}
	var c chainCheck
	err = c.add(forged)
	if err == nil || !strings.Contains(err.Error(), "so it must be the tenant's first entry") {
		t.Fatalf("add(leaf 0 without link, non-zero prev) = %v", err)
	}
}
