package raftnode

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/hashicorp/raft"
	wal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"
)

// raftStore is the Raft log and stable store of a node.
type raftStore interface {
	raft.LogStore
	raft.StableStore
	Close() error
}

// openRaftStore opens the configured kind of Raft log under raftDir. Both
// kinds fsync every append: a follower acknowledges an entry only once it
// is on stable storage, which is what makes a quorum ack durable (docs/architecture.md
// invariant 10). A node never switches kinds silently: the other kind's
// directory existing is an error.
func openRaftStore(cfg *Config, raftDir string, log *slog.Logger) (raftStore, error) {
	dirs := map[LogStoreKind]string{LogStoreWAL: filepath.Join(raftDir, "wal"), LogStorePebble: filepath.Join(raftDir, "log")}
	for kind, dir := range dirs {
		if kind != cfg.LogStore && dirExists(dir) {
			return nil, fmt.Errorf("raftnode: %s holds a %q Raft log but Config.LogStore is %q", dir, kind, cfg.LogStore)
		}
	}
	dir := dirs[cfg.LogStore]
	if cfg.LogStore == LogStorePebble {
		return openLogStore(dir, cfg.FS, log)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("raftnode: open raft log: %w", err)
	}
	meta := &metadb.BoltMetaDB{}
	w, err := wal.Open(dir, wal.WithLogger(newHCLog(log, "raft-wal")), wal.WithMetaStore(meta))
	if err != nil {
		meta.Close()
		return nil, fmt.Errorf("raftnode: open raft log %s: %w", dir, err)
	}
	return walStore{w, meta}, nil
}

// walStore works around two raft-wal v0.4.0 defects:
//   - Close leaves the meta database open, and with it its file lock, so
//     reopening the log in the same process (a restarted node) blocks
//     forever;
//   - GetLog still returns entries below FirstIndex while they sit in the
//     unsealed tail segment, so after compaction a leader would stream the
//     "deleted" log to a wiped follower instead of installing a snapshot.
type walStore struct {
	*wal.WAL
	meta *metadb.BoltMetaDB
}

func (s walStore) Close() error { return errors.Join(s.WAL.Close(), s.meta.Close()) }

// GetLog implements raft.LogStore, honouring head truncation.
func (s walStore) GetLog(index uint64, l *raft.Log) error {
	first, err := s.WAL.FirstIndex()
	if err != nil {
		return err
	}
	if index < first {
		return raft.ErrLogNotFound
	}
	return s.WAL.GetLog(index, l)
}

func dirExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// logStore is Raft's LogStore and StableStore on a Pebble instance of its
// own (LogStorePebble). Every write is committed with pebble.Sync. It is
// kept separate from the engine's Pebble so that the engine can apply
// without fsync while the log fsyncs every append.
type logStore struct {
	db *pebble.DB

	// mu orders writers' updates of first/last with their commits; readers
	// of FirstIndex/LastIndex take it shared.
	mu          sync.RWMutex
	first, last uint64
}

var _ raft.LogStore = (*logStore)(nil)
var _ raft.StableStore = (*logStore)(nil)

const (
	prefixLog    = 'l'
	prefixStable = 's'
	logFormatV1  = 1
)

// errKeyNotFound is what raft expects from a StableStore for a missing key:
// it compares the error text with "not found".
var errKeyNotFound = errors.New("not found")

func openLogStore(dir string, fs vfs.FS, logger *slog.Logger) (*logStore, error) {
	opts := &pebble.Options{
		FS:           fs,
		MemTableSize: 64 << 20,
		// The log is read mostly from raft's LogCache; a small block cache
		// serves followers catching up.
		Cache:  pebble.NewCache(16 << 20),
		Logger: pebbleLogger{logger},
	}
	defer opts.Cache.Unref()
	db, err := pebble.Open(dir, opts)
	if err != nil {
		return nil, fmt.Errorf("raftnode: open raft log %s: %w", dir, err)
	}
	s := &logStore{db: db}
	if err := s.loadBounds(); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

func (s *logStore) loadBounds() error {
	lo, hi := []byte{prefixLog}, []byte{prefixLog + 1}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return fmt.Errorf("raftnode: raft log bounds: %w", err)
	}
	defer it.Close()
	if it.First() {
		s.first = logIndexOf(it.Key())
	}
	if it.Last() {
		s.last = logIndexOf(it.Key())
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("raftnode: raft log bounds: %w", err)
	}
	return nil
}

func (s *logStore) Close() error { return s.db.Close() }

func logKey(index uint64) []byte {
	k := make([]byte, 9)
	k[0] = prefixLog
	binary.BigEndian.PutUint64(k[1:], index)
	return k
}

func logIndexOf(k []byte) uint64 { return binary.BigEndian.Uint64(k[1:]) }

// FirstIndex implements raft.LogStore.
func (s *logStore) FirstIndex() (uint64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.first, nil
}

// LastIndex implements raft.LogStore.
func (s *logStore) LastIndex() (uint64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.last, nil
}

// GetLog implements raft.LogStore.
func (s *logStore) GetLog(index uint64, l *raft.Log) error {
	v, closer, err := s.db.Get(logKey(index))
	if errors.Is(err, pebble.ErrNotFound) {
		return raft.ErrLogNotFound
	}
	if err != nil {
		return fmt.Errorf("raftnode: raft log get %d: %w", index, err)
	}
	defer closer.Close()
	if err := decodeLog(v, l); err != nil {
		return fmt.Errorf("raftnode: raft log entry %d: %w", index, err)
	}
	l.Index = index
	return nil
}

// StoreLog implements raft.LogStore.
func (s *logStore) StoreLog(l *raft.Log) error { return s.StoreLogs([]*raft.Log{l}) }

// StoreLogs implements raft.LogStore: one synced Pebble batch.
func (s *logStore) StoreLogs(logs []*raft.Log) error {
	if len(logs) == 0 {
		return nil
	}
	b := s.db.NewBatch()
	defer b.Close()
	var buf []byte
	for _, l := range logs {
		buf = encodeLog(buf[:0], l)
		if err := b.Set(logKey(l.Index), buf, nil); err != nil {
			return fmt.Errorf("raftnode: raft log store %d: %w", l.Index, err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("raftnode: raft log store %d..%d: %w", logs[0].Index, logs[len(logs)-1].Index, err)
	}
	lo, hi := logs[0].Index, logs[len(logs)-1].Index
	if s.first == 0 || lo < s.first {
		s.first = lo
	}
	s.last = max(s.last, hi)
	return nil
}

// DeleteRange implements raft.LogStore; min and max are inclusive. Raft
// uses it both to drop a prefix after a snapshot and to drop a conflicting
// suffix on a follower.
func (s *logStore) DeleteRange(min, max uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.db.DeleteRange(logKey(min), logKey(max+1), pebble.Sync); err != nil {
		return fmt.Errorf("raftnode: raft log delete %d..%d: %w", min, max, err)
	}
	switch {
	case min <= s.first && max >= s.last:
		s.first, s.last = 0, 0
	case min <= s.first:
		s.first = max + 1
	case max >= s.last:
		s.last = min - 1
	}
	return nil
}

// Set implements raft.StableStore.
func (s *logStore) Set(key, val []byte) error {
	if err := s.db.Set(stableKey(key), val, pebble.Sync); err != nil {
		return fmt.Errorf("raftnode: stable store set %q: %w", key, err)
	}
	return nil
}

// Get implements raft.StableStore.
func (s *logStore) Get(key []byte) ([]byte, error) {
	v, closer, err := s.db.Get(stableKey(key))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, errKeyNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("raftnode: stable store get %q: %w", key, err)
	}
	defer closer.Close()
	return append([]byte(nil), v...), nil
}

// SetUint64 implements raft.StableStore.
func (s *logStore) SetUint64(key []byte, val uint64) error {
	return s.Set(key, binary.BigEndian.AppendUint64(nil, val))
}

// GetUint64 implements raft.StableStore.
func (s *logStore) GetUint64(key []byte) (uint64, error) {
	v, err := s.Get(key)
	if err != nil {
		return 0, err
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("raftnode: stable store %q: %d bytes, want 8", key, len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

func stableKey(k []byte) []byte { return append([]byte{prefixStable}, k...) }

// encodeLog appends the stored form of l (its index is the key):
// version, term, type, data, extensions, appended-at.
func encodeLog(b []byte, l *raft.Log) []byte {
	b = append(b, logFormatV1)
	b = binary.AppendUvarint(b, l.Term)
	b = append(b, byte(l.Type))
	b = binary.AppendUvarint(b, uint64(len(l.Data)))
	b = append(b, l.Data...)
	b = binary.AppendUvarint(b, uint64(len(l.Extensions)))
	b = append(b, l.Extensions...)
	var at int64
	if !l.AppendedAt.IsZero() {
		at = l.AppendedAt.UnixNano()
	}
	return binary.AppendVarint(b, at)
}

var errBadLog = errors.New("malformed stored log entry")

// decodeLog fills l from b, copying: b belongs to Pebble.
func decodeLog(b []byte, l *raft.Log) error {
	if len(b) < 1 || b[0] != logFormatV1 {
		return errBadLog
	}
	b = b[1:]
	term, n := binary.Uvarint(b)
	if n <= 0 || len(b) < n+1 {
		return errBadLog
	}
	l.Term, l.Type = term, raft.LogType(b[n])
	b = b[n+1:]
	var err error
	if l.Data, b, err = readBytes(b); err != nil {
		return err
	}
	if l.Extensions, b, err = readBytes(b); err != nil {
		return err
	}
	at, n := binary.Varint(b)
	if n <= 0 || n != len(b) {
		return errBadLog
	}
	l.AppendedAt = time.Time{}
	if at != 0 {
		l.AppendedAt = time.Unix(0, at)
	}
	return nil
}

func readBytes(b []byte) ([]byte, []byte, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || uint64(len(b)-k) < n {
		return nil, nil, errBadLog
	}
	b = b[k:]
	if n == 0 {
		return nil, b, nil
	}
	return append([]byte(nil), b[:n]...), b[n:], nil
}

// pebbleLogger routes Pebble's logging into slog.
type pebbleLogger struct{ l *slog.Logger }

func (p pebbleLogger) Infof(format string, args ...any) {
	p.l.Debug(fmt.Sprintf(format, args...), "component", "raftlog")
}

func (p pebbleLogger) Errorf(format string, args ...any) {
	p.l.Error(fmt.Sprintf(format, args...), "component", "raftlog")
}

func (p pebbleLogger) Fatalf(format string, args ...any) {
	p.l.Error(fmt.Sprintf(format, args...), "component", "raftlog", "fatal", true)
	panic(fmt.Sprintf(format, args...))
}
