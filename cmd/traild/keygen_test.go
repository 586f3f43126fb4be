package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/trailaudit/trail/merkle"
)

func TestKeygen(t *testing.T) {
	out := filepath.Join(t.TempDir(), "secrets")
	stdout := mustRun(t, "keygen", "--name", "audit.example", "--out", out)
	checkKeyFiles(t, out)
	vkey, err := os.ReadFile(filepath.Join(out, vkeyName))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout, strings.TrimSpace(string(vkey))) {
		t.Errorf("keygen did not print the verifier key: %s", stdout)
	}
	if _, err := merkle.NewVerifier(strings.TrimSpace(string(vkey))); err != nil || !strings.HasPrefix(string(vkey), "audit.example+") {
		t.Errorf("verifier key %q: %v", vkey, err)
	}

	// Never overwrite a key: every checkpoint signed with it would be orphaned.
	code, _, stderr := runSync(t, nil, "keygen", "--name", "audit.example", "--out", out)
	if code != exitError || !strings.Contains(stderr, "file exists") {
		t.Errorf("second keygen: exit %d, stderr %q", code, stderr)
	}
	// --exist-ok accepts the pair if it is valid and has the right name.
	if code, _, stderr := runSync(t, nil, "keygen", "--name", "audit.example", "--out", out, "--exist-ok"); code != exitOK {
		t.Errorf("--exist-ok: exit %d: %s", code, stderr)
	}
	if code, _, stderr := runSync(t, nil, "keygen", "--name", "other", "--out", out, "--exist-ok"); code != exitError {
		t.Errorf("--exist-ok with another name: exit %d: %s", code, stderr)
	}
	after, _ := os.ReadFile(filepath.Join(out, vkeyName))
	if string(after) != string(vkey) {
		t.Error("the key changed")
	}
	if code, _, _ := runSync(t, nil, "keygen", "--name", "bad name"); code != exitUsage {
		t.Errorf("bad name: exit %d, want %d", code, exitUsage)
	}
}

func TestVersionAndUsage(t *testing.T) {
	if code, stdout, _ := runSync(t, nil, "version"); code != exitOK || !strings.HasPrefix(stdout, "traild ") {
		t.Errorf("version: exit %d, %q", code, stdout)
	}
	if code, stdout, _ := runSync(t, nil, "help"); code != exitOK || !strings.Contains(stdout, "keygen") {
		t.Errorf("help: exit %d, %q", code, stdout)
	}
	if code, _, _ := runSync(t, nil, "frobnicate"); code != exitUsage {
		t.Errorf("unknown command: exit %d", code)
	}
	if code, _, stderr := runSync(t, nil, "serve", "-h"); code != exitOK || !strings.Contains(stderr, "TRAIL_RAFT_TLS_CA_FILE") {
		t.Errorf("serve -h: exit %d, %q", code, stderr)
	}
}

func TestConfigCommand(t *testing.T) {
	code, stdout, stderr := runSync(t, map[string]string{"TRAIL_LOG_FORMAT": "json"}, "config", "--grpc-addr", "127.0.0.1:9")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{`grpc_addr\s+127\.0\.0\.1:9\s+flag`, `log_format\s+json\s+env`, `http_addr\s+127\.0\.0\.1:7080\s+default`,
		`log_key_file\s+\(<data_dir>/log\.skey\)`, `join\s+\(none\)`} {
		if !regexp.MustCompile(want).MatchString(stdout) {
			t.Errorf("config output does not match %s:\n%s", want, stdout)
		}
	}
}
