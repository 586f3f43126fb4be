package server

import (
	"bytes"
	"encoding/base64"
	"encoding/csv"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
	"github.com/trailaudit/trail/report"
	"github.com/trailaudit/trail/shred"
)

// TestReportsAfterErasure: the entity history and the PII access report
// of a subject whose payloads are sealed show the opened changes, and say
// so, until the subject's data key is erased; afterwards the same rows say
// "erased" and show nothing of the payload, other subjects' rows stay
// opened, and a node that cannot open says "unavailable". Every report
// verifies offline, in JSON and CSV, with the log key alone.
func TestReportsAfterErasure(t *testing.T) {
	e := newEnv(t, envOptions{})
	const tenant = "clinic"
	producer := e.key(trailv1.Role_ROLE_PRODUCER, tenant)
	officer := e.key(trailv1.Role_ROLE_PRIVACY_OFFICER, tenant)
	if _, err := e.comp.SetPrivacySettings(e.ctx(e.admin), &trailv1.SetPrivacySettingsRequest{Settings: &trailv1.PrivacySettings{TenantId: tenant, SealSubjectPayloads: true}}); err != nil {
		t.Fatal(err)
	}

	// The chart of alice: a change without subject (clear), two of alice's
	// (sealed), one of bob's (sealed). Alice's accesses: one with
	// attributes (sealed), one without (nothing to seal).
	onChart := func(ev *trailv1.Event) *trailv1.Event {
		ev.Target = &trailv1.Target{Type: "chart", Id: "alice-1"}
		return ev
	}
	unsealed := onChart(event(tenant, "h-0"))
	unsealed.Category, unsealed.SubjectId, unsealed.Attributes = trailv1.Category_CATEGORY_DATA_MODIFICATION, "", nil
	unsealed.Changes = []*trailv1.Change{{Field: "status", After: "open"}}
	sealedAccess := event(tenant, "acc-sealed")
	sealedAccess.SubjectId, sealedAccess.PurposeCode = "alice", "CARE"
	plainAccess := proto.Clone(sealedAccess).(*trailv1.Event)
	plainAccess.EventId, plainAccess.Attributes = "acc-plain", nil
	for _, ev := range []*trailv1.Event{
		unsealed, onChart(changeEvent(tenant, "h-1", "alice")), onChart(changeEvent(tenant, "h-2", "alice")),
		onChart(changeEvent(tenant, "h-3", "bob")), sealedAccess, plainAccess,
	} {
		e.appendAll(producer, []*trailv1.Event{ev})
	}

	history := func(e *env, format trailv1.ReportFormat) []byte {
		t.Helper()
		d, err := e.entityHistory(officer, &trailv1.EntityHistoryRequest{TenantId: tenant, TargetType: "chart", TargetId: "alice-1",
			Format: format, MinIndex: e.srv.cluster.AppliedIndex()})
		if err != nil {
			t.Fatalf("entity history: %v", err)
		}
		return d.data
	}
	pii := func(e *env, format trailv1.ReportFormat) []byte {
		t.Helper()
		d, err := e.piiReport(officer, &trailv1.PIIAccessReportRequest{TenantId: tenant, SubjectId: "alice",
			Format: format, MinIndex: e.srv.cluster.AppliedIndex()})
		if err != nil {
			t.Fatalf("PII access report: %v", err)
		}
		return d.data
	}
	const (
		clr         = report.PayloadClear
		opened      = report.PayloadOpened
		erased      = report.PayloadErased
		unavailable = report.PayloadUnavailable
	)
	// check verifies both reports of node in JSON and CSV and compares
	// their rows' payload states with want (history h-0..h-3, then the
	// accesses acc-sealed and acc-plain).
	check := func(t *testing.T, node *env, want []report.PayloadState) (hist, acc *report.Content) {
		t.Helper()
		v, hist := e.mustVerify(history(node, trailv1.ReportFormat_REPORT_FORMAT_JSON))
		va, acc := e.mustVerify(pii(node, trailv1.ReportFormat_REPORT_FORMAT_JSON))
		var got []report.PayloadState
		for _, r := range hist.History {
			got = append(got, r.Payload)
		}
		for _, r := range acc.Accesses {
			got = append(got, r.Payload)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("payload states %q, want %q", got, want)
		}
		count := func(p report.PayloadState) (n int) {
			for _, g := range got {
				if g == p {
					n++
				}
			}
			return n
		}
		if v.Erased+va.Erased != count(erased) || v.Unavailable+va.Unavailable != count(unavailable) ||
			hist.Summary.Opened+acc.Summary.Opened != count(opened) {
			t.Errorf("summaries: history %+v, accesses %+v", hist.Summary, acc.Summary)
		}
		for i, r := range hist.History {
			switch r.Payload {
			case opened:
				if len(r.Changes) == 0 || len(r.OpeningKey) == 0 {
					t.Errorf("history row %d is opened without changes or opening key: %+v", i, r)
				}
			case erased, unavailable:
				if len(r.Changes) != 0 || len(r.OpeningKey) != 0 {
					t.Errorf("history row %d is %s and shows changes or a key: %+v", i, r.Payload, r)
				}
			}
			if bytes.Contains(r.EntryBytes, []byte("secret-")) {
				t.Errorf("history row %d: the entry bytes hold the payload in clear", i)
			}
		}
		// The CSV forms verify and state the same, the opening key on
		// the first record of each opened row only.
		for _, tc := range []struct {
			name string
			b    []byte
			want []report.PayloadState
		}{
			{"history", history(node, trailv1.ReportFormat_REPORT_FORMAT_CSV), got[:len(hist.History)]},
			{"pii", pii(node, trailv1.ReportFormat_REPORT_FORMAT_CSV), got[len(hist.History):]},
		} {
			if _, err := report.VerifyCSV(tc.b, e.verifier, ""); err != nil {
				t.Fatalf("%s CSV: %v", tc.name, err)
			}
			recs, err := csv.NewReader(bytes.NewReader(tc.b)).ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			state, key, entry := slices.Index(recs[0], "payload_state"), slices.Index(recs[0], "opening_key"), slices.Index(recs[0], "entry_bytes")
			var states []report.PayloadState
			for _, r := range recs[1:] {
				if r[0][0] == '#' || r[entry] == "" {
					continue
				}
				states = append(states, report.PayloadState(r[state]))
				if (r[key] != "") != (r[state] == string(opened)) {
					t.Errorf("%s CSV record %q: opening key and state disagree", tc.name, r)
				}
			}
			if !slices.Equal(states, tc.want) {
				t.Errorf("%s CSV states %q, want %q", tc.name, states, tc.want)
			}
		}
		return hist, acc
	}

	before, accBefore := check(t, e, []report.PayloadState{clr, opened, opened, opened, opened, clr})
	if c := before.History[1].Changes; len(c) != 1 || c[0].Before != "secret-before-h-1" || c[0].After != "secret-after-h-1" {
		t.Fatalf("opened changes %+v", c)
	}
	// The opening key in the report opens the event, and only it.
	var en trailv1.Entry
	if err := proto.Unmarshal(before.History[1].EntryBytes, &en); err != nil {
		t.Fatal(err)
	}
	if f, err := shred.Open(en.GetEvent(), before.History[1].OpeningKey); err != nil || f.GetAttributes()["comment"] != "secret-comment-h-1" {
		t.Fatalf("open with the report's key: %v %v", f, err)
	}
	if accBefore.Accesses[0].EventID != "acc-sealed" || len(accBefore.Accesses[0].OpeningKey) == 0 {
		t.Fatalf("sealed access %+v", accBefore.Accesses[0])
	}
	// The JSON names the state and carries the key in base64.
	doc := history(e, trailv1.ReportFormat_REPORT_FORMAT_JSON)
	if !bytes.Contains(doc, []byte(`"payload_state": "opened"`)) ||
		!bytes.Contains(doc, []byte(base64.StdEncoding.EncodeToString(before.History[1].OpeningKey))) {
		t.Errorf("JSON report lacks the payload state or opening key:\n%.3000s", doc)
	}

	if _, err := e.comp.EraseSubject(e.ctx(officer), &trailv1.EraseSubjectRequest{TenantId: tenant, SubjectId: "alice", Reason: "Art. 17(1)(b)"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "erasure applied", func() bool {
		return getEvent(t, e, officer, tenant, "h-1").GetSealed() == trailv1.SealedState_SEALED_STATE_ERASED
	})
	after, accAfter := check(t, e, []report.PayloadState{clr, erased, erased, opened, erased, clr})
	// The same leaves, proven as before: only what the server can open
	// changed.
	for i := range after.History {
		if after.History[i].LeafHash != before.History[i].LeafHash {
			t.Errorf("history row %d: leaf hash changed with the erasure", i)
		}
	}
	if accAfter.Summary.Erased != 1 || after.Summary.Erased != 2 || after.Summary.Changes != 2 {
		t.Errorf("summaries after the erasure: %+v, %+v", after.Summary, accAfter.Summary)
	}
	for _, b := range [][]byte{history(e, trailv1.ReportFormat_REPORT_FORMAT_JSON), history(e, trailv1.ReportFormat_REPORT_FORMAT_CSV)} {
		for _, secret := range []string{"secret-before-h-1", "secret-after-h-1", "secret-before-h-2", "secret-after-h-2"} {
			if bytes.Contains(b, []byte(secret)) {
				t.Errorf("a report after the erasure shows alice's %q", secret)
			}
		}
		if !bytes.Contains(b, []byte("secret-after-h-3")) {
			t.Error("a report after alice's erasure lacks bob's opened change")
		}
	}

	// A server of the same node without the sealing secret opens nothing:
	// every sealed row is unavailable, and the reports still verify.
	srv, err := New(Config{Cluster: e.node, Signer: e.srv.cfg.Signer, Logger: testLogger(), Plaintext: true})
	if err != nil {
		t.Fatal(err)
	}
	blind := &env{t: t, node: e.node, srv: srv, admin: e.admin, verifier: e.verifier, serveErr: make(chan error, 1)}
	blind.listen(nil)
	check(t, blind, []report.PayloadState{clr, unavailable, unavailable, unavailable, unavailable, clr})
}
