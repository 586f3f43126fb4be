package main

import (
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/protojson"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trailaudit/trail/internal/syncbuf"
	"github.com/trailaudit/trail/merkle"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// TestEraseCommands: an admin turns sealing on, a privacy officer erases a
// subject and keeps the signed receipt, which verifies offline against the
// log key and fails against another; the export still verifies in full and
// get shows the erased entry as erased.
func TestEraseCommands(t *testing.T) {
	rs := startRealServer(t)
	dir := t.TempDir()
	vkey := filepath.Join(dir, "log.vkey")
	writeTestFile(t, vkey, rs.vkey+"\n")
	_, other, err := merkle.GenerateKey("test.trail", nil)
	if err != nil {
		t.Fatal(err)
	}
	otherVKey := filepath.Join(dir, "other.vkey")
	writeTestFile(t, otherVKey, other+"\n")

	if out := rs.runOK(t, rs.admin, "privacy", "set", "acme", "--seal"); !strings.Contains(out, "tenant acme seals") {
		t.Fatalf("privacy set: %s", out)
	}
	var events strings.Builder
	for i := range 4 {
		fmt.Fprintf(&events, `{"tenant_id":"acme","event_id":"e-%d","category":"CATEGORY_DATA_MODIFICATION","action":"record.update",`+
			`"outcome":"OUTCOME_SUCCESS","actor":{"id":"clerk"},"subject_id":"citizen-%d","changes":[{"field":"phone","before":"555-%d","after":"556-%d"}],`+
			`"occurred_at":"2026-11-23T10:00:00Z"}`+"\n", i, i%2, i, i)
	}
	jsonl := filepath.Join(dir, "events.jsonl")
	writeTestFile(t, jsonl, events.String())
	rs.runOK(t, rs.admin, "append", "--jsonl", jsonl)
	if out := rs.runOK(t, rs.admin, "get", "acme", "e-0", "--json"); !strings.Contains(out, "555-0") || !strings.Contains(out, "SEALED_STATE_OPENED") {
		t.Fatalf("get before erasure:\n%s", out)
	}

	receipt := filepath.Join(dir, "erasure.note")
	out := rs.runOK(t, rs.admin, "erase", "--tenant", "acme", "--subject", "citizen-0", "--reason", "Art. 17(1)(a): no longer necessary", "--reference", "DSR-1", "-o", receipt)
	if !strings.Contains(out, "citizen-0") {
		t.Fatalf("erase: %s", out)
	}
	if out := rs.runOK(t, "", "verify", "--vkey", vkey, "--erasure", receipt, "--tenant", "acme"); !strings.Contains(out, `OK erasure receipt signed by test.trail: tenant acme subject "citizen-0"`) {
		t.Fatalf("verify --erasure: %s", out)
	}
	var stdout, stderr syncbuf.Buffer
	if code := rs.run(t.Context(), "", &stdout, &stderr, "verify", "--vkey", otherVKey, "--erasure", receipt); code == exitOK {
		t.Fatal("an erasure receipt verified against another log key")
	}
	if out := rs.runOK(t, rs.admin, "get", "acme", "e-2", "--json"); strings.Contains(out, "555-2") || !strings.Contains(out, "SEALED_STATE_ERASED") {
		t.Fatalf("get after erasure:\n%s", out)
	}
	if out := rs.runOK(t, rs.admin, "erasures", "acme"); !strings.Contains(out, "citizen-0") || !strings.Contains(out, "no longer necessary") {
		t.Fatalf("erasures: %s", out)
	}
	// A chain of the tenant's entries as a reader gets them (opened,
	// erased) verifies offline, the opened fields checked against the
	// ciphertext; an opened field edited in the file fails.
	chain := readChain(t, rs, "acme")
	chainFile, editedFile := filepath.Join(dir, "chain.jsonl"), filepath.Join(dir, "edited.jsonl")
	writeTestFile(t, chainFile, chain)
	if out := rs.runOK(t, "", "verify", "--chain", chainFile); !strings.Contains(out, "OK sealed payloads: 2 opened with their event keys") ||
		!strings.Contains(out, "2 erased") {
		t.Fatalf("verify --chain:\n%s", out)
	}
	edited := strings.Replace(chain, "556-1", "556-9", 1)
	if edited == chain {
		t.Fatal("the chain shows no opened change to edit")
	}
	writeTestFile(t, editedFile, edited)
	var cout, cerr syncbuf.Buffer
	if code := rs.run(t.Context(), "", &cout, &cerr, "verify", "--chain", editedFile); code == exitOK {
		t.Fatal("a chain with an opened field edited verified")
	}

	// A rotation to the secret already in use re-wraps nothing.
	if out := rs.runOK(t, rs.admin, "sealing", "rotate"); !strings.Contains(out, "0 data keys re-wrapped") {
		t.Fatalf("sealing rotate: %s", out)
	}
	full := filepath.Join(dir, "acme.trail-bundle.jsonl")
	rs.runOK(t, rs.admin, "export", "--tenant", "acme", "-o", full)
	rs.runOK(t, "", "verify", "--vkey", vkey, "--bundle", full, "--tenant", "acme")
}

// readChain returns the tenant's entries of its one partition, in leaf
// order, as JSON lines of StoredEntry, the way tail --json prints them.
func readChain(t *testing.T, rs *realServer, tenant string) string {
	t.Helper()
	conn, err := grpc.NewClient(rs.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer "+rs.admin)
	parts, err := trailv1.NewProofServiceClient(conn).ListPartitions(ctx, &trailv1.ListPartitionsRequest{TenantId: tenant})
	if err != nil || len(parts.GetPartitions()) != 1 {
		t.Fatalf("partitions: %v %v", parts, err)
	}
	p := parts.GetPartitions()[0]
	var b strings.Builder
	for leaf := range p.GetSize() {
		resp, err := trailv1.NewReadServiceClient(conn).GetEvent(ctx, &trailv1.GetEventRequest{TenantId: tenant, Partition: p.GetPartition(), LeafIndex: leaf})
		if err != nil {
			t.Fatal(err)
		}
		line, err := protojson.Marshal(resp.GetEntry())
		if err != nil {
			t.Fatal(err)
		}
		b.Write(line)
		b.WriteByte('\n')
	}
	return b.String()
}
