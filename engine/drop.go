package engine

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/cockroachdb/pebble/v2"

	"github.com/trailaudit/trail/merkle"
)

// Retention can go one step beyond pruning payloads: once every payload of
// a sealed partition is pruned, its segment file holds nothing but leaf
// hashes and tiles, and DropSegment deletes it. The catalog record stays,
// so the partition is still listed with its final size and root (its final
// checkpoint can still be signed) and the next month's leaf 0 still links
// to it; what goes are the proofs into it.

// flagDropped is the catalog flag bit of a dropped partition (bit 0 is
// Sealed).
const flagDropped = 2

// prefixPendingDrop marks a partition whose segment file still has to be
// deleted: 'r' tenant 0x00 yyyy mm -> empty. It is written in the batch
// that marks the catalog dropped and cleared once the file is gone, so a
// crash in between is finished by Open.
const prefixPendingDrop = 'r'

func pendingDropKey(p Partition) []byte {
	return p.Month.appendKey(tenantKey(prefixPendingDrop, p.Tenant))
}

// ErrDropped is returned by reads that need a dropped partition's tiles or
// payloads: entries, inclusion and consistency proofs, and checkpoints at
// a size other than the final one. A dropped partition itself is still
// viewed: PartitionInfo and its final checkpoint come from the catalog.
// ErrDropped matches ErrNotFound: the data is gone for good.
var ErrDropped error = droppedError{}

type droppedError struct{}

func (droppedError) Error() string {
	return "partition's payloads and tiles were dropped by retention"
}

func (droppedError) Is(target error) bool { return target == ErrNotFound }

// ErrNotDroppable refuses DropSegment on a partition that is open or
// still holds an unpruned payload.
var ErrNotDroppable = errors.New("partition cannot be dropped")

// DropSegment deletes the segment file of sealed partition p, whose every
// leaf must already be pruned (catalog Pruned == Size), at Raft index. The
// catalog record is marked dropped, durably, before the file is deleted;
// Open deletes a file a crash left behind. A refused drop (ErrNotFound,
// ErrNotDroppable, ErrDropped for a partition already dropped) still
// advances the applied index, so that replicas stay identical.
func (e *Engine) DropSegment(ctx context.Context, index uint64, p Partition) error {
	return e.command(index, "drop", p, func() (error, error) {
		refusal, err := e.drop(index, p)
		if refusal == nil && err == nil {
			e.removeDroppedSegment(p)
		}
		return refusal, err
	})
}

// drop commits the catalog change of a drop, or returns why it is refused.
func (e *Engine) drop(index uint64, p Partition) (refusal, err error) {
	cat, found, err := e.readCatalog(e.db, p)
	switch {
	case err != nil:
		return nil, err
	case !found:
		return ErrNotFound, nil
	case cat.Dropped:
		return fmt.Errorf("already dropped: %w", ErrDropped), nil
	case !cat.Sealed:
		return fmt.Errorf("%w: not sealed", ErrNotDroppable), nil
	case cat.Pruned != cat.Size:
		return fmt.Errorf("%w: %d of %d payloads pruned", ErrNotDroppable, cat.Pruned, cat.Size), nil
	}
	wb := e.db.NewBatch()
	defer wb.Close()
	cat.Dropped = true
	if err := wb.Set(catalogKey(p), cat.marshal(), nil); err != nil {
		return nil, err
	}
	// A segment rewrite a crash interrupted has nothing left to rewrite.
	if err := wb.Delete(pendingPruneKey(p), nil); err != nil {
		return nil, err
	}
	if err := wb.Set(pendingDropKey(p), nil, nil); err != nil {
		return nil, err
	}
	// Synced before the file is deleted: a replay must never find a
	// catalog that still points to it.
	if err := e.commitCommand(wb, index); err != nil {
		return nil, err
	}
	return nil, nil
}

// removeDroppedSegment deletes p's segment file and clears its pending-drop
// record. The drop is already committed, so a failure is only logged: the
// file is unreachable (reads never open it) and Open retries the deletion.
func (e *Engine) removeDroppedSegment(p Partition) {
	e.segments.forget(p)
	if err := removeSegmentFile(e.opts.Dir, p); err != nil {
		e.opts.Logger.Warn("dropped partition: delete segment file; retried at the next open", "partition", p.String(), "err", err)
		return
	}
	if err := e.db.Delete(pendingDropKey(p), pebble.NoSync); err != nil {
		e.opts.Logger.Warn("dropped partition: clear pending record", "partition", p.String(), "err", err)
		return
	}
	e.opts.Logger.Info("partition dropped by retention", "partition", p.String())
}

// removeSegmentFile deletes p's segment file, tolerating a file already
// gone, and syncs the directory so the deletion is durable.
func removeSegmentFile(dir string, p Partition) error {
	path, err := segmentPath(dir, p)
	if err != nil {
		return err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return syncDir(filepath.Dir(path))
}

// finishPendingDrops deletes the segment files of drops a crash
// interrupted.
func (e *Engine) finishPendingDrops(ctx context.Context) error {
	lo := []byte{prefixPendingDrop}
	it, err := e.db.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: lo, UpperBound: prefixEnd(lo)})
	if err != nil {
		return fmt.Errorf("engine: pending drops: %w", err)
	}
	var todo []Partition
	for it.First(); it.Valid(); it.Next() {
		p, err := decodePartitionKey(it.Key())
		if err != nil {
			it.Close()
			return fmt.Errorf("engine: pending drop: %w", err)
		}
		todo = append(todo, p)
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return fmt.Errorf("engine: pending drops: %w", err)
	}
	for _, p := range todo {
		if err := removeSegmentFile(e.opts.Dir, p); err != nil {
			return fmt.Errorf("engine: finish drop of %s: %w", p, err)
		}
		if err := e.db.Delete(pendingDropKey(p), pebble.Sync); err != nil {
			return fmt.Errorf("engine: finish drop of %s: %w", p, err)
		}
		e.opts.Logger.Info("finished interrupted drop", "partition", p.String())
	}
	return nil
}

// droppedMeanwhile handles a segment that failed to open: a drop committed
// between reading the catalog and opening the file deletes it, and the
// read then sees the partition as dropped rather than a missing file.
func (e *Engine) droppedMeanwhile(p Partition, openErr error) (*view, error) {
	if errors.Is(openErr, fs.ErrNotExist) {
		cat, found, err := e.readCatalog(e.db, p)
		if err == nil && found && cat.Dropped {
			return &view{e: e, p: p, cat: cat}, nil
		}
	}
	return nil, fmt.Errorf("engine: partition %s: %w", p, openErr)
}

// droppedReceipt is the original receipt of a duplicate whose partition
// was dropped, without the leaf hash, which went with the tiles. A retried
// append must still get its receipt, not fail the batch it came in.
func droppedReceipt(tenant, eventID string, rec dedupRecord) Receipt {
	r := receiptOf(tenant, eventID, rec, merkle.Hash{})
	r.Duplicate = true
	return r
}
