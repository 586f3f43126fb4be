package engine

import (
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"

	"github.com/trailaudit/trail/merkle"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// tenantState is the writer's view of one tenant. Only the apply goroutine
// (under writeMu) reads or writes its fields; readers see pub.
type tenantState struct {
	id      string
	head    headRecord
	started bool           // the tenant has at least one entry
	open    *openPartition // the partition of head.Month while it is open
	unsaved bool           // head changed since the last checkpoint
	inBatch bool           // touched by the batch being applied
	pub     atomic.Pointer[headRecord]
}

func (ts *tenantState) publish() {
	h := ts.head
	ts.pub.Store(&h)
}

// openPartition is a partition that is still appended to: its files, its
// compact range, and what the batch being applied adds, until the batch is
// written. Only the apply goroutine touches the fields; readers use files
// (through views) and pub.
type openPartition struct {
	p     Partition
	month string // p.Month.String(), which every entry carries
	files *partFiles
	app   *merkle.Appender
	cat   catalogRecord // Size, Root and times as of the last written batch
	at    lengths       // the files' lengths as of the last written batch

	// link is what leaf 0 records of the tenant's previous partition.
	link *trailv1.PartitionLink
	// dir is set until the first batch registers the partition with readers
	// and the next checkpoint.
	dir string

	// The batch being applied.
	entries, offsets, hashes []byte
	dirty                    bool

	unsaved bool // changed since the last checkpoint
	pub     atomic.Pointer[catalogRecord]
}

// publish makes the partition's written state visible to readers.
func (op *openPartition) publish() {
	c := op.cat
	c.RightEdge = nil // readers never use it
	op.pub.Store(&c)
}

// appendLeaf adds to the batch the entry just encoded at the end of
// op.entries, whose leaf hash is leaf.
func (op *openPartition) appendLeaf(leaf merkle.Hash) {
	end := uint64(op.at.entries) + uint64(len(op.entries))
	op.offsets = append(op.offsets, byte(end>>56), byte(end>>48), byte(end>>40), byte(end>>32),
		byte(end>>24), byte(end>>16), byte(end>>8), byte(end))
	op.app.Append(leaf, op.visit)
}

func (op *openPartition) visit(_ merkle.NodeID, h merkle.Hash) {
	op.hashes = append(op.hashes, h[:]...)
}

// writePartition appends the batch to op's files and publishes the new
// size. On failure nothing is published; the engine is then failed
// (Apply), since the compact range is ahead of the files.
func (e *Engine) writePartition(op *openPartition) error {
	if err := op.files.write(op.at, op.entries, op.offsets, op.hashes); err != nil {
		return fmt.Errorf("partition %s: %w", op.p, err)
	}
	op.at.entries += int64(len(op.entries))
	op.at.offsets += int64(len(op.offsets))
	op.at.hashes += int64(len(op.hashes))
	op.entries, op.offsets, op.hashes = op.entries[:0], op.offsets[:0], op.hashes[:0]
	op.cat.Size = op.app.Size()
	op.cat.Root = op.app.Root()
	op.dirty, op.unsaved = false, true
	op.publish()
	if op.dir != "" {
		e.stateMu.Lock()
		e.open[op.p] = op
		e.newDirs = append(e.newDirs, op.dir)
		e.stateMu.Unlock()
		op.dir = ""
	}
	return nil
}

// catalogRecord returns the record a checkpoint stores for the partition.
func (op *openPartition) catalogRecord() catalogRecord {
	c := op.cat
	c.RightEdge = op.app.RightEdge()
	return c
}

// tenant returns the writer's state of tenant id, creating it on first use.
func (e *Engine) tenant(id string) *tenantState {
	if ts := e.tenants[id]; ts != nil {
		return ts
	}
	ts := &tenantState{id: id} // published by its first append
	e.stateMu.Lock()
	e.tenants[id] = ts
	e.stateMu.Unlock()
	return ts
}

// partitionFor returns the open partition of month m of ts, starting it
// when the tenant's log moves into a new month. A partition started after
// an earlier one keeps the link to it for its leaf 0 (invariant 3).
func (e *Engine) partitionFor(ts *tenantState, m Month) (*openPartition, error) {
	if ts.open != nil && ts.open.p.Month == m {
		return ts.open, nil
	}
	var link *trailv1.PartitionLink
	if ts.started {
		if !ts.head.Month.Before(m) {
			return nil, fmt.Errorf("tenant %s: month %s is not after %s, whose partition is not open", ts.id, m, ts.head.Month)
		}
		prev, err := e.catalogOf(Partition{Tenant: ts.id, Month: ts.head.Month})
		if err != nil {
			return nil, fmt.Errorf("tenant %s: previous partition %s: %w", ts.id, ts.head.Month, err)
		}
		link = &trailv1.PartitionLink{Partition: ts.head.Month.String(), Size: prev.Size, Root: prev.Root[:]}
	}
	p := Partition{Tenant: ts.id, Month: m}
	if _, found, err := e.readCatalog(e.db, p); err != nil || found {
		return nil, fmt.Errorf("tenant %s: new partition %s already exists (found=%v): %w", ts.id, m, found, err)
	}
	op, err := e.createPartition(p)
	if err != nil {
		return nil, err
	}
	op.link = link
	ts.open = op
	return op, nil
}

// createPartition starts an empty open partition. A directory left by an
// earlier attempt (a partition started after the last checkpoint, then a
// crash) is emptied first. Readers see the partition once its first batch
// is written.
func (e *Engine) createPartition(p Partition) (*openPartition, error) {
	dir, err := partitionDir(e.opts.Dir, p)
	if err != nil {
		return nil, err
	}
	if err := removePartitionDir(dir); err != nil {
		return nil, fmt.Errorf("partition %s: clear directory: %w", p, err)
	}
	files, err := openPartFiles(dir, true)
	if err != nil {
		return nil, fmt.Errorf("partition %s: create files: %w", p, err)
	}
	app, err := merkle.NewAppender(0, nil)
	if err != nil {
		files.release()
		return nil, err
	}
	op := &openPartition{p: p, month: p.Month.String(), files: files, app: app,
		cat: catalogRecord{Root: merkle.EmptyRoot()}, dir: dir}
	return op, nil
}

// loadPartition opens the files of a partition the last checkpoint
// recorded as open, cutting off what was written after it.
func (e *Engine) loadPartition(p Partition, cat catalogRecord) (*openPartition, error) {
	dir, err := partitionDir(e.opts.Dir, p)
	if err != nil {
		return nil, err
	}
	files, err := openPartFiles(dir, false)
	if err != nil {
		return nil, fmt.Errorf("partition %s: open files: %w", p, err)
	}
	at, err := files.truncate(cat.Size)
	if err != nil {
		files.release()
		return nil, fmt.Errorf("partition %s: %w", p, err)
	}
	app, err := merkle.NewAppender(cat.Size, cat.RightEdge)
	if err == nil {
		err = checkRightEdge(files, cat)
	}
	if err != nil {
		files.release()
		return nil, fmt.Errorf("partition %s: %w", p, err)
	}
	op := &openPartition{p: p, month: p.Month.String(), files: files, app: app, cat: cat, at: at}
	op.publish()
	return op, nil
}

// checkRightEdge compares the catalog's right edge, which every later
// append builds on, with the stored nodes it must equal: appending to a
// wrong one would make every later root wrong.
func checkRightEdge(files *partFiles, cat catalogRecord) error {
	ids := compactRangeIDs(cat.Size)
	if len(ids) != len(cat.RightEdge) {
		return fmt.Errorf("catalog right edge of %d hashes at size %d: %w", len(cat.RightEdge), cat.Size, ErrCorrupt)
	}
	for i, id := range ids {
		h, err := files.node(id)
		if err != nil {
			return err
		}
		if h != cat.RightEdge[i] {
			return fmt.Errorf("catalog right edge differs from stored node %s: %w", id, ErrCorrupt)
		}
	}
	return nil
}

// openPartitionOf returns p's open partition, or nil once it is sealed.
func (e *Engine) openPartitionOf(p Partition) *openPartition {
	e.stateMu.RLock()
	defer e.stateMu.RUnlock()
	return e.open[p]
}

// catalogOf returns p's current catalog record: an open partition's from
// memory, any other's from Pebble.
func (e *Engine) catalogOf(p Partition) (catalogRecord, error) {
	if op := e.openPartitionOf(p); op != nil {
		return *op.pub.Load(), nil
	}
	cat, found, err := e.readCatalog(e.db, p)
	if err != nil {
		return catalogRecord{}, err
	}
	if !found {
		return catalogRecord{}, fmt.Errorf("partition %s: %w", p, ErrNotFound)
	}
	return cat, nil
}

func (e *Engine) readCatalog(r pebble.Reader, p Partition) (catalogRecord, bool, error) {
	v, closer, err := r.Get(catalogKey(p))
	if errors.Is(err, pebble.ErrNotFound) {
		return catalogRecord{}, false, nil
	}
	if err != nil {
		return catalogRecord{}, false, fmt.Errorf("read catalog of %s: %w", p, err)
	}
	defer closer.Close()
	cat, err := unmarshalCatalog(v)
	if err != nil {
		return catalogRecord{}, false, fmt.Errorf("partition %s: %w", p, err)
	}
	return cat, true, nil
}
