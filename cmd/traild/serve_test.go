package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/trailaudit/trail/merkle"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

func testEvent(id string) *trailv1.Event {
	return &trailv1.Event{
		TenantId: "acme", EventId: id, Category: trailv1.Category_CATEGORY_SYSTEM, Action: "traild.test",
		Outcome: trailv1.Outcome_OUTCOME_SUCCESS, Actor: &trailv1.Actor{Id: "tester"},
		OccurredAt: timestamppb.New(time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)),
	}
}

// TestFirstAndSecondStart is the newcomer's path over real sockets: the
// first start creates the data directory, the log key and an admin key and
// shows it once; an event appended with that key survives a restart that
// reuses everything and shows no new key.
func TestFirstAndSecondStart(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "trail-data")
	p := startTraild(t, nil, append(loopbackFlags(dir), fastFlags()...)...)
	token := p.waitToken()

	out := p.stdout.String()
	for _, want := range []string{"shown only this once", p.addrs.GRPC, "http://" + p.addrs.HTTP, filepath.Join(dir, vkeyName)} {
		if !strings.Contains(out, want) {
			t.Errorf("the banner lacks %q:\n%s", want, out)
		}
	}
	checkKeyFiles(t, dir)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ctx = withToken(ctx, token)
	resp, err := trailv1.NewIngestServiceClient(p.dial()).Append(ctx, &trailv1.AppendRequest{Event: testEvent("evt-1")})
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	receipt := resp.GetReceipt()

	// The served checkpoint verifies with the vkey file written at start.
	cp, err := trailv1.NewProofServiceClient(p.dial()).GetCheckpoint(ctx, &trailv1.GetCheckpointRequest{
		TenantId: "acme", Partition: receipt.GetPartition(),
	})
	if err != nil {
		t.Fatalf("checkpoint: %v", err)
	}
	verifyCheckpoint(t, dir, []byte(cp.GetCheckpoint().GetSignedNote()))

	id := readIdentityJSON(t, dir)
	if id["admin_key_pending"] != nil || id["bootstrap_pending"] != nil {
		t.Errorf("first-start work still pending after the first start: %v", id)
	}
	if code := p.stop(); code != exitOK {
		t.Fatalf("stop: exit %d: %s", code, p.stderr)
	}

	// Second start: same directory and Raft port.
	args := append([]string{"serve", "--data-dir", dir, "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0",
		"--raft-bind", p.addrs.Raft}, fastFlags()...)
	p2 := startTraild(t, nil, args...)
	got, err := trailv1.NewReadServiceClient(p2.dial()).GetEvent(ctx, &trailv1.GetEventRequest{TenantId: "acme", EventId: "evt-1"})
	if err != nil {
		t.Fatalf("read after restart: %v", err)
	}
	if e := got.GetEntry(); e.GetLeafIndex() != receipt.GetLeafIndex() || e.GetEntry().GetEvent().GetEventId() != "evt-1" {
		t.Errorf("read back %v, want leaf %d of evt-1", e, receipt.GetLeafIndex())
	}
	// The same event appended again is the original, not a second leaf.
	again, err := trailv1.NewIngestServiceClient(p2.dial()).Append(ctx, &trailv1.AppendRequest{Event: testEvent("evt-1")})
	if err != nil || !again.GetReceipt().GetDuplicate() || again.GetReceipt().GetLeafIndex() != receipt.GetLeafIndex() {
		t.Errorf("re-append after restart: %v, %v", again, err)
	}
	if code := p2.stop(); code != exitOK {
		t.Fatalf("stop: exit %d: %s", code, p2.stderr)
	}
	if strings.Contains(p2.stdout.String(), adminTokenPrefix) {
		t.Errorf("the second start showed an admin token again:\n%s", p2.stdout)
	}
	if got := readIdentityJSON(t, dir)["cluster_id"]; got != id["cluster_id"] {
		t.Errorf("cluster id changed from %v to %v", id["cluster_id"], got)
	}
}

func checkKeyFiles(t *testing.T, dir string) {
	t.Helper()
	for name, mode := range map[string]os.FileMode{skeyName: 0o600, vkeyName: 0o644} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != mode {
			t.Errorf("%s has mode %v, want %v", name, fi.Mode().Perm(), mode)
		}
	}
}

func verifyCheckpoint(t *testing.T, dir string, signed []byte) {
	t.Helper()
	vkey, err := os.ReadFile(filepath.Join(dir, vkeyName))
	if err != nil {
		t.Fatal(err)
	}
	v, err := merkle.NewVerifier(strings.TrimSpace(string(vkey)))
	if err != nil {
		t.Fatal(err)
	}
	n, err := note.Open(signed, note.VerifierList(v))
	if err != nil {
		t.Fatalf("checkpoint does not verify with %s: %v", vkeyName, err)
	}
	if !strings.HasPrefix(n.Text, "trail/acme/") {
		t.Errorf("checkpoint origin: %q", n.Text)
	}
}

func readIdentityJSON(t *testing.T, dir string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, identityFile))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestShutdownOnSignal checks a running node stops cleanly (exit 0) when
// its context ends, as on SIGINT or SIGTERM, and releases its ports and
// data directory.
func TestShutdownOnSignal(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	p := startTraild(t, nil, append(loopbackFlags(dir), fastFlags()...)...)
	p.waitToken()
	if code := p.stop(); code != exitOK {
		t.Fatalf("exit %d: %s", code, p.stderr)
	}
	// Everything is free again: the same ports and directory start anew.
	args := append([]string{"serve", "--data-dir", dir, "--grpc-addr", p.addrs.GRPC, "--http-addr", p.addrs.HTTP,
		"--raft-bind", p.addrs.Raft}, fastFlags()...)
	startTraild(t, nil, args...).stop()
}
