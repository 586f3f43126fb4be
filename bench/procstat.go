package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// userHZ is the unit of utime and stime in /proc/<pid>/stat. It is part
// of the kernel's ABI (USER_HZ), 100 on every architecture Go supports,
// whatever the kernel's internal tick rate.
const userHZ = 100

// procReader reads a child traild's counters from /proc: the kernel's own
// peak RSS (VmHWM), which no sampling can miss, and its CPU time.
type procReader struct {
	node string
	pid  int
}

func (p procReader) name() string { return p.node }

func (p procReader) read(context.Context) (nodeCounters, error) {
	hwm, err := procStatusKB(p.pid, "VmHWM")
	if err != nil {
		return nodeCounters{}, err
	}
	cpu, err := procCPUSeconds(p.pid)
	if err != nil {
		return nodeCounters{}, err
	}
	return nodeCounters{rssBytes: hwm << 10, cpuSeconds: cpu}, nil
}

// resetPeak sets VmHWM back to the current RSS (clear_refs "5", Linux
// 4.0 and later), so that a row's peak is not the peak of the start-up,
// the loading or the rows before it.
func (p procReader) resetPeak() error {
	path := fmt.Sprintf("/proc/%d/clear_refs", p.pid)
	if err := os.WriteFile(path, []byte("5"), 0); err != nil {
		return fmt.Errorf("bench: reset peak RSS of %s (pid %d): %w", p.node, p.pid, err)
	}
	return nil
}

// procStatusKB reads a "Key:   123 kB" line of /proc/<pid>/status.
func procStatusKB(pid int, key string) (int64, error) {
	path := fmt.Sprintf("/proc/%d/status", pid)
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("bench: read %s: %w", path, err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		v, ok := strings.CutPrefix(line, key+":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("bench: %s: malformed %s line %q", path, key, line)
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("bench: %s: %s: %w", path, key, err)
		}
		return n, nil
	}
	// A process that has exited but not been reaped has no memory lines.
	return 0, fmt.Errorf("bench: %s has no %s (has the process exited?)", path, key)
}

// procCPUSeconds is utime+stime from /proc/<pid>/stat.
func procCPUSeconds(pid int) (float64, error) {
	path := fmt.Sprintf("/proc/%d/stat", pid)
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("bench: read %s: %w", path, err)
	}
	// The command name (field 2) is in parentheses and may hold spaces;
	// the fields after its closing parenthesis start at field 3, state.
	s := string(b)
	end := strings.LastIndexByte(s, ')')
	if end < 0 {
		return 0, fmt.Errorf("bench: %s: malformed", path)
	}
	f := strings.Fields(s[end+1:])
	const utime, stime = 14 - 3, 15 - 3
	if len(f) <= stime {
		return 0, fmt.Errorf("bench: %s: %d fields, want more than %d", path, len(f)+2, stime+3)
	}
	var ticks int64
	for _, i := range []int{utime, stime} {
		n, err := strconv.ParseInt(f[i], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("bench: %s: field %d: %w", path, i+3, err)
		}
		ticks += n
	}
	return float64(ticks) / userHZ, nil
}
