package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/trailaudit/trail/engine/segment"
)

// Options configure an Engine. The zero value of every field but Dir has a
// sane default.
type Options struct {
	// Dir holds the Pebble database ("db/") and segment files ("segments/").
	Dir string
	// LogName prefixes checkpoint origins: "<LogName>/<tenant>/<YYYY-MM>".
	LogName string
	// MaxEntryBytes bounds the encoded size of one entry (default 1 MiB).
	MaxEntryBytes int
	// SyncWrites fsyncs every Apply. Under Raft it stays false: the Raft log
	// is the write-ahead log and replay covers what Pebble had not synced
	// (DESIGN.md invariant 10).
	SyncWrites bool
	// CacheBytes is Pebble's block cache size (default 256 MiB).
	CacheBytes int64
	// OpenSegments bounds the number of segment files kept open (default 64).
	OpenSegments int
	// MinFreeBytes is the free space CheckSpace requires (default 256 MiB).
	MinFreeBytes int64
	// FS overrides the filesystem Pebble uses (tests inject faults with it).
	FS     vfs.FS
	Logger *slog.Logger
}

func (o *Options) setDefaults() {
	if o.LogName == "" {
		o.LogName = "trail"
	}
	if o.MaxEntryBytes <= 0 {
		o.MaxEntryBytes = DefaultMaxEntry
	}
	// Every entry must fit a segment when its month is sealed.
	o.MaxEntryBytes = min(o.MaxEntryBytes, segment.MaxEntrySize)
	if o.CacheBytes <= 0 {
		o.CacheBytes = 256 << 20
	}
	if o.MinFreeBytes <= 0 {
		o.MinFreeBytes = DefaultMinFreeBytes
	}
	if o.OpenSegments <= 0 {
		o.OpenSegments = 64
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
}

// Engine is the storage engine. Apply, Seal and Prune are called from one
// goroutine (the state machine); every read method is safe to call
// concurrently with them and with each other.
type Engine struct {
	opts     Options
	db       *pebble.DB
	cache    *pebble.Cache
	segments *segmentCache

	// writeMu serialises the mutating calls; tenants is only touched under it.
	writeMu sync.Mutex
	tenants map[string]*tenantState

	applied atomic.Uint64
	closed  atomic.Bool
	// settingsVersion counts committed settings commands, so that readers
	// may cache what they derived from settings (API keys) and notice any
	// change with one atomic load.
	settingsVersion atomic.Uint64
}

// ErrClosed is returned by calls on a closed engine.
var ErrClosed = errors.New("engine: closed")

// Open opens or creates the engine in opts.Dir. After Open, AppliedIndex
// reports the Raft index of the last command whose effects are all present;
// nothing of any later command is visible.
func Open(ctx context.Context, opts Options) (*Engine, error) {
	opts.setDefaults()
	if opts.Dir == "" {
		return nil, errors.New("engine: open: Options.Dir is required")
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("engine: open: %w", err)
	}
	// Snapshots are transient; one left behind by a crash is garbage.
	if err := os.RemoveAll(snapshotRoot(opts.Dir)); err != nil {
		return nil, fmt.Errorf("engine: open %s: remove stale snapshots: %w", opts.Dir, err)
	}
	if err := os.MkdirAll(segmentRoot(opts.Dir), 0o755); err != nil {
		return nil, fmt.Errorf("engine: open %s: %w", opts.Dir, err)
	}
	if err := removeSegmentTemps(segmentRoot(opts.Dir)); err != nil {
		return nil, fmt.Errorf("engine: open %s: %w", opts.Dir, err)
	}
	cache := pebble.NewCache(opts.CacheBytes)
	popts := pebbleOptions(opts, cache)
	db, err := pebble.Open(filepath.Join(opts.Dir, "db"), popts)
	if err != nil {
		cache.Unref()
		return nil, fmt.Errorf("engine: open pebble in %s: %w", opts.Dir, err)
	}
	e := &Engine{
		opts:     opts,
		db:       db,
		cache:    cache,
		segments: newSegmentCache(opts.Dir, opts.OpenSegments),
		tenants:  make(map[string]*tenantState),
	}
	applied, err := e.readApplied()
	if err != nil {
		e.Close()
		return nil, err
	}
	e.applied.Store(applied)
	if err := e.finishPendingPrunes(ctx); err != nil {
		e.Close()
		return nil, err
	}
	if err := e.finishPendingDrops(ctx); err != nil {
		e.Close()
		return nil, err
	}
	return e, nil
}

func segmentRoot(dir string) string { return filepath.Join(dir, "segments") }

// removeSegmentTemps deletes segment files a crash left half-written: a
// seal or prune that had not renamed its file into place had not happened.
func removeSegmentTemps(root string) error {
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() && strings.Contains(d.Name(), ".tmp-") {
			return os.Remove(path)
		}
		return nil
	})
}

func (e *Engine) readApplied() (uint64, error) {
	v, closer, err := e.db.Get(appliedKey)
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("engine: read applied index: %w", err)
	}
	defer closer.Close()
	idx, err := decodeUint64(v)
	if err != nil {
		return 0, fmt.Errorf("engine: applied index record: %w", err)
	}
	return idx, nil
}

// AppliedIndex is the Raft index of the last command applied.
func (e *Engine) AppliedIndex() uint64 { return e.applied.Load() }

// LogName is the origin prefix of this engine's checkpoints.
func (e *Engine) LogName() string { return e.opts.LogName }

// Sync makes everything applied so far durable. The replication layer calls
// it before it reports a snapshot done.
func (e *Engine) Sync() error {
	if err := e.db.LogData(nil, pebble.Sync); err != nil {
		return fmt.Errorf("engine: sync: %w", err)
	}
	return nil
}

// Close releases the database and open segments. It does not sync: call
// Sync first where durability without Raft replay matters.
func (e *Engine) Close() error {
	if !e.closed.CompareAndSwap(false, true) {
		return nil
	}
	e.writeMu.Lock()
	defer e.writeMu.Unlock()
	segErr := e.segments.close()
	err := e.db.Close()
	e.cache.Unref()
	if err != nil {
		return fmt.Errorf("engine: close: %w", err)
	}
	return segErr
}

func (e *Engine) checkOpen() error {
	if e.closed.Load() {
		return ErrClosed
	}
	return nil
}

// pebbleLogger routes Pebble's logging into slog.
type pebbleLogger struct{ l *slog.Logger }

func (p pebbleLogger) Infof(format string, args ...any) {
	p.l.Debug(fmt.Sprintf(format, args...), "component", "pebble")
}

func (p pebbleLogger) Errorf(format string, args ...any) {
	p.l.Error(fmt.Sprintf(format, args...), "component", "pebble")
}

func (p pebbleLogger) Fatalf(format string, args ...any) {
	p.l.Error(fmt.Sprintf(format, args...), "component", "pebble", "fatal", true)
	panic(fmt.Sprintf(format, args...))
}

// pebbleOptions are the Pebble settings of the engine's store (also used by
// the Pebble ceiling benchmark, so that it measures the same store).
func pebbleOptions(opts Options, cache *pebble.Cache) *pebble.Options {
	popts := &pebble.Options{
		Cache:                       cache,
		FS:                          opts.FS,
		MemTableSize:                64 << 20,
		MemTableStopWritesThreshold: 4,
		L0CompactionThreshold:       4,
		L0StopWritesThreshold:       24,
		Logger:                      pebbleLogger{opts.Logger},
	}
	// Every append probes its event_id's dedup key, and nearly every probe
	// misses: bloom filters make a miss in an sstable almost free.
	for i := range popts.Levels {
		popts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	return popts
}
