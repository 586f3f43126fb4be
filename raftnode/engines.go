package raftnode

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/trailaudit/trail/engine"
)

// Engine directories are "engine-NNNNNN" under the node's Dir; a snapshot
// restore unpacks into "engine-(N+1).restoring", renames it into place and
// only then retires generation N. At startup the highest complete
// generation wins and everything else is debris of an interrupted restore.
const (
	engineDirPrefix  = "engine-"
	restoringSuffix  = ".restoring"
	engineDirPattern = "engine-%06d"
)

// engineHandle is one open engine with a reference count. The slot holds
// one reference while the engine is current; readers and snapshots hold
// others. The engine is closed, and its directory removed if it was
// retired, when the last reference goes.
type engineHandle struct {
	e      *engine.Engine
	dir    string
	gen    int
	refs   atomic.Int64
	remove atomic.Bool // set when retired: the directory goes on close
	// abandon closes the engine without a checkpoint: its directory is
	// going, or the node is being killed (tests).
	abandon atomic.Bool
	closed  chan struct{}
	log     *slog.Logger
}

func newHandle(e *engine.Engine, dir string, gen int, log *slog.Logger) *engineHandle {
	h := &engineHandle{e: e, dir: dir, gen: gen, closed: make(chan struct{}), log: log}
	h.refs.Store(1)
	return h
}

func (h *engineHandle) release() {
	if h.refs.Add(-1) != 0 {
		return
	}
	closeEngine := h.e.Close
	if h.remove.Load() || h.abandon.Load() {
		closeEngine = h.e.Abandon
	}
	if err := closeEngine(); err != nil {
		h.log.Error("raftnode: close engine", "dir", h.dir, "err", err)
	}
	if h.remove.Load() {
		if err := os.RemoveAll(h.dir); err != nil {
			h.log.Error("raftnode: remove retired engine", "dir", h.dir, "err", err)
		}
	}
	close(h.closed)
}

// engineSlot holds the current engine and swaps it on snapshot restore.
type engineSlot struct {
	root  string
	opts  engine.Options
	grace time.Duration
	log   *slog.Logger

	mu      sync.RWMutex
	cur     *engineHandle
	retired []*retiredHandle
}

type retiredHandle struct {
	h     *engineHandle
	timer *time.Timer
	once  sync.Once
}

func (r *retiredHandle) drop() { r.once.Do(r.h.release) }

// openEngineSlot opens the newest engine generation under root, creating
// generation 1 in a fresh directory, and removes every other generation.
func openEngineSlot(ctx context.Context, root string, opts engine.Options, grace time.Duration, log *slog.Logger) (*engineSlot, error) {
	gen, err := pickGeneration(root)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(root, fmt.Sprintf(engineDirPattern, gen))
	o := opts
	o.Dir = dir
	e, err := engine.Open(ctx, o)
	if err != nil {
		return nil, fmt.Errorf("raftnode: open engine: %w", err)
	}
	s := &engineSlot{root: root, opts: opts, grace: grace, log: log}
	s.cur = newHandle(e, dir, gen, log)
	return s, nil
}

// pickGeneration returns the newest complete generation (1 if none) after
// deleting all others.
func pickGeneration(root string) (int, error) {
	ents, err := os.ReadDir(root)
	if err != nil {
		return 0, fmt.Errorf("raftnode: engine directories: %w", err)
	}
	best := 0
	var stale []string
	for _, d := range ents {
		name := d.Name()
		if !d.IsDir() || !strings.HasPrefix(name, engineDirPrefix) {
			continue
		}
		n, err := strconv.Atoi(strings.TrimPrefix(name, engineDirPrefix))
		if err != nil || n <= 0 {
			stale = append(stale, name) // includes *.restoring
			continue
		}
		if n > best {
			if best > 0 {
				stale = append(stale, fmt.Sprintf(engineDirPattern, best))
			}
			best = n
		} else {
			stale = append(stale, name)
		}
	}
	for _, name := range stale {
		if err := os.RemoveAll(filepath.Join(root, name)); err != nil {
			return 0, fmt.Errorf("raftnode: remove stale engine directory: %w", err)
		}
	}
	return max(best, 1), nil
}

// acquire returns the current engine with a reference the caller must
// release.
func (s *engineSlot) acquire() *engineHandle {
	s.mu.RLock()
	defer s.mu.RUnlock()
	s.cur.refs.Add(1)
	return s.cur
}

// current returns the current engine without a reference.
func (s *engineSlot) current() *engineHandle {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.cur
}

// restore unpacks a snapshot archive into the next generation, opens it,
// checks that it holds wantApplied, and makes it current. The previous
// engine is retired: it closes, and its directory goes, once its readers
// are done and the grace period for reference-less readers has passed.
func (s *engineSlot) restore(ctx context.Context, r io.Reader, wantApplied uint64) error {
	gen := s.current().gen + 1
	final := filepath.Join(s.root, fmt.Sprintf(engineDirPattern, gen))
	tmp := final + restoringSuffix
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("raftnode: restore: %w", err)
	}
	if err := engine.Restore(ctx, r, tmp); err != nil {
		return fmt.Errorf("raftnode: restore: %w", err)
	}
	if err := os.Rename(tmp, final); err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("raftnode: restore: %w", err)
	}
	if err := syncDir(s.root); err != nil {
		return fmt.Errorf("raftnode: restore: %w", err)
	}
	o := s.opts
	o.Dir = final
	e, err := engine.Open(ctx, o)
	if err != nil {
		os.RemoveAll(final)
		return fmt.Errorf("raftnode: restore: open restored engine: %w", err)
	}
	if got := e.AppliedIndex(); got != wantApplied {
		e.Close()
		os.RemoveAll(final)
		return fmt.Errorf("raftnode: restore: snapshot engine at index %d, header says %d", got, wantApplied)
	}
	s.swap(newHandle(e, final, gen, s.log))
	return nil
}

func (s *engineSlot) swap(h *engineHandle) {
	s.mu.Lock()
	old := s.cur
	s.cur = h
	old.remove.Store(true)
	r := &retiredHandle{h: old}
	r.timer = time.AfterFunc(s.grace, r.drop)
	s.retired = slices.DeleteFunc(s.retired, func(r *retiredHandle) bool {
		select {
		case <-r.h.closed:
			return true
		default:
			return false
		}
	})
	s.retired = append(s.retired, r)
	s.mu.Unlock()
	s.log.Info("raftnode: engine restored from snapshot", "dir", h.dir, "applied", h.e.AppliedIndex())
}

// close drops the slot's references (current and retired engines) and waits
// until every engine is closed, i.e. until readers have released theirs.
func (s *engineSlot) close(sync bool) error {
	s.mu.Lock()
	cur, retired := s.cur, s.retired
	s.retired = nil
	s.mu.Unlock()
	var err error
	if sync {
		err = cur.e.Sync()
	} else {
		cur.abandon.Store(true)
	}
	for _, r := range retired {
		r.timer.Stop()
		r.drop()
		<-r.h.closed
	}
	cur.release()
	<-cur.closed
	return err
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
