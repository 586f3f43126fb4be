package report

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
	"github.com/trailaudit/trail/shred"
)

// sealedFixture adds to the fixture's log the events of a subject whose
// payloads are sealed, as a tenant that seals subject payloads has them:
// a history of case/77 and the accesses on citizen-5, each row in one of
// the payload states.
type sealedFixture struct {
	*fixture
	// history: s1 clear, s2 opened (two changes), s3 erased, s4
	// unavailable; accesses: p1 clear, p2 opened, p3 erased.
	history, accesses []LogEntry
	// keys are the opening keys, by event id, of every sealed event.
	keys map[string][]byte
}

const sealedSubject = "citizen-5"

func newSealedFixture(t testing.TB) *sealedFixture {
	t.Helper()
	f := &sealedFixture{fixture: newFixture(t), keys: make(map[string][]byte)}
	live, erased := testDataKey(t, 1), testDataKey(t, 2)
	at := nov.Add(10 * time.Hour)
	add := func(ev *trailv1.Event, dk *shred.DataKey, state PayloadState) LogEntry {
		t.Helper()
		ev.TenantId = f.log.tenant
		if dk != nil {
			if err := shred.SealEvent(ev, *dk); err != nil {
				t.Fatal(err)
			}
			f.keys[ev.GetEventId()] = shred.EventKey(*dk, ev.GetTenantId(), ev.GetEventId())
		}
		at = at.Add(time.Minute)
		le := f.log.add(ev, at)
		le.Payload = state
		if state == PayloadOpened {
			le.OpeningKey = f.keys[ev.GetEventId()]
		}
		return le
	}
	onCase := func(id string, changes ...*trailv1.Change) *trailv1.Event {
		ev := modify(id, "dr-who", "case", "77", changes...)
		ev.SubjectId = sealedSubject
		ev.Attributes = map[string]string{"comment": "secret comment of " + id}
		return ev
	}
	clear := modify("s1", "clerk", "case", "77", change("status", "", "open"))
	f.history = []LogEntry{
		add(clear, nil, PayloadClear),
		add(onCase("s2", change("diagnosis", "flu", "=pneumonia"), change("ward", "", "4B")), &live, PayloadOpened),
		add(onCase("s3", change("diagnosis", "pneumonia", "healthy")), &erased, PayloadErased),
		add(onCase("s4", change("ward", "4B", "")), &live, PayloadUnavailable),
	}
	sealedAccess := func(id string) *trailv1.Event {
		ev := access(id, sealedSubject, "nurse", "CARE", "diagnosis")
		ev.Attributes = map[string]string{"query": "secret query of " + id}
		return ev
	}
	f.accesses = []LogEntry{
		add(access("p1", sealedSubject, "nurse", "CARE", "name"), nil, PayloadClear),
		add(sealedAccess("p2"), &live, PayloadOpened),
		add(sealedAccess("p3"), &erased, PayloadErased),
	}
	return f
}

func testDataKey(t testing.TB, seed byte) shred.DataKey {
	t.Helper()
	dk, err := shred.NewDataKey(bytes.NewReader(bytes.Repeat([]byte{seed}, 64)))
	if err != nil {
		t.Fatal(err)
	}
	return dk
}

func (f *sealedFixture) historyQuery() EntityHistoryQuery {
	return EntityHistoryQuery{Tenant: "acme", TargetType: "case", TargetID: "77"}
}

func (f *sealedFixture) piiQuery() PIIAccessQuery {
	return PIIAccessQuery{Tenant: "acme", SubjectID: sealedSubject}
}

func (f *sealedFixture) historyContent(t testing.TB) *Content {
	t.Helper()
	c, err := NewEntityHistory(testLogName, f.historyQuery(), nov.Add(12*time.Hour), f.history)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (f *sealedFixture) piiContent(t testing.TB) *Content {
	t.Helper()
	c, err := NewPIIAccess(testLogName, f.piiQuery(), nov.Add(12*time.Hour), f.accesses)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestSealedRows: each row says what became of its event's sealed
// payload, in every format; an opened row shows the opened changes and
// carries its opening key, and every format verifies.
func TestSealedRows(t *testing.T) {
	f := newSealedFixture(t)
	hc, pc := f.historyContent(t), f.piiContent(t)
	rows := []struct {
		name    string
		got     PayloadState
		src     Source
		changes []Change
		want    PayloadState
		// wantChanges: the row's changes (history rows only).
		wantChanges []Change
		key         []byte
	}{
		{name: "clear history row", got: hc.History[0].Payload, src: hc.History[0].Source, changes: hc.History[0].Changes,
			want: PayloadClear, wantChanges: []Change{{"status", "", "open"}}},
		{name: "opened history row", got: hc.History[1].Payload, src: hc.History[1].Source, changes: hc.History[1].Changes,
			want: PayloadOpened, wantChanges: []Change{{"diagnosis", "flu", "=pneumonia"}, {"ward", "", "4B"}}, key: f.keys["s2"]},
		{name: "erased history row", got: hc.History[2].Payload, src: hc.History[2].Source, changes: hc.History[2].Changes,
			want: PayloadErased},
		{name: "unavailable history row", got: hc.History[3].Payload, src: hc.History[3].Source, changes: hc.History[3].Changes,
			want: PayloadUnavailable},
		{name: "clear access row", got: pc.Accesses[0].Payload, src: pc.Accesses[0].Source, want: PayloadClear},
		{name: "opened access row", got: pc.Accesses[1].Payload, src: pc.Accesses[1].Source, want: PayloadOpened, key: f.keys["p2"]},
		{name: "erased access row", got: pc.Accesses[2].Payload, src: pc.Accesses[2].Source, want: PayloadErased},
	}
	for _, tt := range rows {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("payload state %q, want %q", tt.got, tt.want)
			}
			if !bytes.Equal(tt.src.OpeningKey, tt.key) {
				t.Errorf("opening key %x, want %x", tt.src.OpeningKey, tt.key)
			}
			if !slices.Equal(tt.changes, tt.wantChanges) {
				t.Errorf("changes %q, want %q", tt.changes, tt.wantChanges)
			}
			if tt.want != PayloadClear && bytes.Contains(tt.src.EntryBytes, []byte("secret")) {
				t.Error("the entry bytes of a sealed event hold its payload in clear")
			}
		})
	}
	if s := hc.Summary; s.Opened != 1 || s.Erased != 1 || s.Unavailable != 1 || s.Changes != 3 || s.Rows != 4 {
		t.Errorf("history summary %+v", s)
	}
	if s := pc.Summary; s.Opened != 1 || s.Erased != 1 || s.Unavailable != 0 || s.Rows != 3 {
		t.Errorf("PII summary %+v", s)
	}

	hd, pd := f.attest(t, hc), f.attest(t, pc)
	for _, d := range []*Document{hd, pd} {
		for _, format := range []Format{FormatJSON, FormatCSV, FormatPDF, FormatBundle} {
			t.Run(d.Content.Kind+"/"+string(format), func(t *testing.T) {
				v, err := VerifyFile(render(t, d, format), f.log.verifier, "")
				if err != nil {
					t.Fatalf("VerifyFile: %v", err)
				}
				if v.Erased != 1 || v.Unavailable != d.Content.Summary.Unavailable || v.Digest != d.Attestation.Digest {
					t.Errorf("verified %+v", v)
				}
			})
		}
	}

	t.Run("JSON", func(t *testing.T) {
		var doc struct {
			Content struct {
				Summary map[string]any   `json:"summary"`
				History []map[string]any `json:"history"`
			} `json:"content"`
		}
		if err := json.Unmarshal(render(t, hd, FormatJSON), &doc); err != nil {
			t.Fatal(err)
		}
		h := doc.Content.History
		for i, want := range []any{nil, "opened", "erased", "unavailable"} {
			if h[i]["payload_state"] != want {
				t.Errorf("row %d: payload_state %v, want %v", i, h[i]["payload_state"], want)
			}
			if _, ok := h[i]["opening_key"]; ok != (i == 1) {
				t.Errorf("row %d: opening_key present %v", i, ok)
			}
		}
		if h[1]["opening_key"] != base64.StdEncoding.EncodeToString(f.keys["s2"]) {
			t.Errorf("opening key %v", h[1]["opening_key"])
		}
		if h[2]["changes"] != nil {
			t.Errorf("erased row shows changes %v", h[2]["changes"])
		}
		if s := doc.Content.Summary; s["payload_erased"] != 1.0 || s["payload_opened"] != 1.0 || s["payload_unavailable"] != 1.0 {
			t.Errorf("summary %v", s)
		}
	})

	t.Run("CSV", func(t *testing.T) {
		recs, _, err := readCSVRecords(render(t, hd, FormatCSV))
		if err != nil {
			t.Fatal(err)
		}
		state, key, field, after := colOf(t, recs[0], "payload_state"), colOf(t, recs[0], "opening_key"),
			colOf(t, recs[0], "field"), colOf(t, recs[0], "after")
		data, _ := splitTrailer(recs[1:])
		// s1, s2 (two changes), s3, s4.
		want := []struct{ state, key, field, after string }{
			{"", "", "status", "open"},
			{"opened", base64.StdEncoding.EncodeToString(f.keys["s2"]), "diagnosis", "'=pneumonia"},
			{"opened", "", "ward", "4B"},
			{"erased", "", "", ""},
			{"unavailable", "", "", ""},
		}
		if len(data) != len(want) {
			t.Fatalf("%d data records, want %d", len(data), len(want))
		}
		for i, w := range want {
			r := data[i]
			if r[state] != w.state || unneutralize(r[key]) != w.key || r[field] != w.field || r[after] != w.after {
				t.Errorf("record %d: state %q key %q field %q after %q, want %+v", i, r[state], r[key], r[field], r[after], w)
			}
		}
	})

	t.Run("PDF", func(t *testing.T) {
		text := pdfText(t, render(t, hd, FormatPDF))
		for _, w := range []string{"Sealed payloads", "1 opened, 1 erased (GDPR Art. 17), 1 unavailable on this node",
			"payload erased (GDPR Art. 17)", "Payload erased (GDPR Art. 17); event s3", "Sealed payload opened; event s2",
			"Payload sealed, unavailable on this node; event s4", "=pneumonia"} {
			if !strings.Contains(text, pdfEscape(w)) {
				t.Errorf("PDF lacks %q", w)
			}
		}
		if strings.Contains(text, "healthy") {
			t.Error("the PDF shows a change of an erased payload")
		}
		text = pdfText(t, render(t, pd, FormatPDF))
		if !strings.Contains(text, pdfEscape("Payload erased (GDPR Art. 17); event p3")) {
			t.Error("the PII access PDF does not mark the erased access")
		}
	})
}

// TestSealedEntryClaims: a payload state and opening key are claims about
// the entry bytes, checked when rows are built, by the server and by
// every verifier alike.
func TestSealedEntryClaims(t *testing.T) {
	f := newSealedFixture(t)
	clear, opened, erased, unavailable := f.history[0], f.history[1], f.history[2], f.history[3]
	claim := func(le LogEntry, p PayloadState, key []byte) LogEntry {
		le.Payload, le.OpeningKey = p, key
		return le
	}
	tests := []struct {
		name  string
		entry LogEntry
		want  string // "" when valid
	}{
		{"clear", clear, ""},
		{"opened", opened, ""},
		{"erased", erased, ""},
		{"unavailable", unavailable, ""},
		{"opened payload reported unavailable", claim(opened, PayloadUnavailable, nil), ""}, // not provable either way
		{"erased claim on a clear entry", claim(clear, PayloadErased, nil), "is not sealed: its payload cannot be erased"},
		{"unavailable claim on a clear entry", claim(clear, PayloadUnavailable, nil), "is not sealed"},
		{"opened claim on a clear entry", claim(clear, PayloadOpened, f.keys["s2"]), "is not sealed"},
		{"opening key on a clear entry", claim(clear, PayloadClear, f.keys["s2"]), "is not sealed, and has an opening key"},
		{"sealed entry without a state", claim(opened, PayloadClear, nil), "has a sealed payload, and no payload state"},
		{"wrong opening key", claim(opened, PayloadOpened, f.keys["s4"]), "opening key does not open"},
		{"opening key of the erased key's event", claim(unavailable, PayloadOpened, f.keys["s3"]), "opening key does not open"},
		{"opened without a key", claim(opened, PayloadOpened, nil), "opening key does not open"},
		{"truncated key", claim(opened, PayloadOpened, f.keys["s2"][:16]), "opening key does not open"},
		{"erased with a key", claim(erased, PayloadErased, f.keys["s3"]), "has an opening key, and its payload is erased"},
		{"unknown state", claim(erased, "shredded", nil), `unknown payload state "shredded"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewEntityHistory(testLogName, f.historyQuery(), nov.Add(12*time.Hour), []LogEntry{tt.entry})
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("NewEntityHistory: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("NewEntityHistory = %v, want an error containing %q", err, tt.want)
			}
		})
	}
	// The PII access report checks the same claims.
	_, err := NewPIIAccess(testLogName, f.piiQuery(), nov, []LogEntry{claim(f.accesses[0], PayloadErased, nil)})
	if err == nil || !strings.Contains(err.Error(), "is not sealed") {
		t.Errorf("PII access report of an erased claim on a clear entry: %v", err)
	}
}

// TestVerifySealedLies: a report signed with the log key whose payload
// states, opening keys or opened changes are not what the entry bytes
// say is refused by Verify, and so by every format's verifier.
func TestVerifySealedLies(t *testing.T) {
	f := newSealedFixture(t)
	tests := []struct {
		name string
		pii  bool
		lie  func(c *Content)
		want string
	}{
		{"erased claimed for a clear event", false, func(c *Content) { c.History[0].Payload = PayloadErased }, "is not sealed: its payload cannot be erased"},
		{"clear event's changes hidden as erased", false, func(c *Content) {
			c.History[0].Payload, c.History[0].Changes = PayloadErased, nil
		}, "is not sealed"},
		{"erased claimed for a clear access", true, func(c *Content) { c.Accesses[0].Payload = PayloadErased }, "is not sealed"},
		{"opened change altered", false, func(c *Content) { c.History[1].Changes[0].After = "healthy" }, "history row 1"},
		{"opened change dropped", false, func(c *Content) { c.History[1].Changes = c.History[1].Changes[:1] }, "history row 1"},
		{"change shown for an erased payload", false, func(c *Content) {
			c.History[2].Changes = []Change{{"diagnosis", "pneumonia", "healthy"}}
		}, "history row 2"},
		{"wrong opening key", false, func(c *Content) { c.History[1].OpeningKey = f.keys["s4"] }, "opening key does not open"},
		{"opening key dropped", false, func(c *Content) { c.History[1].OpeningKey = nil }, "opening key does not open"},
		{"opening key on an erased row", false, func(c *Content) { c.History[2].OpeningKey = f.keys["s3"] }, "has an opening key, and its payload is erased"},
		{"opening key on a clear row", false, func(c *Content) { c.History[0].OpeningKey = f.keys["s2"] }, "has an opening key"},
		{"sealed row without a state", true, func(c *Content) { c.Accesses[2].Payload = PayloadClear }, "no payload state"},
		{"erased count", false, func(c *Content) { c.Summary.Erased = 0 }, "summary"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := f.historyContent(t)
			if tt.pii {
				c = f.piiContent(t)
			}
			tt.lie(c)
			d, err := Attest(context.Background(), c, f.log, f.log.signer)
			if err != nil {
				t.Fatalf("Attest: %v", err)
			}
			_, err = Verify(render(t, d, FormatJSON), f.log.verifier, "")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Verify = %v, want an error containing %q", err, tt.want)
			}
		})
	}
	// Anyone holding the file: an edited state breaks the digest.
	honest := f.attest(t, f.historyContent(t))
	d, err := decodeDocument(render(t, honest, FormatJSON))
	if err != nil {
		t.Fatal(err)
	}
	editContent(`"payload_state":"erased"`, `"payload_state":"unavailable"`)(d)
	var buf bytes.Buffer
	if err := WriteJSON(&buf, d); err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(buf.Bytes(), f.log.verifier, ""); err == nil || !strings.Contains(err.Error(), "content was altered") {
		t.Errorf("edited payload state: %v", err)
	}
}

// TestSealedCSVTampering: the payload columns of a CSV report are checked
// like every other cell, and a CSV without them (written before they
// existed) verifies only when no row is of a sealed event.
func TestSealedCSVTampering(t *testing.T) {
	f := newSealedFixture(t)
	honest := render(t, f.attest(t, f.historyContent(t)), FormatCSV)
	col := func(name string) int { return colOf(t, historyHeader, name) }
	set := func(rec int, name, v string) func([][]string) [][]string {
		return func(recs [][]string) [][]string { recs[rec][col(name)] = v; return recs }
	}
	// Records: 1 s1, 2 and 3 s2 (two changes), 4 s3, 5 s4.
	tests := []struct {
		name string
		edit func(recs [][]string) [][]string
		want string
	}{
		{"state of an erased row", set(4, "payload_state", "unavailable"), "content was altered"},
		{"state on a change record", set(3, "payload_state", "erased"), "line 4, payload_state"},
		{"erased claimed for a clear row", set(1, "payload_state", "erased"), "is not sealed"},
		{"state removed", set(4, "payload_state", ""), "no payload state"},
		{"opening key of another event", set(2, "opening_key", base64.StdEncoding.EncodeToString(f.keys["s4"])), "opening key does not open"},
		{"opening key removed", set(2, "opening_key", ""), "opening key does not open"},
		{"opening key not base64", set(2, "opening_key", "!!"), "line 3: opening_key is not base64"},
		{"opening key on a change record", set(3, "opening_key", base64.StdEncoding.EncodeToString(f.keys["s2"])), "line 4: the record has no entry bytes"},
		{"opened change edited", set(3, "after", "4C"), `line 4, after: the CSV has "4C", the attested report "4B"`},
		{"erased row given a change", set(4, "after", "healthy"), "line 5, after"},
		{"header without payload columns", func(r [][]string) [][]string { return projectCSV(t, r, historyHeaderNoPayload) }, "no payload state"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := VerifyCSV(editCSV(t, honest, tt.edit), f.log.verifier, "")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("VerifyCSV = %v, want an error containing %q", err, tt.want)
			}
		})
	}
	// A report of clear rows in the layout before payload columns still
	// verifies: the columns it lacks would be empty.
	for _, tc := range []struct {
		d      *Document
		header []string
	}{{f.piiDoc(t), accessHeaderNoPayload}, {f.historyDoc(t), historyHeaderNoPayload}} {
		old := editCSV(t, render(t, tc.d, FormatCSV), func(r [][]string) [][]string { return projectCSV(t, r, tc.header) })
		if v, err := VerifyCSV(old, f.log.verifier, ""); err != nil || v.Digest != tc.d.Attestation.Digest {
			t.Errorf("%s CSV without payload columns: %v", tc.d.Content.Kind, err)
		}
	}
}

// TestSealedPDFTampering: the payload marker on a PDF page is checked.
func TestSealedPDFTampering(t *testing.T) {
	f := newSealedFixture(t)
	honest := render(t, f.attest(t, f.historyContent(t)), FormatPDF)
	for name, edit := range map[string]func(p *pdfFile){
		"marker":  replaceIn(t, true, "("+pdfEscape("Payload erased (GDPR Art. 17); event s3"), "("+pdfEscape("Sealed payload opened; event s3")),
		"summary": replaceIn(t, true, pdfEscape("1 erased (GDPR Art. 17)"), pdfEscape("0 erased (GDPR Art. 17)")),
	} {
		_, err := VerifyPDF(rewritePDF(t, honest, edit), f.log.verifier, "")
		if err == nil || !strings.Contains(err.Error(), "is not the rendering of the attested report") {
			t.Errorf("%s: VerifyPDF = %v", name, err)
		}
	}
}
