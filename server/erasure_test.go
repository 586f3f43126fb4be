package server

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/trailaudit/trail/bundle"
	"github.com/trailaudit/trail/engine"
	"github.com/trailaudit/trail/engine/eventwire"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
	"github.com/trailaudit/trail/shred"
)

// changeEvent is a data_modification event of subject with before/after
// values only the subject's data key may reveal.
func changeEvent(tenant, id, subject string) *trailv1.Event {
	ev := event(tenant, id)
	ev.Category, ev.Action, ev.SubjectId = trailv1.Category_CATEGORY_DATA_MODIFICATION, "record.update", subject
	ev.Changes = []*trailv1.Change{{Field: "diagnosis", Before: "secret-before-" + id, After: "secret-after-" + id}}
	ev.Attributes = map[string]string{"comment": "secret-comment-" + id}
	return ev
}

// TestScenarioErasure is crypto-shredding end to end on a three-node
// cluster: sealed payloads replicate as ciphertext and open for readers on
// every node; erasing one subject leaves their entries ERASED and every
// other subject's readable, while the tenant's export still verifies
// offline in full; the erasure leaves a signed receipt and a record in the
// log; a legal hold refuses an erasure; a producer cannot send a sealed
// payload of its own.
func TestScenarioErasure(t *testing.T) {
	e := newScenarioEnv(t)
	f := scenarioFollower(t, e)
	const tenant = "clinic"
	producer := e.key(trailv1.Role_ROLE_PRODUCER, tenant)
	auditor := e.key(trailv1.Role_ROLE_AUDITOR, tenant)
	officer := e.key(trailv1.Role_ROLE_PRIVACY_OFFICER, tenant)

	// Only an admin turns sealing on.
	_, err := e.comp.SetPrivacySettings(e.ctx(officer), &trailv1.SetPrivacySettingsRequest{Settings: &trailv1.PrivacySettings{TenantId: tenant, SealSubjectPayloads: true}})
	wantCode(t, err, codes.PermissionDenied)
	if _, err := e.comp.SetPrivacySettings(e.ctx(e.admin), &trailv1.SetPrivacySettingsRequest{Settings: &trailv1.PrivacySettings{TenantId: tenant, SealSubjectPayloads: true}}); err != nil {
		t.Fatal(err)
	}
	// A node behind the setting would send payloads in clear, which the
	// engine refuses (retryably; TestUnsealedRefused): producers retry, the
	// test waits.
	waitSealing(t, f, tenant)

	// Appends through the leader and through a follower (whose new data
	// keys are proposed through Raft and read back).
	alice := []*trailv1.Event{changeEvent(tenant, "a-1", "alice"), changeEvent(tenant, "a-2", "alice")}
	bob := []*trailv1.Event{changeEvent(tenant, "b-1", "bob")}
	plain := event(tenant, "nosubject")
	plain.SubjectId = ""
	e.appendAll(producer, append(alice[:1:1], plain))
	f.appendAll(producer, append(alice[1:], bob...))
	// A retry, sealed again by another node, is the same bytes: a duplicate.
	again := f.appendAll(producer, []*trailv1.Event{proto.Clone(alice[0]).(*trailv1.Event)})
	if !again[0].GetDuplicate() {
		t.Fatalf("a retried sealed event was not a duplicate: %+v", again[0])
	}

	for _, node := range []*env{e, f} {
		got := getEvent(t, node, auditor, tenant, "a-1")
		if got.GetSealed() != trailv1.SealedState_SEALED_STATE_OPENED || got.GetEntry().GetEvent().GetChanges()[0].GetBefore() != "secret-before-a-1" {
			t.Fatalf("sealed event as read: state %v, event %v", got.GetSealed(), got.GetEntry().GetEvent())
		}
		if bytes.Contains(got.GetEntryBytes(), []byte("secret-")) {
			t.Fatal("the stored entry bytes hold the payload in clear")
		}
		// The opening key checks the shown fields against what was hashed.
		var stored trailv1.Entry
		if err := proto.Unmarshal(got.GetEntryBytes(), &stored); err != nil {
			t.Fatal(err)
		}
		fields, err := shred.Open(stored.GetEvent(), got.GetOpeningKey())
		if err != nil || fields.GetAttributes()["comment"] != "secret-comment-a-1" {
			t.Fatalf("open with the served key: %v %v", fields, err)
		}
		if got := getEvent(t, node, auditor, tenant, "nosubject"); got.GetSealed() != trailv1.SealedState_SEALED_STATE_UNSPECIFIED {
			t.Fatalf("an event without subject was sealed: %v", got.GetSealed())
		}
	}

	// A producer never sends a sealed payload of its own.
	forged := event(tenant, "forged")
	forged.Changes, forged.Attributes = nil, nil
	forged.Sealed = &trailv1.SealedPayload{KeyId: make([]byte, 16), Nonce: make([]byte, 12), Ciphertext: []byte("x")}
	_, err = e.ingest.Append(e.ctx(producer), &trailv1.AppendRequest{Event: forged})
	wantCode(t, err, codes.InvalidArgument)
	// Nor does it pass for Trail, whose records are never sealed.
	posing := changeEvent(tenant, "posing", "alice")
	posing.SourceService = "trail"
	_, err = e.ingest.Append(e.ctx(producer), &trailv1.AppendRequest{Event: posing})
	wantCode(t, err, codes.InvalidArgument)

	// A legal hold naming bob refuses his erasure.
	hold, err := e.comp.CreateLegalHold(e.ctx(e.admin), &trailv1.CreateLegalHoldRequest{Hold: &trailv1.LegalHold{TenantId: tenant, SubjectId: "bob", CaseReference: "case-7", Reason: "litigation"}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.comp.EraseSubject(e.ctx(officer), &trailv1.EraseSubjectRequest{TenantId: tenant, SubjectId: "bob", Reason: "Art. 17(1)(b)"})
	wantCode(t, err, codes.FailedPrecondition)
	if _, err := e.comp.ReleaseLegalHold(e.ctx(e.admin), &trailv1.ReleaseLegalHoldRequest{Id: hold.GetHold().GetId(), Reason: "settled"}); err != nil {
		t.Fatal(err)
	}

	// Bad requests: no reason, an auditor, a subject with no data key.
	_, err = e.comp.EraseSubject(e.ctx(officer), &trailv1.EraseSubjectRequest{TenantId: tenant, SubjectId: "alice"})
	wantCode(t, err, codes.InvalidArgument)
	_, err = e.comp.EraseSubject(e.ctx(auditor), &trailv1.EraseSubjectRequest{TenantId: tenant, SubjectId: "alice", Reason: "x"})
	wantCode(t, err, codes.PermissionDenied)
	_, err = e.comp.EraseSubject(e.ctx(officer), &trailv1.EraseSubjectRequest{TenantId: tenant, SubjectId: "nobody", Reason: "x"})
	wantCode(t, err, codes.NotFound)

	// Erase alice, through the follower.
	resp, err := f.comp.EraseSubject(f.ctx(officer), &trailv1.EraseSubjectRequest{TenantId: tenant, SubjectId: "alice", Reason: "Art. 17(1)(b): consent withdrawn", Reference: "DSR-42"})
	if err != nil {
		t.Fatal(err)
	}
	st, err := shred.VerifyErasure([]byte(resp.GetReceipt().GetNote()), e.verifier)
	if err != nil {
		t.Fatal(err)
	}
	if st.Subject != "alice" || st.Tenant != tenant || st.Reference != "DSR-42" || !bytes.Equal(st.KeyID, resp.GetReceipt().GetKeyId()) ||
		!bytes.Equal(st.Record.LeafHash, resp.GetReceipt().GetRecord().GetLeafHash()) {
		t.Fatalf("erasure statement %+v, receipt %+v", st, resp.GetReceipt())
	}
	record := getEvent(t, e, auditor, tenant, resp.GetReceipt().GetRecord().GetEventId())
	if record.GetEntry().GetEvent().GetAction() != actionSubjectErased || record.GetEntry().GetEvent().GetSubjectId() != "alice" {
		t.Fatalf("erasure record: %v", record.GetEntry().GetEvent())
	}
	_, err = e.comp.EraseSubject(e.ctx(officer), &trailv1.EraseSubjectRequest{TenantId: tenant, SubjectId: "alice", Reason: "again"})
	wantCode(t, err, codes.NotFound)

	for _, node := range []*env{e, f} {
		waitFor(t, 10*time.Second, "erasure applied on "+node.srv.cluster.Status().ID, func() bool {
			return getEvent(t, node, auditor, tenant, "a-2").GetSealed() == trailv1.SealedState_SEALED_STATE_ERASED
		})
		for _, id := range []string{"a-1", "a-2"} {
			got := getEvent(t, node, auditor, tenant, id)
			if got.GetSealed() != trailv1.SealedState_SEALED_STATE_ERASED || len(got.GetOpeningKey()) != 0 ||
				len(got.GetEntry().GetEvent().GetChanges()) != 0 || got.GetEntry().GetEvent().GetActor().GetId() == "" {
				t.Fatalf("erased event %s: %v %v", id, got.GetSealed(), got.GetEntry().GetEvent())
			}
		}
		if got := getEvent(t, node, auditor, tenant, "b-1"); got.GetSealed() != trailv1.SealedState_SEALED_STATE_OPENED {
			t.Fatalf("bob's event after alice's erasure: %v", got.GetSealed())
		}
	}
	// Search shows the same.
	sr, err := e.read.Search(e.ctx(officer), &trailv1.SearchRequest{TenantId: tenant, Filter: &trailv1.Filter{Query: "subject:alice"}})
	if err != nil {
		t.Fatal(err)
	}
	erased := 0
	for _, h := range sr.GetEntries() {
		if h.GetSealed() == trailv1.SealedState_SEALED_STATE_ERASED {
			erased++
		}
	}
	if erased != 2 {
		t.Fatalf("search: %d erased hits, want 2 (%d hits)", erased, len(sr.GetEntries()))
	}

	// New events of alice get a new key, and a second erasure its own receipt.
	e.appendAll(producer, []*trailv1.Event{changeEvent(tenant, "a-3", "alice")})
	if got := getEvent(t, e, auditor, tenant, "a-3"); got.GetSealed() != trailv1.SealedState_SEALED_STATE_OPENED {
		t.Fatalf("alice's event after her erasure: %v", got.GetSealed())
	}
	if _, err := e.comp.EraseSubject(e.ctx(officer), &trailv1.EraseSubjectRequest{TenantId: tenant, SubjectId: "alice", Reason: "second request"}); err != nil {
		t.Fatal(err)
	}
	list, err := e.comp.ListErasures(e.ctx(officer), &trailv1.ListErasuresRequest{TenantId: tenant, SubjectId: "alice"})
	if err != nil || len(list.GetReceipts()) != 2 {
		t.Fatalf("ListErasures: %v %v", list, err)
	}

	// The tenant's whole export verifies offline after the erasures.
	path := filepath.Join(t.TempDir(), "clinic"+bundle.FileExt)
	downloadTo(t, e, auditor, &trailv1.ExportRequest{TenantId: tenant}, path)
	r := verifyFile(t, e, path)
	if r.Entries < 8 || r.Pruned != 0 || r.ChainLinks != r.Entries-1 {
		t.Fatalf("export after erasure: %+v", r)
	}
	// alice's first two events erased, her third after the second erasure
	// too; bob's opened, with a key the verifier checked.
	if r.Sealed != 4 || r.Erased != 3 || r.Opened != 1 || r.ErasedRecorded != 3 {
		t.Fatalf("export after erasure: %d sealed, %d opened, %d erased (%d with their record); want 4, 1, 3 (3)", r.Sealed, r.Opened, r.Erased, r.ErasedRecorded)
	}
}

// waitSealing waits until node has applied tenant's sealing setting.
func waitSealing(t *testing.T, node *env, tenant string) {
	t.Helper()
	waitFor(t, 10*time.Second, "the sealing setting on "+node.srv.cluster.Status().ID, func() bool {
		on, err := node.srv.cluster.Engine().Seals(tenant)
		return err == nil && on
	})
}

func getEvent(t *testing.T, e *env, token, tenant, id string) *trailv1.StoredEntry {
	t.Helper()
	resp, err := e.read.GetEvent(e.ctx(token), &trailv1.GetEventRequest{TenantId: tenant, EventId: id, MinIndex: e.srv.cluster.AppliedIndex()})
	if err != nil {
		t.Fatalf("get %s: %v", id, err)
	}
	return resp.GetEntry()
}

// TestSealingRefusedWithoutSecret: a node without the sealing secret
// cannot turn sealing on, and says why.
func TestSealingRefusedWithoutSecret(t *testing.T) {
	e := newEnv(t, envOptions{tune: func(c *Config) { c.Sealing = nil }})
	_, err := e.comp.SetPrivacySettings(e.ctx(e.admin), &trailv1.SetPrivacySettingsRequest{Settings: &trailv1.PrivacySettings{TenantId: "acme", SealSubjectPayloads: true}})
	wantCode(t, err, codes.FailedPrecondition)
	ev := changeEvent("acme", fmt.Sprint("x-", timestamppb.Now().GetNanos()), "alice")
	if _, err := e.ingest.Append(e.ctx(e.admin), &trailv1.AppendRequest{Event: ev}); err != nil {
		t.Fatalf("a tenant that does not seal appends without a secret: %v", err)
	}
}

// TestConcurrentFirstKeys: producers on all three nodes append, at the
// same moment, the first events of the same new subjects. Each node
// proposes its own first key for each subject; exactly one wins per
// subject, every event is sealed under it, and every node opens every
// event.
func TestConcurrentFirstKeys(t *testing.T) {
	e := newScenarioEnv(t)
	nodes := append([]*env{e}, e.peers...)
	const tenant = "clinic"
	if _, err := e.comp.SetPrivacySettings(e.ctx(e.admin), &trailv1.SetPrivacySettingsRequest{Settings: &trailv1.PrivacySettings{TenantId: tenant, SealSubjectPayloads: true}}); err != nil {
		t.Fatal(err)
	}
	for _, node := range nodes {
		waitSealing(t, node, tenant)
	}
	producer := e.key(trailv1.Role_ROLE_PRODUCER, tenant)
	auditor := e.key(trailv1.Role_ROLE_AUDITOR, tenant)
	const subjects, rounds = 8, 3
	var wg sync.WaitGroup
	errs := make(chan error, len(nodes)*rounds)
	for n, node := range nodes {
		for r := range rounds {
			// Built here: the event helper numbers events in a package
			// variable, which the goroutines must not share.
			var evs []*trailv1.Event
			for s := range subjects {
				evs = append(evs, changeEvent(tenant, fmt.Sprintf("n%d-r%d-s%d", n, r, s), fmt.Sprintf("subject-%d", s)))
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, err := node.ingest.AppendBatch(node.ctx(producer), &trailv1.AppendBatchRequest{Events: evs})
				if err == nil {
					for _, res := range resp.GetResults() {
						if res.GetError() != nil {
							err = fmt.Errorf("event %s: %v", res.GetReceipt().GetEventId(), res.GetError())
							break
						}
					}
				}
				errs <- err
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, node := range nodes {
		keys := map[string]string{}
		for n := range nodes {
			for r := range rounds {
				for s := range subjects {
					got := getEvent(t, node, auditor, tenant, fmt.Sprintf("n%d-r%d-s%d", n, r, s))
					if got.GetSealed() != trailv1.SealedState_SEALED_STATE_OPENED {
						t.Fatalf("node %s: event n%d-r%d-s%d is %v", node.srv.cluster.Status().ID, n, r, s, got.GetSealed())
					}
					subject, id := got.GetEntry().GetEvent().GetSubjectId(), string(got.GetEntry().GetEvent().GetSealed().GetKeyId())
					if k, ok := keys[subject]; ok && k != id {
						t.Fatalf("subject %s sealed under two keys", subject)
					}
					keys[subject] = id
				}
			}
		}
		if len(keys) != subjects {
			t.Fatalf("%d subjects with keys, want %d", len(keys), subjects)
		}
	}
}

// TestOtherSecretRefused: a node whose sealing secret is not the one the
// cluster recorded neither seals nor opens, and says so, instead of
// writing data keys its peers cannot unwrap.
func TestOtherSecretRefused(t *testing.T) {
	e := newEnv(t, envOptions{})
	if _, err := e.comp.SetPrivacySettings(e.ctx(e.admin), &trailv1.SetPrivacySettingsRequest{Settings: &trailv1.PrivacySettings{TenantId: "acme", SealSubjectPayloads: true}}); err != nil {
		t.Fatal(err)
	}
	e.appendAll(e.admin, []*trailv1.Event{changeEvent("acme", "s-1", "alice")})
	other, err := shred.NewKeyring([]byte("another cluster's sealing secret, long enough"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(Config{Cluster: e.node, Signer: e.srv.cfg.Signer, Sealing: other, Logger: testLogger(), Plaintext: true})
	if err != nil {
		t.Fatal(err)
	}
	got := getEvent(t, e, e.admin, "acme", "s-1")
	if got.GetSealed() != trailv1.SealedState_SEALED_STATE_OPENED {
		t.Fatalf("the right secret: %v", got.GetSealed())
	}
	got.Sealed, got.OpeningKey = 0, nil
	srv.openEntry(got)
	if got.GetSealed() != trailv1.SealedState_SEALED_STATE_UNAVAILABLE || got.GetOpeningKey() != nil {
		t.Fatalf("another secret opened a payload: %v", got.GetSealed())
	}
	ev := changeEvent("acme", "s-2", "bob")
	b, err := proto.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	checked := []eventwire.Checked{{Bytes: b}}
	if err := eventwire.Scan(b, &checked[0].Event); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.sealChecked(e.ctx(e.admin), checked); !errors.Is(err, errNoSealing) {
		t.Fatalf("sealing with another secret: %v", err)
	}
	if _, err := e.node.Engine().Setting(engine.DataKeySetting("acme", "bob")); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("a node with another secret made a data key: %v", err)
	}
}

// TestEraseResumes: an erasure recorded in the log whose key deletion did
// not happen (a crash between the two) is finished by the next request,
// whoever makes it and with whatever words; the receipt states the record
// as stored. Odd subject ids get erased too, and words a statement cannot
// carry are refused before anything is recorded.
func TestEraseResumes(t *testing.T) {
	e := newEnv(t, envOptions{})
	if _, err := e.comp.SetPrivacySettings(e.ctx(e.admin), &trailv1.SetPrivacySettingsRequest{Settings: &trailv1.PrivacySettings{TenantId: "acme", SealSubjectPayloads: true}}); err != nil {
		t.Fatal(err)
	}
	odd := "frank\nx \"y\""
	e.appendAll(e.admin, []*trailv1.Event{changeEvent("acme", "r-1", "alice"), changeEvent("acme", "r-2", odd)})

	for _, reason := range []string{"a\tb", "line\u2028break", "  "} {
		_, err := e.comp.EraseSubject(e.ctx(e.admin), &trailv1.EraseSubjectRequest{TenantId: "acme", SubjectId: "alice", Reason: reason})
		wantCode(t, err, codes.InvalidArgument)
	}
	if list, _ := e.comp.ListErasures(e.ctx(e.admin), &trailv1.ListErasuresRequest{TenantId: "acme"}); len(list.GetReceipts()) != 0 {
		t.Fatal("a refused erasure left a receipt")
	}

	// The record is appended, then the node "crashes" before deleting.
	rec, err := e.srv.cluster.Engine().Setting(engine.DataKeySetting("acme", "alice"))
	if err != nil {
		t.Fatal(err)
	}
	cs := &complianceService{s: e.srv}
	first, err := cs.recordErasure(e.ctx(e.admin), &trailv1.EraseSubjectRequest{TenantId: "acme", SubjectId: "alice", Reason: "first words"}, rec[:16], "apikey:first")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := e.comp.EraseSubject(e.ctx(e.admin), &trailv1.EraseSubjectRequest{TenantId: "acme", SubjectId: "alice", Reason: "other words "})
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.GetReceipt(); got.GetReason() != "first words" || got.GetErasedBy() != "apikey:first" ||
		!bytes.Equal(got.GetRecord().GetLeafHash(), first.GetRecord().GetLeafHash()) {
		t.Fatalf("resumed erasure: %+v", got)
	}
	if _, err := e.srv.cluster.Engine().Setting(engine.DataKeySetting("acme", "alice")); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("the resumed erasure left the key: %v", err)
	}

	resp, err = e.comp.EraseSubject(e.ctx(e.admin), &trailv1.EraseSubjectRequest{TenantId: "acme", SubjectId: odd, Reason: "Art. 17(1)(a)"})
	if err != nil {
		t.Fatal(err)
	}
	st, err := shred.VerifyErasure([]byte(resp.GetReceipt().GetNote()), e.verifier)
	if err != nil || st.Subject != odd {
		t.Fatalf("odd subject's receipt: %+v %v", st, err)
	}
	if got := getEvent(t, e, e.admin, "acme", "r-2"); got.GetSealed() != trailv1.SealedState_SEALED_STATE_ERASED {
		t.Fatalf("odd subject's event: %v", got.GetSealed())
	}
}

// TestRetryAcrossErasure: a retried append whose subject was erased
// between the first try and the retry gets the original receipt, not a
// conflict; an event that differs in clear under the same id is still a
// conflict.
func TestRetryAcrossErasure(t *testing.T) {
	e := newEnv(t, envOptions{})
	if _, err := e.comp.SetPrivacySettings(e.ctx(e.admin), &trailv1.SetPrivacySettingsRequest{Settings: &trailv1.PrivacySettings{TenantId: "acme", SealSubjectPayloads: true}}); err != nil {
		t.Fatal(err)
	}
	ev := changeEvent("acme", "x-1", "alice")
	orig := e.appendAll(e.admin, []*trailv1.Event{ev})[0]
	if _, err := e.comp.EraseSubject(e.ctx(e.admin), &trailv1.EraseSubjectRequest{TenantId: "acme", SubjectId: "alice", Reason: "Art. 17"}); err != nil {
		t.Fatal(err)
	}
	again := e.appendAll(e.admin, []*trailv1.Event{proto.CloneOf(ev)})[0]
	if !again.GetDuplicate() || again.GetLeafIndex() != orig.GetLeafIndex() || !bytes.Equal(again.GetLeafHash(), orig.GetLeafHash()) {
		t.Fatalf("retry across an erasure: %+v, original %+v", again, orig)
	}
	// The erased payload cannot be compared any more: the same id with the
	// same clear fields is taken for the retry it most likely is, even
	// after alice has a new key; a change in clear is a conflict.
	e.appendAll(e.admin, []*trailv1.Event{changeEvent("acme", "x-2", "alice")}) // alice's new key
	if r := e.appendAll(e.admin, []*trailv1.Event{proto.CloneOf(ev)})[0]; !r.GetDuplicate() {
		t.Fatalf("retry under alice's new key: %+v", r)
	}
	changed := proto.CloneOf(ev)
	changed.Action = "record.delete"
	_, err := e.ingest.Append(e.ctx(e.admin), &trailv1.AppendRequest{Event: changed})
	wantCode(t, err, codes.AlreadyExists)
}

// TestSealingRotation: a node holding a new secret, with the old one as
// previous, makes the new one the cluster's and re-wraps every data key
// under it; sealed events open with the new secret alone afterwards, a
// node with the old secret alone refuses, and a record wrapped under the
// old secret (a residue of an erased key, say) no longer unwraps once the
// old secret is gone.
func TestSealingRotation(t *testing.T) {
	e := newEnv(t, envOptions{})
	if _, err := e.comp.SetPrivacySettings(e.ctx(e.admin), &trailv1.SetPrivacySettingsRequest{Settings: &trailv1.PrivacySettings{TenantId: "acme", SealSubjectPayloads: true}}); err != nil {
		t.Fatal(err)
	}
	e.appendAll(e.admin, []*trailv1.Event{changeEvent("acme", "a-1", "alice"), changeEvent("acme", "b-1", "bob"), changeEvent("acme", "c-1", "carol")})
	eng := e.node.Engine()
	bobResidue, err := eng.Setting(engine.DataKeySetting("acme", "bob"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.comp.EraseSubject(e.ctx(e.admin), &trailv1.EraseSubjectRequest{TenantId: "acme", SubjectId: "bob", Reason: "Art. 17"}); err != nil {
		t.Fatal(err)
	}

	oldMaterial := []byte("trail test sealing secret, 32 bytes or more")
	newMaterial := []byte("the new sealing secret, also 32 bytes or more")
	rotating, err := shred.NewKeyring(newMaterial, oldMaterial)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(Config{Cluster: e.node, Signer: e.srv.cfg.Signer, Sealing: rotating, Logger: testLogger(), Plaintext: true})
	if err != nil {
		t.Fatal(err)
	}
	admin := withPrincipal(e.ctx(e.admin), &principal{keyID: "test", role: trailv1.Role_ROLE_ADMIN})
	cs := &complianceService{s: srv}
	resp, err := cs.RotateSealingKey(admin, &trailv1.RotateSealingKeyRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetRewrapped() != 2 || !bytes.Equal(resp.GetCheckValue(), rotating.CheckValue()) || !bytes.Equal(resp.GetPreviousCheckValue(), testSealing(t).CheckValue()) {
		t.Fatalf("rotation: %+v", resp)
	}
	if again, err := cs.RotateSealingKey(admin, &trailv1.RotateSealingKeyRequest{}); err != nil || again.GetRewrapped() != 0 {
		t.Fatalf("second rotation: %+v %v", again, err)
	}

	// The new secret alone opens every live subject's events and seals.
	after, err := shred.NewKeyring(newMaterial)
	if err != nil {
		t.Fatal(err)
	}
	newOnly, err := New(Config{Cluster: e.node, Signer: e.srv.cfg.Signer, Sealing: after, Logger: testLogger(), Plaintext: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a-1", "c-1"} {
		got := getEvent(t, e, e.admin, "acme", id)
		got.Sealed, got.OpeningKey = 0, nil
		newOnly.openEntry(got)
		if got.GetSealed() != trailv1.SealedState_SEALED_STATE_OPENED {
			t.Fatalf("%s with the new secret alone: %v", id, got.GetSealed())
		}
	}
	if _, err := after.Unwrap("acme", "bob", bobResidue); !errors.Is(err, shred.ErrWrongSecret) {
		t.Fatalf("the erased key's residue unwrapped with the new secret: %v", err)
	}
	// The node still on the old secret alone refuses to seal.
	ev := changeEvent("acme", "d-1", "dave")
	_, err = e.ingest.Append(e.ctx(e.admin), &trailv1.AppendRequest{Event: ev})
	wantCode(t, err, codes.FailedPrecondition)
}
