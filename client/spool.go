package client

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// Spool layout: a directory holding a lock file and segment files named
// spool-<16 hex digits>.log, numbered in creation order. A segment is
// deleted once every record in it is acknowledged and nothing more will be
// written to it.
const (
	segmentPrefix = "spool-"
	segmentSuffix = ".log"
	lockName      = "LOCK"
	// drainedRotateBytes is the size past which a segment whose every
	// record is acknowledged is closed and deleted at once instead of
	// taking further records. Below it the segment stays open, so a
	// producer that drains after every event does not create and delete a
	// file per event; a restart replays at most this much already
	// acknowledged data, which the server answers as duplicates.
	drainedRotateBytes = 64 << 10
)

// spool is the durable local queue. Append writes a record and fsyncs it
// before the event is handed to the sender; the sender acknowledges it
// once the server answered for it.
type spool struct {
	dir      string
	maxBytes int64
	log      *slog.Logger
	unlock   func() error

	mu      sync.Mutex
	cur     *segment              // nil until the next write
	open    map[*segment]struct{} // segments with an open file
	nextNum uint64
	closed  bool
}

// segment is one spool file. written and acked count its records; the
// file is deleted when it is sealed and acked == written.
type segment struct {
	path string
	// syncMu serializes fsyncs of f. Held without sp.mu, so that writers
	// keep appending while one of them syncs for all (group commit).
	syncMu sync.Mutex
	f      *os.File // nil for replayed segments, which are never written
	synced int64    // bytes known durable; guarded by syncMu

	// The rest is guarded by spool.mu.
	size    int64
	written int
	acked   int
	sealed  bool
}

// replayed is a record read back from a segment at open.
type replayed struct {
	seg     *segment
	payload []byte
}

// openSpool locks dir, creating it if needed, and reads back every
// segment. A torn tail is logged and skipped; corruption fails the open.
func openSpool(dir string, maxBytes int64, log *slog.Logger) (*spool, []replayed, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("client: spool: %w", err)
	}
	unlock, err := lockDir(filepath.Join(dir, lockName))
	if err != nil {
		return nil, nil, fmt.Errorf("client: spool %s: %w", dir, err)
	}
	sp := &spool{dir: dir, maxBytes: maxBytes, log: log, unlock: unlock, open: make(map[*segment]struct{})}
	recs, err := sp.readAll()
	if err != nil {
		unlock()
		return nil, nil, err
	}
	return sp, recs, nil
}

// readAll reads the existing segments in order. Each becomes a sealed
// segment whose records must be acknowledged again before it is deleted.
func (sp *spool) readAll() ([]replayed, error) {
	names, err := sp.segmentNames()
	if err != nil {
		return nil, err
	}
	var out []replayed
	for _, name := range names {
		num, _ := parseSegmentName(name)
		sp.nextNum = max(sp.nextNum, num+1)
		path := filepath.Join(sp.dir, name)
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("client: spool: %w", err)
		}
		recs, valid, derr := decodeSegment(b)
		switch {
		case errors.Is(derr, ErrSpoolCorrupt):
			return nil, fmt.Errorf("client: spool segment %s: %w; move it out of the spool directory to start without it", path, derr)
		case derr != nil:
			sp.log.Warn("client: spool segment has a torn tail; its intact records are replayed",
				"segment", path, "records", len(recs), "dropped_bytes", len(b)-valid, "reason", derr)
		}
		seg := &segment{path: path, size: int64(len(b)), written: len(recs), sealed: true}
		if len(recs) == 0 {
			if err := os.Remove(path); err != nil {
				return nil, fmt.Errorf("client: spool: remove empty segment: %w", err)
			}
			continue
		}
		for _, r := range recs {
			out = append(out, replayed{seg: seg, payload: r})
		}
	}
	return out, nil
}

func (sp *spool) segmentNames() ([]string, error) {
	ents, err := os.ReadDir(sp.dir)
	if err != nil {
		return nil, fmt.Errorf("client: spool: %w", err)
	}
	var names []string
	for _, e := range ents {
		if _, ok := parseSegmentName(e.Name()); ok && e.Type().IsRegular() {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names) // fixed-width hex: lexical order is numeric order
	return names, nil
}

func segmentName(num uint64) string {
	return fmt.Sprintf("%s%016x%s", segmentPrefix, num, segmentSuffix)
}

func parseSegmentName(name string) (uint64, bool) {
	hex, ok := strings.CutPrefix(name, segmentPrefix)
	if !ok {
		return 0, false
	}
	hex, ok = strings.CutSuffix(hex, segmentSuffix)
	if !ok || len(hex) != 16 {
		return 0, false
	}
	n, err := strconv.ParseUint(hex, 16, 64)
	return n, err == nil
}

// write appends payload as one record and returns once it is durable.
func (sp *spool) write(payload []byte) (*segment, error) {
	rec := appendRecord(make([]byte, 0, recordHeader+len(payload)), payload)
	sp.mu.Lock()
	if sp.closed {
		sp.mu.Unlock()
		return nil, ErrClosed
	}
	seg, err := sp.current()
	if err != nil {
		sp.mu.Unlock()
		return nil, err
	}
	if _, err := seg.f.WriteAt(rec, seg.size); err != nil {
		sp.mu.Unlock()
		return nil, fmt.Errorf("client: spool write: %w", err)
	}
	seg.size += int64(len(rec))
	seg.written++
	end := seg.size
	if seg.size >= sp.maxBytes {
		// Sealed now, synced below or by whoever syncs past end first.
		sp.cur = nil
		seg.sealed = true
	}
	sp.mu.Unlock()
	if err := seg.syncTo(end); err != nil {
		// The record may or may not be durable; the caller is told the
		// event was not taken, and a replay would deliver it once anyway.
		sp.ack(seg)
		return nil, err
	}
	return seg, nil
}

// current returns the segment to write, creating one when needed. Called
// with sp.mu held.
func (sp *spool) current() (*segment, error) {
	if sp.cur != nil {
		return sp.cur, nil
	}
	path := filepath.Join(sp.dir, segmentName(sp.nextNum))
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("client: spool: create segment: %w", err)
	}
	if _, err := f.Write([]byte(spoolMagic)); err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("client: spool: create segment: %w", err)
	}
	// The new name must survive a crash along with the records synced
	// into the file.
	if err := syncDir(sp.dir); err != nil {
		f.Close()
		os.Remove(path)
		return nil, err
	}
	sp.nextNum++
	sp.cur = &segment{path: path, f: f, size: int64(spoolHeaderSize)}
	sp.open[sp.cur] = struct{}{}
	return sp.cur, nil
}

// syncTo makes the segment durable up to end. Concurrent writers share
// fsyncs: one that finds its bytes already synced returns at once.
func (seg *segment) syncTo(end int64) error {
	seg.syncMu.Lock()
	defer seg.syncMu.Unlock()
	if seg.synced >= end {
		return nil
	}
	if seg.f == nil {
		return fmt.Errorf("client: spool: segment %s closed before sync", seg.path)
	}
	// Read the size to sync to before Sync: bytes written meanwhile may or
	// may not be covered, so only what was written before counts.
	st, err := seg.f.Stat()
	if err != nil {
		return fmt.Errorf("client: spool sync: %w", err)
	}
	if err := seg.f.Sync(); err != nil {
		return fmt.Errorf("client: spool sync: %w", err)
	}
	seg.synced = st.Size()
	return nil
}

// ack records that one record of seg needs no replay any more (the server
// answered for it), deleting the segment when it is finished.
func (sp *spool) ack(seg *segment) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	seg.acked++
	if seg == sp.cur && seg.acked == seg.written && seg.size >= drainedRotateBytes {
		sp.cur = nil
		seg.sealed = true
	}
	if seg.sealed && seg.acked == seg.written {
		sp.remove(seg)
	}
}

// remove closes and deletes a finished segment. Called with sp.mu held.
// A failure is logged: the segment's records are all acknowledged, so the
// only cost of a leftover file is a replay of duplicates.
func (sp *spool) remove(seg *segment) {
	sp.closeFile(seg)
	if err := os.Remove(seg.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		sp.log.Warn("client: spool: remove acknowledged segment", "segment", seg.path, "err", err)
	}
}

// closeFile closes seg's file, if open. Called with sp.mu held.
func (sp *spool) closeFile(seg *segment) error {
	seg.syncMu.Lock()
	defer seg.syncMu.Unlock()
	delete(sp.open, seg)
	if seg.f == nil {
		return nil
	}
	err := seg.f.Close()
	seg.f = nil
	return err
}

// close deletes the current segment if it is fully acknowledged, closes
// every other open segment (their unacknowledged records are replayed by
// the next open), and unlocks the directory. Called once no write is in
// progress.
func (sp *spool) close() error {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if sp.closed {
		return nil
	}
	sp.closed = true
	if seg := sp.cur; seg != nil {
		sp.cur = nil
		seg.sealed = true
		if seg.acked == seg.written {
			sp.remove(seg)
		}
	}
	var err error
	for seg := range sp.open {
		if cerr := sp.closeFile(seg); cerr != nil {
			err = errors.Join(err, fmt.Errorf("client: spool close %s: %w", seg.path, cerr))
		}
	}
	if uerr := sp.unlock(); uerr != nil {
		err = errors.Join(err, fmt.Errorf("client: spool unlock: %w", uerr))
	}
	return err
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("client: spool: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("client: spool: sync directory: %w", err)
	}
	return nil
}
