package raftnode

import (
	"context"
	"errors"

	"github.com/hashicorp/raft"

	"github.com/trailaudit/trail/engine"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

var (
	// ErrClosed is returned by calls on a closed node.
	ErrClosed = errors.New("raftnode: node closed")
	// ErrAmbiguous is matched (errors.Is) by every *AmbiguousError.
	ErrAmbiguous = errors.New("outcome unknown")
	// ErrAlreadyBootstrapped is returned by Bootstrap on a node that already
	// has Raft state.
	ErrAlreadyBootstrapped = errors.New("raftnode: already bootstrapped")
	// ErrFSMFailed is returned for commands after the state machine hit a
	// storage failure it could not get past; the node shuts down so that a
	// restart replays the log from the engine's applied index.
	ErrFSMFailed = errors.New("raftnode: state machine failed")

	// errNoLeader means no leader is known right now; retried.
	errNoLeader = errors.New("no leader")
	// errUnreachable means a connection to the leader could not be opened,
	// so nothing was sent; retried.
	errUnreachable = errors.New("leader unreachable")
	// errForwardIO means a forwarding connection failed after the request
	// may have been sent; retried (event ids make it safe), but if the
	// caller's deadline then ends the outcome is ambiguous.
	errForwardIO = errors.New("forwarding connection failed")
	// errBadRequest marks a malformed forwarded request.
	errBadRequest = errors.New("bad request")
)

// AmbiguousError reports that a write may or may not have been committed:
// Raft lost leadership (or shut down) while the entry was being committed,
// or the caller's deadline ended while a forwarded request was in doubt.
// Retrying with the same event ids is safe: the engine returns the original
// receipt for an event_id already in the log (invariant 8).
type AmbiguousError struct {
	Op  string
	Err error
}

func (e *AmbiguousError) Error() string {
	return "raftnode: " + e.Op + ": outcome unknown, retry with the same event ids: " + e.Err.Error()
}

func (e *AmbiguousError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrAmbiguous) true for every AmbiguousError.
func (e *AmbiguousError) Is(target error) bool { return target == ErrAmbiguous }

func ambiguous(op string, err error) error {
	var ae *AmbiguousError
	if errors.As(err, &ae) {
		return err
	}
	return &AmbiguousError{Op: op, Err: err}
}

// proposalError classifies the error of a Raft proposal's future: the
// outcomes where the entry may already be in the log become ambiguous.
func proposalError(op string, err error) error {
	switch {
	case errors.Is(err, raft.ErrLeadershipLost), errors.Is(err, raft.ErrRaftShutdown),
		errors.Is(err, raft.ErrAbortedByRestore), errors.Is(err, ErrFSMFailed):
		// ErrFSMFailed: the entry is committed but this node could not
		// apply it; it will be applied after a restart.
		return ambiguous(op, err)
	}
	return err
}

// retryable reports whether an attempt failed without effect in a way that
// another attempt, perhaps on another node, may fix.
func retryable(err error) bool {
	for _, target := range []error{
		raft.ErrNotLeader, errNoLeader, errUnreachable, errForwardIO,
		raft.ErrLeadershipTransferInProgress, raft.ErrEnqueueTimeout,
	} {
		if errors.Is(err, target) {
			return true
		}
	}
	// A remote node that is shutting down: ask another.
	var re *remoteError
	if errors.As(err, &re) {
		return errors.Is(err, raft.ErrRaftShutdown) || errors.Is(err, ErrClosed) || errors.Is(err, engine.ErrClosed)
	}
	return false
}

// errorCodes maps sentinels to wire codes and back; the first match wins
// when encoding.
var errorCodes = []struct {
	code trailv1.RaftErrorCode
	err  error
}{
	{trailv1.RaftErrorCode_RAFT_ERROR_NODE_CLOSED, ErrClosed},
	{trailv1.RaftErrorCode_RAFT_ERROR_NOT_LEADER, raft.ErrNotLeader},
	{trailv1.RaftErrorCode_RAFT_ERROR_NOT_LEADER, errNoLeader},
	{trailv1.RaftErrorCode_RAFT_ERROR_LEADERSHIP_LOST, raft.ErrLeadershipLost},
	{trailv1.RaftErrorCode_RAFT_ERROR_SHUTDOWN, raft.ErrRaftShutdown},
	{trailv1.RaftErrorCode_RAFT_ERROR_ENQUEUE_TIMEOUT, raft.ErrEnqueueTimeout},
	{trailv1.RaftErrorCode_RAFT_ERROR_TRANSFER_IN_PROGRESS, raft.ErrLeadershipTransferInProgress},
	{trailv1.RaftErrorCode_RAFT_ERROR_ABORTED_BY_RESTORE, raft.ErrAbortedByRestore},
	{trailv1.RaftErrorCode_RAFT_ERROR_INVALID_EVENT, engine.ErrInvalidEvent},
	{trailv1.RaftErrorCode_RAFT_ERROR_ENTRY_TOO_LARGE, engine.ErrEntryTooLarge},
	{trailv1.RaftErrorCode_RAFT_ERROR_EVENT_ID_CONFLICT, engine.ErrEventIDConflict},
	{trailv1.RaftErrorCode_RAFT_ERROR_STALE_DATA_KEY, engine.ErrStaleDataKey},
	{trailv1.RaftErrorCode_RAFT_ERROR_UNSEALED, engine.ErrUnsealed},
	{trailv1.RaftErrorCode_RAFT_ERROR_SEALED, engine.ErrSealed},
	{trailv1.RaftErrorCode_RAFT_ERROR_MONTH_NOT_ENDED, engine.ErrMonthNotEnded},
	{trailv1.RaftErrorCode_RAFT_ERROR_NOT_FOUND, engine.ErrNotFound},
	{trailv1.RaftErrorCode_RAFT_ERROR_BAD_SIZE, engine.ErrBadSize},
	{trailv1.RaftErrorCode_RAFT_ERROR_BAD_SETTING, engine.ErrBadSetting},
	{trailv1.RaftErrorCode_RAFT_ERROR_CORRUPT, engine.ErrCorrupt},
	{trailv1.RaftErrorCode_RAFT_ERROR_ENGINE_CLOSED, engine.ErrClosed},
	{trailv1.RaftErrorCode_RAFT_ERROR_DISK_FULL, engine.ErrDiskFull},
	{trailv1.RaftErrorCode_RAFT_ERROR_NOT_DROPPABLE, engine.ErrNotDroppable},
	{trailv1.RaftErrorCode_RAFT_ERROR_DEADLINE_EXCEEDED, context.DeadlineExceeded},
	{trailv1.RaftErrorCode_RAFT_ERROR_CANCELED, context.Canceled},
	{trailv1.RaftErrorCode_RAFT_ERROR_BAD_REQUEST, errBadRequest},
	{trailv1.RaftErrorCode_RAFT_ERROR_ROOT_DIFFERS, ErrRootDiffers},
	{trailv1.RaftErrorCode_RAFT_ERROR_NO_COSIGNER, ErrNoCosigner},
}

// encodeError turns err into its wire form; nil stays nil.
func encodeError(err error) *trailv1.RaftError {
	if err == nil {
		return nil
	}
	e := &trailv1.RaftError{Message: err.Error(), Ambiguous: errors.Is(err, ErrAmbiguous)}
	for _, c := range errorCodes {
		if errors.Is(err, c.err) {
			e.Code = c.code
			break
		}
	}
	return e
}

// remoteError is an error that happened on another node. It carries that
// node's message and matches the same sentinel there was matched there.
type remoteError struct {
	msg      string
	sentinel error
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.sentinel }

// decodeError rebuilds an error from its wire form; op names the
// operation for an ambiguous outcome.
func decodeError(op string, e *trailv1.RaftError) error {
	if e == nil {
		return nil
	}
	re := &remoteError{msg: e.GetMessage()}
	for _, c := range errorCodes {
		if c.code == e.GetCode() {
			re.sentinel = c.err
			break
		}
	}
	if e.GetAmbiguous() {
		return &AmbiguousError{Op: op, Err: re}
	}
	return re
}
