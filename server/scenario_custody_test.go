package server

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/trailaudit/trail/internal/eventgen"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
	"github.com/trailaudit/trail/report"
)

// custodyStep is one event in the life of the case.
type custodyStep struct {
	id, actor, role string
	category        trailv1.Category
	action          string
	changes         []*trailv1.Change
}

// TestScenarioLegalCounselChainOfCustody: in litigation, the court's legal
// counsel must show who did what to case 4711 and when, field by field:
// the chain of custody. Clerks, a judge and a registrar create, reassign,
// view, amend and close the case over time. Counsel pulls the entity
// history; it lists every event on the case in order with each change's
// before and after value, every row is proven in the log, and the JSON
// verifies offline with the log's public key, while any edit to it fails.
func TestScenarioLegalCounselChainOfCustody(t *testing.T) {
	e := newScenarioEnv(t)
	const tenant = "courts"
	prod := e.key(trailv1.Role_ROLE_PRODUCER, tenant)
	otherProd := e.key(trailv1.Role_ROLE_PRODUCER, "tribunal")
	noise := eventgen.New(eventgen.Config{Seed: 4711, Tenants: 1, Actors: 40, Subjects: 300})

	steps := []custodyStep{
		{"case-4711-1", "clerk-anna", "clerk", trailv1.Category_CATEGORY_WORKFLOW, "case.create", []*trailv1.Change{
			{Field: "status", Before: "", After: "open"}, {Field: "assignee", Before: "", After: "clerk-anna"},
			{Field: "priority", Before: "", After: "normal"}}},
		{"case-4711-2", "judge-ben", "judge", trailv1.Category_CATEGORY_DATA_MODIFICATION, "case.reassign", []*trailv1.Change{
			{Field: "assignee", Before: "clerk-anna", After: "judge-ben"}}},
		{"case-4711-3", "clerk-anna", "clerk", trailv1.Category_CATEGORY_DATA_ACCESS, "case.view", nil},
		{"case-4711-4", "judge-ben", "judge", trailv1.Category_CATEGORY_DATA_MODIFICATION, "case.update", []*trailv1.Change{
			{Field: "priority", Before: "normal", After: "high"},
			{Field: "hearing", Before: "", After: `{"date":"2026-12-01","room":"3B"}`}}},
		{"case-4711-5", "registrar-cem", "registrar", trailv1.Category_CATEGORY_WORKFLOW, "case.close", []*trailv1.Change{
			{Field: "status", Before: "open", After: "closed"}}},
	}
	var receipts []*trailv1.Receipt
	for i, s := range steps {
		batch := make([]*trailv1.Event, 0, 16)
		for range 10 {
			ev := noise.Next()
			ev.TenantId = tenant
			batch = append(batch, ev)
		}
		// Look-alikes that must not appear: another case, an entity of
		// another type with the same id, an id sharing the prefix.
		for j, target := range []*trailv1.Target{{Type: "case", Id: "4712"}, {Type: "casefile", Id: "4711"}, {Type: "case", Id: "47110"}} {
			ev := custodyEvent(tenant, s)
			ev.EventId, ev.Target = fmt.Sprintf("lookalike-%d-%d", i, j), target
			batch = append(batch, ev)
		}
		rs := e.appendAll(prod, append(batch, custodyEvent(tenant, s)))
		receipts = append(receipts, rs[len(rs)-1])
		// The same case number at another court.
		e.appendAll(otherProd, []*trailv1.Event{custodyEvent("tribunal", s)})
	}

	counsel := e.key(trailv1.Role_ROLE_AUDITOR, tenant) // legal counsel reads and verifies
	req := &trailv1.EntityHistoryRequest{TenantId: tenant, TargetType: "case", TargetId: "4711"}
	d, err := e.entityHistory(counsel, req)
	if err != nil {
		t.Fatalf("entity history: %v", err)
	}
	res, c := e.mustVerify(d.data) // every row proven against its signed checkpoint
	if res.Rows != len(steps) || c.Summary.Changes != 7 || c.Summary.Actors != 3 {
		t.Fatalf("verified %+v, summary %+v", res, c.Summary)
	}
	for i, r := range c.History {
		checkCustodyRow(t, r, steps[i], receipts[i])
	}
	checkCustodyChain(t, c.History)

	// The CSV has one record per change (and one for the view, which
	// changed nothing); the PDF carries the attestation.
	path := "/api/v1/audit/tenants/" + tenant + "/entities/case/4711/history"
	csvBody := foiDownload(t, e, path+"?format=csv", counsel, "text/csv", ".csv")
	checkCustodyCSV(t, csvBody, steps)
	pdf := foiDownload(t, e, path+"?format=pdf", counsel, "application/pdf", ".pdf")
	if !bytes.HasPrefix(pdf, []byte("%PDF-")) || !bytes.Contains(pdf, []byte("sha256:")) {
		t.Errorf("PDF %.40q lacks its attestation digest", pdf)
	}
	for _, doc := range [][]byte{csvBody, pdf} {
		if v, err := report.VerifyFile(doc, e.verifier, ""); err != nil || v.Rows != len(steps) {
			t.Errorf("verify %s history: %+v, %v", report.DetectFormat(doc), v, err)
		}
	}

	// Counsel on another node gets the same history.
	f := scenarioFollower(t, e)
	fd, err := f.entityHistory(counsel, req)
	if err != nil {
		t.Fatalf("history from follower %s: %v", f.node.ID(), err)
	}
	if _, fc := f.mustVerify(fd.data); !slices.Equal(eventIDs(fc), eventIDs(c)) {
		t.Errorf("follower lists %q, leader %q", eventIDs(fc), eventIDs(c))
	}

	// Rewriting history in the file is detected offline.
	forged := bytes.Replace(d.data, []byte(`"before": "clerk-anna"`), []byte(`"before": "clerk-zoe"`), 1)
	if bytes.Equal(forged, d.data) {
		t.Fatal("fixture lacks the change to forge")
	}
	if _, err := report.Verify(forged, e.verifier, ""); err == nil {
		t.Error("a history with a forged before value verifies")
	}
}

func custodyEvent(tenant string, s custodyStep) *trailv1.Event {
	ev := &trailv1.Event{
		TenantId: tenant, EventId: s.id, Category: s.category, Action: s.action, Outcome: trailv1.Outcome_OUTCOME_SUCCESS,
		Actor:  &trailv1.Actor{Id: s.actor, Type: "user", DisplayName: strings.ToUpper(s.actor[:1]) + s.actor[1:], Roles: []string{s.role}},
		Target: &trailv1.Target{Type: "case", Id: "4711"}, Changes: s.changes, SourceService: "courts-cms",
		OccurredAt: timestamppb.Now(),
	}
	if s.category == trailv1.Category_CATEGORY_DATA_ACCESS {
		ev.SubjectId, ev.PiiFieldsAccessed, ev.PurposeCode = "party-17", []string{"name"}, "CASE_MGMT"
	}
	return ev
}

// checkCustodyRow checks one history row against the step it records.
func checkCustodyRow(t *testing.T, r report.HistoryRow, s custodyStep, rc *trailv1.Receipt) {
	t.Helper()
	var want []report.Change
	for _, ch := range s.changes {
		want = append(want, report.Change{Field: ch.GetField(), Before: ch.GetBefore(), After: ch.GetAfter()})
	}
	switch {
	case r.EventID != s.id || r.ActorID != s.actor || !slices.Equal(r.ActorRoles, []string{s.role}) || r.Action != s.action:
		t.Errorf("row %s: %+v", s.id, r)
	case r.Category != strings.ToLower(strings.TrimPrefix(s.category.String(), "CATEGORY_")):
		t.Errorf("row %s: category %q", s.id, r.Category)
	case !slices.Equal(r.Changes, want):
		t.Errorf("row %s: changes %+v, want %+v", s.id, r.Changes, want)
	case !r.SequencerTime.Equal(rc.GetSequencerTime().AsTime()) || r.Partition != rc.GetPartition() || r.LeafIndex != rc.GetLeafIndex():
		t.Errorf("row %s: at %v %s/%d, receipt says %v %s/%d", s.id, r.SequencerTime, r.Partition, r.LeafIndex,
			rc.GetSequencerTime().AsTime(), rc.GetPartition(), rc.GetLeafIndex())
	}
}

// checkCustodyChain checks the history is a chain: oldest first, and each
// change of a field starts from the value the previous change left.
func checkCustodyChain(t *testing.T, rows []report.HistoryRow) {
	t.Helper()
	last := make(map[string]string)
	for i, r := range rows {
		if i > 0 && r.SequencerTime.Before(rows[i-1].SequencerTime) {
			t.Errorf("row %d is older than row %d", i, i-1)
		}
		for _, ch := range r.Changes {
			if ch.Before != last[ch.Field] {
				t.Errorf("row %s: %s changes from %q, but was %q", r.EventID, ch.Field, ch.Before, last[ch.Field])
			}
			last[ch.Field] = ch.After
		}
	}
	if last["status"] != "closed" || last["assignee"] != "judge-ben" {
		t.Errorf("final state %v", last)
	}
}

func checkCustodyCSV(t *testing.T, body []byte, steps []custodyStep) {
	t.Helper()
	recs, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatalf("CSV: %v", err)
	}
	col := make(map[string]int)
	for i, h := range recs[0] {
		col[h] = i
	}
	var want [][3]string // event id, field, after
	for _, s := range steps {
		if len(s.changes) == 0 {
			want = append(want, [3]string{s.id, "", ""})
		}
		for _, ch := range s.changes {
			want = append(want, [3]string{s.id, ch.GetField(), ch.GetAfter()})
		}
	}
	for i, w := range want {
		r := recs[1+i]
		if got := [3]string{r[col["event_id"]], r[col["field"]], r[col["after"]]}; got != w {
			t.Errorf("CSV record %d: %q, want %q", i, got, w)
		}
	}
	// Header, the records, then the parameters, one checkpoint and the
	// attestation.
	if last := recs[len(recs)-1]; last[0] != report.CSVAttestationRecord || len(recs) != 1+len(want)+3 {
		t.Errorf("%d records, last %q", len(recs), last[:2])
	}
}
