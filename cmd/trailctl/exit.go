package main

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Exit codes, documented in doc.go. Scripts rely on them: 1 means "do not
// trust this", 3 means "could not find out, try again".
const (
	exitOK     = 0
	exitFailed = 1 // verification failed, or the server refused the request
	exitUsage  = 2 // bad command line
	exitIO     = 3 // I/O or network error: the question was not answered
)

// codedError carries an explicit exit code. Errors without one exit with
// exitFailed: anything not known to be a transient I/O problem must not
// look like one to a script deciding whether to trust a log.
type codedError struct {
	code int
	err  error
}

func (e *codedError) Error() string { return e.err.Error() }
func (e *codedError) Unwrap() error { return e.err }

// errHelp is returned after a command printed its help on request.
var errHelp = errors.New("help shown")

func usageErrorf(format string, args ...any) error {
	return &codedError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

// ioError marks err as an I/O or network failure (exit 3).
func ioError(err error) error {
	if err == nil {
		return nil
	}
	return &codedError{code: exitIO, err: err}
}

// exitCode maps an error returned by a command to the process exit code.
func exitCode(err error) int {
	var ce *codedError
	switch {
	case err == nil, errors.Is(err, errHelp):
		return exitOK
	case errors.As(err, &ce):
		return ce.code
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return exitIO
	}
	return exitFailed
}

// rpcError is a failed RPC, reported as "Method: Code: message" rather than
// gRPC's default "rpc error: code = ... desc = ...".
type rpcError struct {
	method string
	st     *status.Status
}

func (e *rpcError) Error() string {
	return fmt.Sprintf("%s: %s: %s", e.method, e.st.Code(), e.st.Message())
}

// wrapRPC classifies a gRPC error: a server that answered "no" (not found,
// permission denied, invalid argument) is a failure; one that could not be
// reached or did not answer in time is an I/O error.
func wrapRPC(method string, err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		st = status.FromContextError(err)
	}
	code := exitFailed
	if transientCode(st.Code()) {
		code = exitIO
	}
	return &codedError{code: code, err: &rpcError{method: method, st: st}}
}

func transientCode(c codes.Code) bool {
	switch c {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Canceled, codes.Aborted,
		codes.ResourceExhausted, codes.Internal, codes.Unknown, codes.Unimplemented:
		return true
	}
	return false
}
