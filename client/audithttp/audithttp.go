// Package audithttp records one Trail audit event per HTTP request: who
// (the request's identity, from a function the service supplies), did what
// (the route), to what (a path wildcard), with what result (the status
// code), touching which personal data for which purpose (declared per
// route). Events go through a client.Client, so they are batched, retried
// and, with a spool, durable, without slowing the response beyond the
// client's backpressure.
package audithttp

import (
	"bufio"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/trailaudit/trail/client"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// DefaultAppendTimeout bounds how long a request waits for room in the
// client's buffer to record its event.
const DefaultAppendTimeout = 5 * time.Second

// Appender is what the middleware needs of a client: *client.Client.
type Appender interface {
	Append(ctx context.Context, ev *trailv1.Event) (*client.Pending, error)
}

// Route declares how requests of one route are recorded.
type Route struct {
	// Action names what the route does, e.g. "patient.view". Default: the
	// route's pattern, e.g. "GET /patients/{id}".
	Action string
	// Category defaults to data access for GET and HEAD, data
	// modification for every other method.
	Category trailv1.Category
	// TargetType is the kind of entity the route acts on; TargetParam the
	// path wildcard holding its id ("id" in /patients/{id}).
	TargetType  string
	TargetParam string
	// SubjectParam is the path wildcard holding the id of the person whose
	// data the route serves, when there is one.
	SubjectParam string
	// PIIFields lists the personal data fields the route reads or writes.
	PIIFields []string
	// Purpose is the purpose code recorded when Config.Purpose gives none.
	Purpose string
	// Skip leaves the route unrecorded (health checks, metrics).
	Skip bool
}

// Config configures an Auditor. Client and Actor are required.
type Config struct {
	Client Appender
	// Actor returns who makes the request, from whatever authenticated
	// it. A nil Actor (or one without an id) is recorded as "anonymous".
	// The client's address and user agent fill the actor's ip and
	// user_agent when it leaves them empty.
	Actor func(*http.Request) *trailv1.Actor
	// Tenant returns the tenant the request belongs to; nil, or an empty
	// answer, leaves it to the client's Config.Tenant.
	Tenant func(*http.Request) string
	// Purpose returns the purpose code the caller declared (e.g. from a
	// header); an empty answer falls back to Route.Purpose.
	Purpose func(*http.Request) string
	// Routes declare routes by the pattern they were registered with on an
	// http.ServeMux ("GET /patients/{id}"). Routes not listed are recorded
	// with the defaults of Route.
	Routes map[string]Route
	// Pattern returns the route pattern of a served request, for routers
	// other than http.ServeMux. Default: Request.Pattern, which ServeMux
	// sets.
	Pattern func(*http.Request) string
	// AppendTimeout bounds the wait for room in the client's buffer.
	AppendTimeout time.Duration
	// OnError is told of events that could not be handed to the client
	// (its buffer stayed full, or it is closed). Default: log them.
	OnError func(*http.Request, error)
	Logger  *slog.Logger
}

// Auditor is the middleware.
type Auditor struct {
	cfg Config
}

// New checks cfg and returns an Auditor.
func New(cfg Config) (*Auditor, error) {
	if cfg.Client == nil || cfg.Actor == nil {
		return nil, errors.New("audithttp: Client and Actor are required")
	}
	if cfg.AppendTimeout <= 0 {
		cfg.AppendTimeout = DefaultAppendTimeout
	}
	if cfg.Pattern == nil {
		cfg.Pattern = func(r *http.Request) string { return r.Pattern }
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.OnError == nil {
		log := cfg.Logger
		cfg.OnError = func(r *http.Request, err error) {
			log.Error("audithttp: audit event not recorded", "method", r.Method, "path", r.URL.Path, "err", err)
		}
	}
	return &Auditor{cfg: cfg}, nil
}

// Handler records every request next serves. Wrap the ServeMux itself, not
// each handler: the route pattern is known once the mux has routed.
func (a *Auditor) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &recorder{ResponseWriter: w}
		start := time.Now()
		defer func() {
			p := recover()
			status := rec.status
			switch {
			case p != nil:
				status = http.StatusInternalServerError
			case status == 0:
				status = http.StatusOK
			}
			a.record(r, status, start)
			if p != nil {
				panic(p)
			}
		}()
		next.ServeHTTP(rec, r)
	})
}

// record builds the request's event and hands it to the client. The wait
// for room is detached from the request's context: a request whose client
// went away is still recorded.
func (a *Auditor) record(r *http.Request, status int, start time.Time) {
	pattern := a.cfg.Pattern(r)
	route := a.cfg.Routes[pattern]
	if route.Skip {
		return
	}
	ev := a.event(r, route, pattern, status, start)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), a.cfg.AppendTimeout)
	defer cancel()
	if _, err := a.cfg.Client.Append(ctx, ev); err != nil {
		a.cfg.OnError(r, err)
	}
}

func (a *Auditor) event(r *http.Request, route Route, pattern string, status int, start time.Time) *trailv1.Event {
	ev := &trailv1.Event{
		Category:          route.Category,
		Action:            route.Action,
		Outcome:           Outcome(status),
		Actor:             actor(a.cfg.Actor(r), r),
		PiiFieldsAccessed: route.PIIFields,
		PurposeCode:       route.Purpose,
		OccurredAt:        timestamppb.New(start),
		Attributes: map[string]string{
			"http.method": r.Method,
			"http.path":   r.URL.Path,
			"http.status": strconv.Itoa(status),
		},
	}
	if ev.Category == trailv1.Category_CATEGORY_UNSPECIFIED {
		ev.Category = trailv1.Category_CATEGORY_DATA_MODIFICATION
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			ev.Category = trailv1.Category_CATEGORY_DATA_ACCESS
		}
	}
	if ev.Action == "" {
		ev.Action = pattern
		if pattern == "" {
			ev.Action = r.Method + " (no route)"
		}
	}
	if route.TargetParam != "" {
		ev.Target = &trailv1.Target{Type: route.TargetType, Id: r.PathValue(route.TargetParam)}
	} else if route.TargetType != "" {
		ev.Target = &trailv1.Target{Type: route.TargetType}
	}
	if route.SubjectParam != "" {
		ev.SubjectId = r.PathValue(route.SubjectParam)
	}
	if a.cfg.Purpose != nil {
		if p := a.cfg.Purpose(r); p != "" {
			ev.PurposeCode = p
		}
	}
	if a.cfg.Tenant != nil {
		ev.TenantId = a.cfg.Tenant(r)
	}
	return ev
}

// Outcome maps an HTTP status to an audit outcome: 401 and 403 are
// denials, other 4xx failures of the request, 5xx errors of the service.
func Outcome(status int) trailv1.Outcome {
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return trailv1.Outcome_OUTCOME_DENIED
	case status >= 500:
		return trailv1.Outcome_OUTCOME_ERROR
	case status >= 400:
		return trailv1.Outcome_OUTCOME_FAILURE
	}
	return trailv1.Outcome_OUTCOME_SUCCESS
}

// actor completes the identity the service gave with what the request
// shows. The caller's Actor is copied, never modified.
func actor(given *trailv1.Actor, r *http.Request) *trailv1.Actor {
	a := &trailv1.Actor{}
	if given != nil {
		a = &trailv1.Actor{
			Id: given.GetId(), Type: given.GetType(), DisplayName: given.GetDisplayName(),
			Roles: given.GetRoles(), Ip: given.GetIp(), UserAgent: given.GetUserAgent(), SessionId: given.GetSessionId(),
		}
	}
	if a.Id == "" {
		a.Id, a.Type = "anonymous", "anonymous"
	}
	if a.Ip == "" {
		if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
			a.Ip = host
		}
	}
	if a.UserAgent == "" {
		a.UserAgent = r.UserAgent()
	}
	return a
}

// recorder remembers the status a handler answered with.
type recorder struct {
	http.ResponseWriter
	status int
}

func (w *recorder) WriteHeader(code int) {
	if w.status == 0 && code >= 200 { // 1xx are interim answers
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *recorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Flush lets streaming handlers that assert http.Flusher keep working.
func (w *recorder) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Hijack lets handlers that take over the connection (WebSocket
// upgrades) keep working; the request is recorded as switching protocols.
func (w *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if w.status == 0 {
		w.status = http.StatusSwitchingProtocols
	}
	return http.NewResponseController(w.ResponseWriter).Hijack()
}

// Unwrap gives http.ResponseController the underlying writer.
func (w *recorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }
