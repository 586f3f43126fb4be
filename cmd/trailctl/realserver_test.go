package main

import (
	"bytes"
	"context"
	"net"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/trailaudit/trail/compliance"
	"github.com/trailaudit/trail/engine"
	"github.com/trailaudit/trail/internal/syncbuf"
	"github.com/trailaudit/trail/merkle"
	"github.com/trailaudit/trail/raftnode"
	"github.com/trailaudit/trail/server"
	"github.com/trailaudit/trail/shred"
)

// realServer is a real single-node Trail (Raft on loopback, Pebble, the
// gRPC server) for the commands whose server side is not in the fixture's
// fake: what trailctl talks to here is what production runs.
type realServer struct {
	addr  string
	admin string // admin token
	node  *raftnode.Node
	vkey  string
	// cosignerKey is the node's cosigning verifier key.
	cosignerKey string
}

func startRealServer(t *testing.T) *realServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cskey, cvkey, err := note.GenerateKey(nil, "test.trail/node/n1")
	if err != nil {
		t.Fatal(err)
	}
	cosigner, err := note.NewSigner(cskey)
	if err != nil {
		t.Fatal(err)
	}
	node, err := raftnode.Open(context.Background(), raftnode.Config{
		Cosigner: cosigner, CosignerKey: cvkey,
		ID: "n1", Dir: t.TempDir(), Listener: ln,
		HeartbeatTimeout: 300 * time.Millisecond, ElectionTimeout: 300 * time.Millisecond,
		LeaderLeaseTimeout: 200 * time.Millisecond, CommitTimeout: 5 * time.Millisecond,
		Engine:    engine.Options{LogName: "test.trail", CacheBytes: 4 << 20},
		Inspector: compliance.NewDetector(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { node.Close() })
	if err := node.Bootstrap(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for node.Status().State != "Leader" {
		if time.Now().After(deadline) {
			t.Fatal("no leadership")
		}
		time.Sleep(20 * time.Millisecond)
	}
	skey, vkey, err := merkle.GenerateKey("test.trail", nil)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := merkle.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := server.Bootstrap(context.Background(), node, "trailctl test admin")
	if err != nil {
		t.Fatal(err)
	}
	sealing, err := shred.NewKeyring([]byte(skey))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Config{Cluster: node, Signer: signer, Sealing: sealing, Plaintext: true})
	if err != nil {
		t.Fatal(err)
	}
	gl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(gl, hl) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		<-done
	})
	return &realServer{addr: gl.Addr().String(), admin: admin, node: node, vkey: vkey, cosignerKey: cvkey}
}

// runAgainst runs trailctl in-process against rs with token, until ctx
// ends or the command returns.
func (rs *realServer) run(ctx context.Context, token string, stdout, stderr *syncbuf.Buffer, args ...string) int {
	e := &env{
		stdin: bytes.NewReader(nil), stdout: stdout, stderr: stderr,
		getenv: func(k string) string {
			switch k {
			case "TRAIL_ADDR":
				return rs.addr
			case "TRAIL_TOKEN":
				return token
			}
			return ""
		},
		now: time.Now,
	}
	return run(ctx, e, args)
}

// runOK runs trailctl against rs and fails unless it exits 0.
func (rs *realServer) runOK(t *testing.T, token string, args ...string) string {
	t.Helper()
	var out, errb syncbuf.Buffer
	if code := rs.run(context.Background(), token, &out, &errb, args...); code != exitOK {
		t.Fatalf("trailctl %v: exit %d\n%s%s", args, code, out.String(), errb.String())
	}
	return out.String()
}
