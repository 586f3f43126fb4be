package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trailaudit/trail/internal/syncbuf"
	"github.com/trailaudit/trail/merkle"
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
	// A rotation to the secret already in use re-wraps nothing.
	if out := rs.runOK(t, rs.admin, "sealing", "rotate"); !strings.Contains(out, "0 data keys re-wrapped") {
		t.Fatalf("sealing rotate: %s", out)
	}
	full := filepath.Join(dir, "acme.trail-bundle.jsonl")
	rs.runOK(t, rs.admin, "export", "--tenant", "acme", "-o", full)
	rs.runOK(t, "", "verify", "--vkey", vkey, "--bundle", full, "--tenant", "acme")
}
