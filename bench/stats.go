package main

import (
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// percentiles of a latency sample, in microseconds.
type percentiles struct {
	P50, P90, P99, P999 float64
}

func percentilesOf(lat []time.Duration) percentiles {
	if len(lat) == 0 {
		return percentiles{}
	}
	slices.Sort(lat)
	at := func(q float64) float64 {
		return float64(lat[int(q*float64(len(lat)-1))].Nanoseconds()) / 1e3
	}
	return percentiles{at(0.5), at(0.9), at(0.99), at(0.999)}
}

// rssBytes is this process's resident set size, from /proc.
func rssBytes() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}
