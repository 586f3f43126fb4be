package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// TestRecoverCommand runs `traild recover` on a node's directory: refused
// without a node and while the node runs; afterwards the node starts as a
// one-node cluster with its log intact and takes appends. (raftnode's
// TestRecoverLostQuorum covers the cluster that lost two of three nodes.)
func TestRecoverCommand(t *testing.T) {
	empty := filepath.Join(t.TempDir(), "none")
	if code, _, stderr := runSync(t, nil, "recover", "--data-dir", empty); code != exitError || !strings.Contains(stderr, "nothing to recover") {
		t.Fatalf("recover of an empty directory: exit %d: %s", code, stderr)
	}

	dir := filepath.Join(t.TempDir(), "trail-data")
	p := startTraild(t, nil, append(loopbackFlags(dir), fastFlags()...)...)
	token := p.waitToken()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ctx = withToken(ctx, token)
	if _, err := trailv1.NewIngestServiceClient(p.dial()).Append(ctx, &trailv1.AppendRequest{Event: testEvent("evt-1")}); err != nil {
		t.Fatalf("append: %v", err)
	}
	if code, _, stderr := runSync(t, nil, "recover", "--data-dir", dir, "--raft-bind", p.addrs.Raft); code != exitError || !strings.Contains(stderr, "stop the node first") {
		t.Fatalf("recover of a running node: exit %d: %s", code, stderr)
	}
	if code := p.stop(); code != exitOK {
		t.Fatalf("stop: exit %d: %s", code, p.stderr)
	}

	code, stdout, stderr := runSync(t, nil, "recover", "--data-dir", dir, "--raft-bind", p.addrs.Raft)
	if code != exitOK || !strings.Contains(stdout, "cluster of 1 voter") {
		t.Fatalf("recover: exit %d: %s %s", code, stdout, stderr)
	}

	args := append([]string{"serve", "--data-dir", dir, "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0",
		"--raft-bind", p.addrs.Raft}, fastFlags()...)
	p2 := startTraild(t, nil, args...)
	if _, err := trailv1.NewReadServiceClient(p2.dial()).GetEvent(ctx, &trailv1.GetEventRequest{TenantId: "acme", EventId: "evt-1"}); err != nil {
		t.Fatalf("read after recovery: %v", err)
	}
	if _, err := trailv1.NewIngestServiceClient(p2.dial()).Append(ctx, &trailv1.AppendRequest{Event: testEvent("evt-2")}); err != nil {
		t.Fatalf("append after recovery: %v", err)
	}
}
