package server

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/trailaudit/trail/bundle"
	"github.com/trailaudit/trail/internal/eventgen"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// TestScenarioAuditorVerifiesExport is the product scenario "an external
// auditor verifies an export offline": producers log realistic events, an
// auditor exports the tenant's log (and a filtered slice of it) as a
// bundle file, takes it away, and verifies it with nothing but the log's
// public key; a tampered or truncated copy of the file is rejected.
func TestScenarioAuditorVerifiesExport(t *testing.T) {
	e := newScenarioEnv(t)
	tenant := eventgen.TenantID(0)
	producer := e.key(trailv1.Role_ROLE_PRODUCER, tenant)
	auditor := e.key(trailv1.Role_ROLE_AUDITOR, tenant)

	gen := eventgen.New(eventgen.Config{Seed: 42, Tenants: 1, Actors: 20, Subjects: 200, TargetBytes: 600})
	const batches, perBatch = 4, 100
	for range batches {
		evs := make([]*trailv1.Event, perBatch)
		for i := range evs {
			evs[i] = gen.Next()
		}
		e.appendAll(producer, evs)
	}

	dir := t.TempDir()
	full := filepath.Join(dir, "full"+bundle.FileExt)
	downloadTo(t, e, auditor, &trailv1.ExportRequest{TenantId: tenant}, full)
	r := verifyFile(t, e, full)
	if r.Entries != batches*perBatch || r.Pruned != 0 || len(r.Partitions) != 1 ||
		r.ChainRuns != 1 || r.ChainLinks != batches*perBatch-1 || r.Tenant != tenant || r.RunProofs != 1 {
		t.Fatalf("full export: report %+v", r)
	}
	t.Logf("auditor's verdict on the full export:\n%s", strings.Join(r.Summary(), "\n"))

	// A filtered slice, exported from a follower: another node of the
	// cluster serves the same log under the same key.
	f := scenarioFollower(t, e)
	logins := filepath.Join(dir, "logins"+bundle.FileExt)
	downloadTo(t, f, auditor, &trailv1.ExportRequest{TenantId: tenant, Category: trailv1.Category_CATEGORY_AUTHENTICATION}, logins)
	rl := verifyFile(t, e, logins)
	if rl.Entries == 0 || rl.Entries >= r.Entries || !slices.Equal(rl.Filter.Categories, []trailv1.Category{trailv1.Category_CATEGORY_AUTHENTICATION}) ||
		rl.RunProofs < 2 || rl.RunProofs > rl.Entries {
		t.Fatalf("filtered export: report %+v", rl)
	}
	loginData, err := os.ReadFile(logins)
	if err != nil {
		t.Fatal(err)
	}
	e.crossCheck(loginData, tenant)

	// The file is altered after the export: one byte of one entry, or the
	// end of the file lost in transfer.
	data, err := os.ReadFile(full)
	if err != nil {
		t.Fatal(err)
	}
	tampered := bytes.Clone(data)
	i := bytes.LastIndex(tampered, []byte(`"entry":"`)) + len(`"entry":"`) + 100
	// Another base64 letter: the line still decodes, and only the hash
	// tells the entry changed.
	tampered[i] = map[bool]byte{true: 'B', false: 'A'}[tampered[i] == 'A']
	// A run's prefix hashes forged: the run no longer leads to the signed
	// root.
	forged := bytes.Clone(loginData)
	j := bytes.Index(forged, []byte(`"prefix":["`))
	if j < 0 {
		t.Fatalf("no run with a prefix in the filtered export:\n%s", forged)
	}
	j += len(`"prefix":["`) + 5
	forged[j] = map[bool]byte{true: 'B', false: 'A'}[forged[j] == 'A']
	for _, tc := range []struct {
		name string
		data []byte
		want error
	}{
		{"one byte changed", tampered, bundle.ErrEntry},
		{"prefix hash forged", forged, bundle.ErrProof},
		{"truncated", data[:len(data)-len(data)/3], bundle.ErrTruncated},
	} {
		path := filepath.Join(dir, "copy"+bundle.FileExt)
		if err := os.WriteFile(path, tc.data, 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := verifyPath(e, path)
		if !errors.Is(err, tc.want) {
			t.Fatalf("%s: verify: %v, want %v", tc.name, err, tc.want)
		}
		t.Logf("%s: rejected: %v", tc.name, err)
	}
}

// downloadTo exports to a file, chunk by chunk, as trailctl export does.
func downloadTo(t *testing.T, e *env, token string, req *trailv1.ExportRequest, path string) {
	t.Helper()
	b, err := exportBundle(t, e.ctx(token), e.comp, req)
	if err != nil {
		t.Fatalf("export: %v", err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func verifyFile(t *testing.T, e *env, path string) *bundle.Report {
	t.Helper()
	r, err := verifyPath(e, path)
	if err != nil {
		t.Fatalf("verify %s: %v", path, err)
	}
	return r
}

// verifyPath verifies a bundle file offline, streaming it, trusting only
// the log's public key.
func verifyPath(e *env, path string) (*bundle.Report, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return bundle.NewKeyVerifier(e.verifier).Verify(context.Background(), f)
}
