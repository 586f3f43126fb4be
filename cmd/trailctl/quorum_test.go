package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/trailaudit/trail/merkle"
)

// TestVerifyQuorum: verify --checkpoint --cosigners requires the nodes'
// cosignatures on top of the log's signature, counts only valid ones by
// the keys listed, and refuses a forged one outright.
func TestVerifyQuorum(t *testing.T) {
	dir := t.TempDir()
	logSkey, logVkey, err := merkle.GenerateKey("q.trail", nil)
	if err != nil {
		t.Fatal(err)
	}
	logSigner, _ := merkle.NewSigner(logSkey)
	var nodeSigners []note.Signer
	var vkeys []string
	for _, id := range []string{"n1", "n2", "n3"} {
		skey, vkey, err := note.GenerateKey(nil, "q.trail/node/"+id)
		if err != nil {
			t.Fatal(err)
		}
		s, _ := note.NewSigner(skey)
		nodeSigners, vkeys = append(nodeSigners, s), append(vkeys, vkey)
	}
	_, strangerVkey, _ := note.GenerateKey(nil, "q.trail/node/n9")
	writeTestFile(t, filepath.Join(dir, "log.vkey"), logVkey+"\n")
	writeTestFile(t, filepath.Join(dir, "nodes.vkeys"), "# the cluster's nodes\n"+strings.Join(vkeys, "\n")+"\n")
	writeTestFile(t, filepath.Join(dir, "stranger.vkeys"), strangerVkey+"\n")

	cp := merkle.Checkpoint{Origin: "q.trail/acme/2026-12", Size: 7, Root: merkle.Hash{1, 2, 3}}
	note := func(signers ...note.Signer) string {
		t.Helper()
		b, err := note.Sign(&note.Note{Text: string(cp.Marshal())}, append([]note.Signer{logSigner}, signers...)...)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	forged := note(nodeSigners[0], nodeSigners[1])
	// One character inside n2's signature, past its key hash.
	i := len(forged) - 10
	c := byte('A')
	if forged[i] == 'A' {
		c = 'B'
	}
	forged = forged[:i] + string(c) + forged[i+1:]

	tests := []struct {
		name, note string
		flags      []string
		wantOK     bool
		want       string
	}{
		{"all three", note(nodeSigners...), nil, true, "cosigned by at least 2 of 3 nodes"},
		{"a majority", note(nodeSigners[0], nodeSigners[2]), nil, true, "OK checkpoint"},
		{"one is not a majority", note(nodeSigners[1]), nil, false, "cosigned by 1 of the 3 nodes listed, 2 required"},
		{"none", note(), nil, false, "carries no cosignature"},
		{"quorum of three", note(nodeSigners[0], nodeSigners[1]), []string{"--quorum", "3"}, false, "3 required"},
		{"a forged cosignature", forged, nil, false, "node cosignature"},
		{"without --cosigners no cosignature is needed", note(), []string{"--cosigners", ""}, true, "OK checkpoint"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, "cp.note")
			writeTestFile(t, path, tc.note)
			args := []string{"verify", "--checkpoint", path, "--vkey", filepath.Join(dir, "log.vkey"), "--cosigners", filepath.Join(dir, "nodes.vkeys")}
			res := runCLI(t, "", append(args, tc.flags...)...)
			if (res.code == exitOK) != tc.wantOK || !strings.Contains(res.stdout+res.stderr, tc.want) {
				t.Fatalf("exit %d, want ok=%v and %q:\n%s%s", res.code, tc.wantOK, tc.want, res.stdout, res.stderr)
			}
		})
	}

	for _, bad := range []struct {
		flags []string
		want  string
	}{
		{[]string{"--quorum", "2"}, "--quorum needs --cosigners"},
		{[]string{"--cosigners", filepath.Join(dir, "nodes.vkeys"), "--quorum", "4"}, "only 3 cosigning keys"},
		{[]string{"--cosigners", filepath.Join(dir, "log.vkey"), "--quorum", "-1"}, "--quorum must be positive"},
		{[]string{"--cosigners", filepath.Join(dir, "cp.note")}, "--cosigners"},
	} {
		args := append([]string{"verify", "--checkpoint", filepath.Join(dir, "cp.note"), "--vkey", filepath.Join(dir, "log.vkey")}, bad.flags...)
		if res := runCLI(t, "", args...); res.code != exitUsage || !strings.Contains(res.stderr, bad.want) {
			t.Errorf("%v: exit %d, stderr %q, want usage error %q", bad.flags, res.code, res.stderr, bad.want)
		}
	}
	// Only strangers' keys listed: the note's cosignatures count for nothing.
	writeTestFile(t, filepath.Join(dir, "cp.note"), note(nodeSigners...))
	res := runCLI(t, "", "verify", "--checkpoint", filepath.Join(dir, "cp.note"), "--vkey", filepath.Join(dir, "log.vkey"), "--cosigners", filepath.Join(dir, "stranger.vkeys"))
	if res.code == exitOK || !strings.Contains(res.stderr, "no cosignature by the nodes listed") {
		t.Errorf("strangers' keys: exit %d %s", res.code, res.stderr)
	}
}

// Against a real node: cluster status shows the node's cosigning key, and
// checkpoint --cosigned fetches a note that verify --cosigners accepts.
func TestCosignedCheckpointFromANode(t *testing.T) {
	rs := startRealServer(t)
	dir := t.TempDir()
	writeTestFile(t, filepath.Join(dir, "log.vkey"), rs.vkey+"\n")
	writeTestFile(t, filepath.Join(dir, "nodes.vkeys"), rs.cosignerKey+"\n")
	writeTestFile(t, filepath.Join(dir, "e.jsonl"), `{"tenant_id":"acme","event_id":"c-1","category":"authentication","action":"user.login",`+
		`"outcome":"OUTCOME_SUCCESS","actor":{"id":"alice"},"occurred_at":"2026-11-23T10:00:00Z"}`+"\n")
	rs.runOK(t, rs.admin, "append", "--jsonl", filepath.Join(dir, "e.jsonl"))
	if out := rs.runOK(t, rs.admin, "cluster", "status"); !strings.Contains(out, "cosigning key of n1: "+rs.cosignerKey) {
		t.Errorf("cluster status does not show the node's cosigning key:\n%s", out)
	}
	note := filepath.Join(dir, "cp.note")
	month := time.Now().UTC().Format("2006-01") // the sequencer's month
	rs.runOK(t, rs.admin, "checkpoint", "acme", month, "--cosigned", "--out", note)
	res := runCLI(t, "", "verify", "--checkpoint", note, "--vkey", filepath.Join(dir, "log.vkey"), "--cosigners", filepath.Join(dir, "nodes.vkeys"))
	if res.code != exitOK || !strings.Contains(res.stdout, "cosigned by at least 1 of 1 nodes") {
		t.Fatalf("exit %d: %s%s", res.code, res.stdout, res.stderr)
	}
	// Without --cosigned the note carries the log's signature only.
	rs.runOK(t, rs.admin, "checkpoint", "acme", month, "--out", note)
	if res := runCLI(t, "", "verify", "--checkpoint", note, "--vkey", filepath.Join(dir, "log.vkey"), "--cosigners", filepath.Join(dir, "nodes.vkeys")); res.code == exitOK {
		t.Fatalf("a note without cosignatures passed the quorum: %s", res.stdout)
	}
}
