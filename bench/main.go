// Command bench is Trail's benchmark suite. Every scenario measures the
// machine's own ceilings in the same run (fsync'd sequential writes and
// SHA-256) and reports its results against them.
//
//	go run ./bench engine [-log-sizes 1000000,10000000] [-json]
//	go run ./bench append -local 1|3 [-traild BIN] [-producers 1,16,64] [-batch 100] [-stream] [-rate N]
//	go run ./bench prove  -local 1 [-traild BIN] [-log-size 1000000] [-clients 16]
//	go run ./bench mixed  -local 3 [-traild BIN] [-mix 70,25,5] [-workers 32]
//	go run ./bench verify -local 1 [-log-size 200000] [-workers 1,2]
//
// The networked scenarios take -addr host:port -token KEY for an existing
// cluster, or -local N to start a throwaway N-node cluster on loopback. By
// default its nodes run in this process, so RSS and CPU are those of the
// whole process. With -traild BIN (go build -o /tmp/traild ./cmd/traild)
// each node is its own traild process, with its own configuration file and
// data directory, and append, prove and mixed report each node's peak RSS
// (VmHWM) and CPU time from /proc. For an existing cluster, -metrics
// URL,... (one per node) scrapes each node's Prometheus /metrics for the
// same figures.
//
// Results and the commands that produced them are in bench/RESULTS.md.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "engine":
		err = runEngine(os.Args[2:])
	case "append":
		err = runAppend(os.Args[2:])
	case "prove":
		err = runProve(os.Args[2:])
	case "mixed":
		err = runMixed(os.Args[2:])
	case "verify":
		err = runVerify(os.Args[2:])
	case "search":
		err = runSearch(os.Args[2:])
	default:
		usage()
	}
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: bench engine|append|prove|mixed|verify|search [flags]   (bench <scenario> -h for flags)")
	fmt.Fprintln(os.Stderr, "  networked scenarios: -local N [-traild BIN] for a throwaway cluster (in this process, or traild")
	fmt.Fprintln(os.Stderr, "  processes measured per node), or -addr HOST:PORT -token KEY [-metrics URL,...] for an existing one")
	os.Exit(2)
}

func workDir(dir string) (string, func(), error) {
	if dir != "" {
		return dir, func() {}, os.MkdirAll(dir, 0o755)
	}
	d, err := os.MkdirTemp("", "trail-bench-")
	if err != nil {
		return "", nil, err
	}
	return d, func() { os.RemoveAll(d) }, nil
}

func parseSizes(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 2 {
			return nil, fmt.Errorf("bad log size %q", f)
		}
		if len(out) > 0 && n <= out[len(out)-1] {
			return nil, fmt.Errorf("log sizes must increase: %s", s)
		}
		out = append(out, n)
	}
	return out, nil
}

func printJSON(v any) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// cpuSeconds is the CPU time (user+system) this process has used.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}
