// Package auditgrpc records one Trail audit event per call to a gRPC
// server: who (the call's identity, from a function the service supplies),
// did what (the method), to what (read from the request), with what result
// (the status code), touching which personal data for which purpose
// (declared per method). Events go through a client.Client, so they are
// batched, retried and, with a spool, durable.
package auditgrpc

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/trailaudit/trail/client"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// DefaultAppendTimeout bounds how long a call waits for room in the
// client's buffer to record its event.
const DefaultAppendTimeout = 5 * time.Second

// Appender is what the interceptors need of a client: *client.Client.
type Appender interface {
	Append(ctx context.Context, ev *trailv1.Event) (*client.Pending, error)
}

// Method declares how calls of one method are recorded.
type Method struct {
	// Action names what the method does, e.g. "patient.view". Default: the
	// full method name with dots, e.g. "clinic.v1.Patients.Get".
	Action string
	// Category defaults to Config.Category.
	Category trailv1.Category
	// TargetType is the kind of entity the method acts on. TargetID and
	// SubjectID read the target's id and the data subject's id from a
	// unary request (streams have no single request).
	TargetType string
	TargetID   func(req any) string
	SubjectID  func(req any) string
	// PIIFields lists the personal data fields the method reads or writes.
	PIIFields []string
	// Purpose is the purpose code recorded when Config.Purpose gives none.
	Purpose string
	// Skip leaves the method unrecorded (health checks, reflection).
	Skip bool
}

// Config configures an Auditor. Client and Actor are required.
type Config struct {
	Client Appender
	// Actor returns who makes the call, from whatever authenticated it
	// (its context carries the metadata, peer and auth info). A nil Actor
	// (or one without an id) is recorded as "anonymous". The peer's
	// address fills the actor's ip when it leaves it empty.
	Actor func(ctx context.Context) *trailv1.Actor
	// Tenant returns the call's tenant; nil, or an empty answer, leaves it
	// to the client's Config.Tenant.
	Tenant func(ctx context.Context) string
	// Purpose returns the purpose code the caller declared; an empty
	// answer falls back to Method.Purpose.
	Purpose func(ctx context.Context) string
	// Methods declare methods by full name ("/clinic.v1.Patients/Get").
	// Methods not listed are recorded with the defaults of Method.
	Methods map[string]Method
	// Category is the category of methods that declare none (default
	// data access).
	Category trailv1.Category
	// AppendTimeout bounds the wait for room in the client's buffer.
	AppendTimeout time.Duration
	// OnError is told of events that could not be handed to the client.
	// Default: log them.
	OnError func(fullMethod string, err error)
	Logger  *slog.Logger
}

// Auditor provides the interceptors.
type Auditor struct {
	cfg Config
}

// New checks cfg and returns an Auditor.
func New(cfg Config) (*Auditor, error) {
	if cfg.Client == nil || cfg.Actor == nil {
		return nil, errors.New("auditgrpc: Client and Actor are required")
	}
	if cfg.Category == trailv1.Category_CATEGORY_UNSPECIFIED {
		cfg.Category = trailv1.Category_CATEGORY_DATA_ACCESS
	}
	if cfg.AppendTimeout <= 0 {
		cfg.AppendTimeout = DefaultAppendTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.OnError == nil {
		log := cfg.Logger
		cfg.OnError = func(method string, err error) {
			log.Error("auditgrpc: audit event not recorded", "method", method, "err", err)
		}
	}
	return &Auditor{cfg: cfg}, nil
}

// Unary is the unary server interceptor.
func (a *Auditor) Unary() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		m := a.cfg.Methods[info.FullMethod]
		if m.Skip {
			return handler(ctx, req)
		}
		start := time.Now()
		defer func() {
			if p := recover(); p != nil {
				a.record(ctx, info.FullMethod, m, req, status.Error(codes.Internal, "panic"), start)
				panic(p)
			}
			a.record(ctx, info.FullMethod, m, req, err, start)
		}()
		return handler(ctx, req)
	}
}

// Stream is the stream server interceptor: one event per stream, when it
// ends.
func (a *Auditor) Stream() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
		m := a.cfg.Methods[info.FullMethod]
		if m.Skip {
			return handler(srv, ss)
		}
		start := time.Now()
		defer func() {
			if p := recover(); p != nil {
				a.record(ss.Context(), info.FullMethod, m, nil, status.Error(codes.Internal, "panic"), start)
				panic(p)
			}
			a.record(ss.Context(), info.FullMethod, m, nil, err, start)
		}()
		return handler(srv, ss)
	}
}

// record builds the call's event and hands it to the client, waiting for
// room detached from the call's context: a cancelled call is recorded too.
func (a *Auditor) record(ctx context.Context, method string, m Method, req any, callErr error, start time.Time) {
	ev := a.event(ctx, method, m, req, callErr, start)
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.cfg.AppendTimeout)
	defer cancel()
	if _, err := a.cfg.Client.Append(actx, ev); err != nil {
		a.cfg.OnError(method, err)
	}
}

func (a *Auditor) event(ctx context.Context, method string, m Method, req any, callErr error, start time.Time) *trailv1.Event {
	code := status.Code(callErr)
	ev := &trailv1.Event{
		Category:          m.Category,
		Action:            m.Action,
		Outcome:           Outcome(code),
		Actor:             actor(ctx, a.cfg.Actor(ctx)),
		PiiFieldsAccessed: m.PIIFields,
		PurposeCode:       m.Purpose,
		OccurredAt:        timestamppb.New(start),
		Attributes:        map[string]string{"grpc.method": method, "grpc.code": code.String()},
	}
	if ev.Category == trailv1.Category_CATEGORY_UNSPECIFIED {
		ev.Category = a.cfg.Category
	}
	if ev.Action == "" {
		ev.Action = strings.ReplaceAll(strings.TrimPrefix(method, "/"), "/", ".")
	}
	if m.TargetType != "" || (m.TargetID != nil && req != nil) {
		ev.Target = &trailv1.Target{Type: m.TargetType}
		if m.TargetID != nil && req != nil {
			ev.Target.Id = m.TargetID(req)
		}
	}
	if m.SubjectID != nil && req != nil {
		ev.SubjectId = m.SubjectID(req)
	}
	if a.cfg.Purpose != nil {
		if p := a.cfg.Purpose(ctx); p != "" {
			ev.PurposeCode = p
		}
	}
	if a.cfg.Tenant != nil {
		ev.TenantId = a.cfg.Tenant(ctx)
	}
	return ev
}

// Outcome maps a status code to an audit outcome: refusals of identity or
// permission are denials, faults of the service (or of what it depends
// on) errors, and every other non-OK code a failure of the request.
func Outcome(code codes.Code) trailv1.Outcome {
	switch code {
	case codes.OK:
		return trailv1.Outcome_OUTCOME_SUCCESS
	case codes.Unauthenticated, codes.PermissionDenied:
		return trailv1.Outcome_OUTCOME_DENIED
	case codes.Unknown, codes.Internal, codes.DataLoss, codes.Unavailable, codes.DeadlineExceeded,
		codes.Unimplemented, codes.ResourceExhausted:
		return trailv1.Outcome_OUTCOME_ERROR
	}
	return trailv1.Outcome_OUTCOME_FAILURE
}

// actor completes the identity the service gave with the peer's address.
// The caller's Actor is copied, never modified.
func actor(ctx context.Context, given *trailv1.Actor) *trailv1.Actor {
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
	if p, ok := peer.FromContext(ctx); ok && a.Ip == "" && p.Addr != nil {
		if host, _, err := net.SplitHostPort(p.Addr.String()); err == nil {
			a.Ip = host
		}
	}
	return a
}
