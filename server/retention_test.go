package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/trailaudit/trail/compliance"
	"github.com/trailaudit/trail/engine"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
	"github.com/trailaudit/trail/raftnode"
)

// retentionEnv is a real node whose sequencer clock starts in January 2020
// and whose retention clock (Config.Now) tests move years ahead.
type retentionEnv struct {
	*env
	seq, now *settableClock
	producer string
}

var retentionStart = time.Date(2020, 1, 10, 9, 0, 0, 0, time.UTC)

func newRetentionEnv(t *testing.T, interval time.Duration) *retentionEnv {
	seq := &settableClock{t: retentionStart}
	now := &settableClock{t: retentionStart}
	e := newEnv(t, envOptions{
		tuneNode: func(c *raftnode.Config) {
			c.Clock = seq.now
			c.PruneFilter = compliance.FilterHeld
		},
		tune: func(c *Config) {
			c.Now = now.now
			c.RetentionInterval = interval
		},
	})
	return &retentionEnv{env: e, seq: seq, now: now, producer: e.key(trailv1.Role_ROLE_PRODUCER, "acme")}
}

func retentionTestEvent(id string, c trailv1.Category, subject string) *trailv1.Event {
	return &trailv1.Event{
		TenantId: "acme", EventId: id, Category: c, Action: "thing.done",
		Outcome:    trailv1.Outcome_OUTCOME_SUCCESS,
		Actor:      &trailv1.Actor{Id: "clerk", Type: "user"},
		SubjectId:  subject,
		Target:     &trailv1.Target{Type: "record", Id: id},
		OccurredAt: timestamppb.New(retentionStart),
	}
}

// add appends n events of category c, alternating subjects alice and bob.
func (re *retentionEnv) add(prefix string, n int, c trailv1.Category) []*trailv1.Receipt {
	re.t.Helper()
	var evs []*trailv1.Event
	for i := range n {
		subject := "alice"
		if i%2 == 1 {
			subject = "bob"
		}
		evs = append(evs, retentionTestEvent(fmt.Sprintf("%s-%d", prefix, i), c, subject))
	}
	return re.appendAll(re.producer, evs)
}

func (re *retentionEnv) getEvent(tenant, id string) (*trailv1.GetEventResponse, error) {
	return re.read.GetEvent(re.ctx(re.admin), &trailv1.GetEventRequest{TenantId: tenant, EventId: id})
}

func (re *retentionEnv) mustEvent(tenant, id string) *trailv1.GetEventResponse {
	re.t.Helper()
	resp, err := re.getEvent(tenant, id)
	if err != nil {
		re.t.Fatalf("GetEvent(%s, %s): %v", tenant, id, err)
	}
	return resp
}

func (re *retentionEnv) sweep(tenant string) *trailv1.RunRetentionSweepResponse {
	re.t.Helper()
	resp, err := re.comp.RunRetentionSweep(re.ctx(re.admin), &trailv1.RunRetentionSweepRequest{TenantId: tenant})
	if err != nil {
		re.t.Fatalf("RunRetentionSweep: %v", err)
	}
	return resp
}

// verifyProof proves an event, pruned or not, up to a signed checkpoint
// with transparency-dev/merkle. A pruned entry is proven by its leaf hash,
// which the tree keeps.
func (re *retentionEnv) verifyProof(tenant, id string) {
	re.t.Helper()
	resp, err := re.proofs.GetInclusionProof(re.ctx(re.admin), &trailv1.GetInclusionProofRequest{TenantId: tenant, EventId: id})
	if err != nil {
		re.t.Fatalf("inclusion proof of %s: %v", id, err)
	}
	if len(resp.GetEntryBytes()) > 0 {
		re.verifyInclusion(resp, tenant)
		return
	}
	cp := re.openCheckpoint([]byte(resp.GetCheckpoint().GetSignedNote()), tenant, resp.GetPartition())
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, resp.GetLeafIndex(), cp.Size, resp.GetLeafHash(), resp.GetProof(), cp.Hash); err != nil {
		re.t.Fatalf("inclusion proof of pruned %s: %v", id, err)
	}
}

// tombstone reads a tombstone of the system tenant and checks its
// signature, and that the signed body is not a checkpoint.
func (re *retentionEnv) tombstone(id string) map[string]string {
	re.t.Helper()
	en := re.mustEvent(engine.SystemTenant, id).GetEntry().GetEntry().GetEvent()
	if en.GetAction() != compliance.ActionRetentionPruned || en.GetCategory() != trailv1.Category_CATEGORY_COMPLIANCE {
		re.t.Fatalf("tombstone %s: %v", id, en)
	}
	attrs := en.GetAttributes()
	signed := []byte(attrs["signed_note"])
	n, err := note.Open(signed, note.VerifierList(re.verifier))
	if err != nil {
		re.t.Fatalf("tombstone signature: %v\n%s", err, signed)
	}
	if !strings.HasPrefix(n.Text, testLogName+" retention tombstone v1\n") || !strings.Contains(n.Text, "\nleaves "+attrs["leaves"]+"\n") {
		re.t.Fatalf("tombstone body:\n%s", n.Text)
	}
	origin := strings.SplitN(n.Text, "\n", 2)[0]
	if _, _, _, err := log.ParseCheckpoint(signed, origin, re.verifier); err == nil {
		re.t.Fatal("a tombstone parses as a checkpoint")
	}
	return attrs
}

// Events from 2020 are swept three years on: authentication payloads (2
// years) go, data access (7 years) stay, every proof still verifies, and
// the pruning is logged as a signed tombstone.
func TestRetentionSweepPrunesAndProofsVerify(t *testing.T) {
	re := newRetentionEnv(t, -1)
	re.add("login", 10, trailv1.Category_CATEGORY_AUTHENTICATION)
	re.add("read", 5, trailv1.Category_CATEGORY_DATA_ACCESS)

	// A year on nothing has expired.
	re.now.set(retentionStart.AddDate(1, 0, 0))
	if resp := re.sweep("acme"); resp.GetPruned() != 0 || len(resp.GetTombstones()) != 0 {
		t.Fatalf("sweep a year on: %v", resp)
	}
	re.now.set(retentionStart.AddDate(3, 0, 0))
	dry, err := re.comp.RetentionDryRun(re.ctx(re.admin), &trailv1.RetentionDryRunRequest{TenantId: "acme"})
	if err != nil || dry.GetExpired() != 10 || dry.GetHeld() != 0 || len(dry.GetCandidates()) != 10 || dry.GetTruncated() {
		t.Fatalf("dry run: %v, %v", dry, err)
	}
	if c := dry.GetCandidates()[0]; c.GetEventId() != "login-0" || c.GetPartition() != "2020-01" || len(c.GetHeldBy()) != 0 ||
		!c.GetExpiredAt().AsTime().Equal(c.GetSequencerTime().AsTime().Add(730*24*time.Hour)) {
		t.Fatalf("first candidate %v", c)
	}

	resp := re.sweep("")
	if resp.GetPruned() != 10 || resp.GetHeld() != 0 || len(resp.GetTombstones()) != 1 || len(resp.GetDroppedPartitions()) != 0 {
		t.Fatalf("sweep: %v", resp)
	}
	for i := range 10 {
		id := fmt.Sprint("login-", i)
		got := re.mustEvent("acme", id).GetEntry()
		if !got.GetPruned() || len(got.GetEntryBytes()) != 0 || len(got.GetLeafHash()) != 32 {
			t.Fatalf("%s after the sweep: %v", id, got)
		}
		re.verifyProof("acme", id)
	}
	for i := range 5 {
		id := fmt.Sprint("read-", i)
		if got := re.mustEvent("acme", id).GetEntry(); got.GetPruned() {
			t.Fatalf("%s (7-year retention) was pruned", id)
		}
		re.verifyProof("acme", id)
	}
	attrs := re.tombstone(resp.GetTombstones()[0])
	want := map[string]string{"tenant": "acme", "partition": "2020-01", "leaves": "0-9", "count": "10", "policy": "authentication=730d", "tree_size": "15"}
	for k, v := range want {
		if attrs[k] != v {
			t.Errorf("tombstone %s = %q, want %q", k, attrs[k], v)
		}
	}
	re.verifyProof(engine.SystemTenant, resp.GetTombstones()[0])

	// Nothing is pruned twice, and the partition counts what was.
	if again := re.sweep(""); again.GetPruned() != 0 || len(again.GetTombstones()) != 0 {
		t.Fatalf("second sweep: %v", again)
	}
	parts, err := re.proofs.ListPartitions(re.ctx(re.admin), &trailv1.ListPartitionsRequest{TenantId: "acme"})
	if err != nil || len(parts.GetPartitions()) != 1 || parts.GetPartitions()[0].GetPruned() != 10 {
		t.Fatalf("partitions: %v, %v", parts, err)
	}
}

// A shorter policy expires data sooner; policies are listed with their
// defaults and their changes are logged.
func TestRetentionPolicies(t *testing.T) {
	re := newRetentionEnv(t, -1)
	re.add("read", 4, trailv1.Category_CATEGORY_DATA_ACCESS)
	set, err := re.comp.SetRetentionPolicy(re.ctx(re.admin), &trailv1.SetRetentionPolicyRequest{
		TenantId: "acme", Category: trailv1.Category_CATEGORY_DATA_ACCESS, RetentionDays: 1000})
	if err != nil || set.GetPolicy().GetRetentionDays() != 1000 || set.GetPolicy().GetIsDefault() {
		t.Fatalf("SetRetentionPolicy: %v, %v", set, err)
	}
	var list trailv1.ListRetentionPoliciesResponse
	re.restJSON(http.MethodGet, "/api/v1/admin/tenants/acme/retention", re.admin, nil, &list)
	if len(list.GetPolicies()) != 9 {
		t.Fatalf("policies: %v", list.GetPolicies())
	}
	for _, p := range list.GetPolicies() {
		def, _ := compliance.DefaultRetentionDays(p.GetCategory())
		wantDays, wantDefault := def, true
		if p.GetCategory() == trailv1.Category_CATEGORY_DATA_ACCESS {
			wantDays, wantDefault = 1000, false
		}
		if p.GetRetentionDays() != wantDays || p.GetIsDefault() != wantDefault {
			t.Errorf("policy %v, want %d days default=%v", p, wantDays, wantDefault)
		}
	}
	re.now.set(retentionStart.AddDate(3, 0, 0))
	if resp := re.sweep("acme"); resp.GetPruned() != 4 {
		t.Fatalf("sweep under a 1000-day policy: %v", resp)
	}
	// The change is in both logs.
	for _, tenant := range []string{engine.SystemTenant, "acme"} {
		res, err := re.read.Search(re.ctx(re.admin), &trailv1.SearchRequest{TenantId: tenant, Action: "audit.retention.policy_set"})
		if err != nil || len(res.GetEntries()) != 1 || res.GetEntries()[0].GetEntry().GetEvent().GetAttributes()["retention_days"] != "1000" {
			t.Fatalf("policy change in %s: %v, %v", tenant, res, err)
		}
	}
	reset, err := re.comp.SetRetentionPolicy(re.ctx(re.admin), &trailv1.SetRetentionPolicyRequest{
		TenantId: "acme", Category: trailv1.Category_CATEGORY_DATA_ACCESS, Reset_: true})
	if err != nil || reset.GetPolicy().GetRetentionDays() != 2557 || !reset.GetPolicy().GetIsDefault() {
		t.Fatalf("reset: %v, %v", reset, err)
	}
}

// The leader sweeps on its own every RetentionInterval.
func TestRetentionBackgroundSweep(t *testing.T) {
	re := newRetentionEnv(t, 50*time.Millisecond)
	re.add("login", 3, trailv1.Category_CATEGORY_AUTHENTICATION)
	re.now.set(retentionStart.AddDate(3, 0, 0))
	waitFor(t, 20*time.Second, "the background sweep", func() bool {
		resp, err := re.getEvent("acme", "login-2")
		return err == nil && resp.GetEntry().GetPruned()
	})
}

// A sealed month whose every payload expired loses its segment file, but
// not while a hold reaches it; afterwards it is still listed with its final
// checkpoint, and the next month's link to it still verifies.
func TestRetentionDropsExpiredSegment(t *testing.T) {
	re := newRetentionEnv(t, -1)
	ctx := context.Background()
	re.add("jan", 6, trailv1.Category_CATEGORY_AUTHENTICATION)
	re.seq.set(time.Date(2020, 2, 3, 0, 0, 0, 0, time.UTC))
	re.add("feb", 1, trailv1.Category_CATEGORY_FINANCIAL)
	jan := engine.Partition{Tenant: "acme", Month: engine.Month{Year: 2020, Month: time.January}}
	if err := re.node.Seal(ctx, jan); err != nil && !errors.Is(err, engine.ErrSealed) {
		t.Fatal(err)
	}
	hold, err := re.comp.CreateLegalHold(re.ctx(re.admin), &trailv1.CreateLegalHoldRequest{Hold: &trailv1.LegalHold{
		TenantId: "acme", SubjectId: "bob", CaseReference: "CASE-1", Reason: "pending litigation"}})
	if err != nil {
		t.Fatal(err)
	}
	re.now.set(retentionStart.AddDate(3, 0, 0))
	if resp := re.sweep("acme"); resp.GetPruned() != 3 || resp.GetHeld() != 3 || len(resp.GetDroppedPartitions()) != 0 {
		t.Fatalf("sweep under hold: %v", resp)
	}
	// Held entries keep the file, whatever asks for the drop.
	if err := re.node.DropSegment(ctx, jan); !errors.Is(err, engine.ErrNotDroppable) {
		t.Fatalf("DropSegment with held entries: %v", err)
	}
	if _, err := re.comp.ReleaseLegalHold(re.ctx(re.admin), &trailv1.ReleaseLegalHoldRequest{Id: hold.GetHold().GetId(), Reason: "case closed"}); err != nil {
		t.Fatal(err)
	}
	dry, err := re.comp.RetentionDryRun(re.ctx(re.admin), &trailv1.RetentionDryRunRequest{TenantId: "acme"})
	if err != nil || dry.GetExpired() != 3 || len(dry.GetDroppablePartitions()) != 1 || dry.GetDroppablePartitions()[0] != "acme/2020-01" {
		t.Fatalf("dry run after release: %v, %v", dry, err)
	}
	resp := re.sweep("acme")
	if resp.GetPruned() != 3 || len(resp.GetDroppedPartitions()) != 1 || resp.GetDroppedPartitions()[0] != "acme/2020-01" {
		t.Fatalf("sweep after release: %v", resp)
	}

	parts, err := re.proofs.ListPartitions(re.ctx(re.admin), &trailv1.ListPartitionsRequest{TenantId: "acme"})
	if err != nil || len(parts.GetPartitions()) != 2 {
		t.Fatalf("partitions: %v, %v", parts, err)
	}
	janInfo := parts.GetPartitions()[0]
	final := re.openCheckpoint([]byte(janInfo.GetFinalCheckpoint().GetSignedNote()), "acme", "2020-01")
	if janInfo.GetSize() != 6 || janInfo.GetPruned() != 6 || final.Size != 6 || !bytes.Equal(final.Hash, janInfo.GetRootHash()) {
		t.Fatalf("dropped January listed as %v", janInfo)
	}
	if _, err := re.getEvent("acme", "jan-0"); codeOf(err) != codes.NotFound || !strings.Contains(err.Error(), "dropped by retention") {
		t.Fatalf("reading a dropped entry: %v", err)
	}
	feb := re.mustEvent("acme", "feb-0").GetEntry()
	link := feb.GetEntry().GetPrevPartition()
	if feb.GetLeafIndex() != 0 || link.GetPartition() != "2020-01" || link.GetSize() != 6 || !bytes.Equal(link.GetRoot(), final.Hash) {
		t.Fatalf("February's link %v, January's final checkpoint %+v", link, final)
	}
	re.verifyProof("acme", "feb-0")
	drops, err := re.read.Search(re.ctx(re.admin), &trailv1.SearchRequest{TenantId: engine.SystemTenant, Action: compliance.ActionSegmentDropped})
	if err != nil || len(drops.GetEntries()) != 1 || drops.GetEntries()[0].GetEntry().GetEvent().GetAttributes()["partition"] != "2020-01" {
		t.Fatalf("drop record: %v, %v", drops, err)
	}
}

// Bad input is refused with InvalidArgument or NotFound, and every call
// needs an admin key.
func TestRetentionBadInput(t *testing.T) {
	re := newRetentionEnv(t, -1)
	auditor := re.key(trailv1.Role_ROLE_AUDITOR, "acme")
	at := timestamppb.New(retentionStart)
	hold := func(change func(*trailv1.LegalHold)) *trailv1.CreateLegalHoldRequest {
		h := &trailv1.LegalHold{TenantId: "acme", CaseReference: "C-1", Reason: "litigation"}
		change(h)
		return &trailv1.CreateLegalHoldRequest{Hold: h}
	}
	policy := func(tenant string, c trailv1.Category, days uint32) *trailv1.SetRetentionPolicyRequest {
		return &trailv1.SetRetentionPolicyRequest{TenantId: tenant, Category: c, RetentionDays: days}
	}
	fin := trailv1.Category_CATEGORY_FINANCIAL
	cases := []struct {
		name string
		call func(ctx context.Context) error
		want codes.Code
	}{
		{"unknown category", func(ctx context.Context) error {
			_, err := re.comp.SetRetentionPolicy(ctx, policy("acme", trailv1.Category(42), 1000))
			return err
		}, codes.InvalidArgument},
		{"unspecified category", func(ctx context.Context) error {
			_, err := re.comp.SetRetentionPolicy(ctx, policy("acme", trailv1.Category_CATEGORY_UNSPECIFIED, 1000))
			return err
		}, codes.InvalidArgument},
		{"retention below range", func(ctx context.Context) error {
			_, err := re.comp.SetRetentionPolicy(ctx, policy("acme", fin, 729))
			return err
		}, codes.InvalidArgument},
		{"retention above range", func(ctx context.Context) error {
			_, err := re.comp.SetRetentionPolicy(ctx, policy("acme", fin, 3654))
			return err
		}, codes.InvalidArgument},
		{"policy of empty tenant", func(ctx context.Context) error {
			_, err := re.comp.SetRetentionPolicy(ctx, policy("", fin, 1000))
			return err
		}, codes.InvalidArgument},
		{"list policies of empty tenant", func(ctx context.Context) error {
			_, err := re.comp.ListRetentionPolicies(ctx, &trailv1.ListRetentionPoliciesRequest{})
			return err
		}, codes.InvalidArgument},
		{"dry run limit", func(ctx context.Context) error {
			_, err := re.comp.RetentionDryRun(ctx, &trailv1.RetentionDryRunRequest{Limit: 1 << 20})
			return err
		}, codes.InvalidArgument},
		{"sweep of a bad tenant", func(ctx context.Context) error {
			_, err := re.comp.RunRetentionSweep(ctx, &trailv1.RunRetentionSweepRequest{TenantId: "no/such"})
			return err
		}, codes.InvalidArgument},
		{"no hold", func(ctx context.Context) error {
			_, err := re.comp.CreateLegalHold(ctx, &trailv1.CreateLegalHoldRequest{})
			return err
		}, codes.InvalidArgument},
		{"hold of empty tenant", func(ctx context.Context) error {
			_, err := re.comp.CreateLegalHold(ctx, hold(func(h *trailv1.LegalHold) { h.TenantId = "" }))
			return err
		}, codes.InvalidArgument},
		{"hold without case reference", func(ctx context.Context) error {
			_, err := re.comp.CreateLegalHold(ctx, hold(func(h *trailv1.LegalHold) { h.CaseReference = "" }))
			return err
		}, codes.InvalidArgument},
		{"hold with empty range", func(ctx context.Context) error {
			_, err := re.comp.CreateLegalHold(ctx, hold(func(h *trailv1.LegalHold) { h.From, h.To = at, at }))
			return err
		}, codes.InvalidArgument},
		{"hold of unknown category", func(ctx context.Context) error {
			_, err := re.comp.CreateLegalHold(ctx, hold(func(h *trailv1.LegalHold) { h.Category = 42 }))
			return err
		}, codes.InvalidArgument},
		{"release unknown hold", func(ctx context.Context) error {
			_, err := re.comp.ReleaseLegalHold(ctx, &trailv1.ReleaseLegalHoldRequest{Id: "hold-nope", Reason: "r"})
			return err
		}, codes.NotFound},
		{"release without id", func(ctx context.Context) error {
			_, err := re.comp.ReleaseLegalHold(ctx, &trailv1.ReleaseLegalHoldRequest{Reason: "r"})
			return err
		}, codes.InvalidArgument},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantCode(t, c.call(re.ctx(re.admin)), c.want)
		})
	}
	denied := []func(ctx context.Context) error{
		func(ctx context.Context) error {
			_, err := re.comp.SetRetentionPolicy(ctx, policy("acme", fin, 1000))
			return err
		},
		func(ctx context.Context) error {
			_, err := re.comp.ListRetentionPolicies(ctx, &trailv1.ListRetentionPoliciesRequest{TenantId: "acme"})
			return err
		},
		func(ctx context.Context) error {
			_, err := re.comp.RetentionDryRun(ctx, &trailv1.RetentionDryRunRequest{TenantId: "acme"})
			return err
		},
		func(ctx context.Context) error {
			_, err := re.comp.RunRetentionSweep(ctx, &trailv1.RunRetentionSweepRequest{TenantId: "acme"})
			return err
		},
		func(ctx context.Context) error {
			_, err := re.comp.CreateLegalHold(ctx, hold(func(*trailv1.LegalHold) {}))
			return err
		},
		func(ctx context.Context) error {
			_, err := re.comp.ListLegalHolds(ctx, &trailv1.ListLegalHoldsRequest{TenantId: "acme"})
			return err
		},
	}
	for i, call := range denied {
		if err := call(re.ctx(auditor)); codeOf(err) != codes.PermissionDenied {
			t.Errorf("auditor call %d: %v, want PermissionDenied", i, err)
		}
	}
}

// A sweep asked of a follower of a three-node cluster prunes through the
// leader; every node ends with the same entries pruned, and the holds keep
// theirs on every node.
func TestRetentionSweepThroughFollower(t *testing.T) {
	e := newClusterEnv(t, func(c *raftnode.Config) {
		c.Clock = func() time.Time { return retentionStart } // six years before Config.Now
		c.PruneFilter = compliance.FilterHeld
	})
	re := &retentionEnv{env: e, producer: e.key(trailv1.Role_ROLE_PRODUCER, "acme")}
	re.add("login", 6, trailv1.Category_CATEGORY_AUTHENTICATION) // even: alice, odd: bob
	f := scenarioFollower(t, e)
	if _, err := f.comp.CreateLegalHold(f.ctx(f.admin), &trailv1.CreateLegalHoldRequest{Hold: &trailv1.LegalHold{
		TenantId: "acme", SubjectId: "alice", CaseReference: "C-7", Reason: "audit"}}); err != nil {
		t.Fatal(err)
	}
	waitApplied(t, f, e) // the hold is committed; the follower plans on it
	resp, err := f.comp.RunRetentionSweep(f.ctx(f.admin), &trailv1.RunRetentionSweepRequest{TenantId: "acme"})
	if err != nil || resp.GetPruned() != 3 || resp.GetHeld() != 3 || len(resp.GetTombstones()) != 1 {
		t.Fatalf("sweep through a follower: %v, %v", resp, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	jan := engine.Partition{Tenant: "acme", Month: engine.MonthOf(retentionStart)}
	for _, n := range append([]*env{e}, e.peers...) {
		if err := n.node.WaitApplied(ctx, e.node.AppliedIndex()); err != nil {
			t.Fatal(err)
		}
		for leaf := range uint64(6) {
			se, err := n.node.Engine().Entry(ctx, jan, leaf)
			if err != nil || se.Pruned != (leaf%2 == 1) {
				t.Fatalf("%s leaf %d: pruned=%v, %v", n.node.ID(), leaf, se.Pruned, err)
			}
		}
	}
	if attrs := re.tombstone(resp.GetTombstones()[0]); attrs["leaves"] != "1,3,5" {
		t.Fatalf("tombstone lists %q", attrs["leaves"])
	}
}

// The tombstone is written before the prune, so no payload is removed
// unrecorded. When the state machine keeps some of the chosen leaves (here
// its prune filter keeps leaf 1, as a hold committed between the sweep's
// choice and the prune's apply would), a following record says which, and
// the sweep reports them held.
func TestRetentionTombstoneFirstAndKeptRecord(t *testing.T) {
	seq := &settableClock{t: retentionStart}
	now := &settableClock{t: retentionStart.AddDate(3, 0, 0)}
	keepLeafOne := func(_ context.Context, _ *engine.Engine, _ engine.Partition, leaves []uint64) ([]uint64, error) {
		return slices.DeleteFunc(slices.Clone(leaves), func(l uint64) bool { return l == 1 }), nil
	}
	e := newEnv(t, envOptions{
		tuneNode: func(c *raftnode.Config) { c.Clock, c.PruneFilter = seq.now, keepLeafOne },
		tune:     func(c *Config) { c.Now, c.RetentionInterval = now.now, -1 },
	})
	re := &retentionEnv{env: e, seq: seq, now: now, producer: e.key(trailv1.Role_ROLE_PRODUCER, "acme")}
	re.add("login", 4, trailv1.Category_CATEGORY_AUTHENTICATION)

	resp := re.sweep("acme")
	if resp.GetPruned() != 3 || resp.GetHeld() != 1 || len(resp.GetTombstones()) != 1 {
		t.Fatalf("sweep: %v", resp)
	}
	tomb := re.mustEvent(engine.SystemTenant, resp.GetTombstones()[0])
	if got := tomb.GetEntry().GetEntry().GetEvent().GetAttributes()["leaves"]; got != "0-3" {
		t.Fatalf("tombstone lists %q, want the chosen leaves 0-3", got)
	}
	if re.mustEvent("acme", "login-1").GetEntry().GetPruned() || !re.mustEvent("acme", "login-2").GetEntry().GetPruned() {
		t.Fatal("the filter's choice was not applied")
	}
	found, err := re.read.Search(re.ctx(re.admin), &trailv1.SearchRequest{TenantId: engine.SystemTenant, Action: compliance.ActionRetentionKept})
	if err != nil || len(found.GetEntries()) != 1 {
		t.Fatalf("kept records: %v, %v", found, err)
	}
	kept := found.GetEntries()[0]
	attrs := kept.GetEntry().GetEvent().GetAttributes()
	if attrs["kept"] != "1" || attrs["tombstone"] != resp.GetTombstones()[0] {
		t.Fatalf("kept record %v", attrs)
	}
	if kept.GetLeafIndex() <= tomb.GetEntry().GetLeafIndex() {
		t.Fatalf("kept record at leaf %d, tombstone at %d: the tombstone must come first", kept.GetLeafIndex(), tomb.GetEntry().GetLeafIndex())
	}
}
