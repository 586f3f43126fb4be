package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestBinaryExitCodes builds the real binary and checks the documented
// exit codes of verify as a script sees them.
func TestBinaryExitCodes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "trailctl")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	f := standardFixture(t)
	good := f.writeProof("good.json", f.proof("acme", "acme-17", 0))
	bad := f.proof("acme", "acme-17", 0)
	bad.Proof.EntryBytes[3] ^= 1
	tampered := f.writeProof("bad.json", bad)
	chain := f.writeChain("chain.jsonl", f.entries("acme", "2026-11", 0, 40))

	for _, tc := range []struct {
		name string
		args []string
		code int
		out  string
	}{
		{"valid proof", []string{"verify", "--vkey", f.vkeyFile, "--proof", good}, exitOK, "OK inclusion of leaf 17 (event acme-17)"},
		{"valid chain", []string{"verify", "--chain", chain}, exitOK, "OK chain of 40 entries, leaves 0..39"},
		{"tampered proof", []string{"verify", "--vkey", f.vkeyFile, "--proof", tampered}, exitFailed, "FAILED"},
		{"wrong key", []string{"verify", "--vkey", f.otherKeyFile(), "--proof", good}, exitFailed, "not signed by key"},
		{"usage", []string{"verify", "--vkey", f.vkeyFile}, exitUsage, "give one of"},
		{"missing file", []string{"verify", "--vkey", f.vkeyFile, "--proof", filepath.Join(f.dir, "none")}, exitIO, "no such file"},
		{"no command", nil, exitUsage, "usage: trailctl COMMAND"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(bin, tc.args...)
			// No server anywhere: verify must not need one.
			cmd.Env = append(os.Environ(), "TRAIL_ADDR=127.0.0.1:1")
			out, err := cmd.CombinedOutput()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tc.code || !strings.Contains(string(out), tc.out) {
				t.Errorf("exit %d, want %d; output:\n%s", code, tc.code, out)
			}
		})
	}
}
