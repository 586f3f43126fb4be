package server

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/hashicorp/raft"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/trailaudit/trail/engine"
)

func TestToStatus(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("op: %w", err) }
	for _, tc := range []struct {
		err  error
		want codes.Code
	}{
		{wrap(engine.ErrInvalidEvent), codes.InvalidArgument},
		{wrap(engine.ErrBadQuery), codes.InvalidArgument},
		{wrap(engine.ErrBadSize), codes.InvalidArgument},
		{badRequest("partition"), codes.InvalidArgument},
		{wrap(engine.ErrNotFound), codes.NotFound},
		{wrap(errDenied), codes.PermissionDenied},
		{wrap(errNoCredentials), codes.Unauthenticated},
		{wrap(errUnknownKey), codes.Unauthenticated},
		{errMalformedToken, codes.Unauthenticated},
		{wrap(engine.ErrEntryTooLarge), codes.InvalidArgument},
		{wrap(errTooLarge), codes.InvalidArgument},
		{wrap(errResultTooLarge), codes.InvalidArgument},
		{wrap(errSlowConsumer), codes.ResourceExhausted},
		{wrap(raft.ErrNotLeader), codes.Unavailable},
		{wrap(raft.ErrLeadershipLost), codes.Unavailable},
		{wrap(engine.ErrClosed), codes.Unavailable},
		{wrap(engine.ErrEventIDConflict), codes.AlreadyExists},
		{wrap(engine.ErrCorrupt), codes.DataLoss},
		{wrap(context.DeadlineExceeded), codes.DeadlineExceeded},
		{wrap(context.Canceled), codes.Canceled},
		{status.Error(codes.Aborted, "kept"), codes.Aborted},
		{wrap(status.Error(codes.Aborted, "kept")), codes.Aborted},
		{errors.New("disk on fire at /var/lib/trail"), codes.Internal},
	} {
		t.Run(tc.err.Error(), func(t *testing.T) {
			st := status.Convert(toStatus(tc.err))
			if st.Code() != tc.want {
				t.Fatalf("code %v, want %v", st.Code(), tc.want)
			}
		})
	}
}

func TestToStatusUnavailableCarriesRetryInfo(t *testing.T) {
	st := status.Convert(toStatus(fmt.Errorf("append: %w", raft.ErrNotLeader)))
	var found bool
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok && ri.GetRetryDelay().AsDuration() > 0 {
			found = true
		}
	}
	if !found {
		t.Fatalf("no RetryInfo in %v", st.Details())
	}
}

func TestToStatusHidesInternalDetails(t *testing.T) {
	st := status.Convert(toStatus(errors.New("pebble: /data/engine-000001/db: checksum")))
	if st.Message() != "internal error" {
		t.Fatalf("message %q leaks the internal error", st.Message())
	}
}
