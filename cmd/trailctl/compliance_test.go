package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/trailaudit/trail/internal/syncbuf"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// TestComplianceCommands drives retention, holds and integrity commands
// against a real server: a policy set and listed, a hold placed, listed
// and released, a dry run, and a signed integrity report verified with the
// log's key.
func TestComplianceCommands(t *testing.T) {
	rs := startRealServer(t)
	conn, err := grpc.NewClient(rs.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+rs.admin)
	for i := range 3 {
		ev := &trailv1.Event{TenantId: "acme", EventId: "login-" + string(rune('a'+i)), Category: trailv1.Category_CATEGORY_AUTHENTICATION,
			Action: "user.login", Outcome: trailv1.Outcome_OUTCOME_SUCCESS, Actor: &trailv1.Actor{Id: "alice"}, SubjectId: "alice",
			OccurredAt: timestamppb.Now()}
		if _, err := trailv1.NewIngestServiceClient(conn).Append(ctx, &trailv1.AppendRequest{Event: ev}); err != nil {
			t.Fatal(err)
		}
	}

	rs.runOK(t, rs.admin, "retention", "set", "acme", "authentication", "1000")
	if out := rs.runOK(t, rs.admin, "retention", "list", "acme"); !strings.Contains(out, "1000") {
		t.Fatalf("retention list after set:\n%s", out)
	}
	out := rs.runOK(t, rs.admin, "holds", "create", "--tenant", "acme", "--subject", "alice", "--case", "CASE-9", "--reason", "litigation", "--json")
	id := jsonField(t, out, "id")
	if listed := rs.runOK(t, rs.admin, "holds", "list", "--tenant", "acme"); !strings.Contains(listed, id) || !strings.Contains(listed, "CASE-9") {
		t.Fatalf("holds list:\n%s", listed)
	}
	// Ten years on, every login has expired, and the hold keeps them all.
	later := time.Now().AddDate(10, 0, 0).UTC().Format(time.RFC3339)
	if dry := rs.runOK(t, rs.admin, "retention", "dry-run", "--tenant", "acme", "--as-of", later); !strings.Contains(dry, id) {
		t.Fatalf("dry run does not show the hold keeping the logins:\n%s", dry)
	}
	rs.runOK(t, rs.admin, "holds", "release", id, "--reason", "case closed")
	if listed := rs.runOK(t, rs.admin, "holds", "list", "--tenant", "acme"); strings.Contains(listed, id) {
		t.Fatalf("released hold still listed as active:\n%s", listed)
	}

	vkey := filepath.Join(t.TempDir(), "log.vkey")
	if err := os.WriteFile(vkey, []byte(rs.vkey+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	report := rs.runOK(t, rs.admin, "integrity", "verify", "--tenant", "acme", "--vkey", vkey)
	for _, want := range []string{"verdict", "ok", "signed by", "acme"} {
		if !strings.Contains(report, want) {
			t.Fatalf("integrity report lacks %q:\n%s", want, report)
		}
	}
	var out2, errb syncbuf.Buffer
	if code := rs.run(context.Background(), rs.admin, &out2, &errb, "integrity", "verify", "--partition", "2026-11"); code != exitUsage {
		t.Fatalf("--partition without --tenant: exit %d, want %d (%s)", code, exitUsage, errb.String())
	}
}

// jsonField pulls a string field out of one line of protojson output.
func jsonField(t *testing.T, out, name string) string {
	t.Helper()
	_, rest, ok := strings.Cut(out, `"`+name+`":"`)
	if !ok {
		t.Fatalf("no %q in %s", name, out)
	}
	v, _, _ := strings.Cut(rest, `"`)
	return v
}
