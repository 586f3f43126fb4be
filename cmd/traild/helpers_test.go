package main

import (
	"context"
	"crypto/rand"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/trailaudit/trail/internal/syncbuf"
)

// testEnv returns an env with captured output and exactly vars as its
// environment.
func testEnv(vars map[string]string) (*env, *syncbuf.Buffer, *syncbuf.Buffer) {
	stdout, stderr := new(syncbuf.Buffer), new(syncbuf.Buffer)
	e := &env{
		stdout: stdout, stderr: stderr,
		getenv: func(k string) string { return vars[k] },
		rand:   rand.Reader, now: time.Now,
	}
	return e, stdout, stderr
}

// fastFlags make a one-node cluster elect itself in well under a second
// and keep the engine small.
func fastFlags() []string {
	return []string{
		"--raft-heartbeat-timeout", "100ms", "--raft-election-timeout", "100ms",
		"--raft-leader-lease-timeout", "100ms", "--raft-commit-timeout", "5ms",
		"--engine-cache-size", "8MiB", "--engine-min-free-space", "1MiB",
		"--log-level", "warn", "--shutdown-timeout", "5s",
	}
}

// loopbackFlags put all three listeners on kernel-chosen loopback ports.
func loopbackFlags(dataDir string) []string {
	return []string{"--data-dir", dataDir, "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--raft-bind", "127.0.0.1:0"}
}

// runSync runs one command to completion.
func runSync(t *testing.T, vars map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	e, out, errb := testEnv(vars)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code = run(ctx, e, args)
	return code, out.String(), errb.String()
}

// proc is a traild running in-process, as `traild serve` would.
type proc struct {
	t      *testing.T
	cancel context.CancelFunc
	done   chan int
	stdout *syncbuf.Buffer
	stderr *syncbuf.Buffer
	addrs  addrs
}

// startTraild runs traild with args until the test stops it, and waits
// until it listens.
func startTraild(t *testing.T, vars map[string]string, args ...string) *proc {
	t.Helper()
	e, stdout, stderr := testEnv(vars)
	started := make(chan addrs, 1)
	e.started = func(a addrs) { started <- a }
	ctx, cancel := context.WithCancel(context.Background())
	p := &proc{t: t, cancel: cancel, done: make(chan int, 1), stdout: stdout, stderr: stderr}
	go func() { p.done <- run(ctx, e, args) }()
	select {
	case p.addrs = <-started:
	case code := <-p.done:
		cancel()
		t.Fatalf("traild exited with %d before listening: %s", code, stderr)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatalf("traild did not start: %s", stderr)
	}
	t.Cleanup(func() { p.stop() })
	return p
}

// stop sends the equivalent of SIGTERM and returns the exit code.
func (p *proc) stop() int {
	p.cancel()
	select {
	case code := <-p.done:
		p.done <- code // let a second stop (the cleanup) see it too
		return code
	case <-time.After(30 * time.Second):
		p.t.Fatalf("traild did not stop: %s", p.stderr)
		return -1
	}
}

// waitToken waits for the first admin token on stdout.
func (p *proc) waitToken() string {
	p.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		for line := range strings.SplitSeq(p.stdout.String(), "\n") {
			if tok, ok := strings.CutPrefix(line, adminTokenPrefix); ok {
				return tok
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.t.Fatalf("no admin token printed; stdout: %s\nstderr: %s", p.stdout, p.stderr)
	return ""
}

// dial returns a plaintext gRPC connection to the proc.
func (p *proc) dial() *grpc.ClientConn {
	p.t.Helper()
	conn, err := grpc.NewClient(p.addrs.GRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		p.t.Fatal(err)
	}
	p.t.Cleanup(func() { conn.Close() })
	return conn
}

func withToken(ctx context.Context, token string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
}

// busyPort returns a loopback address something is listening on.
func busyPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String()
}

func writeFile(t *testing.T, path, content string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func oneLineOK(t *testing.T, stderr string) {
	t.Helper()
	if n := strings.Count(strings.TrimSuffix(stderr, "\n"), "\n"); n != 0 {
		t.Errorf("refusal is not one line:\n%s", stderr)
	}
}
