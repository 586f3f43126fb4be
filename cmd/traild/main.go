// Command traild is the Trail server: one node of a Trail cluster, serving
// the gRPC and REST APIs in front of a Raft-replicated storage engine.
//
// Run without arguments it starts a single-node cluster on loopback with
// its data in ./trail-data, creating it on first start. See README.md in
// this directory for the commands and every setting.
package main

import (
	"context"
	"crypto/rand"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
	// The image is FROM scratch, with no zoneinfo: anomaly rules name
	// IANA time zones, so the database is built in.
	_ "time/tzdata"
)

// env is everything a command touches outside its arguments. Commands take
// it instead of reaching for os.Stdout or os.Getenv, so that tests run
// them in-process with captured output and a controlled environment.
type env struct {
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
	rand   io.Reader // key generation and cluster IDs
	now    func() time.Time
	// started, when set, is called once the daemon listens, with the
	// addresses it bound; tests use it to learn ports the kernel chose.
	started func(addrs)
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// After the first signal, a second one kills the process the
		// default way instead of waiting for a graceful shutdown.
		<-ctx.Done()
		stop()
	}()
	e := &env{stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv, rand: rand.Reader, now: time.Now}
	os.Exit(run(ctx, e, os.Args[1:]))
}
