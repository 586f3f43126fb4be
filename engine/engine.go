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
	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/trailaudit/trail/engine/segment"
)

// Options configure an Engine. The zero value of every field but Dir has a
// sane default.
type Options struct {
	// Dir holds the Pebble database ("db/"), open partitions ("open/"),
	// segment files ("segments/") and the dedup hash log.
	Dir string
	// LogName prefixes checkpoint origins: "<LogName>/<tenant>/<YYYY-MM>".
	LogName string
	// MaxEntryBytes bounds the encoded size of one entry (default 1 MiB).
	MaxEntryBytes int
	// ChunkEvents is how many appended events make a checkpoint (default
	// 65536): the events Raft may have to replay after a crash, and the
	// granularity of the posting lists in Pebble. Commands, snapshots and
	// Close checkpoint too.
	ChunkEvents int
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

// DefaultChunkEvents is the default Options.ChunkEvents.
const DefaultChunkEvents = 1 << 16

func (o *Options) setDefaults() {
	if o.LogName == "" {
		o.LogName = "trail"
	}
	if o.MaxEntryBytes <= 0 {
		o.MaxEntryBytes = DefaultMaxEntry
	}
	// Every entry must fit a segment when its month is sealed.
	o.MaxEntryBytes = min(o.MaxEntryBytes, segment.MaxEntrySize)
	if o.ChunkEvents <= 0 {
		o.ChunkEvents = DefaultChunkEvents
	}
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

// Engine is the storage engine. Apply, Seal, Prune and the other commands
// are called from one goroutine (the state machine); every read method is
// safe to call concurrently with them and with each other.
type Engine struct {
	opts     Options
	popts    *pebble.Options
	db       *pebble.DB
	cache    *pebble.Cache
	segments *segmentCache

	// writeMu serialises the mutating calls. Everything below it that is
	// not atomic or guarded by stateMu belongs to the holder of writeMu.
	writeMu sync.Mutex
	applier applier
	filter  *dedupFilter
	hashLog *hashLog
	flush   *flushState // the checkpoint running in the background, if any
	// spare is a retired chunk whose buffers the next chunk reuses; the
	// background checkpoint hands it over.
	spareMu sync.Mutex
	spare   *chunk

	// stateMu guards the maps and chunk pointers readers look up; the
	// writer takes it only to change them.
	stateMu  sync.RWMutex
	tenants  map[string]*tenantState
	open     map[Partition]*openPartition
	cur      *chunk      // receives appends
	flushing *chunk      // frozen, being checkpointed
	chunks   []chunkInfo // in Pebble, oldest first
	newDirs  []string    // partition directories created since the last checkpoint

	applied atomic.Uint64
	durable atomic.Uint64 // applied index of the last checkpoint
	failed  atomic.Pointer[error]
	closed  atomic.Bool
	// settingsVersion counts committed settings commands, so that readers
	// may cache what they derived from settings (API keys) and notice any
	// change with one atomic load.
	settingsVersion atomic.Uint64
	// dataKeysErased counts settings commands that erased a data key, so
	// that caches of unwrapped keys drop them (datakeys.go).
	dataKeysErased atomic.Uint64
	// seals caches which tenants seal subject payloads, as of settings
	// version sealsVersion; guarded by writeMu (apply).
	seals        map[string]bool
	sealsVersion uint64
	// sealKeys caches the current data key id of subjects (tenant, then
	// subject), as of dataKeysErased sealKeysErased: keys are only ever
	// added between erasures, so an entry stays true until one. Guarded by
	// writeMu; bounded by sealKeysMax.
	sealKeys       map[string]map[string][]byte
	sealKeysCount  int
	sealKeysErased uint64
	// textAttrs caches the tenants' text attributes (text.go).
	textAttrs textAttrCache
}

// ErrClosed is returned by calls on a closed engine.
var ErrClosed = errors.New("engine: closed")

// ErrFailed is wrapped by every write refused after a storage failure.
var ErrFailed = errors.New("engine: failed after a storage error; reopen to recover")

// Open opens or creates the engine in opts.Dir. After Open, AppliedIndex
// reports the Raft index of the last checkpoint: everything up to it is
// present and nothing after it, and the caller replays the rest.
func Open(ctx context.Context, opts Options) (*Engine, error) {
	opts.setDefaults()
	if opts.Dir == "" {
		return nil, errors.New("engine: open: Options.Dir is required")
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("engine: open: %w", err)
	}
	// Snapshots and unfinished ingests are transient; any left behind by a
	// crash are garbage.
	for _, d := range []string{snapshotRoot(opts.Dir), ingestRoot(opts.Dir)} {
		if err := os.RemoveAll(d); err != nil {
			return nil, fmt.Errorf("engine: open %s: remove %s: %w", opts.Dir, d, err)
		}
	}
	for _, d := range []string{segmentRoot(opts.Dir), openRoot(opts.Dir)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("engine: open %s: %w", opts.Dir, err)
		}
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
		popts:    popts,
		db:       db,
		cache:    cache,
		segments: newSegmentCache(opts.Dir, opts.OpenSegments),
		tenants:  make(map[string]*tenantState),
		open:     make(map[Partition]*openPartition),
	}
	e.applier.e = e
	if err := e.load(ctx); err != nil {
		e.closeFiles()
		return nil, err
	}
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

// load reads the state of the last checkpoint: applied index, chunks,
// tenant heads and open partitions, and the dedup filter.
func (e *Engine) load(ctx context.Context) error {
	m, err := e.readMeta()
	if err != nil {
		return err
	}
	e.applied.Store(m.applied)
	e.durable.Store(m.applied)
	e.cur = newChunk(m.nextChunk, e.opts.ChunkEvents, nil)
	if e.chunks, err = e.readChunks(ctx); err != nil {
		return err
	}
	if err := e.loadTenants(ctx); err != nil {
		return err
	}
	if err := e.loadOpenPartitions(ctx); err != nil {
		return err
	}
	if e.hashLog, err = openHashLog(e.opts.Dir, m.hashLog); err != nil {
		return err
	}
	e.filter, err = e.hashLog.load()
	return err
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

// AppliedIndex is the Raft index of the last command applied.
func (e *Engine) AppliedIndex() uint64 { return e.applied.Load() }

// DurableIndex is the applied index of the last checkpoint: what the
// engine would reopen at after a crash.
func (e *Engine) DurableIndex() uint64 { return e.durable.Load() }

// LogName is the origin prefix of this engine's checkpoints.
func (e *Engine) LogName() string { return e.opts.LogName }

// Sync makes everything applied so far durable: a checkpoint.
func (e *Engine) Sync() error {
	if err := e.checkWritable(); err != nil {
		return err
	}
	e.writeMu.Lock()
	defer e.writeMu.Unlock()
	return e.checkpointNow()
}

// Close checkpoints what was applied, unless the engine failed, and
// releases the database and files: a clean shutdown leaves nothing to
// replay.
func (e *Engine) Close() error { return e.close(true) }

// Abandon releases the database and files without a checkpoint, leaving
// them as a crash would: what was applied since the last checkpoint is in
// the files but recorded nowhere, and the next Open truncates it for Raft
// to replay. For an engine being discarded, and for tests that crash a
// node in process.
func (e *Engine) Abandon() error { return e.close(false) }

func (e *Engine) close(checkpoint bool) error {
	if !e.closed.CompareAndSwap(false, true) {
		return nil
	}
	e.writeMu.Lock()
	defer e.writeMu.Unlock()
	var errs []error
	if checkpoint && e.failed.Load() == nil {
		errs = append(errs, e.checkpointNow())
	} else {
		// A background checkpoint must end before the database closes.
		e.waitFlush()
	}
	errs = append(errs, e.closeFiles())
	return errors.Join(errs...)
}

// closeFiles releases everything Open acquired.
func (e *Engine) closeFiles() error {
	var errs []error
	for _, op := range e.open {
		op.files.release()
	}
	if e.hashLog != nil {
		errs = append(errs, e.hashLog.close())
	}
	errs = append(errs, e.segments.close())
	if err := e.db.Close(); err != nil {
		errs = append(errs, fmt.Errorf("engine: close: %w", err))
	}
	e.cache.Unref()
	return errors.Join(errs...)
}

func (e *Engine) checkOpen() error {
	if e.closed.Load() {
		return ErrClosed
	}
	return nil
}

// checkWritable refuses writes on a closed or failed engine.
func (e *Engine) checkWritable() error {
	if err := e.checkOpen(); err != nil {
		return err
	}
	if f := e.failed.Load(); f != nil {
		return fmt.Errorf("%w: %w", ErrFailed, *f)
	}
	return nil
}

// fail records a storage failure; every later write is refused.
func (e *Engine) fail(err error) error {
	e.failed.CompareAndSwap(nil, &err)
	e.opts.Logger.Error("engine: storage failure; writes refused until reopened", "err", err)
	return err
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
// the Pebble ceiling benchmark, so that it measures the same store). Appends
// never write Pebble's memtable: chunks arrive as ingested sstables, and
// only settings and the rare commands pass through the memtable and WAL,
// so both are small.
func pebbleOptions(opts Options, cache *pebble.Cache) *pebble.Options {
	popts := &pebble.Options{
		Cache:                       cache,
		FS:                          opts.FS,
		MemTableSize:                4 << 20,
		MemTableStopWritesThreshold: 4,
		L0CompactionThreshold:       16,
		L0CompactionFileThreshold:   32,
		L0StopWritesThreshold:       64,
		Logger:                      pebbleLogger{opts.Logger},
	}
	// A "maybe" from the dedup filter, an event-id read and a prune probe
	// a key that is usually absent: bloom filters make that miss cheap.
	// Only dedup records and metadata are ever compacted: random
	// identities and small records, which do not compress.
	for i := range popts.Levels {
		popts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
		popts.Levels[i].Compression = func() *sstable.CompressionProfile { return sstable.NoCompression }
	}
	// Filled in here, not only by Open, because the engine writes the
	// sstables it ingests with the same level options.
	popts.EnsureDefaults()
	return popts
}
