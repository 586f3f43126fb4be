package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// loadAvg is the machine's one-minute load average, printed with every
// row: on shared machines it says how much of the result is the neighbours.
func loadAvg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

// rssPeak samples this process's RSS and keeps the largest value seen. The
// kernel's own high-water mark (VmHWM) covers the whole process lifetime,
// so one row would inherit the peak of the rows and loading before it.
type rssPeak struct {
	peak atomic.Int64
	stop chan struct{}
	done chan struct{}
}

func startRSSPeak(every time.Duration) *rssPeak {
	r := &rssPeak{stop: make(chan struct{}), done: make(chan struct{})}
	r.peak.Store(rssBytes())
	go func() {
		defer close(r.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-r.stop:
				return
			case <-t.C:
				if v := rssBytes(); v > r.peak.Load() {
					r.peak.Store(v)
				}
			}
		}
	}()
	return r
}

// Stop ends sampling and returns the peak.
func (r *rssPeak) Stop() int64 {
	close(r.stop)
	<-r.done
	if v := rssBytes(); v > r.peak.Load() {
		r.peak.Store(v)
	}
	return r.peak.Load()
}

// diskUse is what a directory holds on disk.
type diskUse struct {
	// Allocated is what du reports: blocks allocated, including space
	// preallocated for log segments that has not been written yet.
	Allocated int64 `json:"allocated_bytes"`
	// Written counts only extents holding data (SEEK_DATA/SEEK_HOLE), so
	// preallocated, unwritten space is left out. It equals Allocated where
	// the filesystem cannot tell.
	Written int64 `json:"written_bytes"`
}

func (d *diskUse) add(o diskUse) {
	d.Allocated += o.Allocated
	d.Written += o.Written
}

func (d diskUse) minus(o diskUse) diskUse {
	return diskUse{d.Allocated - o.Allocated, d.Written - o.Written}
}

func measureDisk(dir string) diskUse {
	var total diskUse
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		alloc := info.Size()
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			alloc = st.Blocks * 512
		}
		total.Allocated += alloc
		total.Written += min(writtenBytes(path, info.Size()), alloc)
		return nil
	})
	return total
}
