package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/trailaudit/trail/bundle"
	"github.com/trailaudit/trail/engine"
	"github.com/trailaudit/trail/merkle"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
	"github.com/trailaudit/trail/raftnode"
)

// exportBundle runs Export with client and returns the bundle's bytes,
// checking the chunks: the first names the content type and a file name,
// none exceeds the chunk size.
func exportBundle(t testing.TB, ctx context.Context, client trailv1.ComplianceServiceClient, req *trailv1.ExportRequest) ([]byte, error) {
	t.Helper()
	stream, err := client.Export(ctx, req)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	for i := 0; ; i++ {
		c, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return buf.Bytes(), nil
		}
		if err != nil {
			return nil, err
		}
		checkChunk(t, i, c)
		buf.Write(c.GetData())
	}
}

func checkChunk(t testing.TB, i int, c *trailv1.DownloadChunk) {
	t.Helper()
	if i == 0 && (c.GetContentType() != bundle.ContentType || !strings.HasSuffix(c.GetFilename(), bundle.FileExt)) {
		t.Fatalf("first chunk: content type %q, file name %q", c.GetContentType(), c.GetFilename())
	}
	if i > 0 && (c.GetContentType() != "" || c.GetFilename() != "") {
		t.Fatalf("chunk %d repeats the metadata", i)
	}
	if len(c.GetData()) > downloadChunkBytes {
		t.Fatalf("chunk %d has %d bytes", i, len(c.GetData()))
	}
}

// verifyBundle verifies b offline with nothing but the log's public key.
func (e *env) verifyBundle(b []byte) *bundle.Report {
	e.t.Helper()
	r, err := bundle.NewKeyVerifier(e.verifier).Verify(context.Background(), bytes.NewReader(b))
	if err != nil {
		e.t.Fatalf("verify bundle: %v", err)
	}
	return r
}

// crossCheck verifies every checkpoint and run proof of a bundle with
// transparency-dev's checkpoint parser, compact ranges and proof verifier
// (invariants 2 and 5), independently of package bundle: each run's
// prefix and leaves give the root at the run's end, which must be the
// checkpoint's root or consistent with it.
func (e *env) crossCheck(b []byte, tenant string) {
	e.t.Helper()
	roots := map[string][]byte{}
	sizes := map[string]uint64{}
	rf := compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}
	var run *compact.Range
	runs := 0
	for _, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		var l struct {
			Type        string   `json:"type"`
			Partition   string   `json:"partition"`
			Note        string   `json:"note"`
			LeafIndex   uint64   `json:"leaf_index"`
			LeafHash    []byte   `json:"leaf_hash"`
			Entry       []byte   `json:"entry"`
			Begin       uint64   `json:"begin"`
			End         uint64   `json:"end"`
			Prefix      [][]byte `json:"prefix"`
			Consistency [][]byte `json:"consistency"`
		}
		if err := json.Unmarshal(line, &l); err != nil {
			e.t.Fatal(err)
		}
		var err error
		switch l.Type {
		case bundle.TypeCheckpoint:
			cp := e.openCheckpoint([]byte(l.Note), tenant, l.Partition)
			roots[l.Partition], sizes[l.Partition] = cp.Hash, cp.Size
		case bundle.TypeRun:
			run, err = rf.NewRange(0, l.Begin, l.Prefix)
		case bundle.TypeEntry:
			leaf := l.LeafHash
			if l.Entry != nil {
				leaf = rfc6962.DefaultHasher.HashLeaf(l.Entry)
			}
			if run.End() != l.LeafIndex {
				e.t.Fatalf("leaf %d of %s in a run at %d", l.LeafIndex, l.Partition, run.End())
			}
			err = run.Append(leaf, nil)
		case bundle.TypeRunEnd:
			err = e.crossCheckRun(run, l.End, sizes[l.Partition], roots[l.Partition], l.Consistency)
			runs++
		}
		if err != nil {
			e.t.Fatalf("%s line of %s: %v", l.Type, l.Partition, err)
		}
	}
	if runs == 0 && bytes.Contains(b, []byte(`"type":"entry"`)) {
		e.t.Fatal("entries without runs")
	}
}

func (e *env) crossCheckRun(run *compact.Range, end, size uint64, root []byte, consistency [][]byte) error {
	if run.End() != end {
		return fmt.Errorf("run ends at %d, its entries at %d", end, run.End())
	}
	got, err := run.GetRootHash(nil)
	if err != nil {
		return err
	}
	return proof.VerifyConsistency(rfc6962.DefaultHasher, end, size, consistency, got, root)
}

// twoMonthEnv is an env whose sequencer clock the test moves, with octN
// entries of tenant acme in October 2026 and novN in November.
func twoMonthEnv(t *testing.T, octN, novN int) (*env, *settableClock) {
	clock := &settableClock{t: time.Date(2026, 10, 31, 22, 0, 0, 0, time.UTC)}
	e := newEnv(t, envOptions{tuneNode: func(c *raftnode.Config) { c.Clock = clock.now }})
	producer := e.key(trailv1.Role_ROLE_PRODUCER, "acme")
	if octN > 0 {
		e.appendAll(producer, events("acme", "oct", octN))
	}
	clock.set(time.Date(2026, 11, 1, 0, 0, 1, 0, time.UTC))
	if novN > 0 {
		e.appendAll(producer, events("acme", "nov", novN))
	}
	return e, clock
}

func TestExportRoundTrip(t *testing.T) {
	e, _ := twoMonthEnv(t, 5, 4)
	auditor := e.key(trailv1.Role_ROLE_AUDITOR, "acme")
	b, err := exportBundle(t, e.ctx(auditor), e.comp, &trailv1.ExportRequest{TenantId: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	r := e.verifyBundle(b)
	if r.Entries != 9 || len(r.Partitions) != 2 || r.ChainRuns != 1 || r.ChainLinks != 8 || r.PartitionLinks != 1 || r.Pruned != 0 ||
		r.RunProofs != 2 {
		t.Fatalf("report %+v", r)
	}
	if r.Tenant != "acme" || r.LogName != testLogName || r.Partitions[0].Partition != "2026-10" || r.Partitions[1].Size != 4 {
		t.Fatalf("report %+v", r)
	}
	e.crossCheck(b, "acme")
	t.Logf("verified:\n%s", strings.Join(r.Summary(), "\n"))
}

// Filters select entries exactly as search does, and the verifier checks
// every exported entry matches them.
func TestExportFilters(t *testing.T) {
	e, _ := twoMonthEnv(t, 20, 10)
	auditor := e.key(trailv1.Role_ROLE_AUDITOR, "acme")
	officer := e.key(trailv1.Role_ROLE_PRIVACY_OFFICER, "acme")
	nov := timestamppb.New(time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC))
	tests := []struct {
		name  string
		token string
		req   *trailv1.ExportRequest
		code  codes.Code
	}{
		{"actor", auditor, &trailv1.ExportRequest{ActorId: "user-1"}, codes.OK},
		{"category and action", auditor, &trailv1.ExportRequest{Category: trailv1.Category_CATEGORY_DATA_ACCESS, Action: "record.view"}, codes.OK},
		{"target", auditor, &trailv1.ExportRequest{TargetType: "record", TargetId: "oct-3"}, codes.OK},
		{"time range: November", auditor, &trailv1.ExportRequest{From: nov}, codes.OK},
		{"time range: October", auditor, &trailv1.ExportRequest{To: nov}, codes.OK},
		{"actor in November", auditor, &trailv1.ExportRequest{ActorId: "user-2", From: nov}, codes.OK},
		{"subject needs the privacy officer", auditor, &trailv1.ExportRequest{SubjectId: "citizen-1"}, codes.PermissionDenied},
		{"subject", officer, &trailv1.ExportRequest{SubjectId: "citizen-1"}, codes.OK},
		{"empty time range", auditor, &trailv1.ExportRequest{From: nov, To: nov}, codes.InvalidArgument},
		{"target type alone", auditor, &trailv1.ExportRequest{TargetType: "record"}, codes.InvalidArgument},
		{"unknown category", auditor, &trailv1.ExportRequest{Category: 99}, codes.InvalidArgument},
		{"another tenant", auditor, &trailv1.ExportRequest{TenantId: "globex"}, codes.PermissionDenied},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.req.TenantId == "" {
				tc.req.TenantId = "acme"
			}
			b, err := exportBundle(t, e.ctx(tc.token), e.comp, tc.req)
			if tc.code != codes.OK {
				wantCode(t, err, tc.code)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			r := e.verifyBundle(b)
			if want := e.countMatches(tc.req); r.Entries != want || want == 0 {
				t.Fatalf("exported %d entries, search finds %d", r.Entries, want)
			}
			// One run proof per run of consecutive matches, each partition
			// at least one.
			if r.RunProofs < uint64(len(r.Partitions)) || r.RunProofs > r.Entries {
				t.Fatalf("%d run proofs for %d entries in %d partitions", r.RunProofs, r.Entries, len(r.Partitions))
			}
			e.crossCheck(b, "acme")
		})
	}
}

// countMatches counts the entries search finds for an export's filters.
func (e *env) countMatches(req *trailv1.ExportRequest) uint64 {
	e.t.Helper()
	sreq := &trailv1.SearchRequest{
		TenantId: req.GetTenantId(), ActorId: req.GetActorId(), SubjectId: req.GetSubjectId(),
		TargetType: req.GetTargetType(), TargetId: req.GetTargetId(), Category: req.GetCategory(),
		Action: req.GetAction(), From: req.GetFrom(), To: req.GetTo(), Limit: 1000,
	}
	var n uint64
	for {
		res, err := e.read.Search(e.ctx(e.admin), sreq)
		if err != nil {
			e.t.Fatal(err)
		}
		n += uint64(len(res.GetEntries()))
		if res.GetNextCursor() == "" {
			return n
		}
		sreq.Cursor = res.GetNextCursor()
	}
}

// A pruned entry is exported as its leaf hash, flagged pruned, inside its run,
// and the chain resumes after it.
func TestExportPruned(t *testing.T) {
	e := newEnv(t, envOptions{})
	auditor := e.key(trailv1.Role_ROLE_AUDITOR, "acme")
	rs := e.appendAll(e.admin, events("acme", "p", 6))
	p, err := parsePartition("acme", rs[0].GetPartition())
	if err != nil {
		t.Fatal(err)
	}
	if n, err := e.node.Prune(context.Background(), p, []uint64{2}); err != nil || n != 1 {
		t.Fatalf("prune: %d, %v", n, err)
	}
	for _, req := range []*trailv1.ExportRequest{
		{TenantId: "acme"},
		{TenantId: "acme", From: timestamppb.New(time.Now().Add(-time.Hour)), To: timestamppb.New(time.Now().Add(time.Hour))},
	} {
		b, err := exportBundle(t, e.ctx(auditor), e.comp, req)
		if err != nil {
			t.Fatal(err)
		}
		r := e.verifyBundle(b)
		if r.Entries != 6 || r.Pruned != 1 || r.ChainLinks != 4 || r.ChainRuns != 1 || r.RunProofs != 1 {
			t.Fatalf("report %+v", r)
		}
		if !bytes.Contains(b, []byte(`"leaf_index":2,"leaf_hash":"`)) || !bytes.Contains(b, []byte(`"pruned":true`)) {
			t.Fatalf("no pruned leaf 2 in\n%s", b)
		}
		e.crossCheck(b, "acme")
	}
}

// An export that reaches October before the month ends proves October's
// entries against a checkpoint smaller than October's final size; when
// November starts during the export, leaf 0 of November records the final
// size, and the bundle carries the consistency proof between the two.
func TestExportAcrossMonthStart(t *testing.T) {
	clock := &settableClock{t: time.Date(2026, 10, 31, 22, 0, 0, 0, time.UTC)}
	e := newEnv(t, envOptions{tuneNode: func(c *raftnode.Config) { c.Clock = clock.now }})
	producer := e.key(trailv1.Role_ROLE_PRODUCER, "acme")
	auditor := e.key(trailv1.Role_ROLE_AUDITOR, "acme")
	const octN = 3000 // a bundle far larger than what flow control lets through unread
	e.appendAll(producer, events("acme", "oct", octN))

	// A client with fixed 64 KiB windows: the server blocks in Send once
	// they are full, mid-October, until the test reads on.
	conn, err := grpc.NewClient(e.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	stream, err := trailv1.NewComplianceServiceClient(conn).Export(e.ctx(auditor), &trailv1.ExportRequest{TenantId: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	first, err := stream.Recv() // the October checkpoint is in it: its size is fixed
	if err != nil {
		t.Fatal(err)
	}
	checkChunk(t, 0, first)
	e.appendAll(producer, events("acme", "oct-late", 10))
	clock.set(time.Date(2026, 11, 1, 0, 0, 1, 0, time.UTC))
	e.appendAll(producer, events("acme", "nov", 5))

	buf := bytes.NewBuffer(bytes.Clone(first.GetData()))
	for i := 1; ; i++ {
		c, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		checkChunk(t, i, c)
		buf.Write(c.GetData())
	}
	r := e.verifyBundle(buf.Bytes())
	if len(r.Partitions) != 2 || r.Partitions[0].Size != octN || r.Entries != octN+5 ||
		r.ConsistencyProofs != 1 || r.PartitionLinks != 1 || r.ChainRuns != 2 || r.RunProofs != 2 {
		t.Fatalf("report %+v", r)
	}
	e.crossCheck(buf.Bytes(), "acme")
	t.Logf("verified:\n%s", strings.Join(r.Summary(), "\n"))
}

// keyedSigner is a log signer that also states its verifier key, as
// exportVKeyer asks: the bundle header then carries the key in full.
type keyedSigner struct {
	note.Signer
	vkey string
}

func (k keyedSigner) VerifierKey() string { return k.vkey }

// An auditor holding the verifier key text verifies against it, and the
// header's copy of the key must be that key.
func TestExportHeaderKey(t *testing.T) {
	skey, vkey, err := merkle.GenerateKey(testLogName, nil)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := merkle.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, envOptions{tune: func(c *Config) { c.Signer = keyedSigner{signer, vkey} }})
	e.appendAll(e.admin, events("acme", "k", 3))
	b, err := exportBundle(t, e.ctx(e.admin), e.comp, &trailv1.ExportRequest{TenantId: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(`"vkey":"`+vkey+`"`)) {
		t.Fatalf("header lacks the verifier key:\n%.400s", b)
	}
	v, err := bundle.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	if r, err := v.Verify(context.Background(), bytes.NewReader(b)); err != nil || r.Entries != 3 {
		t.Fatalf("verify with the key text: %v", err)
	}
	_, other, err := merkle.GenerateKey(testLogName, nil)
	if err != nil {
		t.Fatal(err)
	}
	v, err = bundle.NewVerifier(other)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(context.Background(), bytes.NewReader(b)); !errors.Is(err, bundle.ErrUntrustedKey) {
		t.Fatalf("verify with another key: %v", err)
	}
}

// The REST route serves the bundle itself, with the same authorization.
func TestExportREST(t *testing.T) {
	e, _ := twoMonthEnv(t, 3, 3)
	auditor := e.key(trailv1.Role_ROLE_AUDITOR, "acme")
	tests := []struct {
		name  string
		path  string
		token string
		code  int
		want  uint64
	}{
		{"all", "/api/v1/audit/tenants/acme/export", auditor, http.StatusOK, 6},
		{"filtered", "/api/v1/audit/tenants/acme/export" + query("from", "2026-11-01T00:00:00Z", "category", "data_access"), auditor, http.StatusOK, 3},
		{"no key", "/api/v1/audit/tenants/acme/export", "", http.StatusUnauthorized, 0},
		{"other tenant", "/api/v1/audit/tenants/globex/export", auditor, http.StatusForbidden, 0},
		{"bad time", "/api/v1/audit/tenants/acme/export" + query("from", "yesterday"), auditor, http.StatusBadRequest, 0},
		{"bad category", "/api/v1/audit/tenants/acme/export" + query("category", "gossip"), auditor, http.StatusBadRequest, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, body, h := e.rest("GET", tc.path, tc.token, nil)
			if code != tc.code {
				t.Fatalf("HTTP %d, want %d: %s", code, tc.code, body)
			}
			if code != http.StatusOK {
				return
			}
			if h.Get("Content-Type") != bundle.ContentType || !strings.HasPrefix(h.Get("Content-Disposition"), `attachment; filename="acme-`) {
				t.Fatalf("headers %v", h)
			}
			if r := e.verifyBundle(body); r.Entries != tc.want {
				t.Fatalf("%d entries, want %d", r.Entries, tc.want)
			}
		})
	}
}

// The export is itself logged: its access-audit record in the system
// tenant names the filters, the number of entries and the manifest digest,
// so the log says exactly what left it.
func TestExportAudited(t *testing.T) {
	e, _ := twoMonthEnv(t, 4, 0)
	auditor := e.key(trailv1.Role_ROLE_AUDITOR, "acme")
	auditorID, _, _ := parseToken(auditor)
	b, err := exportBundle(t, e.ctx(auditor), e.comp, &trailv1.ExportRequest{TenantId: "acme", ActorId: "user-1"})
	if err != nil {
		t.Fatal(err)
	}
	r := e.verifyBundle(b)
	var got *trailv1.Event
	waitFor(t, 10*time.Second, "the export's access event", func() bool {
		res, err := e.read.Search(e.ctx(e.admin), &trailv1.SearchRequest{
			TenantId: engine.SystemTenant, ActorId: "apikey:" + auditorID, Action: "trail.v1.ComplianceService.Export",
		})
		if err != nil {
			t.Fatal(err)
		}
		if n := len(res.GetEntries()); n > 0 {
			got = res.GetEntries()[n-1].GetEntry().GetEvent()
		}
		return got != nil
	})
	a := got.GetAttributes()
	if a["tenant"] != "acme" || a["filters"] != "actor:user-1" || a["entries"] != fmt.Sprint(r.Entries) ||
		a["manifest_sha256"] != r.SHA256 || got.GetOutcome() != trailv1.Outcome_OUTCOME_SUCCESS {
		t.Fatalf("access event %v, bundle %d entries sha256 %s", got, r.Entries, r.SHA256)
	}
}

// A verifier key that is not the signer's public half is refused at New:
// bundles would otherwise name a key their checkpoints do not verify with.
func TestConfigVerifierKeyMustMatchSigner(t *testing.T) {
	signer, _, err := generateTestKey()
	if err != nil {
		t.Fatal(err)
	}
	_, otherV, err := merkle.GenerateKey(testLogName, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, vkey := range []string{otherV, "not a key"} {
		if _, err := New(Config{Cluster: startNode(t, nil), Signer: signer, Plaintext: true, VerifierKey: vkey}); err == nil {
			t.Errorf("New accepted verifier key %q", vkey)
		}
	}
}
