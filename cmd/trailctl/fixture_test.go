package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/trailaudit/trail/engine"
	"github.com/trailaudit/trail/merkle"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// The fixture is a real log built without a server: the storage engine
// applies batches as the Raft FSM would, and a test key signs checkpoints
// as the server does.
const testLog = "test"

var (
	nov = time.Date(2026, 11, 10, 12, 0, 0, 0, time.UTC)
	dec = time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC)
)

type fixture struct {
	t        testing.TB
	eng      *engine.Engine
	signer   note.Signer
	vkey     string
	vkeyFile string
	dir      string
	index    uint64
}

// newFixture opens an empty engine and generates a signing key named
// after the log.
func newFixture(t testing.TB) *fixture {
	t.Helper()
	e, err := engine.Open(context.Background(), engine.Options{Dir: t.TempDir(), LogName: testLog, CacheBytes: 1 << 20})
	if err != nil {
		t.Fatalf("engine.Open: %v", err)
	}
	t.Cleanup(func() { e.Close() })
	skey, vkey, err := merkle.GenerateKey(testLog, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := merkle.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, eng: e, signer: s, vkey: vkey, dir: t.TempDir()}
	f.vkeyFile = f.write("log.vkey", []byte(vkey+"\n"))
	return f
}

// standardFixture holds tenant acme with 40 entries in 2026-11 and 10 in
// 2026-12, interleaved with another tenant's entries.
func standardFixture(t testing.TB) *fixture {
	f := newFixture(t)
	f.appendEvents("acme", "acme", 0, 25, nov)
	f.appendEvents("other", "other", 0, 5, nov)
	f.appendEvents("acme", "acme", 25, 15, nov.Add(time.Hour))
	f.appendEvents("acme", "acme", 40, 10, dec)
	return f
}

func testEvent(tenant, id string) *trailv1.Event {
	return &trailv1.Event{
		TenantId:   tenant,
		EventId:    id,
		Category:   trailv1.Category_CATEGORY_DATA_ACCESS,
		Action:     "record.view",
		Outcome:    trailv1.Outcome_OUTCOME_SUCCESS,
		Actor:      &trailv1.Actor{Id: "alice", Type: "user"},
		SubjectId:  "citizen-" + id,
		OccurredAt: timestamppb.New(time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)),
	}
}

// appendEvents applies events prefix-first..prefix-(first+n-1) in one batch.
func (f *fixture) appendEvents(tenant, prefix string, first, n int, at time.Time) {
	f.t.Helper()
	evs := make([]*trailv1.Event, n)
	for i := range evs {
		evs[i] = testEvent(tenant, fmt.Sprintf("%s-%d", prefix, first+i))
	}
	f.apply(at, evs...)
}

func (f *fixture) apply(at time.Time, evs ...*trailv1.Event) []engine.Result {
	f.t.Helper()
	f.index++
	res, err := f.eng.Apply(context.Background(), &engine.Batch{Index: f.index, Time: at, Events: evs})
	if err != nil {
		f.t.Fatalf("Apply: %v", err)
	}
	for i, r := range res {
		if r.Err != nil {
			f.t.Fatalf("Apply event %d: %v", i, r.Err)
		}
	}
	return res
}

// close shuts the engine early; the test's cleanup closing it again is
// harmless.
func (f *fixture) close() {
	if err := f.eng.Close(); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) partition(tenant, month string) engine.Partition {
	f.t.Helper()
	m, err := engine.ParseMonth(month)
	if err != nil {
		f.t.Fatal(err)
	}
	return engine.Partition{Tenant: tenant, Month: m}
}

// checkpoint returns the partition's checkpoint at size (0: current),
// signed as the server signs it.
func (f *fixture) checkpoint(tenant, month string, size uint64) *trailv1.Checkpoint {
	f.t.Helper()
	cp, err := f.eng.Checkpoint(context.Background(), f.partition(tenant, month), size)
	if err != nil {
		f.t.Fatalf("Checkpoint: %v", err)
	}
	return signCheckpoint(f.t, f.signer, cp)
}

func signCheckpoint(t testing.TB, s note.Signer, cp merkle.Checkpoint) *trailv1.Checkpoint {
	t.Helper()
	msg, err := merkle.SignCheckpoint(cp, s)
	if err != nil {
		t.Fatalf("SignCheckpoint: %v", err)
	}
	return &trailv1.Checkpoint{SignedNote: string(msg), Origin: cp.Origin, TreeSize: cp.Size, RootHash: cp.Root[:]}
}

// proof builds the GetInclusionProofResponse the server would send.
func (f *fixture) proof(tenant, eventID string, size uint64) proofFile {
	f.t.Helper()
	ctx := context.Background()
	se, _, err := f.eng.EntryByEventID(ctx, tenant, eventID)
	if err != nil {
		f.t.Fatalf("EntryByEventID(%s): %v", eventID, err)
	}
	path, size, err := f.eng.InclusionProof(ctx, se.Partition, se.LeafIndex, size)
	if err != nil {
		f.t.Fatalf("InclusionProof: %v", err)
	}
	return proofFile{TenantID: tenant, Proof: &trailv1.GetInclusionProofResponse{
		Partition:  se.Partition.Month.String(),
		LeafIndex:  se.LeafIndex,
		TreeSize:   size,
		LeafHash:   se.LeafHash[:],
		Proof:      hashBytes(path),
		Checkpoint: f.checkpoint(tenant, se.Partition.Month.String(), size),
		EntryBytes: se.Data,
	}}
}

func (f *fixture) consistency(tenant, month string, from, to uint64) *trailv1.GetConsistencyProofResponse {
	f.t.Helper()
	path, err := f.eng.ConsistencyProof(context.Background(), f.partition(tenant, month), from, to)
	if err != nil {
		f.t.Fatalf("ConsistencyProof: %v", err)
	}
	return &trailv1.GetConsistencyProofResponse{
		FromSize: from, ToSize: to, Proof: hashBytes(path),
		FromCheckpoint: f.checkpoint(tenant, month, from),
		ToCheckpoint:   f.checkpoint(tenant, month, to),
	}
}

// entries returns leaves [from, to) of a partition as the API serves them.
func (f *fixture) entries(tenant, month string, from, to uint64) []*trailv1.StoredEntry {
	f.t.Helper()
	var out []*trailv1.StoredEntry
	for leaf := from; leaf < to; leaf++ {
		se, err := f.eng.Entry(context.Background(), f.partition(tenant, month), leaf)
		if err != nil {
			f.t.Fatalf("Entry(%s, %d): %v", month, leaf, err)
		}
		out = append(out, storedEntryProto(f.t, tenant, se))
	}
	return out
}

func storedEntryProto(t testing.TB, tenant string, se engine.StoredEntry) *trailv1.StoredEntry {
	pb := &trailv1.StoredEntry{
		TenantId: tenant, Partition: se.Partition.Month.String(), LeafIndex: se.LeafIndex,
		LeafHash: se.LeafHash[:], EntryBytes: se.Data, Pruned: se.Pruned,
	}
	if !se.Pruned {
		pb.Entry = new(trailv1.Entry)
		if err := proto.Unmarshal(se.Data, pb.Entry); err != nil {
			t.Fatal(err)
		}
	}
	return pb
}

func hashBytes(hs []merkle.Hash) [][]byte {
	out := make([][]byte, len(hs))
	for i := range hs {
		out[i] = bytes.Clone(hs[i][:])
	}
	return out
}

func (f *fixture) write(name string, data []byte) string {
	f.t.Helper()
	p := filepath.Join(f.dir, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		f.t.Fatal(err)
	}
	return p
}

func (f *fixture) writeProof(name string, pf proofFile) string {
	f.t.Helper()
	b, err := encodeProofFile(pf)
	if err != nil {
		f.t.Fatal(err)
	}
	return f.write(name, b)
}

func (f *fixture) writeConsistency(name string, r *trailv1.GetConsistencyProofResponse) string {
	f.t.Helper()
	b, err := encodeConsistencyFile(r)
	if err != nil {
		f.t.Fatal(err)
	}
	return f.write(name, b)
}

func (f *fixture) writeChain(name string, ses []*trailv1.StoredEntry) string {
	f.t.Helper()
	return f.write(name, chainBytes(f.t, ses))
}

func chainBytes(t testing.TB, ses []*trailv1.StoredEntry) []byte {
	t.Helper()
	var b bytes.Buffer
	for _, se := range ses {
		line, err := encodeChainLine(se)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(line)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// otherKeyFile writes a verifier key with the log's name but another key.
func (f *fixture) otherKeyFile() string {
	f.t.Helper()
	_, vkey, err := merkle.GenerateKey(testLog, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	return f.write("other.vkey", []byte(vkey))
}

// cliResult is the outcome of one in-process trailctl run.
type cliResult struct {
	code           int
	stdout, stderr string
}

// offlineEnv points every connection setting at a port nothing listens
// on: a command that works in it made no network call that mattered.
func offlineEnv(key string) string {
	if key == "TRAIL_ADDR" {
		return "127.0.0.1:1"
	}
	return ""
}

// runCLI runs trailctl in-process with stdin and captured output.
func runCLI(t testing.TB, stdin string, args ...string) cliResult {
	t.Helper()
	var out, errb bytes.Buffer
	e := &env{
		stdin: strings.NewReader(stdin), stdout: &out, stderr: &errb,
		getenv: offlineEnv, now: func() time.Time { return dec.Add(24 * time.Hour) },
	}
	code := run(context.Background(), e, args)
	return cliResult{code: code, stdout: out.String(), stderr: errb.String()}
}
