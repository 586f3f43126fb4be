package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// env is everything a command may touch outside its arguments. Commands
// take it instead of reaching for os.Stdout or os.Getenv, so tests run them
// in-process with captured output and a controlled environment.
type env struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
	// stderrTerminal reports whether stderr is an interactive terminal:
	// progress bars are drawn only there, never into logs or pipes.
	stderrTerminal bool
	now            func() time.Time
}

func main() {
	// SIGINT and SIGTERM cancel the context, so streams (tail, watch, bulk
	// append) stop cleanly and report what they did.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	e := &env{
		stdin:          os.Stdin,
		stdout:         os.Stdout,
		stderr:         os.Stderr,
		getenv:         os.Getenv,
		stderrTerminal: isTerminal(os.Stderr),
		now:            time.Now,
	}
	code := run(ctx, e, os.Args[1:])
	stop()
	os.Exit(code)
}

// isTerminal reports whether f is a character device. That is true of
// terminals and of /dev/null; drawing a progress bar into /dev/null is
// harmless, and the check needs nothing beyond the standard library.
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
