package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trailaudit/trail/internal/syncbuf"
	"github.com/trailaudit/trail/merkle"
)

// TestExportAndVerifyBundle runs "trailctl export" against a real server
// and "trailctl verify --bundle" on what it wrote, and on altered copies.
func TestExportAndVerifyBundle(t *testing.T) {
	rs := startRealServer(t)
	dir := t.TempDir()
	vkey := filepath.Join(dir, "log.vkey")
	otherVKey := filepath.Join(dir, "other.vkey")
	writeTestFile(t, vkey, rs.vkey+"\n")
	_, other, err := merkle.GenerateKey("test.trail", nil)
	if err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, otherVKey, other+"\n")
	var events strings.Builder
	for i := range 20 {
		fmt.Fprintf(&events, `{"tenant_id":"acme","event_id":"e-%d","category":"CATEGORY_DATA_ACCESS","action":"record.view",`+
			`"outcome":"OUTCOME_SUCCESS","actor":{"id":"user-%d"},"occurred_at":"2026-11-23T10:00:00Z"}`+"\n", i, i%2)
	}
	jsonl := filepath.Join(dir, "events.jsonl")
	writeTestFile(t, jsonl, events.String())
	rs.runOK(t, rs.admin, "append", "--jsonl", jsonl)

	full := filepath.Join(dir, "acme.trail-bundle.jsonl")
	rs.runOK(t, rs.admin, "export", "--tenant", "acme", "-o", full)
	out := rs.runOK(t, "", "verify", "--vkey", vkey, "--bundle", full, "--tenant", "acme")
	// The tenant's log holds the 20 events and whatever the server's
	// anomaly detector recorded about them: one unbroken run of it all.
	var n int
	if _, err := fmt.Sscanf(out[strings.Index(out, "\nOK ")+1:], "OK checkpoint test.trail/acme/%7s size %d", new(string), &n); err != nil || n < 20 {
		t.Fatalf("verify output (%d entries, %v):\n%s", n, err, out)
	}
	for _, want := range []string{
		fmt.Sprintf("OK %d entries (0 pruned) in 1 partitions", n),
		"by 1 run proofs", // one run: the whole partition
		fmt.Sprintf("OK chain: %d prev_leaf_hash links checked in 1 runs", n-1),
		"OK manifest: sha256",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("verify output lacks %q:\n%s", want, out)
		}
	}

	// Filtered, verified on download; and to stdout.
	out = rs.runOK(t, rs.admin, "export", "--tenant", "acme", "--actor", "user-1", "-o", filepath.Join(dir, "u1.jsonl"), "--vkey", vkey)
	if !strings.Contains(out, "OK manifest") || !strings.Contains(out, "actor:user-1") {
		t.Errorf("export --vkey output:\n%s", out)
	}
	// Sets of values: several categories, actors and actions at once.
	out = rs.runOK(t, rs.admin, "export", "--tenant", "acme", "--category", "data_access,security", "--category", "system",
		"--actor", "user-0", "--actor", "user-1", "--action", "record.view", "-o", filepath.Join(dir, "set.jsonl"), "--vkey", vkey)
	if !strings.Contains(out, "OK 20 entries") || !strings.Contains(out, "actor:user-0,user-1 category:data_access,system,security action:record.view") {
		t.Errorf("export with sets of values:\n%s", out)
	}
	stdout := rs.runOK(t, rs.admin, "export", "--tenant", "acme", "--from", "2020-01-01", "-o", "-")
	if !strings.HasPrefix(stdout, `{"type":"header"`) || !strings.Contains(stdout, `"type":"manifest"`) {
		t.Errorf("export -o - wrote:\n%.300s", stdout)
	}

	data, err := os.ReadFile(full)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(data, []byte(`"entry":"`)) + len(`"entry":"`) + 30
	altered := bytes.Clone(data)
	altered[i] = map[bool]byte{true: 'B', false: 'A'}[altered[i] == 'A']
	lines := bytes.SplitAfter(data, []byte("\n"))
	// Lines 0 to 3: header, checkpoint, run, leaf 0.
	dropped := bytes.Join(append(append([][]byte{}, lines[:3]...), lines[4:]...), nil)

	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"entry altered", []string{"verify", "--vkey", vkey, "--bundle", writeTemp(t, dir, altered)}, exitFailed, "the entry was altered"},
		{"entry line dropped", []string{"verify", "--vkey", vkey, "--bundle", writeTemp(t, dir, dropped)}, exitFailed, "entries missing"},
		{"truncated", []string{"verify", "--vkey", vkey, "--bundle", writeTemp(t, dir, data[:len(data)/2])}, exitFailed, "bundle truncated"},
		{"wrong key", []string{"verify", "--vkey", otherVKey, "--bundle", full}, exitFailed, "not the trusted log key"},
		{"wrong tenant", []string{"verify", "--vkey", vkey, "--bundle", full, "--tenant", "globex"}, exitFailed, `not "globex"`},
		{"missing file", []string{"verify", "--vkey", vkey, "--bundle", filepath.Join(dir, "nope")}, exitIO, "no such file"},
		{"bundle with checkpoint", []string{"verify", "--vkey", vkey, "--bundle", full, "--checkpoint", full}, exitUsage, "--checkpoint goes alone"},
		{"bundle with partition", []string{"verify", "--vkey", vkey, "--bundle", full, "--partition", "2026-11"}, exitUsage, "--partition does not apply"},
		{"export without tenant", []string{"export", "-o", "x"}, exitUsage, "--tenant"},
		{"export to stdout with vkey", []string{"export", "--tenant", "acme", "-o", "-", "--vkey", vkey}, exitUsage, "does not go with -o -"},
		{"export target type alone", []string{"export", "--tenant", "acme", "--target-type", "record"}, exitUsage, "go together"},
		{"export target without id", []string{"export", "--tenant", "acme", "--target", "record"}, exitUsage, "want TYPE/ID"},
		{"export unknown category", []string{"export", "--tenant", "acme", "--category", "data_access,gossip"}, exitUsage, `unknown category "gossip"`},
		{"export empty purpose", []string{"export", "--tenant", "acme", "--purpose", ""}, exitUsage, "purpose_codes: an empty value matches nothing"},
		{"export by subject as admin", []string{"export", "--tenant", "acme", "--subject", "c-1", "-o", filepath.Join(dir, "s.jsonl")}, exitOK, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb syncbuf.Buffer
			code := rs.run(context.Background(), rs.admin, &out, &errb, tc.args...)
			if code != tc.code || !strings.Contains(errb.String(), tc.want) {
				t.Fatalf("exit %d (want %d), stderr lacks %q:\n%s%s", code, tc.code, tc.want, out.String(), errb.String())
			}
			if tc.code == exitFailed && !strings.Contains(errb.String(), "FAILED") {
				t.Fatalf("a failed verification must say FAILED:\n%s", errb.String())
			}
		})
	}
}

func writeTestFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

// writeTemp writes data to a new file in dir and returns its path.
func writeTemp(t *testing.T, dir string, data []byte) string {
	t.Helper()
	f, err := os.CreateTemp(dir, "bundle-*.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	return f.Name()
}
