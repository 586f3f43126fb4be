package engine

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/trailaudit/trail/merkle"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

func TestAppendEntryMatchesProtoMarshal(t *testing.T) {
	m := proto.MarshalOptions{Deterministic: true}
	eventBytes, err := m.Marshal(eventWithEverything())
	if err != nil {
		t.Fatal(err)
	}
	prev := merkle.Hash(bytes.Repeat([]byte{9}, 32))
	link := &trailv1.PartitionLink{Partition: "2026-10", Size: 3, Root: bytes.Repeat([]byte{1}, 32)}
	for _, c := range []struct {
		name string
		seq  int64
		leaf uint64
		link *trailv1.PartitionLink
	}{
		{"leaf 0 with link", nov.UnixNano(), 0, link},
		{"later leaf", nov.UnixNano() + 123, 7, nil},
		{"whole second", nov.Unix() * 1e9, 1 << 40, nil},
		{"epoch", 0, 1, nil},
		{"before the epoch", -1500, 2, nil},
		{"empty link", 5, 0, &trailv1.PartitionLink{Partition: "2026-09"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := appendEntry(nil, eventBytes, c.seq, "2026-11", c.leaf, prev, c.link)
			ev := new(trailv1.Event)
			if err := proto.Unmarshal(eventBytes, ev); err != nil {
				t.Fatal(err)
			}
			want, err := m.Marshal(&trailv1.Entry{Event: ev, SequencerTime: timestamppb.New(time.Unix(0, c.seq)),
				Partition: "2026-11", LeafIndex: c.leaf, PrevLeafHash: prev[:], PrevPartition: c.link})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("appendEntry differs from proto.Marshal:\n got %x\nwant %x", got, want)
			}
		})
	}
}

func eventWithEverything() *trailv1.Event {
	ev := event("acme", "e-all")
	ev.Category = trailv1.Category_CATEGORY_DATA_ACCESS
	ev.SubjectId = "citizen-1"
	ev.Target = &trailv1.Target{Type: "record", Id: "r1"}
	ev.PiiFieldsAccessed = []string{"name", "address"}
	ev.PurposeCode = "CASE_MGMT"
	ev.Changes = []*trailv1.Change{{Field: "address", Before: "a", After: "b"}}
	ev.Attributes = map[string]string{"z": "1", "a": "2", "m": "3"}
	return ev
}

// TestDeterminism applies the same batches to two engines, the second
// given each event's deterministic encoding as a Raft entry carries it
// (Batch.EventBytes), and checks that they store identical bytes and
// roots: the two paths of Apply are one.
func TestDeterminism(t *testing.T) {
	batches := genBatches(1, 40, 25, nov, time.Hour*24)
	a, b := openEngine(t, t.TempDir()), openEngine(t, t.TempDir())
	ctx := context.Background()
	for _, bt := range batches {
		for i, ev := range bt.Events {
			// Maps are where a non-deterministic encoding would differ.
			ev.Attributes = map[string]string{"k1": "v", "k2": "v", "k3": "v", "k" + strconv.Itoa(i): "w"}
		}
		ra, err := a.Apply(ctx, bt)
		if err != nil {
			t.Fatal(err)
		}
		encoded := *bt
		for _, ev := range bt.Events {
			data, err := proto.MarshalOptions{Deterministic: true}.Marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			encoded.EventBytes = append(encoded.EventBytes, data)
		}
		rb, err := b.Apply(ctx, &encoded)
		if err != nil {
			t.Fatal(err)
		}
		for i := range ra {
			if ra[i].Err != nil || ra[i].Receipt != rb[i].Receipt {
				t.Fatalf("batch %d event %d: receipts differ or failed: %+v vs %+v", bt.Index, i, ra[i], rb[i])
			}
		}
	}
	for tenant := range 3 {
		id := tenantName(tenant)
		pa, _ := a.Partitions(ctx, id)
		pb, _ := b.Partitions(ctx, id)
		if len(pa) < 2 {
			t.Fatalf("tenant %s: want a month rollover, got %d partitions", id, len(pa))
		}
		if len(pa) != len(pb) {
			t.Fatalf("tenant %s: %d vs %d partitions", id, len(pa), len(pb))
		}
		for i := range pa {
			if pa[i] != pb[i] {
				t.Fatalf("partition %s differs: %+v vs %+v", pa[i].Partition, pa[i], pb[i])
			}
			for leaf := uint64(0); leaf < pa[i].Size; leaf++ {
				ea, _ := a.Entry(ctx, pa[i].Partition, leaf)
				eb, _ := b.Entry(ctx, pb[i].Partition, leaf)
				if !bytes.Equal(ea.Data, eb.Data) || ea.Data == nil {
					t.Fatalf("%s leaf %d: entry bytes differ", pa[i].Partition, leaf)
				}
			}
			checkPartition(t, a, pa[i].Partition)
		}
		verifyTenantChain(t, a, id)
	}
}

func tenantName(i int) string { return "tenant-0" + string(rune('0'+i)) }

func TestApplyReceiptsAndReads(t *testing.T) {
	e := openEngine(t, t.TempDir())
	ctx := context.Background()
	rs := applyOK(t, e, 1, nov, event("acme", "a1"), event("acme", "a2"), event("other", "o1"))
	if rs[0].LeafIndex != 0 || rs[1].LeafIndex != 1 || rs[2].LeafIndex != 0 {
		t.Fatalf("leaf indexes: %+v", rs)
	}
	if rs[0].TreeSize != 2 || rs[1].TreeSize != 2 || rs[2].TreeSize != 1 {
		t.Fatalf("tree sizes: %+v", rs)
	}
	if e.AppliedIndex() != 1 {
		t.Fatalf("applied %d", e.AppliedIndex())
	}
	se, r, err := e.EntryByEventID(ctx, "acme", "a2")
	if err != nil {
		t.Fatal(err)
	}
	if r.LeafIndex != 1 || r.LeafHash != rs[1].LeafHash || se.LeafHash != merkle.LeafHash(se.Data) {
		t.Fatalf("EntryByEventID: %+v %+v", r, se)
	}
	en := decodeEntry(t, se.Data)
	if merkle.Hash(en.PrevLeafHash) != rs[0].LeafHash {
		t.Fatalf("chain: prev %x, want %s", en.PrevLeafHash, rs[0].LeafHash)
	}
	first, _, _ := e.EntryByEventID(ctx, "acme", "a1")
	if merkle.Hash(decodeEntry(t, first.Data).PrevLeafHash) != (merkle.Hash{}) {
		t.Fatal("first entry must chain to 32 zero bytes")
	}
	cp, err := e.Checkpoint(ctx, mustPartition(t, "acme", "2026-11"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if cp.Origin != "test.trail/acme/2026-11" || cp.Size != 2 {
		t.Fatalf("checkpoint %+v", cp)
	}
	if _, _, err := e.EntryByEventID(ctx, "acme", "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing event: %v", err)
	}
	if _, err := e.PartitionInfo(ctx, mustPartition(t, "ghost", "2026-11")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown tenant: %v", err)
	}
	if _, _, err := e.InclusionProof(ctx, mustPartition(t, "acme", "2026-11"), 5, 0); !errors.Is(err, ErrBadSize) {
		t.Fatalf("leaf beyond size: %v", err)
	}
	if _, err := e.Apply(ctx, &Batch{Index: 1, Time: nov}); !errors.Is(err, ErrAlreadyApplied) {
		t.Fatalf("replayed index: %v", err)
	}
}

func TestProveEvent(t *testing.T) {
	e := openEngine(t, t.TempDir())
	ctx := context.Background()
	rs := applyOK(t, e, 1, nov, event("acme", "a1"), event("acme", "a2"), event("acme", "a3"))
	p := mustPartition(t, "acme", "2026-11")
	info, err := e.PartitionInfo(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	pe, err := e.ProveEvent(ctx, "acme", "a2", 0)
	if err != nil {
		t.Fatal(err)
	}
	if pe.LeafIndex != 1 || pe.TreeSize != 3 || pe.LeafHash != rs[1].LeafHash || merkle.LeafHash(pe.Data) != pe.LeafHash {
		t.Fatalf("ProveEvent: %+v", pe)
	}
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, 1, 3, pe.LeafHash[:], toBytes(pe.Proof), info.Root[:]); err != nil {
		t.Fatalf("transparency-dev rejects the proof: %v", err)
	}
	old, err := e.Checkpoint(ctx, p, 2)
	if err != nil {
		t.Fatal(err)
	}
	at2, err := e.ProveEvent(ctx, "acme", "a2", 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, 1, 2, at2.LeafHash[:], toBytes(at2.Proof), old.Root[:]); err != nil || at2.TreeSize != 2 {
		t.Fatalf("proof at size 2 (size %d): %v", at2.TreeSize, err)
	}
	for _, tc := range []struct {
		name          string
		tenant, event string
		size          uint64
		want          error
	}{
		{"unknown event", "acme", "nope", 0, ErrNotFound},
		{"unknown tenant", "ghost", "a1", 0, ErrNotFound},
		{"size beyond the tree", "acme", "a1", 4, ErrBadSize},
		{"leaf beyond the size", "acme", "a3", 2, ErrBadSize},
	} {
		if _, err := e.ProveEvent(ctx, tc.tenant, tc.event, tc.size); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if _, err := e.ProveLeaf(ctx, p, 3, 0); !errors.Is(err, ErrNotFound) {
		t.Errorf("ProveLeaf beyond the size: %v", err)
	}
}

func TestSequencerTimeNeverGoesBack(t *testing.T) {
	e := openEngine(t, t.TempDir())
	dec := time.Date(2026, 12, 1, 0, 0, 1, 0, time.UTC)
	r1 := applyOK(t, e, 1, dec, event("acme", "a1"))
	// A later leader whose clock is behind: the entry must not land in November.
	r2 := applyOK(t, e, 2, nov, event("acme", "a2"))
	if r2[0].Partition != r1[0].Partition || r2[0].SequencerTime.Before(r1[0].SequencerTime) {
		t.Fatalf("sequencer time went back: %+v then %+v", r1[0], r2[0])
	}
}

func TestDedup(t *testing.T) {
	e := openEngine(t, t.TempDir())
	orig := applyOK(t, e, 1, nov, event("acme", "x"))[0]
	// A retry in a later batch returns the original receipt and adds no leaf.
	again := applyOK(t, e, 2, nov.Add(time.Minute), event("acme", "x"))[0]
	if !again.Duplicate {
		t.Fatal("retry not marked duplicate")
	}
	if again.Index != 0 {
		t.Fatalf("a duplicate of an earlier batch names index %d; it was applied by none", again.Index)
	}
	again.Duplicate, again.Index = false, orig.Index
	if again != orig {
		t.Fatalf("retry receipt %+v, original %+v", again, orig)
	}
	// Duplicates inside one batch: one leaf, same receipt for both.
	rs := applyOK(t, e, 3, nov.Add(2*time.Minute), event("acme", "y"), event("acme", "y"))
	if rs[0].Duplicate || !rs[1].Duplicate || rs[1].LeafIndex != rs[0].LeafIndex || rs[1].TreeSize != rs[0].TreeSize {
		t.Fatalf("in-batch duplicate: %+v", rs)
	}
	// Same event_id under another tenant is a different event.
	other := applyOK(t, e, 4, nov.Add(3*time.Minute), event("other", "x"))[0]
	if other.Duplicate || other.Tenant != "other" || other.LeafIndex != 0 {
		t.Fatalf("cross-tenant id treated as duplicate: %+v", other)
	}
	// Same id, different content: a clear conflict, nothing written.
	changed := event("acme", "x")
	changed.Action = "user.logout"
	res, err := e.Apply(context.Background(), &Batch{Index: 5, Time: nov.Add(4 * time.Minute), Events: []*trailv1.Event{changed}})
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(res[0].Err, ErrEventIDConflict) {
		t.Fatalf("conflicting retry: %v", res[0].Err)
	}
	info, _ := e.PartitionInfo(context.Background(), mustPartition(t, "acme", "2026-11"))
	if info.Size != 2 {
		t.Fatalf("acme size %d, want 2", info.Size)
	}
}

func TestBadInput(t *testing.T) {
	huge := event("acme", "huge")
	huge.Attributes = map[string]string{"blob": strings.Repeat("x", DefaultMaxEntry)}
	cases := []struct {
		name string
		mod  func(*trailv1.Event)
		ev   *trailv1.Event
		want error
		msg  string
	}{
		{name: "nil event", ev: nil, want: ErrInvalidEvent, msg: "empty"},
		{name: "no tenant", mod: func(e *trailv1.Event) { e.TenantId = "" }, want: ErrInvalidEvent, msg: "tenant_id is required"},
		{name: "bad tenant", mod: func(e *trailv1.Event) { e.TenantId = "a/b" }, want: ErrInvalidEvent, msg: "tenant_id"},
		{name: "reserved tenant", mod: func(e *trailv1.Event) { e.TenantId = "_x" }, want: ErrInvalidEvent, msg: "reserved"},
		{name: "no event id", mod: func(e *trailv1.Event) { e.EventId = "" }, want: ErrInvalidEvent, msg: "event_id is required"},
		{name: "long event id", mod: func(e *trailv1.Event) { e.EventId = strings.Repeat("e", 129) }, want: ErrInvalidEvent, msg: "event_id longer"},
		{name: "no category", mod: func(e *trailv1.Event) { e.Category = 0 }, want: ErrInvalidEvent, msg: "category is required"},
		{name: "unknown category", mod: func(e *trailv1.Event) { e.Category = 42 }, want: ErrInvalidEvent, msg: "unknown category"},
		{name: "no action", mod: func(e *trailv1.Event) { e.Action = "" }, want: ErrInvalidEvent, msg: "action is required"},
		{name: "no outcome", mod: func(e *trailv1.Event) { e.Outcome = 0 }, want: ErrInvalidEvent, msg: "outcome is required"},
		{name: "no actor", mod: func(e *trailv1.Event) { e.Actor = nil }, want: ErrInvalidEvent, msg: "actor.id is required"},
		{name: "no occurred_at", mod: func(e *trailv1.Event) { e.OccurredAt = nil }, want: ErrInvalidEvent, msg: "occurred_at is required"},
		{name: "NUL in subject", mod: func(e *trailv1.Event) { e.SubjectId = "a\x00b" }, want: ErrInvalidEvent, msg: "NUL"},
		{name: "bad UTF-8", mod: func(e *trailv1.Event) { e.Action = "\xff" }, want: ErrInvalidEvent, msg: "UTF-8"},
		{name: "change without field", mod: func(e *trailv1.Event) { e.Changes = []*trailv1.Change{{Before: "a"}} }, want: ErrInvalidEvent, msg: "changes.field"},
		{name: "oversized", ev: huge, want: ErrEntryTooLarge, msg: "limit"},
	}
	e := openEngine(t, t.TempDir())
	good := applyOK(t, e, 1, nov, event("acme", "good"))[0]
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ev := c.ev
			if c.mod != nil {
				ev = event("acme", "bad")
				c.mod(ev)
			}
			// A bad event between two good ones: only it is rejected.
			res, err := e.Apply(context.Background(), &Batch{Index: uint64(i + 2), Time: nov,
				Events: []*trailv1.Event{ev, event("acme", "ok-"+c.name)}})
			if err != nil {
				t.Fatal(err)
			}
			if !errors.Is(res[0].Err, c.want) || !strings.Contains(res[0].Err.Error(), c.msg) {
				t.Fatalf("error %v, want %v containing %q", res[0].Err, c.want, c.msg)
			}
			if res[1].Err != nil {
				t.Fatalf("good event in the same batch rejected: %v", res[1].Err)
			}
		})
	}
	info := checkPartition(t, e, mustPartition(t, "acme", "2026-11"))
	if want := uint64(1 + len(cases)); info.Size != want {
		t.Fatalf("size %d, want %d: a rejected event wrote a leaf", info.Size, want)
	}
	if _, _, err := e.EntryByEventID(context.Background(), "acme", "bad"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("rejected event is readable: %v", err)
	}
	verifyTenantChain(t, e, "acme")
	_ = good
}

func TestCorruptEntryIsReported(t *testing.T) {
	e := openEngine(t, t.TempDir())
	applyOK(t, e, 1, nov, event("acme", "a"), event("acme", "b"))
	p := mustPartition(t, "acme", "2026-11")
	se, err := e.Entry(context.Background(), p, 1)
	if err != nil {
		t.Fatal(err)
	}
	bad := bytes.Clone(se.Data)
	bad[len(bad)/2] ^= 0x40
	overwriteEntry(t, e, p, 1, bad)
	if _, err := e.Entry(context.Background(), p, 1); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("corrupt entry served: %v", err)
	}
	if _, _, err := e.EntryByEventID(context.Background(), "acme", "b"); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("corrupt entry served by event id: %v", err)
	}
	// A damaged stored node is reported by the entry it covers, not
	// turned into a wrong proof.
	overwriteNode(t, e, p, merkle.NodeID{Level: 0, Index: 0}, merkle.Hash{1, 2, 3})
	if _, err := e.ProveLeaf(context.Background(), p, 0, 0); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("proof from a damaged node: %v", err)
	}
}

func TestReopenKeepsState(t *testing.T) {
	dir := t.TempDir()
	e := openEngine(t, dir)
	for _, b := range genBatches(2, 10, 50, nov, time.Hour) {
		if _, err := e.Apply(context.Background(), b); err != nil {
			t.Fatal(err)
		}
	}
	before, _ := e.Partitions(context.Background(), tenantName(0))
	e.Close()
	e = openEngine(t, dir)
	if e.AppliedIndex() != 10 {
		t.Fatalf("applied %d after reopen", e.AppliedIndex())
	}
	// Appending after reopen continues the same tree and chain.
	for _, b := range genBatches(3, 5, 50, nov.Add(11*time.Hour), time.Hour) {
		b.Index += 10
		for _, ev := range b.Events {
			ev.EventId += "-later"
		}
		if _, err := e.Apply(context.Background(), b); err != nil {
			t.Fatal(err)
		}
	}
	after, _ := e.Partitions(context.Background(), tenantName(0))
	if after[0].Size <= before[0].Size {
		t.Fatalf("no growth after reopen: %d -> %d", before[0].Size, after[0].Size)
	}
	checkPartition(t, e, after[0].Partition)
	verifyTenantChain(t, e, tenantName(0))
}

func TestEventBytesAreCheckedOneByOne(t *testing.T) {
	e := openEngine(t, t.TempDir())
	good, err := proto.MarshalOptions{Deterministic: true}.Marshal(event("acme", "a"))
	if err != nil {
		t.Fatal(err)
	}
	// b encoded with its fields out of order: valid, not canonical.
	b := event("acme", "b")
	tenantLast := append(mustMarshal(t, &trailv1.Event{EventId: b.EventId, Category: b.Category, Action: b.Action,
		Outcome: b.Outcome, Actor: b.Actor, OccurredAt: b.OccurredAt}), protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), "acme")...)
	res, err := e.Apply(context.Background(), &Batch{Index: 1, Time: nov, EventBytes: [][]byte{good, {0x0a}, tenantLast}})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Err != nil || res[2].Err != nil || !errors.Is(res[1].Err, ErrInvalidEvent) {
		t.Fatalf("results %v, %v, %v: want a receipt, ErrInvalidEvent, a receipt", res[0].Err, res[1].Err, res[2].Err)
	}
	se, _, err := e.EntryByEventID(context.Background(), "acme", "b")
	if err != nil {
		t.Fatal(err)
	}
	if want := mustMarshal(t, b); !bytes.Equal(decodeEntryEventBytes(t, se.Data), want) {
		t.Fatal("a non-canonical encoding was stored as sent, not canonically")
	}
}

func mustMarshal(t testing.TB, m proto.Message) []byte {
	t.Helper()
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func decodeEntryEventBytes(t testing.TB, entry []byte) []byte {
	t.Helper()
	b, err := entryEventBytes(entry)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Close checkpoints; Abandon leaves the state a crash would, which a
// reopen cuts back to the last checkpoint for Raft to replay.
func TestAbandonLeavesReplay(t *testing.T) {
	dir := t.TempDir()
	e := openEngine(t, dir)
	applyOK(t, e, 1, nov, event("acme", "a"))
	if err := e.Sync(); err != nil {
		t.Fatal(err)
	}
	applyOK(t, e, 2, nov, event("acme", "b"))
	if e.AppliedIndex() != 2 || e.DurableIndex() != 1 {
		t.Fatalf("applied %d durable %d, want 2 and 1", e.AppliedIndex(), e.DurableIndex())
	}
	if err := e.Abandon(); err != nil {
		t.Fatal(err)
	}
	e = openEngine(t, dir)
	if e.AppliedIndex() != 1 {
		t.Fatalf("reopened at %d after abandon, want the checkpoint's 1", e.AppliedIndex())
	}
	if _, _, err := e.EntryByEventID(context.Background(), "acme", "b"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("an event after the checkpoint survived abandon: %v", err)
	}
	r := applyOK(t, e, 2, nov, event("acme", "b"))[0] // Raft's replay
	if r.LeafIndex != 1 || r.Duplicate {
		t.Fatalf("replayed receipt %+v", r)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	e = openEngine(t, dir)
	if e.AppliedIndex() != 2 {
		t.Fatalf("reopened at %d after close, want 2", e.AppliedIndex())
	}
	checkPartition(t, e, mustPartition(t, "acme", "2026-11"))
}

// Tenant ids name directories (invariant 12): ids that could name
// anything but a tenant's own directory are refused at apply, and a
// command naming one is refused on every replica alike, advancing the
// applied index, instead of failing the state machine.
func TestTenantIDsThatCouldNamePaths(t *testing.T) {
	e := openEngine(t, t.TempDir())
	ctx := context.Background()
	bad := []string{".", "..", "...", "-", "-x", ".hidden", "2026-10.seg", "a/b", `a\b`, "Acme", "_other", "a b", strings.Repeat("a", 64), ""}
	index := uint64(0)
	for _, id := range bad {
		index++
		res, err := e.Apply(ctx, &Batch{Index: index, Time: nov, Events: []*trailv1.Event{event(id, "e")}})
		if err != nil {
			t.Fatalf("tenant %q: apply failed as a whole: %v", id, err)
		}
		if !errors.Is(res[0].Err, ErrInvalidEvent) || !strings.Contains(res[0].Err.Error(), "tenant_id") {
			t.Fatalf("tenant %q: %v, want an invalid tenant_id", id, res[0].Err)
		}
		p := Partition{Tenant: id, Month: Month{2026, 10}}
		for name, cmd := range map[string]func(uint64) error{
			"seal":  func(i uint64) error { return e.Seal(ctx, i, p, dec5) },
			"prune": func(i uint64) error { _, err := e.Prune(ctx, i, p, []uint64{0}); return err },
			"drop":  func(i uint64) error { return e.DropSegment(ctx, i, p) },
		} {
			index++
			if err := cmd(index); !errors.Is(err, ErrNotFound) {
				t.Fatalf("%s of tenant %q: %v, want a refusal (ErrNotFound)", name, id, err)
			}
		}
	}
	for _, path := range []struct{ tenant, name string }{{"..", "x"}, {"a", "../b"}, {"a", "b/c"}, {"a", ".."}} {
		if _, err := tenantPath(t.TempDir(), path.tenant, path.name); err == nil {
			t.Errorf("tenantPath(%q, %q) accepted", path.tenant, path.name)
		}
	}
	for _, good := range []string{"acme", "a", "tenant-00", "x_y-z", SystemTenant, strings.Repeat("a", 63)} {
		if err := ValidateTenantID(good); err != nil {
			t.Errorf("tenant %q refused: %v", good, err)
		}
	}
}
