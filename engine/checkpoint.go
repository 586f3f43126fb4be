package engine

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/objstorage/objstorageprovider"
	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// A checkpoint makes the engine durable up to an applied index (invariant
// 10). Appends write their partitions' files without fsync and keep dedup
// records and posting lists in the current chunk; a checkpoint then
//
//  1. fsyncs every file written since the last one (and new directories),
//  2. appends the chunk's identity hashes to the hash log and fsyncs it,
//  3. writes three sorted sstables: the chunk's dedup records ('D'), its
//     posting lists ('z'), and the metadata ('c' catalog records of the
//     partitions written, 'h' tenant heads, 'e' and 'k' chunk records, 'm'
//     applied index, hash-log length, next chunk), and
//  4. ingests the three in one atomic Pebble ingest.
//
// The ingest is the commit point: Open finds either all of a checkpoint or
// none of it, truncates the files and the hash log back to what the
// metadata records, and the caller replays the rest from Raft. The three
// key ranges are disjoint (keys.go), and the chunk's posting lists occupy a
// key range of their own, so the posting sstable lands in the bottom level
// and is never compacted.
//
// When a chunk fills, the apply goroutine freezes it (the state to record
// is captured in memory, which takes microseconds) and the rest runs in the
// background while appends go on into the next chunk; the next checkpoint
// waits for it. Commands, snapshots and Close checkpoint synchronously.

func ingestRoot(dir string) string { return filepath.Join(dir, "ingest") }

// meta is what the 'm' keys of the last checkpoint record.
type meta struct {
	applied   uint64
	nextChunk uint64
	hashLog   int64
}

// readMeta reads the last checkpoint's metadata, initialising an empty
// store and refusing one of another format.
func (e *Engine) readMeta() (meta, error) {
	format, found, err := e.metaUint(metaFormat)
	if err != nil {
		return meta{}, err
	}
	if !found {
		if empty, err := e.isEmpty(); err != nil || !empty {
			if err == nil {
				err = fmt.Errorf("engine: %s holds a store of format 1; this version reads format %d (export the log with the version that wrote it and import it here)", e.opts.Dir, formatVersion)
			}
			return meta{}, err
		}
		if err := e.db.Set(metaKey(metaFormat), binary.BigEndian.AppendUint64(nil, formatVersion), pebble.Sync); err != nil {
			return meta{}, fmt.Errorf("engine: initialise store: %w", err)
		}
		return meta{}, nil
	}
	if format != formatVersion {
		return meta{}, fmt.Errorf("engine: %s holds a store of format %d; this version reads format %d", e.opts.Dir, format, formatVersion)
	}
	var m meta
	var hl uint64
	for _, f := range []struct {
		name string
		dst  *uint64
	}{{metaApplied, &m.applied}, {metaNextChunk, &m.nextChunk}, {metaHashLog, &hl}} {
		if *f.dst, _, err = e.metaUint(f.name); err != nil {
			return meta{}, err
		}
	}
	m.hashLog = int64(hl)
	return m, nil
}

func (e *Engine) metaUint(name string) (uint64, bool, error) {
	v, closer, err := e.db.Get(metaKey(name))
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("engine: read %s: %w", name, err)
	}
	defer closer.Close()
	n, err := decodeUint64(v)
	if err != nil {
		return 0, false, fmt.Errorf("engine: %s record: %w", name, ErrCorrupt)
	}
	return n, true, nil
}

func (e *Engine) isEmpty() (bool, error) {
	it, err := e.db.NewIter(nil)
	if err != nil {
		return false, err
	}
	defer it.Close()
	return !it.First(), it.Error()
}

// chunkInfo is what readers need of a chunk in Pebble: its sequence number
// and the sequencer times of its events.
type chunkInfo struct {
	seq              uint64
	minTime, maxTime int64
}

func (c chunkInfo) marshal() []byte {
	b := binary.BigEndian.AppendUint64(nil, uint64(c.minTime))
	return binary.BigEndian.AppendUint64(b, uint64(c.maxTime))
}

func (e *Engine) readChunks(ctx context.Context) ([]chunkInfo, error) {
	lo := []byte{prefixChunk}
	it, err := e.db.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: lo, UpperBound: prefixEnd(lo)})
	if err != nil {
		return nil, fmt.Errorf("engine: read chunks: %w", err)
	}
	defer it.Close()
	var out []chunkInfo
	for it.First(); it.Valid(); it.Next() {
		k, v := it.Key(), it.Value()
		if len(k) != 9 || len(v) != 16 {
			return nil, fmt.Errorf("engine: chunk record %x: %w", k, ErrCorrupt)
		}
		out = append(out, chunkInfo{seq: binary.BigEndian.Uint64(k[1:]),
			minTime: int64(binary.BigEndian.Uint64(v)), maxTime: int64(binary.BigEndian.Uint64(v[8:]))})
	}
	return out, it.Error()
}

// loadTenants reads every tenant head.
func (e *Engine) loadTenants(ctx context.Context) error {
	lo := []byte{prefixHead}
	it, err := e.db.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: lo, UpperBound: prefixEnd(lo)})
	if err != nil {
		return fmt.Errorf("engine: read tenant heads: %w", err)
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		id := string(it.Key()[1:])
		h, err := unmarshalHead(it.Value())
		if err != nil {
			return fmt.Errorf("engine: tenant %s: %w", id, err)
		}
		ts := &tenantState{id: id, head: h, started: true}
		ts.publish()
		e.tenants[id] = ts
	}
	return it.Error()
}

// loadOpenPartitions opens every partition the catalog records as open and
// deletes partition directories it does not know (started after the last
// checkpoint, or sealed by a seal that crashed before removing them).
func (e *Engine) loadOpenPartitions(ctx context.Context) error {
	lo := []byte{prefixCatalog}
	it, err := e.db.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: lo, UpperBound: prefixEnd(lo)})
	if err != nil {
		return fmt.Errorf("engine: read catalog: %w", err)
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		p, err := decodePartitionKey(it.Key())
		if err != nil {
			return fmt.Errorf("engine: catalog key %q: %w", it.Key(), err)
		}
		cat, err := unmarshalCatalog(it.Value())
		if err != nil {
			return fmt.Errorf("engine: partition %s: %w", p, err)
		}
		if cat.Sealed {
			continue
		}
		op, err := e.loadPartition(p, cat)
		if err != nil {
			return fmt.Errorf("engine: open: %w", err)
		}
		e.open[p] = op
		if ts := e.tenants[p.Tenant]; ts != nil && ts.head.Month == p.Month {
			ts.open = op
		}
	}
	if err := it.Error(); err != nil {
		return err
	}
	return e.removeUnknownPartitionDirs()
}

func (e *Engine) removeUnknownPartitionDirs() error {
	tenants, err := os.ReadDir(openRoot(e.opts.Dir))
	if err != nil {
		return fmt.Errorf("engine: list open partitions: %w", err)
	}
	for _, t := range tenants {
		months, err := os.ReadDir(filepath.Join(openRoot(e.opts.Dir), t.Name()))
		if err != nil {
			return fmt.Errorf("engine: list open partitions: %w", err)
		}
		for _, m := range months {
			month, err := ParseMonth(m.Name())
			if err == nil && e.open[Partition{Tenant: t.Name(), Month: month}] != nil {
				continue
			}
			dir := filepath.Join(openRoot(e.opts.Dir), t.Name(), m.Name())
			if err := removePartitionDir(dir); err != nil {
				return fmt.Errorf("engine: remove %s: %w", dir, err)
			}
			e.opts.Logger.Info("removed a partition directory no checkpoint recorded", "dir", dir)
		}
	}
	return nil
}

// flushState is a checkpoint running in the background.
type flushState struct {
	done chan struct{}
	err  error
}

// waitFlush waits for the background checkpoint, if any, and returns its
// error.
func (e *Engine) waitFlush() error {
	f := e.flush
	if f == nil {
		return nil
	}
	<-f.done
	e.flush = nil
	return f.err
}

// startCheckpoint freezes the current chunk and checkpoints it in the
// background, after the previous background checkpoint finished: so at
// most one chunk waits while the next fills.
func (e *Engine) startCheckpoint() error {
	if err := e.waitFlush(); err != nil {
		return e.fail(err)
	}
	e.growBloom()
	job := e.freeze()
	if job == nil {
		return nil
	}
	f := &flushState{done: make(chan struct{})}
	e.flush = f
	go func() {
		defer close(f.done)
		if f.err = e.runJob(job); f.err != nil {
			e.fail(f.err)
		}
	}()
	return nil
}

// checkpointNow makes everything applied durable before it returns.
func (e *Engine) checkpointNow() error {
	if err := e.waitFlush(); err != nil {
		return e.fail(err)
	}
	job := e.freeze()
	if job == nil {
		return nil
	}
	if err := e.runJob(job); err != nil {
		return e.fail(err)
	}
	return nil
}

// growBloom rebuilds the dedup filter at twice the size once it holds more
// keys than it was sized for. It runs between checkpoints, when the hash
// log holds every identity but the current chunk's.
func (e *Engine) growBloom() {
	if !e.filter.full() {
		return
	}
	bf, err := e.hashLog.load(e.cur.hashes)
	if err != nil {
		// The old filter still answers correctly, only less often "new".
		e.opts.Logger.Warn("engine: grow dedup filter", "err", err)
		return
	}
	e.filter = bf
}

// takeSpare returns the buffers of the last retired chunk, if any.
func (e *Engine) takeSpare() *chunk {
	e.spareMu.Lock()
	defer e.spareMu.Unlock()
	s := e.spare
	e.spare = nil
	return s
}

// kv is one key of the metadata sstable.
type kv struct{ k, v []byte }

// checkpointJob is a checkpoint's state, captured under writeMu.
type checkpointJob struct {
	index     uint64
	chunk     *chunk // nil when no event was appended since the last
	info      chunkInfo
	nextChunk uint64
	files     []*partFiles // to fsync; each acquired for the job
	dirs      []string     // partition directories to fsync, with their parents
	meta      []kv
}

// freeze captures what the next checkpoint records and swaps in a new
// chunk. It returns nil when nothing changed since the last checkpoint.
func (e *Engine) freeze() *checkpointJob {
	c := e.cur
	j := &checkpointJob{index: e.applied.Load(), nextChunk: c.seq}
	for _, op := range e.open {
		if !op.unsaved {
			continue
		}
		op.unsaved = false
		j.files = append(j.files, op.files.acquire())
		cat := op.catalogRecord()
		j.meta = append(j.meta, kv{catalogKey(op.p), cat.marshal()})
	}
	for _, ts := range e.tenants {
		if ts.unsaved {
			ts.unsaved = false
			j.meta = append(j.meta, kv{headKey(ts.id), ts.head.marshal()})
		}
	}
	if j.index == e.durable.Load() && len(j.meta) == 0 && c.empty() {
		return nil
	}
	e.stateMu.Lock()
	defer e.stateMu.Unlock()
	if !c.empty() {
		j.chunk, j.nextChunk = c, c.seq+1
		j.info = chunkInfo{seq: c.seq, minTime: c.minTime, maxTime: c.maxTime}
		j.meta = append(j.meta, kv{chunkKey(c.seq), j.info.marshal()})
		for p, first := range c.starts {
			j.meta = append(j.meta, kv{leafChunkKey(p, first), binary.BigEndian.AppendUint64(nil, c.seq)})
		}
		e.flushing, e.cur = c, newChunk(c.seq+1, e.opts.ChunkEvents, e.takeSpare())
	}
	j.dirs, e.newDirs = e.newDirs, nil
	return j
}

// runJob makes a frozen state durable and commits it (steps 1-4 above).
func (e *Engine) runJob(j *checkpointJob) (err error) {
	defer func() {
		for _, f := range j.files {
			f.release()
		}
		if err != nil {
			err = fmt.Errorf("engine: checkpoint at %d: %w", j.index, err)
		}
	}()
	if err := syncDirs(openRoot(e.opts.Dir), j.dirs); err != nil {
		return err
	}
	for _, f := range j.files {
		if err := f.sync(); err != nil {
			return err
		}
	}
	if j.chunk != nil {
		if err := e.hashLog.append(j.chunk.hashes); err != nil {
			return err
		}
	}
	j.meta = append(j.meta,
		kv{metaKey(metaApplied), encodeUint64(j.index)},
		kv{metaKey(metaHashLog), encodeUint64(uint64(e.hashLog.len))},
		kv{metaKey(metaNextChunk), encodeUint64(j.nextChunk)})
	if err := e.ingest(j.chunk, j.meta); err != nil {
		return err
	}
	e.durable.Store(j.index)
	if j.chunk != nil {
		e.stateMu.Lock()
		e.chunks = append(e.chunks, j.info)
		e.flushing = nil
		e.stateMu.Unlock()
		spare := j.chunk.retire()
		e.spareMu.Lock()
		e.spare = spare
		e.spareMu.Unlock()
	}
	return nil
}

// syncDirs makes new partition directories durable: each directory, its
// tenant directory and the open root.
func syncDirs(root string, dirs []string) error {
	seen := map[string]bool{}
	for _, d := range dirs {
		for _, x := range []string{d, filepath.Dir(d)} {
			if seen[x] {
				continue
			}
			seen[x] = true
			if err := syncDir(x); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("sync directory %s: %w", x, err)
			}
		}
	}
	if len(dirs) > 0 {
		return syncDir(root)
	}
	return nil
}

// ingest writes the chunk's sstables and the metadata and ingests them in
// one step.
func (e *Engine) ingest(c *chunk, meta []kv) error {
	var files []sstFile
	if c != nil && len(c.recs) > 0 {
		files = append(files, sstFile{"dedup.sst", 0, c.writeDedup})
	}
	if c != nil && !c.postings.empty() {
		files = append(files, sstFile{"postings.sst", postingsLevel, c.writePostings})
		files = append(files, sstFile{"words.sst", postingsLevel, c.writeWords})
	}
	slices.SortFunc(meta, func(a, b kv) int { return bytes.Compare(a.k, b.k) })
	files = append(files, sstFile{"meta.sst", 0, func(w *sstable.Writer) error {
		for _, m := range meta {
			if err := w.Set(m.k, m.v); err != nil {
				return err
			}
		}
		return nil
	}})
	return e.ingestFiles(files...)
}

// sstFile is one sstable of an ingest, written by write in key order with
// the options of the level it is expected to land in.
type sstFile struct {
	name  string
	level int
	write func(w *sstable.Writer) error
}

// postingsLevel is where posting lists land: the bottom, since no other
// file overlaps them (keys.go).
const postingsLevel = 6

// ingestFile ingests one sstable.
func (e *Engine) ingestFile(name string, level int, write func(w *sstable.Writer) error) error {
	return e.ingestFiles(sstFile{name, level, write})
}

// ingestFiles writes the sstables in a scratch directory and ingests them
// in one atomic step; their key ranges must not overlap.
func (e *Engine) ingestFiles(files ...sstFile) error {
	if err := os.MkdirAll(ingestRoot(e.opts.Dir), 0o755); err != nil {
		return fmt.Errorf("ingest directory: %w", err)
	}
	dir, err := os.MkdirTemp(ingestRoot(e.opts.Dir), "ingest-")
	if err != nil {
		return fmt.Errorf("ingest directory: %w", err)
	}
	defer os.RemoveAll(dir)
	paths := make([]string, 0, len(files))
	for _, f := range files {
		path := filepath.Join(dir, f.name)
		if err := e.writeSST(path, f.level, f.write); err != nil {
			return fmt.Errorf("write %s: %w", f.name, err)
		}
		paths = append(paths, path)
	}
	if err := e.db.Ingest(context.Background(), paths); err != nil {
		return fmt.Errorf("ingest: %w", err)
	}
	return nil
}

// writeSST writes one sstable, in the format the database writes, and
// syncs it.
func (e *Engine) writeSST(path string, level int, write func(w *sstable.Writer) error) error {
	f, err := vfs.Default.Create(path, vfs.WriteCategoryUnspecified)
	if err != nil {
		return err
	}
	opts := e.popts.MakeWriterOptions(level, e.db.TableFormat())
	if level == postingsLevel {
		// Posting lists are read by seeking to a term, never probed for
		// a key that may be absent: a filter would only cost.
		opts.FilterPolicy = nil
		opts.Compression = sstable.SnappyCompression
	}
	w := sstable.NewWriter(objstorageprovider.NewFileWritable(f), opts)
	if err := write(w); err != nil {
		w.Close()
		return err
	}
	return w.Close() // syncs and closes f
}

// writeDedup writes the chunk's dedup records in key order.
func (c *chunk) writeDedup(w *sstable.Writer) error {
	// Identities compare as two big-endian words: integer comparisons
	// instead of byte comparisons, sixty thousand times a chunk.
	type ref struct{ hi, lo uint64 }
	order := make([]struct {
		ref
		i int32
	}, len(c.recs))
	for i := range order {
		id := &c.recs[i].id
		order[i].hi, order[i].lo, order[i].i = binary.BigEndian.Uint64(id[:8]), binary.BigEndian.Uint64(id[8:]), int32(i)
	}
	slices.SortFunc(order, func(a, b struct {
		ref
		i int32
	}) int {
		if c := cmp.Compare(a.hi, b.hi); c != 0 {
			return c
		}
		return cmp.Compare(a.lo, b.lo)
	})
	key := make([]byte, 1+len(identity{}))
	key[0] = prefixDedup
	for _, o := range order {
		r := &c.recs[o.i]
		copy(key[1:], r.id[:])
		if err := w.Set(key, r.rec.marshal()); err != nil {
			return err
		}
	}
	return nil
}

// writePostings writes the chunk's posting lists in key order.
func (c *chunk) writePostings(w *sstable.Writer) error {
	key := binary.BigEndian.AppendUint64([]byte{prefixPostings}, c.seq)
	n := len(key)
	var val []byte
	return c.postings.each(func(term []byte, leaves []uint64) error {
		key, val = append(key[:n], term...), val[:0]
		var prev uint64
		for _, leaf := range leaves {
			val = binary.AppendUvarint(val, leaf-prev)
			prev = leaf
		}
		return w.Set(key, val)
	})
}
