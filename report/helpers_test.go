package report

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/trailaudit/trail/merkle"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

const testLogName = "test.trail"

// testLog is a small in-memory log of one tenant with real Merkle trees
// and a real log key: enough to attest and verify reports without a
// server.
type testLog struct {
	t        testing.TB
	tenant   string
	signer   note.Signer
	verifier note.Verifier
	trees    map[string]*merkle.MemoryNodes
	entries  []LogEntry
	prev     merkle.Hash
}

func newTestLog(t testing.TB, tenant string) *testLog {
	t.Helper()
	signer, verifier := testKey(t, testLogName)
	return &testLog{t: t, tenant: tenant, signer: signer, verifier: verifier, trees: make(map[string]*merkle.MemoryNodes)}
}

func testKey(t testing.TB, name string) (note.Signer, note.Verifier) {
	t.Helper()
	skey, vkey, err := merkle.GenerateKey(name, nil)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := merkle.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := merkle.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return signer, verifier
}

// add sequences ev at time at, as the engine would, and returns its entry.
func (l *testLog) add(ev *trailv1.Event, at time.Time) LogEntry {
	l.t.Helper()
	ev.TenantId = l.tenant
	part := at.UTC().Format("2006-01")
	tree := l.trees[part]
	if tree == nil {
		tree = merkle.NewMemoryNodes(nil)
		l.trees[part] = tree
	}
	en := &trailv1.Entry{
		Event: ev, SequencerTime: timestamppb.New(at), Partition: part,
		LeafIndex: tree.Size(), PrevLeafHash: bytes.Clone(l.prev[:]),
	}
	data, err := proto.MarshalOptions{Deterministic: true}.Marshal(en)
	if err != nil {
		l.t.Fatal(err)
	}
	leaf := merkle.LeafHash(data)
	tree.Append(leaf)
	l.prev = leaf
	le := LogEntry{Partition: part, LeafIndex: en.LeafIndex, Data: data}
	l.entries = append(l.entries, le)
	return le
}

// SignedCheckpoint implements Prover.
func (l *testLog) SignedCheckpoint(_ context.Context, partition string) ([]byte, error) {
	tree := l.trees[partition]
	if tree == nil {
		return nil, fmt.Errorf("no partition %s", partition)
	}
	cp := merkle.Checkpoint{Origin: origin(testLogName, l.tenant, partition), Size: tree.Size(), Root: tree.Root()}
	return merkle.SignCheckpoint(cp, l.signer)
}

// InclusionProof implements Prover.
func (l *testLog) InclusionProof(ctx context.Context, partition string, leaf, size uint64) ([]merkle.Hash, error) {
	return merkle.InclusionProof(ctx, leaf, size, l.trees[partition])
}

var (
	oct = time.Date(2026, 10, 30, 9, 0, 0, 0, time.UTC)
	nov = time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
)

// access returns a data_access event on subject.
func access(id, subject, actor, purpose string, fields ...string) *trailv1.Event {
	return &trailv1.Event{
		EventId: id, Category: trailv1.Category_CATEGORY_DATA_ACCESS, Action: "record.view",
		Outcome: trailv1.Outcome_OUTCOME_SUCCESS,
		Actor: &trailv1.Actor{Id: actor, Type: "user", DisplayName: "Name of " + actor, Roles: []string{"caseworker", "clerk"},
			Ip: "10.0.0.7"},
		SubjectId: subject, Target: &trailv1.Target{Type: "citizen_record", Id: subject},
		PiiFieldsAccessed: fields, PurposeCode: purpose,
		OccurredAt: timestamppb.New(nov.Add(-time.Minute)),
	}
}

// modify returns a data_modification event on target with changes.
func modify(id, actor, typ, target string, changes ...*trailv1.Change) *trailv1.Event {
	return &trailv1.Event{
		EventId: id, Category: trailv1.Category_CATEGORY_DATA_MODIFICATION, Action: "case.update",
		Outcome: trailv1.Outcome_OUTCOME_SUCCESS, Actor: &trailv1.Actor{Id: actor, Type: "user", Roles: []string{"lawyer"}},
		Target: &trailv1.Target{Type: typ, Id: target}, Changes: changes,
		OccurredAt: timestamppb.New(nov),
	}
}

func change(field, before, after string) *trailv1.Change {
	return &trailv1.Change{Field: field, Before: before, After: after}
}

// fixture is a log holding the accesses on citizen-1 (and noise) that
// most tests report on: four accesses in two partitions, one without a
// purpose code and one with a code outside {CASE_MGMT, AUDIT}.
type fixture struct {
	log     *testLog
	subject []LogEntry // the accesses on citizen-1, in log order
	history []LogEntry // the events on case/4711
}

func newFixture(t testing.TB) *fixture {
	l := newTestLog(t, "acme")
	f := &fixture{log: l}
	f.subject = append(f.subject, l.add(access("a1", "citizen-1", "alice", "CASE_MGMT", "name", "address"), oct))
	l.add(access("n1", "citizen-2", "alice", "CASE_MGMT", "name"), oct.Add(time.Minute))
	f.history = append(f.history, l.add(modify("h1", "bob", "case", "4711", change("status", "", "open")), oct.Add(2*time.Minute)))
	f.subject = append(f.subject, l.add(access("a2", "citizen-1", "bob", "", "health_record"), nov))
	f.subject = append(f.subject, l.add(access("a3", "citizen-1", "carol", "MARKETING", "email"), nov.Add(time.Hour)))
	f.history = append(f.history, l.add(modify("h2", "carol", "case", "4711",
		change("status", "open", "closed"), change("note", "", "=SUM(A1) <b>&\"quoted\"\nline")), nov.Add(2*time.Hour)))
	f.subject = append(f.subject, l.add(access("a4", "citizen-1", "alice", "AUDIT", "national_id"), nov.Add(3*time.Hour)))
	return f
}

func (f *fixture) piiQuery() PIIAccessQuery {
	return PIIAccessQuery{Tenant: "acme", SubjectID: "citizen-1", ValidPurposeCodes: []string{"CASE_MGMT", "AUDIT"}}
}

func (f *fixture) historyQuery() EntityHistoryQuery {
	return EntityHistoryQuery{Tenant: "acme", TargetType: "case", TargetID: "4711"}
}

// piiDoc builds and attests the fixture's PII access report.
func (f *fixture) piiDoc(t testing.TB) *Document {
	t.Helper()
	c, err := NewPIIAccess(testLogName, f.piiQuery(), nov.Add(4*time.Hour), f.subject)
	if err != nil {
		t.Fatal(err)
	}
	return f.attest(t, c)
}

func (f *fixture) historyDoc(t testing.TB) *Document {
	t.Helper()
	c, err := NewEntityHistory(testLogName, f.historyQuery(), nov.Add(4*time.Hour), f.history)
	if err != nil {
		t.Fatal(err)
	}
	return f.attest(t, c)
}

func (f *fixture) attest(t testing.TB, c *Content) *Document {
	t.Helper()
	d, err := Attest(context.Background(), c, f.log, f.log.signer)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func render(t testing.TB, d *Document, f Format) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Render(&buf, d, f); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
