package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
	"runtime/trace"
	"strconv"
	"strings"
	"time"
)

// runFlags are the flags every networked scenario shares: how long to
// measure, where to write, and how to report.
type runFlags struct {
	duration    time.Duration
	dir         string
	asJSON      bool
	cpuProfile  string
	tracePath   string
	ceilingTime time.Duration
	verbose     bool
}

func (f *runFlags) register(fs *flag.FlagSet, duration time.Duration) {
	fs.DurationVar(&f.duration, "duration", duration, "measured time per row")
	fs.StringVar(&f.dir, "dir", "", "working directory (default: a temporary directory, removed afterwards)")
	fs.BoolVar(&f.asJSON, "json", false, "print JSON instead of a table")
	fs.StringVar(&f.cpuProfile, "cpuprofile", "", "write a CPU profile of each measured row to `FILE` (row number appended when there are several)")
	fs.StringVar(&f.tracePath, "trace", "", "write an execution trace of each measured row to `FILE` (row number appended when there are several)")
	fs.DurationVar(&f.ceilingTime, "ceiling-time", 2*time.Second, "time spent measuring each machine ceiling")
	fs.BoolVar(&f.verbose, "v", false, "log the local nodes' warnings to stderr (with -traild, instead of a log file per node in the run directory)")
}

// parseCounts parses a comma-separated list of positive integers, such as
// "1,16,64".
func parseCounts(name, s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("-%s: bad count %q", name, f)
		}
		out = append(out, n)
	}
	return out, nil
}

// profiler writes one CPU profile and one execution trace per measured
// row, so that they hold the measurement and none of the loading or
// start-up around it.
type profiler struct {
	cpuPath, tracePath string
	multi              bool
	row                int
	cpu, trace         *os.File
}

func newProfiler(f runFlags, rows int) *profiler {
	return &profiler{cpuPath: f.cpuProfile, tracePath: f.tracePath, multi: rows > 1}
}

func (p *profiler) name(path string) string {
	if p.multi {
		return fmt.Sprintf("%s.%d", path, p.row)
	}
	return path
}

func (p *profiler) start() (err error) {
	p.row++
	defer func() {
		if err != nil {
			p.stop()
		}
	}()
	if p.cpuPath != "" {
		if p.cpu, err = os.Create(p.name(p.cpuPath)); err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		if err := pprof.StartCPUProfile(p.cpu); err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
	}
	if p.tracePath != "" {
		if p.trace, err = os.Create(p.name(p.tracePath)); err != nil {
			return fmt.Errorf("trace: %w", err)
		}
		if err := trace.Start(p.trace); err != nil {
			return fmt.Errorf("trace: %w", err)
		}
	}
	return nil
}

func (p *profiler) stop() error {
	var errs []error
	if p.cpu != nil {
		pprof.StopCPUProfile()
		errs = append(errs, p.cpu.Close())
		p.cpu = nil
	}
	if p.trace != nil {
		trace.Stop()
		errs = append(errs, p.trace.Close())
		p.trace = nil
	}
	return errors.Join(errs...)
}
