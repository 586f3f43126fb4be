package server

import (
	"context"
	"log/slog"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// unaryInterceptor authenticates every unary call, then maps the handler's
// error to a status, logs and counts the call. Authorization is the
// handler's: only it knows which tenant a request touches.
func (s *Server) unaryInterceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	start := time.Now()
	inFlight := s.metrics.inFlight.WithLabelValues(info.FullMethod)
	inFlight.Inc()
	defer inFlight.Dec()
	p, err := authenticate(ctx, s.keys)
	var resp any
	if err == nil {
		resp, err = handler(withPrincipal(ctx, p), req)
	}
	return resp, s.finishCall(ctx, info.FullMethod, p, start, err)
}

func (s *Server) streamInterceptor(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	start := time.Now()
	inFlight := s.metrics.inFlight.WithLabelValues(info.FullMethod)
	inFlight.Inc()
	defer inFlight.Dec()
	ctx := ss.Context()
	p, err := authenticate(ctx, s.keys)
	if err == nil {
		err = handler(srv, &authedStream{ServerStream: ss, ctx: withPrincipal(ctx, p)})
	}
	return s.finishCall(ctx, info.FullMethod, p, start, err)
}

// authedStream carries the authenticated principal in its context.
type authedStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (a *authedStream) Context() context.Context { return a.ctx }

// finishCall converts err to a status and records the call. The full error
// text is logged; for Internal errors the client sees only the code.
func (s *Server) finishCall(ctx context.Context, method string, p *principal, start time.Time, err error) error {
	st := status.Convert(toStatus(err))
	code := st.Code()
	elapsed := time.Since(start)
	s.metrics.requests.WithLabelValues(method, code.String()).Inc()
	s.metrics.requestTime.WithLabelValues(method).Observe(elapsed.Seconds())
	level := logLevel(code)
	if s.log.Enabled(ctx, level) {
		attrs := []slog.Attr{slog.String("method", method), slog.String("code", code.String()), slog.Duration("elapsed", elapsed)}
		if p != nil {
			attrs = append(attrs, slog.String("key", p.keyID), slog.String("role", p.roleName()))
		}
		if err != nil {
			attrs = append(attrs, slog.String("err", err.Error()))
		}
		s.log.LogAttrs(ctx, level, "rpc", attrs...)
	}
	if err == nil {
		return nil
	}
	return st.Err()
}

// logLevel is how loudly a call ending with code is logged: client mistakes
// quietly, refusals and overload where operators look, server faults as
// errors.
func logLevel(code codes.Code) slog.Level {
	switch code {
	case codes.Unauthenticated, codes.PermissionDenied, codes.ResourceExhausted,
		codes.Unavailable, codes.FailedPrecondition:
		return slog.LevelInfo
	case codes.Internal, codes.DataLoss, codes.Unknown:
		return slog.LevelError
	}
	return slog.LevelDebug
}
