// Package ceiling measures what this machine can do at best, in the same
// run as a benchmark, so that results read as fractions of the hardware
// rather than as absolute numbers from an unknown machine.
package ceiling

import (
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Ceilings are the machine's measured limits.
type Ceilings struct {
	// FsyncWriteMBps is sequential write throughput with an fsync after
	// every chunk of ChunkBytes: the most a durable log can take in.
	FsyncWriteMBps float64 `json:"fsync_write_mbps"`
	// FsyncsPerSec is the rate of those chunked fsyncs.
	FsyncsPerSec float64 `json:"fsyncs_per_sec"`
	ChunkBytes   int     `json:"chunk_bytes"`
	// SHA256MBps and SHA256PerSec hash 512-byte messages on one core.
	SHA256MBps   float64 `json:"sha256_mbps"`
	SHA256PerSec float64 `json:"sha256_per_sec"`
}

// Measure runs both measurements for about d each, writing in dir.
func Measure(dir string, chunkBytes int, d time.Duration) (Ceilings, error) {
	c := Ceilings{ChunkBytes: chunkBytes}
	mbps, fps, err := fsyncWrite(dir, chunkBytes, d)
	if err != nil {
		return c, err
	}
	c.FsyncWriteMBps, c.FsyncsPerSec = mbps, fps
	c.SHA256MBps, c.SHA256PerSec = sha256Rate(512, d)
	return c, nil
}

func fsyncWrite(dir string, chunk int, d time.Duration) (mbps, perSec float64, err error) {
	f, err := os.CreateTemp(dir, "ceiling-*.dat")
	if err != nil {
		return 0, 0, fmt.Errorf("ceiling: %w", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	buf := make([]byte, chunk)
	rand.Read(buf) // incompressible, like hashes and compressed blocks
	var n int
	start := time.Now()
	for time.Since(start) < d {
		if _, err := f.Write(buf); err != nil {
			return 0, 0, fmt.Errorf("ceiling: write %s: %w", filepath.Base(f.Name()), err)
		}
		if err := f.Sync(); err != nil {
			return 0, 0, fmt.Errorf("ceiling: fsync: %w", err)
		}
		n++
	}
	secs := time.Since(start).Seconds()
	return float64(n*chunk) / secs / 1e6, float64(n) / secs, nil
}

func sha256Rate(size int, d time.Duration) (mbps, perSec float64) {
	buf := make([]byte, size)
	var n int
	start := time.Now()
	for time.Since(start) < d {
		for range 1000 {
			sha256.Sum256(buf)
		}
		n += 1000
	}
	secs := time.Since(start).Seconds()
	return float64(n*size) / secs / 1e6, float64(n) / secs
}
