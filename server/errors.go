package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/trailaudit/trail/engine"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
	"github.com/trailaudit/trail/raftnode"
)

// retryDelay is the back-off suggested to clients when no leader is known:
// about one Raft election timeout, after which a new leader usually is.
const retryDelay = time.Second

// Errors of the server itself, mapped like the engine's.
var (
	// errBadRequest marks a malformed request that the engine never saw
	// (a partition name, a missing field).
	errBadRequest = errors.New("invalid request")
	// errTooLarge marks a request beyond the configured limits.
	errTooLarge = errors.New("request too large")
	// errResultTooLarge marks a query whose answer would exceed a limit.
	errResultTooLarge = errors.New("result too large")
	// errUnavailable marks a condition that retrying later may clear.
	errUnavailable = errors.New("unavailable")
	// errPrecondition marks a request the cluster's current state refuses.
	errPrecondition = errors.New("failed precondition")
)

// badRequest formats an error wrapping errBadRequest.
func badRequest(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errBadRequest, fmt.Sprintf(format, args...))
}

// codeOf classifies err. The order matters only where errors wrap several
// sentinels; each sentinel maps to exactly one code.
func codeOf(err error) codes.Code {
	if err == nil {
		return codes.OK
	}
	if st, ok := grpcStatus(err); ok {
		return st.Code()
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return codes.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		return codes.Canceled
	case errors.Is(err, errNoCredentials), errors.Is(err, errUnknownKey), errors.Is(err, errMalformedToken):
		return codes.Unauthenticated
	case errors.Is(err, errDenied):
		return codes.PermissionDenied
	case errors.Is(err, engine.ErrCorrupt):
		return codes.DataLoss
	case errors.Is(err, engine.ErrInvalidEvent), errors.Is(err, engine.ErrBadQuery),
		errors.Is(err, engine.ErrBadSize), errors.Is(err, engine.ErrBadSetting),
		errors.Is(err, errBadRequest), errors.Is(err, errResultTooLarge):
		return codes.InvalidArgument
	case errors.Is(err, engine.ErrEntryTooLarge), errors.Is(err, errTooLarge):
		// Not RESOURCE_EXHAUSTED, which tells clients to retry: the same
		// request will never fit. REST answers 413 (tooLarge).
		return codes.InvalidArgument
	case errors.Is(err, errSlowConsumer), errors.Is(err, engine.ErrDiskFull):
		return codes.ResourceExhausted
	case errors.Is(err, engine.ErrEventIDConflict):
		return codes.AlreadyExists
	case errors.Is(err, engine.ErrNotFound):
		return codes.NotFound
	case errors.Is(err, errPrecondition):
		return codes.FailedPrecondition
	case isNoLeader(err), errors.Is(err, engine.ErrClosed), errors.Is(err, errUnavailable), errors.Is(err, engine.ErrStaleDataKey), errors.Is(err, engine.ErrUnsealed),
		errors.Is(err, raftnode.ErrAmbiguous), errors.Is(err, raftnode.ErrClosed), errors.Is(err, raftnode.ErrFSMFailed):
		return codes.Unavailable
	}
	return codes.Internal
}

// isNoLeader reports whether err means the write could not reach a leader,
// or lost it while committing. Both are worth retrying, as is an ambiguous
// outcome (raftnode.ErrAmbiguous): an append retried with the same
// event_id is never applied twice (invariant 8).
func isNoLeader(err error) bool {
	for _, target := range []error{
		raft.ErrNotLeader, raft.ErrLeadershipLost, raft.ErrLeadershipTransferInProgress,
		raft.ErrRaftShutdown, raft.ErrEnqueueTimeout, raft.ErrAbortedByRestore,
	} {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

// toStatus converts err into a gRPC status error. Unavailable errors carry
// RetryInfo so that clients back off rather than hammer a leaderless
// cluster; Internal errors hide their text, which may name files or keys.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if st, ok := grpcStatus(err); ok {
		return st.Err()
	}
	code := codeOf(err)
	if errors.Is(err, engine.ErrEntryTooLarge) || errors.Is(err, errTooLarge) {
		return tooLarge(err)
	}
	switch code {
	case codes.Internal:
		return status.Error(codes.Internal, "internal error")
	case codes.Unavailable:
		st := status.New(codes.Unavailable, err.Error())
		if d, derr := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(retryDelay)}); derr == nil {
			st = d
		}
		return st.Err()
	}
	return status.Error(code, err.Error())
}

// reasonTooLarge is the ErrorInfo reason of requests refused for their
// size, which REST answers with 413.
const reasonTooLarge = "REQUEST_TOO_LARGE"

// tooLarge is the status of a request beyond a size limit: INVALID_ARGUMENT
// (the message names the limit) with an ErrorInfo saying why.
func tooLarge(err error) error {
	st := status.New(codes.InvalidArgument, err.Error())
	if d, derr := st.WithDetails(&errdetails.ErrorInfo{Reason: reasonTooLarge, Domain: "trail.audit"}); derr == nil {
		st = d
	}
	return st.Err()
}

// grpcStatus returns the status carried by err, if it is (or wraps) one.
func grpcStatus(err error) (*status.Status, bool) {
	var se interface{ GRPCStatus() *status.Status }
	if errors.As(err, &se) {
		return se.GRPCStatus(), true
	}
	return nil, false
}

// errorMessage is the per-event form of err inside a batch response.
func errorMessage(err error) *trailv1.Error {
	st := status.Convert(toStatus(err))
	return &trailv1.Error{Code: int32(st.Code()), Message: st.Message()}
}
