package main

import (
	"errors"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trailaudit/trail/witness"
)

// parseForTest loads a configuration the way every command does.
func parseForTest(t *testing.T, vars map[string]string, args ...string) (*Config, error) {
	t.Helper()
	cf := newConfigFlags("test", io.Discard)
	return cf.parse(args, func(k string) string { return vars[k] })
}

// TestPrecedence checks flags over environment over file over default, for
// settings of every kind, and that each value's source is recorded.
func TestPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := writeFile(t, filepath.Join(dir, "trail.yaml"), `
data_dir: /from/file
raft:
  bind: 127.0.0.1:1001
  heartbeat_timeout: 3s
  tls:
    ca_file: /file/ca.pem
peers: [a=h:1, b=h:2]
bootstrap: true
engine:
  cache_size: 64MiB
`)
	cases := []struct {
		name       string
		vars       map[string]string
		args       []string
		key        string
		want       string
		wantSource string
	}{
		{"default", nil, nil, "grpc_addr", "127.0.0.1:7070", sourceDefault},
		{"file over default", nil, []string{"--config", file}, "data_dir", "/from/file", sourceFile},
		{"nested file key", nil, []string{"--config", file}, "raft.tls.ca_file", "/file/ca.pem", sourceFile},
		{"env over file", map[string]string{"TRAIL_RAFT_BIND": "127.0.0.1:1002"}, []string{"--config", file}, "raft.bind", "127.0.0.1:1002", sourceEnv},
		{"flag over env over file", map[string]string{"TRAIL_RAFT_BIND": "127.0.0.1:1002"},
			[]string{"--config", file, "--raft-bind", "127.0.0.1:1003"}, "raft.bind", "127.0.0.1:1003", sourceFlag},
		{"flag over file, env unset", nil, []string{"--config", file, "--raft-bind", "127.0.0.1:1003"}, "raft.bind", "127.0.0.1:1003", sourceFlag},
		{"empty env is unset", map[string]string{"TRAIL_DATA_DIR": ""}, []string{"--config", file}, "data_dir", "/from/file", sourceFile},
		{"duration env over file", map[string]string{"TRAIL_RAFT_HEARTBEAT_TIMEOUT": "250ms"}, []string{"--config", file},
			"raft.heartbeat_timeout", "250ms", sourceEnv},
		{"list from YAML sequence", nil, []string{"--config", file}, "peers", "a=h:1,b=h:2", sourceFile},
		{"list flag replaces file list", nil, []string{"--config", file, "--peers", "c=h:3"}, "peers", "c=h:3", sourceFlag},
		{"bool flag without value", nil, []string{"--insecure-plaintext"}, "insecure_plaintext", "true", sourceFlag},
		{"bool flag false over file true", nil, []string{"--config", file, "--bootstrap=false"}, "bootstrap", "false", sourceFlag},
		{"size env over file", map[string]string{"TRAIL_ENGINE_CACHE_SIZE": "1GiB"}, []string{"--config", file},
			"engine.cache_size", "1GiB", sourceEnv},
		{"config path from env", map[string]string{configEnv: file}, nil, "data_dir", "/from/file", sourceFile},
		{"last flag wins", nil, []string{"--data-dir", "a", "--data-dir", "b"}, "data_dir", "b", sourceFlag},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := parseForTest(t, tc.vars, tc.args...)
			if err != nil {
				t.Fatal(err)
			}
			s, ok := lookupSetting(settings(), tc.key)
			if !ok {
				t.Fatalf("no setting %s", tc.key)
			}
			if got := s.field(cfg).String(); got != tc.want {
				t.Errorf("%s = %q, want %q", tc.key, got, tc.want)
			}
			if got := cfg.source(tc.key); got != tc.wantSource {
				t.Errorf("source of %s = %s, want %s", tc.key, got, tc.wantSource)
			}
		})
	}
}

func TestConfigFlagPathOverEnvPath(t *testing.T) {
	dir := t.TempDir()
	a := writeFile(t, filepath.Join(dir, "a.yaml"), "data_dir: /a\n")
	b := writeFile(t, filepath.Join(dir, "b.yaml"), "data_dir: /b\n")
	cfg, err := parseForTest(t, map[string]string{configEnv: a}, "--config", b)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DataDir != "/b" {
		t.Errorf("data_dir = %q, want the --config file's /b", cfg.DataDir)
	}
}

func TestDefaults(t *testing.T) {
	cfg, err := parseForTest(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DataDir != "./trail-data" || cfg.GRPCAddr != "127.0.0.1:7070" || cfg.HTTPAddr != "127.0.0.1:7080" ||
		cfg.Raft.Bind != "127.0.0.1:7000" || cfg.Raft.HeartbeatTimeout != time.Second || cfg.Engine.CacheSize != 256<<20 {
		t.Errorf("unexpected defaults: %+v", cfg)
	}
	if err := cfg.check(); err != nil {
		t.Errorf("the defaults do not pass their own checks: %v", err)
	}
}

func TestConfigFileErrors(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name, content, want string
	}{
		{"unknown top-level key", "data_dri: x\n", "trail.yaml:1: unknown setting data_dri"},
		{"unknown nested key", "raft:\n  bnd: x\n", "trail.yaml:2: unknown setting raft.bnd"},
		{"malformed YAML", "raft: [\n", "yaml:"},
		{"bad value names its line", "\n\nraft:\n  heartbeat_timeout: soon\n", "trail.yaml:4: raft.heartbeat_timeout"},
		{"YAML booleans are not guessed", "bootstrap: yes\n", "not a boolean"},
		{"duplicate key", "data_dir: a\ndata_dir: b\n", "already set on line 1"},
		{"section given a value", "raft: 127.0.0.1:7000\n", "raft is a section"},
		{"value given a section", "data_dir:\n  x: y\n", "data_dir takes a value"},
		{"list for a single value", "join: [a, b]\n", "join takes one value"},
		{"top level not a mapping", "- a\n- b\n", "top level must be a mapping"},
		{"two documents", "data_dir: a\n---\ndata_dir: b\n", "one YAML document"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, filepath.Join(dir, tc.name, "trail.yaml"), tc.content)
			_, err := parseForTest(t, nil, "--config", path)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestConfigFileEmptyAndComments(t *testing.T) {
	dir := t.TempDir()
	for _, content := range []string{"", "# nothing here\n", "tls:\n"} {
		path := writeFile(t, filepath.Join(dir, "c.yaml"), content)
		if _, err := parseForTest(t, nil, "--config", path); err != nil {
			t.Errorf("%q: %v", content, err)
		}
	}
}

func TestFlagErrorsAreUsageErrors(t *testing.T) {
	_, err := parseForTest(t, nil, "--raft-heartbeat-timeout", "fast")
	var ue *usageError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "--raft-heartbeat-timeout") {
		t.Errorf("got %v, want a usage error naming the flag", err)
	}
	_, err = parseForTest(t, map[string]string{"TRAIL_RAFT_HEARTBEAT_TIMEOUT": "fast"})
	if err == nil || !strings.Contains(err.Error(), "$TRAIL_RAFT_HEARTBEAT_TIMEOUT") {
		t.Errorf("got %v, want an error naming the variable", err)
	}
	if _, err := parseForTest(t, nil, "--no-such-flag"); !errors.As(err, &ue) {
		t.Errorf("unknown flag: got %v, want a usage error", err)
	}
}

// TestNames checks the derivation rule and that no two settings collide
// in any source.
func TestNames(t *testing.T) {
	s, _ := lookupSetting(settings(), "raft.tls.ca_file")
	if s.flagName() != "raft-tls-ca-file" || s.envName() != "TRAIL_RAFT_TLS_CA_FILE" {
		t.Errorf("raft.tls.ca_file: flag %s, env %s", s.flagName(), s.envName())
	}
	flags, envs := map[string]bool{"config": true}, map[string]bool{configEnv: true}
	for _, s := range settings() {
		if flags[s.flagName()] || envs[s.envName()] {
			t.Errorf("%s collides", s.key)
		}
		flags[s.flagName()], envs[s.envName()] = true, true
		if s.help == "" {
			t.Errorf("%s has no help", s.key)
		}
	}
}

func TestSizes(t *testing.T) {
	for in, want := range map[string]int64{"1048576": 1 << 20, "64KiB": 64 << 10, "256MiB": 256 << 20, "1GiB": 1 << 30, "8MB": 8e6, "10B": 10} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "-1", "1.5MiB", "MiB", "12XB", "99999999999TiB"} {
		if _, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) succeeded", in)
		}
	}
	if got := formatSize(8 << 20); got != "8MiB" {
		t.Errorf("formatSize = %s", got)
	}
}

func TestCheck(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string // "" = valid
	}{
		{"defaults", nil, ""},
		{"API on every interface needs TLS", []string{"--grpc-addr", "0.0.0.0:7070"}, "grpc_addr 0.0.0.0:7070 is not a loopback address"},
		{"HTTP on a host name needs TLS", []string{"--http-addr", "node1:7080"}, "http_addr node1:7080 is not a loopback address"},
		{"Raft off loopback needs TLS", []string{"--raft-bind", "10.0.0.1:7000"}, "raft.bind 10.0.0.1:7000 is not a loopback address"},
		{"profiles only on loopback", []string{"--debug-addr", "0.0.0.0:6060", "--insecure-plaintext"}, "debug_addr 0.0.0.0:6060: want a loopback address"},
		{"profiles need a port", []string{"--debug-addr", "localhost"}, "debug_addr localhost: want a loopback address"},
		{"explicit plaintext", []string{"--grpc-addr", "0.0.0.0:7070", "--raft-bind", "10.0.0.1:7000", "--insecure-plaintext"}, ""},
		{"wildcard Raft needs advertise", []string{"--raft-bind", "0.0.0.0:7000", "--insecure-plaintext"}, "set raft.advertise"},
		{"wildcard Raft with advertise", []string{"--raft-bind", "0.0.0.0:7000", "--raft-advertise", "node1:7000", "--insecure-plaintext"}, ""},
		{"advertise must be dialable", []string{"--raft-advertise", "0.0.0.0:7000"}, "raft.advertise 0.0.0.0:7000"},
		{"bad address", []string{"--grpc-addr", "7070"}, "want host:port"},
		{"half a TLS pair", []string{"--tls-cert-file", "c.pem"}, "tls.cert_file and tls.key_file go together"},
		{"client CA without TLS", []string{"--tls-client-ca-file", "ca.pem"}, "needs tls.cert_file"},
		{"Raft TLS is mutual", []string{"--raft-tls-cert-file", "c", "--raft-tls-key-file", "k"}, "raft.tls.ca_file go together"},
		{"bootstrap and join", []string{"--bootstrap", "--join", "h:1"}, "exclude each other"},
		{"peers without bootstrap", []string{"--peers", "a=h:1"}, "need bootstrap"},
		{"malformed peer", []string{"--bootstrap", "--peers", "a:h:1"}, "want id=host:port"},
		{"duplicate peer", []string{"--bootstrap", "--peers", "a=h:1,a=h:2"}, "listed twice"},
		{"bad node id", []string{"--node-id", "a b"}, "node_id"},
		{"bad log name", []string{"--log-name", "a+b"}, "log_name"},
		{"bad enum", []string{"--log-format", "xml"}, "not one of text, json"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := parseForTest(t, nil, tc.args...)
			if err == nil {
				err = cfg.check()
			}
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("unexpected error: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestParsePeers(t *testing.T) {
	got, err := parsePeers([]string{"node1=node1:7000", "node2=node2:7000"})
	if err != nil || len(got) != 2 || got[1].ID != "node2" || got[1].Address != "node2:7000" {
		t.Fatalf("parsePeers = %v, %v", got, err)
	}
	if !slices.Equal([]string{got[0].ID}, []string{"node1"}) {
		t.Errorf("order not kept: %v", got)
	}
}

func TestCheckWitnesses(t *testing.T) {
	_, vkey, err := witness.GenerateKey("witness.example/w1")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, value, want string // want "" = valid
	}{
		{"key and URL", vkey + " https://witness.example/w1", ""},
		{"two witnesses", vkey + " https://a.example/," + vkey + " http://127.0.0.1:7380", ""},
		{"no URL", vkey, `want "VKEY URL"`},
		{"URL first", "https://witness.example/w1 " + vkey, "witnesses:"},
		{"not a key", "w1+00000000+AAAA https://witness.example/w1", "witnesses:"},
		{"not http", vkey + " ftp://witness.example/w1", "not an http(s) URL"},
		{"no host", vkey + " https:///w1", "not an http(s) URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := parseForTest(t, nil, "--witnesses", tc.value)
			if err == nil {
				err = cfg.check()
			}
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("unexpected error: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
	cfg, err := parseForTest(t, nil, "--witnesses", vkey+" https://witness.example/w1", "--witness-interval", "off")
	if err != nil {
		t.Fatal(err)
	}
	sc := serverConfig(cfg, nil, &logKey{}, apiTLSConfig{}, nil, nil)
	if len(sc.Witnesses) != 1 || sc.Witnesses[0].URL != "https://witness.example/w1" || sc.Witnesses[0].VerifierKey != vkey || sc.WitnessInterval >= 0 {
		t.Fatalf("server config: %+v interval %v", sc.Witnesses, sc.WitnessInterval)
	}
}
