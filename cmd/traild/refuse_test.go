package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestRefusals starts traild in situations where it must not run, and
// checks each exits non-zero with one clear line, having written nothing
// it should not have.
func TestRefusals(t *testing.T) {
	cases := []struct {
		name string
		// setup prepares dir and returns the arguments of the failing start.
		setup func(t *testing.T, dir string) []string
		want  string // regexp the message must match
		code  int
	}{
		{
			name: "data directory of another cluster",
			setup: func(t *testing.T, dir string) []string {
				mustRun(t, "init", "--data-dir", dir, "--cluster-id", "alpha")
				return []string{"--cluster-id", "beta"}
			},
			want: `data directory .* belongs to cluster "alpha", not "beta" \(cluster_id\)`,
		},
		{
			name: "node id mismatch",
			setup: func(t *testing.T, dir string) []string {
				mustRun(t, "init", "--data-dir", dir, "--node-id", "n1")
				return []string{"--node-id", "n2"}
			},
			want: `belongs to node "n1", not "n2" \(node_id\)`,
		},
		{
			name: "log name mismatch",
			setup: func(t *testing.T, dir string) []string {
				mustRun(t, "init", "--data-dir", dir)
				return []string{"--log-name", "other"}
			},
			want: `holds log "trail", not "other" \(log_name\)`,
		},
		{
			name: "sealing key too short",
			setup: func(t *testing.T, dir string) []string {
				mustRun(t, "init", "--data-dir", dir)
				return []string{"--sealing-key-file", writeFile(t, filepath.Join(t.TempDir(), "sealing.key"), "c2hvcnQ=\n")}
			},
			want: `sealing key .*sealing.key: shred: sealing secret of 5 bytes, need at least 32`,
		},
		{
			name: "missing sealing key",
			setup: func(t *testing.T, dir string) []string {
				mustRun(t, "init", "--data-dir", dir)
				return []string{"--sealing-key-file", filepath.Join(dir, "nope.key")}
			},
			want: `sealing key: open .*nope.key: no such file`,
		},
		{
			name: "sealing key not base64",
			setup: func(t *testing.T, dir string) []string {
				mustRun(t, "init", "--data-dir", dir)
				return []string{"--sealing-key-file", writeFile(t, filepath.Join(t.TempDir(), "sealing.key"), "a passphrase of more than thirty-two characters\n")}
			},
			want: `sealing key .*sealing.key: want base64 of at least 32 random bytes`,
		},
		{
			name: "missing log key",
			setup: func(t *testing.T, dir string) []string {
				mustRun(t, "init", "--data-dir", dir)
				removeAll(t, filepath.Join(dir, skeyName), filepath.Join(dir, vkeyName))
				return nil
			},
			want: `log key .*log.skey is missing`,
		},
		{
			name: "half a log key",
			setup: func(t *testing.T, dir string) []string {
				mustRun(t, "init", "--data-dir", dir)
				removeAll(t, filepath.Join(dir, vkeyName))
				return nil
			},
			want: `log key .*log.skey exists but its verifier key .*log.vkey is missing`,
		},
		{
			name: "verifier key of another key",
			setup: func(t *testing.T, dir string) []string {
				mustRun(t, "init", "--data-dir", dir)
				other := filepath.Join(t.TempDir(), "other")
				mustRun(t, "keygen", "--name", "trail", "--out", other)
				b, err := os.ReadFile(filepath.Join(other, vkeyName))
				if err != nil {
					t.Fatal(err)
				}
				writeFile(t, filepath.Join(dir, vkeyName), string(b))
				return nil
			},
			want: `log verifier key .* does not match log key`,
		},
		{
			name: "key named for another log",
			setup: func(t *testing.T, dir string) []string {
				keys := filepath.Join(t.TempDir(), "keys")
				mustRun(t, "keygen", "--name", "elsewhere", "--out", keys)
				return []string{"--log-key-file", filepath.Join(keys, skeyName), "--log-vkey-file", filepath.Join(keys, vkeyName)}
			},
			want: `log key .* is named "elsewhere" but log_name is "trail"`,
		},
		{
			name: "malformed log key",
			setup: func(t *testing.T, dir string) []string {
				mustRun(t, "init", "--data-dir", dir)
				writeFile(t, filepath.Join(dir, skeyName), "not a key\n")
				return nil
			},
			want: `log key .* is not a signed-note private key`,
		},
		{
			name: "gRPC port in use",
			setup: func(t *testing.T, dir string) []string {
				return []string{"--grpc-addr", busyPort(t)}
			},
			want: `grpc_addr 127\.0\.0\.1:\d+ is already in use`,
		},
		{
			name: "Raft port in use",
			setup: func(t *testing.T, dir string) []string {
				return []string{"--raft-bind", busyPort(t)}
			},
			want: `raft.bind 127\.0\.0\.1:\d+ is already in use`,
		},
		{
			name: "missing config file",
			setup: func(t *testing.T, dir string) []string {
				return []string{"--config", filepath.Join(dir, "nope.yaml")}
			},
			want: `config file: open .*nope.yaml: no such file`,
		},
		{
			name: "config file is a directory",
			setup: func(t *testing.T, dir string) []string {
				return []string{"--config", t.TempDir()}
			},
			want: `config file: read .*: is a directory`,
		},
		{
			name: "malformed config file",
			setup: func(t *testing.T, dir string) []string {
				return []string{"--config", writeFile(t, filepath.Join(t.TempDir(), "c.yaml"), "raft: {bind: [\n")}
			},
			want: `config file .*c.yaml: yaml: `,
		},
		{
			name: "unknown config key",
			setup: func(t *testing.T, dir string) []string {
				return []string{"--config", writeFile(t, filepath.Join(t.TempDir(), "c.yaml"), "raft:\n  bind: 127.0.0.1:0\n  heartbeat: 1s\n")}
			},
			want: `c.yaml:3: unknown setting raft.heartbeat`,
		},
		{
			name: "plaintext off loopback",
			setup: func(t *testing.T, dir string) []string {
				return []string{"--grpc-addr", "0.0.0.0:0"}
			},
			want: `grpc_addr 0.0.0.0:0 is not a loopback address: configure tls.cert_file and tls.key_file, or set insecure_plaintext`,
		},
		{
			name: "bus ingest without tenants",
			setup: func(t *testing.T, dir string) []string {
				return []string{"--nats-url", "nats://127.0.0.1:4222"}
			},
			want: `nats.tenants is empty`,
		},
		{
			name: "bus ingest in plaintext off loopback",
			setup: func(t *testing.T, dir string) []string {
				return []string{"--nats-url", "nats://user:secret@bus.example:4222", "--nats-tenants", "acme"}
			},
			want: `nats.url nats://REDACTED@bus.example:4222 is not a loopback address: configure nats.tls.ca_file`,
		},
		{
			name: "bus ingest reading its own dead letters",
			setup: func(t *testing.T, dir string) []string {
				return []string{"--nats-url", "nats://127.0.0.1:4222", "--nats-tenants", "acme", "--nats-subjects", "trail.>"}
			},
			want: `nats.dead_letter_subject trail.dead is matched by nats.subjects trail.>`,
		},
		{
			name: "bus ingest with a missing CA file",
			setup: func(t *testing.T, dir string) []string {
				return []string{"--nats-url", "tls://127.0.0.1:4222", "--nats-tenants", "acme", "--nats-tls-ca-file", filepath.Join(dir, "..", "nope.pem")}
			},
			want: `nats.tls.ca_file: open .*nope.pem`,
		},
		{
			name: "bad flag value",
			setup: func(t *testing.T, dir string) []string {
				return []string{"--raft-snapshot-retain", "zero"}
			},
			want: `--raft-snapshot-retain: "zero" is not a positive integer`,
			code: exitUsage,
		},
		{
			name: "data directory with state but no identity",
			setup: func(t *testing.T, dir string) []string {
				if err := os.MkdirAll(filepath.Join(dir, "raft"), 0o700); err != nil {
					t.Fatal(err)
				}
				return nil
			},
			want: `holds Raft or engine state but no identity.json`,
		},
		{
			name: "bootstrap peers without this node",
			setup: func(t *testing.T, dir string) []string {
				return []string{"--bootstrap", "--peers", "a=127.0.0.1:1,b=127.0.0.1:2"}
			},
			want: `peers do not list this node "node1"`,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			extra := tc.setup(t, dir)
			before := listDir(t, dir)
			args := append(append(append([]string{"serve"}, loopbackFlags(dir)...), fastFlags()...), extra...)
			code, _, stderr := runSync(t, nil, args...)
			want := tc.code
			if want == 0 {
				want = exitError
			}
			if code != want {
				t.Errorf("exit code %d, want %d; stderr: %s", code, want, stderr)
			}
			if !regexp.MustCompile(tc.want).MatchString(stderr) {
				t.Errorf("stderr %q does not match %q", stderr, tc.want)
			}
			oneLineOK(t, stderr)
			if after := listDir(t, dir); after != before {
				t.Errorf("the refused start changed the data directory:\nbefore: %s\nafter:  %s", before, after)
			}
		})
	}
}

// TestRefuseDataDirInUse starts a second traild on a running node's data
// directory, on other ports.
func TestRefuseDataDirInUse(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	startTraild(t, nil, append(loopbackFlags(dir), fastFlags()...)...)
	code, _, stderr := runSync(t, nil, append(loopbackFlags(dir), fastFlags()...)...)
	if code != exitError || !regexp.MustCompile(`data directory .* is in use by another traild`).MatchString(stderr) {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
	oneLineOK(t, stderr)
}

func TestInitRefusesInitializedDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	mustRun(t, "init", "--data-dir", dir)
	code, _, stderr := runSync(t, nil, "init", "--data-dir", dir)
	if code != exitError || !regexp.MustCompile(`is already initialized \(node node1 of cluster [0-9a-f]{32}\)`).MatchString(stderr) {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}

func TestInitJoinWithoutKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	code, stdout, stderr := runSync(t, nil, "init", "--data-dir", dir, "--node-id", "n2", "--join", "127.0.0.1:7000")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !regexp.MustCompile(`ask 127.0.0.1:7000 to add this node`).MatchString(stdout) ||
		!regexp.MustCompile(`copy the cluster's log key to`).MatchString(stdout) {
		t.Errorf("stdout: %s", stdout)
	}
	if ok, _ := exists(filepath.Join(dir, skeyName)); ok {
		t.Error("a joining node generated its own log key")
	}
	// Starting it without the key is refused.
	code, _, stderr = runSync(t, nil, append(append([]string{"serve"}, loopbackFlags(dir)...), fastFlags()...)...)
	if code != exitError || !regexp.MustCompile(`log key .* is missing`).MatchString(stderr) {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}

func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	code, stdout, stderr := runSync(t, nil, args...)
	if code != exitOK {
		t.Fatalf("traild %v: exit %d: %s", args, code, stderr)
	}
	return stdout
}

func removeAll(t *testing.T, paths ...string) {
	t.Helper()
	for _, p := range paths {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
}

// listDir describes dir's entries (name, mode, size, modification time),
// or "absent".
func listDir(t *testing.T, dir string) string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return "absent"
	}
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, e := range ents {
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s:%v:%d:%d ", info.Name(), info.Mode(), info.Size(), info.ModTime().UnixNano())
	}
	return b.String()
}
