package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/chromedp"
	"golang.org/x/mod/sumdb/note"

	"github.com/trailaudit/trail/bundle"
	"github.com/trailaudit/trail/internal/browsertest"
	"github.com/trailaudit/trail/merkle"
	trailreport "github.com/trailaudit/trail/report"
)

// screenshotDir, when set, is where TestConsole writes its screenshots
// instead of the test's artifact directory: the README's are regenerated
// with
//
//	go test ./cmd/traild -run TestConsole -screenshots ../../docs/console
var screenshotDir = flag.String("screenshots", "", "write the console screenshots to this directory (e.g. ../../docs/console)")

// consoleSite is a traild serving the console, with a tenant's log and
// the keys of the people who use it.
type consoleSite struct {
	t       *testing.T
	base    string // http://127.0.0.1:port
	admin   string
	officer string // privacy officer of city
	auditor string // auditor of city (also the security analyst)
	vkey    string // the log's verifier key, from the data directory
}

const consoleTenant = "city"

// TestConsole drives the web console in headless Chromium against a real
// traild: sign-in, a citizen's PII access report with its downloads and
// its attestation verified in the browser, an event's proof verified in
// the browser and a tampered one refused, search with a facet, the log's
// checkpoints and consistency, anomaly alerts live after a burst, and the
// operator's screen. Each screen is saved as a screenshot.
func TestConsole(t *testing.T) {
	ctx := browsertest.New(t)
	shots := browsertest.NewScreenshots(t, *screenshotDir)
	site := startConsoleSite(t)

	t.Run("sign in", func(t *testing.T) {
		tab := newTab(t, ctx)
		site.open(t, tab, "")
		must(t, chromedp.Do(tab, chromedp.WaitVisible(chromedp.CSS(`input[name=token]`))))
		shots.Take(tab, "01-sign-in")
		// A wrong key is refused and the form stays.
		must(t, chromedp.Do(tab, chromedp.SendKeys(chromedp.CSS(`input[name=token]`), "trail_0000000000000000_nope\r")))
		waitText(t, tab, "#status", "Sign-in failed")
		// A producer key cannot use the console.
		producer := site.createKey(t, "ROLE_PRODUCER")
		setInput(t, tab, `input[name=token]`, producer+"\r")
		waitText(t, tab, "#status", "can only append events")
		// The privacy officer signs in with the keyboard and gets the
		// screens of the role, not the operator's.
		setInput(t, tab, `input[name=token]`, site.officer+"\r")
		waitText(t, tab, "#nav", "PII access report")
		if nav := text(t, tab, "#nav"); strings.Contains(nav, "Operations") {
			t.Errorf("a privacy officer is offered the operator's screen: %q", nav)
		}
		if got := eval[string](t, tab, `sessionStorage.getItem('trail.token')`); got != site.officer {
			t.Errorf("the key is not kept in session storage")
		}
		if got := eval[int](t, tab, `localStorage.length && Object.keys(localStorage).filter(k => localStorage.getItem(k).includes('trail_')).length`); got != 0 {
			t.Errorf("the key was written to local storage")
		}
		site.checkLabels(t, tab)
	})

	t.Run("PII access report", func(t *testing.T) {
		tab := site.signedIn(t, ctx, site.officer)
		site.open(t, tab, "#/pii")
		setInput(t, tab, `input[name=subject]`, "EE-1001\r")
		waitText(t, tab, "main", "Accesses to EE-1001's personal data")
		rows := eval[[]string](t, tab, `[...document.querySelectorAll('main table tbody tr')].map(r => r.className + '|' + r.innerText.replaceAll('\t', ' '))`)
		if len(rows) != 3 {
			t.Fatalf("report rows %q, want the 3 accesses to EE-1001", rows)
		}
		flagged := 0
		for _, r := range rows {
			if strings.HasPrefix(r, "flagged|") {
				flagged++
				if !strings.Contains(r, "clerk-3") || !strings.Contains(r, "missing purpose code") {
					t.Errorf("flagged row %q is not clerk-3's access without a purpose code", r)
				}
			}
		}
		if flagged != 1 {
			t.Errorf("%d flagged rows, want 1: %q", flagged, rows)
		}
		for _, want := range []string{"clerk-1", "case worker", "name, address", "case-handling", "benefit-review"} {
			if !strings.Contains(strings.Join(rows, "\n"), want) {
				t.Errorf("report lacks %q: %q", want, rows)
			}
		}
		names := eval[[]string](t, tab, `[...document.querySelectorAll('a[download]')].map(a => a.getAttribute('download'))`)
		for _, ext := range []string{".json", ".csv", ".pdf", ".zip"} {
			if !containsSuffix(names, ext) {
				t.Errorf("no %s download among %q", ext, names)
			}
		}
		// Each file is saved as a user's click saves it, and verifies
		// offline (trailctl verify --report); all four are one run.
		files := site.download(t, tab, names)
		digests := map[string]bool{}
		for name, b := range files {
			v, err := trailreport.VerifyFile(b, site.verifier(t), "")
			if err != nil {
				t.Errorf("downloaded %s does not verify: %v", name, err)
				continue
			}
			if v.Rows != 3 || v.Flagged != 1 {
				t.Errorf("downloaded %s: %d rows, %d flagged; want 3 and 1", name, v.Rows, v.Flagged)
			}
			digests[v.Digest] = true
		}
		if len(files) != 4 || len(digests) != 1 {
			t.Errorf("downloaded %d files with %d digests, want 4 files of one run", len(files), len(digests))
		}
		click(t, tab, `//button[text()="Verify the attestation in this browser"]`)
		waitText(t, tab, ".verdict", "Report verified in this browser")
		site.checkLabels(t, tab)
		shots.Take(tab, "02-pii-access-report")
	})

	t.Run("proof verified in the browser", func(t *testing.T) {
		tab := site.signedIn(t, ctx, site.auditor)
		// The auditor pins the log key from the data directory, a source
		// other than the server's answers.
		site.open(t, tab, "#/trust")
		setInput(t, tab, `textarea[name=vkey]`, site.vkey)
		click(t, tab, `//button[text()="Pin this key"]`)
		waitText(t, tab, "#status", "Pinned log key")
		site.open(t, tab, "#/event/city/id/acc-2")
		waitText(t, tab, "#proof-verdict", "Verified in this browser")
		waitText(t, tab, "main", "Chain link holds")
		if got := text(t, tab, "main"); !strings.Contains(got, "pinned by you") {
			t.Errorf("the verification does not say it used the pinned key")
		}
		shots.Take(tab, "03-event-proof-verified")
	})

	t.Run("tampered proof fails", func(t *testing.T) {
		tests := []struct {
			name     string
			tamper   func(t *testing.T, proof map[string]any)
			failStep string
		}{
			{"entry bytes", func(t *testing.T, p map[string]any) { flipBase64(t, p, "entry_bytes", 40) },
				"Leaf hash"},
			{"proof hash", func(t *testing.T, p map[string]any) {
				hashes := p["proof"].([]any)
				b, _ := base64.StdEncoding.DecodeString(hashes[0].(string))
				b[7] ^= 0x20
				hashes[0] = base64.StdEncoding.EncodeToString(b)
			}, "Inclusion proof"},
			{"checkpoint signature", func(t *testing.T, p map[string]any) {
				cp := p["checkpoint"].(map[string]any)
				note := cp["signed_note"].(string)
				// The root line of the signed body, replaced by another root.
				lines := strings.Split(note, "\n")
				lines[2] = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
				cp["signed_note"] = strings.Join(lines, "\n")
			}, "Checkpoint signature"},
		}
		for i, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				tab := site.signedIn(t, ctx, site.auditor)
				interceptProofs(t, tab, tc.tamper)
				site.open(t, tab, "#/event/city/id/acc-2")
				waitText(t, tab, "#proof-verdict", "Verification FAILED")
				failed := eval[[]string](t, tab, `[...document.querySelectorAll('ol.checks li.bad')].map(li => li.innerText)`)
				if len(failed) == 0 || !strings.Contains(strings.Join(failed, "\n"), tc.failStep) {
					t.Errorf("failed steps %q, want one about %q", failed, tc.failStep)
				}
				if i == 0 {
					shots.Take(tab, "04-event-proof-tampered")
				}
			})
		}
	})

	t.Run("search and facet", func(t *testing.T) {
		tab := site.signedIn(t, ctx, site.auditor)
		site.open(t, tab, "#/search")
		setInput(t, tab, `input[name=q]`, "category:data_access\r")
		waitText(t, tab, "#res-h", "Results")
		actors := eval[[]string](t, tab, `[...document.querySelectorAll('section table tbody tr')].map(r => r.cells[4].innerText)`)
		if len(actors) != 9 {
			t.Fatalf("%d data_access results (%q), want 9; at %s, status %q", len(actors), actors, eval[string](t, tab, "location.hash"), text(t, tab, "#status"))
		}
		waitText(t, tab, "#facet-scope", "all 9 events")
		if got := facetCounts(t, tab, "Actor"); got["clerk-1"] != "4" || got["clerk-2"] != "3" || got["clerk-3"] != "2" {
			t.Errorf("actor facet = %v, want clerk-1 4, clerk-2 3, clerk-3 2", got)
		}
		if got := eval[[]string](t, tab, `[...document.querySelectorAll('#timeline [role=listitem]')].map(b => b.getAttribute('aria-label'))`); !slices.ContainsFunc(got, func(l string) bool { return strings.HasSuffix(l, ": 9 events") }) {
			t.Errorf("timeline bars %q, want one day with the 9 events", got)
		}
		// Days without events have a count too, and every bar is drawn.
		if bad := eval[[]string](t, tab, `[...document.querySelectorAll('#timeline [role=listitem]')].filter(b => /NaN/.test(b.getAttribute('aria-label')) || !/: 0 events$/.test(b.getAttribute('aria-label')) && !(b.getBoundingClientRect().height >= 4)).map(b => b.getAttribute('aria-label'))`); len(bad) > 0 {
			t.Errorf("timeline bars not drawn: %q", bad)
		}
		// The counts are the whole selection's, not the page's: a page of
		// two results still counts all nine.
		site.open(t, tab, "#/search?q=category%3Adata_access&newest=1&limit=2")
		waitEval(t, tab, `document.querySelectorAll('section table tbody tr').length === 2`)
		waitText(t, tab, "#facet-scope", "all 9 events")
		if got := facetCounts(t, tab, "Category"); got["data_access"] != "9" || len(got) != 1 {
			t.Errorf("category facet on a page of 2 = %v, want data_access 9", got)
		}
		site.open(t, tab, "#/search?q=category%3Adata_access")
		waitText(t, tab, "#facet-scope", "all 9 events")
		click(t, tab, `//aside//button[text()="clerk-2"]`)
		waitEval(t, tab, `location.hash.includes('actor%3Aclerk-2')`)
		waitEval(t, tab, `document.querySelectorAll('section table tbody tr').length === 3`)
		actors = eval[[]string](t, tab, `[...document.querySelectorAll('section table tbody tr')].map(r => r.cells[4].innerText)`)
		for _, a := range actors {
			if a != "clerk-2" {
				t.Errorf("after the clerk-2 facet, a result by %q", a)
			}
		}
		if q := eval[string](t, tab, `document.querySelector('input[name=q]').value`); q != "category:data_access actor:clerk-2" {
			t.Errorf("query after the facet = %q", q)
		}
		site.checkLabels(t, tab)
		// The selection exported from the browser is an attested bundle
		// that verifies offline and holds exactly clerk-2's accesses.
		click(t, tab, `//button[starts-with(text(), "Export this selection")]`)
		waitEval(t, tab, `!!document.querySelector('a[download$=".ndjson"], a[download$=".jsonl"], a[download^="export"]')`)
		name := eval[string](t, tab, `document.querySelector('section a[download]').getAttribute('download')`)
		exported := site.download(t, tab, []string{name})[name]
		v, err := bundle.NewVerifier(site.vkey)
		must(t, err)
		rep, err := v.Verify(context.Background(), bytes.NewReader(exported))
		if err != nil {
			t.Fatalf("the exported bundle does not verify: %v", err)
		}
		if rep.Entries != 3 || !slices.Equal(rep.Filter.ActorIDs, []string{"clerk-2"}) {
			t.Errorf("exported %d entries with filter %+v, want clerk-2's 3", rep.Entries, rep.Filter)
		}
		must(t, chromedp.Do(tab, chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`)))
		shots.Take(tab, "05-search-facets")
		// A query the syntax does not allow is refused, with why.
		setInput(t, tab, `input[name=q]`, "colour:red\r")
		waitEval(t, tab, `location.hash.includes('colour')`)
		waitText(t, tab, "#status", `unknown field "colour"`)
	})

	t.Run("checkpoint and consistency", func(t *testing.T) {
		tab := site.signedIn(t, ctx, site.auditor)
		site.open(t, tab, "#/log")
		waitText(t, tab, "#checkpoint-verdict", "Checkpoint verified")
		setInput(t, tab, `input[name=from_size]`, "3\r")
		waitText(t, tab, "#consistency-verdict", "Verified: size 3 is a prefix")
		site.checkLabels(t, tab)
		shots.Take(tab, "06-log-consistency")
	})

	t.Run("anomaly after a burst", func(t *testing.T) {
		site.rest(t, site.admin, "PUT", "/api/v1/admin/tenants/city/anomaly-rules",
			map[string]any{"max_distinct_subjects_per_hour": 5}, nil)
		tab := site.signedIn(t, ctx, site.auditor)
		site.open(t, tab, "#/alerts")
		waitText(t, tab, "#live-state", "Live:")
		// Six citizens read by one clerk within minutes: the bulk access
		// rule fires on the fifth.
		var burst []map[string]any
		for i := range 6 {
			burst = append(burst, accessEvent(fmt.Sprintf("burst-%d", i), "clerk-burst", fmt.Sprintf("EE-20%02d", i), "case-handling"))
		}
		site.rest(t, site.admin, "POST", "/api/v1/audit/events/batch", map[string]any{"events": burst}, nil)
		waitEval(t, tab, `[...document.querySelectorAll('#alerts tbody tr.new')].some(r => r.innerText.includes('bulk_subject_access') && r.innerText.includes('clerk-burst'))`)
		waitEval(t, tab, `Number(document.getElementById('recorded-count').innerText.replaceAll(',', '')) >= 6`)
		site.checkLabels(t, tab)
		shots.Take(tab, "07-alerts-live")
	})

	t.Run("erased payload", func(t *testing.T) {
		// Before the operator's legal hold, which would exempt the subject.
		site.rest(t, site.admin, "PUT", "/api/v1/admin/tenants/"+consoleTenant+"/privacy-settings", map[string]any{"seal_subject_payloads": true}, nil)
		site.rest(t, site.admin, "POST", "/api/v1/audit/events/batch", map[string]any{"events": []map[string]any{{
			"tenant_id": consoleTenant, "event_id": "sealed-1", "category": "data_access", "action": "record.view",
			"outcome": "success", "actor": map[string]any{"id": "clerk-1"}, "subject_id": "EE-2001",
			"pii_fields_accessed": []string{"address"}, "purpose_code": "case-handling",
			"attributes":  map[string]string{"address_seen": "New Street 2"},
			"occurred_at": time.Now().UTC().Format(time.RFC3339Nano),
		}}}, nil)
		tab := site.signedIn(t, ctx, site.auditor)
		site.open(t, tab, "#/event/city/id/sealed-1")
		waitText(t, tab, "main", "the server opened them")
		waitText(t, tab, "main", "New Street 2")
		// The browser opens the ciphertext itself with the event's key, and
		// catches a server that shows other fields than it sealed.
		waitText(t, tab, "#sealed-verdict", "Sealed payload verified in this browser")
		lying := site.signedIn(t, ctx, site.auditor)
		interceptResponses(t, lying, "*/audit/events/sealed-1*", func(t *testing.T, resp map[string]any) {
			ev := resp["entry"].(map[string]any)["entry"].(map[string]any)["event"].(map[string]any)
			ev["attributes"] = map[string]any{"address_seen": "Somewhere Else 3"}
		})
		site.open(t, lying, "#/event/city/id/sealed-1")
		waitText(t, lying, "#sealed-verdict", "Sealed payload verification FAILED")
		site.rest(t, site.officer, "POST", "/api/v1/audit/tenants/"+consoleTenant+"/subjects/EE-2001/erase", map[string]any{"reason": "Art. 17(1)(b): consent withdrawn"}, nil)
		tab = site.signedIn(t, ctx, site.auditor) // a fresh page, not the same route again
		site.open(t, tab, "#/event/city/id/sealed-1")
		waitText(t, tab, "main", "Payload erased")
		waitText(t, tab, "main", "Chain link holds")
		if got := text(t, tab, "main"); strings.Contains(got, "New Street 2") {
			t.Errorf("the erased payload is still shown")
		}
		shots.Take(tab, "09-event-payload-erased")
		// The PII access report says so on the row.
		tab = site.signedIn(t, ctx, site.officer)
		site.open(t, tab, "#/pii")
		setInput(t, tab, `input[name=subject]`, "EE-2001\r")
		waitText(t, tab, "main table", "erased (GDPR Art. 17)")
	})

	t.Run("operator", func(t *testing.T) {
		tab := site.signedIn(t, ctx, site.admin)
		site.open(t, tab, "#/operator")
		waitText(t, tab, "#cl-h + div", "leader")
		waitText(t, tab, "#pa-h + div", "open")
		click(t, tab, `//button[starts-with(text(), "Run a check of")]`)
		waitText(t, tab, "#in-h + div", "Integrity check passed")
		waitText(t, tab, "#re-h + div", "data_access")
		setInput(t, tab, `input[name=case]`, "FOI-2026-17")
		setInput(t, tab, `input[name=reason]`, "freedom of information request\r")
		waitText(t, tab, "#ho-h + div", "FOI-2026-17")
		site.checkLabels(t, tab)
		must(t, chromedp.Do(tab, chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`)))
		shots.Take(tab, "08-operations")
	})

	t.Run("every call was audited as the user's", func(t *testing.T) {
		var res struct {
			Entries []struct {
				Entry struct {
					Event struct {
						Action string `json:"action"`
					} `json:"event"`
				} `json:"entry"`
			} `json:"entries"`
		}
		id := strings.Split(site.officer, "_")[1]
		waitFor(t, "the privacy officer's report in the access audit", func() bool {
			site.rest(t, site.admin, "GET", "/api/v1/audit/search?tenant_id=_system&filter.actor_ids=apikey:"+id+"&limit=100", nil, &res)
			seen := map[string]bool{}
			for _, e := range res.Entries {
				seen[e.Entry.Event.Action] = true
			}
			return seen["trail.v1.AdminService.WhoAmI"] && seen["trail.v1.ComplianceService.PIIAccessReport"]
		})
	})
}

// TestConsoleSetting: traild serves the console unless told not to.
func TestConsoleSetting(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		status int
	}{
		{"default", nil, http.StatusOK},
		{"on", []string{"--console=true"}, http.StatusOK},
		{"off", []string{"--console=false"}, http.StatusNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := append(append(loopbackFlags(t.TempDir()), fastFlags()...), tc.args...)
			p := startTraild(t, nil, args...)
			resp, err := http.Get("http://" + p.addrs.HTTP + "/console/")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Errorf("GET /console/: HTTP %d, want %d", resp.StatusCode, tc.status)
			}
		})
	}
	code, _, stderr := runSync(t, nil, append(loopbackFlags(t.TempDir()), "--console=perhaps")...)
	if code == 0 || !strings.Contains(stderr, "console") {
		t.Errorf("--console=perhaps: exit %d, %q; want a refusal naming the setting", code, stderr)
	}
}

// startConsoleSite starts traild with its defaults (console on) and seeds
// the city's log: accesses to three citizens by three clerks, one without
// a purpose code, and logins.
func startConsoleSite(t *testing.T) *consoleSite {
	t.Helper()
	dir := t.TempDir()
	p := startTraild(t, nil, append(loopbackFlags(dir), fastFlags()...)...)
	s := &consoleSite{t: t, base: "http://" + p.addrs.HTTP, admin: p.waitToken()}
	vkey, err := os.ReadFile(filepath.Join(dir, "log.vkey"))
	if err != nil {
		t.Fatal(err)
	}
	s.vkey = strings.TrimSpace(string(vkey))
	s.officer = s.createKey(t, "ROLE_PRIVACY_OFFICER")
	s.auditor = s.createKey(t, "ROLE_AUDITOR")
	events := []map[string]any{
		accessEvent("acc-1", "clerk-1", "EE-1001", "case-handling"),
		accessEvent("acc-2", "clerk-2", "EE-1001", "benefit-review"),
		accessEvent("acc-3", "clerk-3", "EE-1001", ""),
		accessEvent("acc-4", "clerk-1", "EE-1002", "case-handling"),
		accessEvent("acc-5", "clerk-2", "EE-1002", "benefit-review"),
		accessEvent("acc-6", "clerk-2", "EE-1003", "benefit-review"),
		accessEvent("acc-7", "clerk-1", "EE-1003", "case-handling"),
		accessEvent("acc-8", "clerk-1", "EE-1004", "case-handling"),
		accessEvent("acc-9", "clerk-3", "EE-1004", "case-handling"),
	}
	for i := range 6 {
		events = append(events, map[string]any{
			"tenant_id": consoleTenant, "event_id": fmt.Sprintf("login-%d", i), "category": "authentication",
			"action": "user.login", "outcome": "success", "actor": map[string]any{"id": fmt.Sprintf("clerk-%d", i%3+1), "type": "user"},
			"occurred_at": time.Now().UTC().Format(time.RFC3339Nano),
		})
	}
	s.rest(t, s.admin, "POST", "/api/v1/audit/events/batch", map[string]any{"events": events}, nil)
	return s
}

// facetCounts reads one facet's values and counts off the search screen.
func facetCounts(t *testing.T, tab context.Context, label string) map[string]string {
	t.Helper()
	return eval[map[string]string](t, tab, fmt.Sprintf(`Object.fromEntries([...document.querySelectorAll('aside fieldset')]
		.filter(f => f.querySelector('legend').innerText === %q)
		.flatMap(f => [...f.querySelectorAll('li')].map(li => [li.querySelector('button').innerText, li.querySelector('span').innerText])))`, label))
}

func accessEvent(id, actor, subject, purpose string) map[string]any {
	return map[string]any{
		"tenant_id": consoleTenant, "event_id": id, "category": "data_access", "action": "record.view", "outcome": "success",
		"actor":      map[string]any{"id": actor, "type": "user", "display_name": "Clerk " + strings.TrimPrefix(actor, "clerk-"), "roles": []string{"case worker"}},
		"subject_id": subject, "target": map[string]any{"type": "record", "id": "rec-" + subject},
		"pii_fields_accessed": []string{"name", "address"}, "purpose_code": purpose,
		"source_service": "registry", "occurred_at": time.Now().UTC().Format(time.RFC3339Nano),
	}
}

func (s *consoleSite) createKey(t *testing.T, role string) string {
	t.Helper()
	var resp struct {
		Token string `json:"token"`
	}
	s.rest(t, s.admin, "POST", "/api/v1/admin/keys", map[string]any{"role": role, "tenants": []string{consoleTenant}, "description": "console test"}, &resp)
	return resp.Token
}

// rest calls the API, which must answer 200; out, if set, gets the JSON.
func (s *consoleSite) rest(t *testing.T, token, method, path string, body, out any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %s: HTTP %d: %s", method, path, resp.StatusCode, b)
	}
	if bytes.Contains(b, []byte(`"failed":`)) && !bytes.Contains(b, []byte(`"failed":0`)) {
		t.Fatalf("%s %s: events refused: %s", method, path, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
}

// verifier is the log's public key, as an auditor holds it.
func (s *consoleSite) verifier(t *testing.T) note.Verifier {
	t.Helper()
	v, err := merkle.NewVerifier(s.vkey)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// download clicks the page's download links with these file names and
// returns the files the browser saved.
func (s *consoleSite) download(t *testing.T, tab context.Context, names []string) map[string][]byte {
	t.Helper()
	dir := t.TempDir()
	_, err := chromedp.CallBrowser(tab, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: dir})
	must(t, err)
	out := map[string][]byte{}
	for _, name := range names {
		click(t, tab, fmt.Sprintf(`//a[@download=%q]`, name))
		deadline := time.Now().Add(20 * time.Second)
		for {
			// Chromium writes to a .crdownload file and renames it when done.
			b, err := os.ReadFile(filepath.Join(dir, name))
			if err == nil {
				out[name] = b
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the browser did not save %s", name)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return out
}

// newTab opens a tab of the browser: its own session storage, so its own
// sign-in; local storage (the pinned key) is the browser's.
func newTab(t *testing.T, browser context.Context) context.Context {
	t.Helper()
	tab, cancel := chromedp.NewContext(browser)
	t.Cleanup(cancel)
	if err := chromedp.Do(tab); err != nil {
		t.Fatal(err)
	}
	return tab
}

// open loads the console at a screen's address.
func (s *consoleSite) open(t *testing.T, tab context.Context, hash string) {
	t.Helper()
	loc := eval[string](t, tab, `location.href`)
	url := s.base + "/console/" + hash
	if strings.HasPrefix(loc, s.base+"/console/") {
		// In the app already: route by the hash, as a link would.
		must(t, chromedp.Do(tab, chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`location.hash = %q`, strings.TrimPrefix(hash, "#")))))
		return
	}
	must(t, chromedp.Do(tab, chromedp.Navigate(url)))
}

// signedIn returns a new tab signed in with token.
func (s *consoleSite) signedIn(t *testing.T, browser context.Context, token string) context.Context {
	t.Helper()
	tab := newTab(t, browser)
	s.open(t, tab, "")
	setInput(t, tab, `input[name=token]`, token+"\r")
	waitText(t, tab, "#who", "Sign out")
	return tab
}

// checkLabels fails when a form control on the page has no accessible
// name: every input, select and textarea must be labelled.
func (s *consoleSite) checkLabels(t *testing.T, tab context.Context) {
	t.Helper()
	unlabelled := eval[[]string](t, tab, `[...document.querySelectorAll('input, select, textarea')]
		.filter(el => el.type !== 'hidden' && !el.closest('label') && !el.getAttribute('aria-label') && !(el.id && document.querySelector('label[for="' + el.id + '"]')))
		.map(el => el.outerHTML)`)
	for _, u := range unlabelled {
		t.Errorf("form control without a label: %s", u)
	}
}

// interceptProofs makes the browser see every inclusion proof the server
// sends changed by tamper: a server, or someone between it and the
// auditor, lying.
func interceptProofs(t *testing.T, tab context.Context, tamper func(*testing.T, map[string]any)) {
	t.Helper()
	interceptResponses(t, tab, "*/proof*", tamper)
}

// interceptResponses hands every JSON response whose URL matches pattern
// to tamper before the page sees it.
func interceptResponses(t *testing.T, tab context.Context, pattern string, tamper func(*testing.T, map[string]any)) {
	t.Helper()
	paused := make(chan *fetch.EventRequestPaused, 16)
	must(t, chromedp.Listen(tab, func(ev any) {
		if e, ok := ev.(*fetch.EventRequestPaused); ok {
			paused <- e
		}
	}))
	_, err := chromedp.Call(tab, fetch.Enable, fetch.EnableParams{Patterns: []*fetch.RequestPattern{
		{URLPattern: pattern, RequestStage: fetch.RequestStageResponse},
	}})
	must(t, err)
	go func() {
		for e := range paused {
			body, err := chromedp.Call(tab, fetch.GetResponseBody, fetch.GetResponseBodyParams{RequestID: e.RequestID})
			if err != nil {
				return
			}
			var proof map[string]any
			if err := json.Unmarshal(body.Body, &proof); err == nil {
				tamper(t, proof)
				body.Body, _ = json.Marshal(proof)
			}
			if _, err := chromedp.Call(tab, fetch.FulfillRequest, fetch.FulfillRequestParams{
				RequestID: e.RequestID, ResponseCode: e.ResponseStatusCode, ResponseHeaders: e.ResponseHeaders, Body: body.Body,
			}); err != nil {
				return
			}
		}
	}()
}

func flipBase64(t *testing.T, m map[string]any, key string, at int) {
	b, err := base64.StdEncoding.DecodeString(m[key].(string))
	if err != nil || len(b) <= at {
		t.Errorf("cannot tamper with %s", key)
		return
	}
	b[at] ^= 1
	m[key] = base64.StdEncoding.EncodeToString(b)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func eval[T any](t *testing.T, tab context.Context, js string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(tab, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("evaluate %.80s: %v", js, err)
	}
	return v
}

// waitEval waits until a JavaScript expression is true.
func waitEval(t *testing.T, tab context.Context, js string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(tab, 30*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](js, chromedp.WithPollingTimeout(25*time.Second))); err != nil {
		t.Fatalf("waiting for %s: %v\nstatus: %q\nmain: %.2000s", js, err, text(t, tab, "#status"), text(t, tab, "main"))
	}
}

// waitText waits until the element of a CSS selector shows want.
func waitText(t *testing.T, tab context.Context, sel, want string) {
	t.Helper()
	waitEval(t, tab, fmt.Sprintf(`(document.querySelector(%q)?.innerText || '').includes(%q)`, sel, want))
}

func text(t *testing.T, tab context.Context, sel string) string {
	t.Helper()
	return eval[string](t, tab, fmt.Sprintf(`document.querySelector(%q)?.innerText || ''`, sel))
}

// setInput replaces an input's value by typing; a trailing "\r" presses
// Enter, submitting its form as a keyboard user would.
func setInput(t *testing.T, tab context.Context, sel, value string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(tab, 20*time.Second)
	defer cancel()
	must(t, chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(sel)),
		chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.querySelector(%q).value = ''`, sel)),
		chromedp.Focus(chromedp.CSS(sel)), chromedp.SendKeys(chromedp.CSS(sel), value)))
}

// click clicks the element of an XPath query.
func click(t *testing.T, tab context.Context, xpath string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(tab, 20*time.Second)
	defer cancel()
	must(t, chromedp.Do(ctx, chromedp.Click(xpath, chromedp.NodeVisible)))
}

func containsSuffix(ss []string, suffix string) bool {
	for _, s := range ss {
		if strings.HasSuffix(s, suffix) {
			return true
		}
	}
	return false
}
