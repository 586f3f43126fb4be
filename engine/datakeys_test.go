package engine

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

func sealedEvent(tenant, id, subject string, keyID []byte) *trailv1.Event {
	ev := event(tenant, id)
	ev.SubjectId = subject
	ev.Sealed = &trailv1.SealedPayload{KeyId: keyID, Nonce: bytes.Repeat([]byte{1}, 12), Ciphertext: []byte("ciphertext")}
	return ev
}

// TestDataKeys covers the engine's part of crypto-shredding: the first
// record of a subject wins, a sealed event is appended only under its
// subject's current key, and an erased record leaves no copy in Pebble's
// files.
func TestDataKeys(t *testing.T) {
	dir := t.TempDir()
	e := openEngine(t, dir)
	ctx := context.Background()
	key := DataKeySetting("acme", "citizen-1")
	first, second := randomRecord(t), randomRecord(t)

	// Two proposals for one subject: the first committed wins.
	if err := e.ApplySettings(ctx, 1, []SettingOp{{Key: key, Value: first, IfAbsent: true}}); err != nil {
		t.Fatal(err)
	}
	if err := e.ApplySettings(ctx, 2, []SettingOp{{Key: key, Value: second, IfAbsent: true}}); err != nil {
		t.Fatal(err)
	}
	if got, err := e.Setting(key); err != nil || !bytes.Equal(got, first) {
		t.Fatalf("after two if-absent sets: %x, %v; want the first", got, err)
	}

	rs, err := e.Apply(ctx, &Batch{Index: 3, Time: nov, Events: []*trailv1.Event{
		sealedEvent("acme", "ok", "citizen-1", first[:16]),
		sealedEvent("acme", "stale", "citizen-1", second[:16]),
		sealedEvent("acme", "nokey", "citizen-2", first[:16]),
	}})
	if err != nil {
		t.Fatal(err)
	}
	if rs[0].Err != nil || !errors.Is(rs[1].Err, ErrStaleDataKey) || !errors.Is(rs[2].Err, ErrStaleDataKey) {
		t.Fatalf("results: %v / %v / %v", rs[0].Err, rs[1].Err, rs[2].Err)
	}

	// The record is on disk once flushed; an erasure removes every copy.
	if err := e.db.Flush(); err != nil {
		t.Fatal(err)
	}
	if !liveTablesContain(t, e, first[16:]) {
		t.Fatal("the data key record is not in Pebble's tables before the erasure: the test would prove nothing")
	}
	erasedBefore := e.DataKeysErased()
	if err := e.ApplySettings(ctx, 4, []SettingOp{{Key: key, Delete: true}}); err != nil {
		t.Fatal(err)
	}
	if e.DataKeysErased() == erasedBefore {
		t.Fatal("DataKeysErased did not change with an erasure")
	}
	// The erasure is durable together with everything before it: a replay
	// after a crash never re-checks the append at index 3 against a store
	// without its key, nor re-creates the key (index 1).
	if e.DurableIndex() != 4 {
		t.Fatalf("durable index %d after the erasure at 4", e.DurableIndex())
	}
	if liveTablesContain(t, e, first[16:]) {
		t.Fatal("an erased data key record is still in Pebble's live tables")
	}
	// An erasure names its key: it deletes nothing once another key is
	// the subject's.
	third := randomRecord(t)
	if err := e.ApplySettings(ctx, 6, []SettingOp{{Key: key, Value: third, IfAbsent: true}}); err != nil {
		t.Fatal(err)
	}
	if err := e.ApplySettings(ctx, 7, []SettingOp{{Key: key, Delete: true, IfPrefix: first[:16]}}); err != nil {
		t.Fatal(err)
	}
	if got, err := e.Setting(key); err != nil || !bytes.Equal(got, third) {
		t.Fatalf("an erasure of the first key deleted the third: %x %v", got, err)
	}
	rs, err = e.Apply(ctx, &Batch{Index: 8, Time: nov, Events: []*trailv1.Event{
		sealedEvent("acme", "ok", "citizen-1", first[:16]),    // a retry: still its receipt
		sealedEvent("acme", "after", "citizen-1", first[:16]), // new, under the erased key
	}})
	if err != nil {
		t.Fatal(err)
	}
	if rs[0].Err != nil || !rs[0].Receipt.Duplicate || !errors.Is(rs[1].Err, ErrStaleDataKey) {
		t.Fatalf("after erasure: %+v / %v", rs[0], rs[1].Err)
	}
}

// TestUnsealedRefused: once a tenant seals, an event whose subject's
// changes or attributes arrive in clear (from a node that had not applied
// the setting yet) is refused, retryably; Trail's own records, events
// without a subject or without a payload, and other tenants are not.
func TestUnsealedRefused(t *testing.T) {
	e := openEngine(t, t.TempDir())
	ctx := context.Background()
	withPayload := func(tenant, id, subject, source string) *trailv1.Event {
		ev := event(tenant, id)
		ev.SubjectId, ev.SourceService = subject, source
		ev.Attributes = map[string]string{"note": "personal"}
		return ev
	}
	bare := event("acme", "bare")
	bare.SubjectId = "alice"
	evs := []*trailv1.Event{
		withPayload("acme", "clear", "alice", ""),
		withPayload("acme", "own", "alice", "trail"),
		withPayload("acme", "nosubject", "", ""),
		bare,
		withPayload("other", "elsewhere", "alice", ""),
	}
	if _, err := e.Apply(ctx, &Batch{Index: 1, Time: nov, Events: evs[:1]}); err != nil {
		t.Fatal(err)
	}
	if err := e.ApplySettings(ctx, 2, []SettingOp{{Key: SealingSetting("acme"), Value: []byte{1}}}); err != nil {
		t.Fatal(err)
	}
	// Turning sealing on is durable with everything before it: a replay
	// never re-checks the clear append at 1 against the new setting.
	if e.DurableIndex() != 2 {
		t.Fatalf("durable index %d after the sealing setting at 2", e.DurableIndex())
	}
	evs[0].EventId = "clear-2"
	rs, err := e.Apply(ctx, &Batch{Index: 3, Time: nov, Events: evs})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range rs {
		if want := i == 0; errors.Is(r.Err, ErrUnsealed) != want || (!want && r.Err != nil) {
			t.Errorf("event %s: %v", evs[i].GetEventId(), r.Err)
		}
	}
	// A sealed original, then its retry in clear from a node behind the
	// setting: to be sealed and retried, not a conflict.
	key := randomRecord(t)
	if err := e.ApplySettings(ctx, 4, []SettingOp{{Key: DataKeySetting("acme", "alice"), Value: key, IfAbsent: true}}); err != nil {
		t.Fatal(err)
	}
	applyOK(t, e, 5, nov, sealedEvent("acme", "x", "alice", key[:16]))
	retry := withPayload("acme", "x", "alice", "")
	rs, err = e.Apply(ctx, &Batch{Index: 6, Time: nov, Events: []*trailv1.Event{retry}})
	if err != nil || !errors.Is(rs[0].Err, ErrUnsealed) {
		t.Fatalf("clear retry of a sealed event: %v %v", rs[0].Err, err)
	}
}

func randomRecord(t *testing.T) []byte {
	b := make([]byte, 76)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// liveTablesContain reports whether any sstable of e's current version
// contains needle. (Files a compaction made obsolete are deleted in the
// background; recycled WAL files keep old bytes until overwritten: see
// docs/erasure.md for those residues.)
func liveTablesContain(t *testing.T, e *Engine, needle []byte) bool {
	t.Helper()
	levels, err := e.db.SSTables()
	if err != nil {
		t.Fatal(err)
	}
	for _, level := range levels {
		for _, info := range level {
			path := filepath.Join(e.opts.Dir, "db", fmt.Sprintf("%06d.sst", info.BackingSSTNum))
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(b, needle) {
				return true
			}
		}
	}
	return false
}
