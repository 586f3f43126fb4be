package audithttp_test

import (
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/trailaudit/trail/client"
	"github.com/trailaudit/trail/client/audithttp"
	"github.com/trailaudit/trail/internal/testnode"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// TestMiddleware serves a small clinic API behind the middleware, with a
// real Trail node behind the client, and checks the event each request
// left in the log.
func TestMiddleware(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	node, err := testnode.Start(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close()
	tok, err := node.Key(ctx, trailv1.Role_ROLE_PRODUCER, "clinic")
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(client.Config{Addrs: []string{node.Addr}, Token: tok, Plaintext: true, Tenant: "clinic", Source: "records-api"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)

	mux := http.NewServeMux()
	mux.HandleFunc("GET /patients/{id}", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "record") })
	mux.HandleFunc("PUT /patients/{id}", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusForbidden) })
	mux.HandleFunc("GET /reports/{id}", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusUnprocessableEntity) })
	// POST, because a client transport retries a GET whose connection broke.
	mux.HandleFunc("POST /crash", func(w http.ResponseWriter, r *http.Request) { panic("handler bug") })
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {})
	a, err := audithttp.New(audithttp.Config{
		Client: c,
		Actor: func(r *http.Request) *trailv1.Actor {
			if u := r.Header.Get("X-User"); u != "" {
				return &trailv1.Actor{Id: u, Type: "user"}
			}
			return nil
		},
		Purpose: func(r *http.Request) string { return r.Header.Get("X-Purpose") },
		Routes: map[string]audithttp.Route{
			"GET /patients/{id}": {
				Action: "patient.view", TargetType: "patient", TargetParam: "id", SubjectParam: "id",
				PIIFields: []string{"name", "diagnosis"}, Purpose: "treatment",
			},
			"PUT /patients/{id}": {Action: "patient.update", TargetType: "patient", TargetParam: "id"},
			"GET /healthz":       {Skip: true},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(a.Handler(mux))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the panic is expected
	srv.Start()
	defer srv.Close()

	type want struct {
		action   string
		category trailv1.Category
		outcome  trailv1.Outcome
		actor    string
		target   string
		subject  string
		pii      []string
		purpose  string
	}
	reqs := []struct {
		method, path, user, purpose string
		status                      int   // 0: the handler panics
		want                        *want // nil: not recorded
	}{
		{"GET", "/patients/p-1", "dr-a", "", 200, &want{"patient.view", trailv1.Category_CATEGORY_DATA_ACCESS, trailv1.Outcome_OUTCOME_SUCCESS, "dr-a", "patient/p-1", "p-1", []string{"name", "diagnosis"}, "treatment"}},
		{"GET", "/patients/p-2", "dr-b", "research", 200, &want{"patient.view", trailv1.Category_CATEGORY_DATA_ACCESS, trailv1.Outcome_OUTCOME_SUCCESS, "dr-b", "patient/p-2", "p-2", []string{"name", "diagnosis"}, "research"}},
		{"PUT", "/patients/p-1", "nurse", "", 403, &want{"patient.update", trailv1.Category_CATEGORY_DATA_MODIFICATION, trailv1.Outcome_OUTCOME_DENIED, "nurse", "patient/p-1", "", nil, ""}},
		{"GET", "/reports/r-9", "", "", 422, &want{"GET /reports/{id}", trailv1.Category_CATEGORY_DATA_ACCESS, trailv1.Outcome_OUTCOME_FAILURE, "anonymous", "", "", nil, ""}},
		{"POST", "/crash", "dr-a", "", 0, &want{"POST /crash", trailv1.Category_CATEGORY_DATA_MODIFICATION, trailv1.Outcome_OUTCOME_ERROR, "dr-a", "", "", nil, ""}},
		{"DELETE", "/nowhere", "dr-a", "", 404, &want{"DELETE (no route)", trailv1.Category_CATEGORY_DATA_MODIFICATION, trailv1.Outcome_OUTCOME_FAILURE, "dr-a", "", "", nil, ""}},
		{"GET", "/healthz", "", "", 200, nil},
	}
	for _, tc := range reqs {
		req, err := http.NewRequestWithContext(ctx, tc.method, srv.URL+tc.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if tc.user != "" {
			req.Header.Set("X-User", tc.user)
		}
		if tc.purpose != "" {
			req.Header.Set("X-Purpose", tc.purpose)
		}
		resp, err := srv.Client().Do(req)
		if tc.status == 0 {
			if err == nil {
				resp.Body.Close()
			}
			continue // the server cut the connection after the panic
		}
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Fatalf("%s %s: status %d, want %d", tc.method, tc.path, resp.StatusCode, tc.status)
		}
	}
	if err := c.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	evs, err := node.Events(ctx, "clinic")
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 6 {
		t.Fatalf("%d events recorded, want 6 (health checks are skipped): %v", len(evs), evs)
	}
	byKey := map[string]*trailv1.Event{}
	for _, ev := range evs {
		byKey[ev.GetAttributes()["http.method"]+" "+ev.GetAttributes()["http.path"]] = ev
	}
	for _, tc := range reqs {
		if tc.want == nil {
			continue
		}
		w, key := tc.want, tc.method+" "+tc.path
		ev := byKey[key]
		if ev == nil {
			t.Errorf("no event for %s", key)
			continue
		}
		target := ""
		if ev.GetTarget() != nil {
			target = ev.GetTarget().GetType() + "/" + ev.GetTarget().GetId()
		}
		switch {
		case ev.GetAction() != w.action, ev.GetCategory() != w.category, ev.GetOutcome() != w.outcome,
			ev.GetActor().GetId() != w.actor, target != w.target, ev.GetSubjectId() != w.subject,
			!slices.Equal(ev.GetPiiFieldsAccessed(), w.pii), ev.GetPurposeCode() != w.purpose:
			t.Errorf("%s recorded as %v, want %+v", key, ev, *w)
		case ev.GetSourceService() != "records-api", ev.GetActor().GetIp() != "127.0.0.1", ev.GetActor().GetUserAgent() == "":
			t.Errorf("%s: source, ip or user agent missing: %v", key, ev)
		}
	}
}

// TestOutcome pins the status classes.
func TestOutcome(t *testing.T) {
	for status, want := range map[int]trailv1.Outcome{
		200: trailv1.Outcome_OUTCOME_SUCCESS, 204: trailv1.Outcome_OUTCOME_SUCCESS, 302: trailv1.Outcome_OUTCOME_SUCCESS,
		400: trailv1.Outcome_OUTCOME_FAILURE, 404: trailv1.Outcome_OUTCOME_FAILURE, 409: trailv1.Outcome_OUTCOME_FAILURE,
		401: trailv1.Outcome_OUTCOME_DENIED, 403: trailv1.Outcome_OUTCOME_DENIED,
		500: trailv1.Outcome_OUTCOME_ERROR, 503: trailv1.Outcome_OUTCOME_ERROR,
	} {
		if got := audithttp.Outcome(status); got != want {
			t.Errorf("Outcome(%d) = %v, want %v", status, got, want)
		}
	}
}

// TestNewRefusesIncompleteConfig: Client and Actor are required.
func TestNewRefusesIncompleteConfig(t *testing.T) {
	if _, err := audithttp.New(audithttp.Config{}); err == nil {
		t.Fatal("New accepted a config without Client and Actor")
	}
	if _, err := audithttp.New(audithttp.Config{Actor: func(*http.Request) *trailv1.Actor { return nil }}); err == nil {
		t.Fatal("New accepted a config without Client")
	}
}
