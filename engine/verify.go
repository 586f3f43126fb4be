package engine

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"google.golang.org/protobuf/proto"

	"github.com/trailaudit/trail/merkle"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// Scheduled integrity verification: re-read a partition's stored bytes,
// re-hash them, and check them against everything stored about them: the
// leaf hashes and interior nodes in the tiles, the chain of prev_leaf_hash,
// leaf 0's link to the previous partition, and the catalog's root. It reads
// one consistent view (the open partition's files, or the segment file) at the size
// the partition had when it started, so appends running meanwhile neither
// disturb it nor are half seen.

// DefaultVerifyBatch is the number of entries between two limiter waits
// and context checks.
const DefaultVerifyBatch = 256

// Limiter paces verification. It is called before each batch with the
// number of entries the batch will hash. *rate.Limiter of
// golang.org/x/time/rate satisfies it (with a burst of at least the batch).
type Limiter interface {
	WaitN(ctx context.Context, n int) error
}

// NewRateLimiter returns a Limiter that lets perSecond entries through per
// second on average, shared by everything that uses it: a pass over many
// partitions shares one budget. perSecond <= 0 means no limit.
func NewRateLimiter(perSecond float64) Limiter {
	if perSecond <= 0 {
		return nil
	}
	return &pacer{perEntry: time.Duration(float64(time.Second) / perSecond)}
}

// pacer admits batches back to back, each starting once the cost of the
// ones before it has been paid. Idle time does not accumulate into a burst.
type pacer struct {
	perEntry time.Duration
	mu       sync.Mutex
	next     time.Time
}

func (p *pacer) WaitN(ctx context.Context, n int) error {
	p.mu.Lock()
	start := later(p.next, time.Now())
	p.next = start.Add(time.Duration(n) * p.perEntry)
	p.mu.Unlock()
	d := time.Until(start)
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// later returns the later of two times.
func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// VerifyOptions tune VerifyPartition. The zero value verifies at full speed.
type VerifyOptions struct {
	// Limiter paces re-hashing; nil with Rate 0 means no limit.
	Limiter Limiter
	// Rate is entries per second, used when Limiter is nil.
	Rate float64
	// Batch is the number of entries per limiter wait (default 256).
	Batch int
	// Resume continues from an earlier OK result for the same partition:
	// the leaves below its Size count as verified, and only later ones are
	// re-hashed, into the tree rebuilt from its RightEdge. It is ignored,
	// and everything verified, when it does not fit the partition.
	Resume *VerifyResult
}

func (o *VerifyOptions) setDefaults() {
	if o.Batch <= 0 {
		o.Batch = DefaultVerifyBatch
	}
	if o.Limiter == nil && o.Rate > 0 {
		o.Limiter = NewRateLimiter(o.Rate)
	}
}

// ProblemKind classifies what integrity verification found.
type ProblemKind string

// Kinds of problems.
const (
	// ProblemEntry: an entry's stored bytes do not hash to the leaf hash
	// in the tiles, or an entry is missing without having been pruned.
	ProblemEntry ProblemKind = "entry"
	// ProblemTile: a stored tile node differs from the one rebuilt from the
	// entries, or a tile is missing or unreadable.
	ProblemTile ProblemKind = "tile"
	// ProblemChain: an entry's prev_leaf_hash is not its predecessor's
	// leaf hash, or cannot be read.
	ProblemChain ProblemKind = "chain"
	// ProblemLink: leaf 0 does not link to the end of the tenant's
	// previous partition.
	ProblemLink ProblemKind = "link"
	// ProblemRoot: the tree rebuilt from the entries has another size,
	// root or right edge than the partition's catalog record.
	ProblemRoot ProblemKind = "root"
	// ProblemSegment: a sealed partition's segment file fails its own
	// checks (trailing hash, block encoding, header).
	ProblemSegment ProblemKind = "segment"
)

// IntegrityError is the first problem VerifyPartition found. It wraps
// ErrCorrupt.
type IntegrityError struct {
	Partition Partition
	Kind      ProblemKind
	// Where names the place: "leaf 12", "tile 0/3 node 2/40", "segment".
	Where string
	Err   error
}

func (e *IntegrityError) Error() string {
	msg := strings.TrimPrefix(e.Err.Error(), e.Where+": ")
	return fmt.Sprintf("engine: integrity of %s: %s: %s", e.Partition, e.Where, msg)
}

func (e *IntegrityError) Unwrap() error { return ErrCorrupt }

// VerifyResult is the outcome of verifying one partition.
type VerifyResult struct {
	Partition Partition
	Sealed    bool
	// Size is the tree size verified: the partition's size at the start.
	Size uint64
	// Root is the catalog's root at Size, the one peers are compared with;
	// without a Problem the entries rebuild exactly this root.
	Root merkle.Hash
	// Hashed counts entries whose stored bytes were re-hashed.
	Hashed uint64
	// Pruned counts leaves whose payload retention removed: their leaf hash
	// comes from the tiles (so the tree is still checked) but their own
	// link to the previous leaf cannot be.
	Pruned uint64
	// From is the first leaf re-hashed: 0, or the size of the result
	// resumed from.
	From uint64
	// RightEdge and LastLeaf are the rebuilt tree's compact range and last
	// leaf hash at Size: what a later verification resumes from.
	RightEdge []merkle.Hash
	LastLeaf  merkle.Hash
	// Dropped is set for a sealed partition whose every payload was pruned
	// and whose segment file retention deleted (DropSegment): only the
	// catalog remains, so nothing is re-hashed.
	Dropped bool
	// Problem is the first problem found; nil when the partition verified.
	Problem *IntegrityError
}

// OK reports whether the partition verified without a problem.
func (r VerifyResult) OK() bool { return r.Problem == nil }

// VerifyPartition re-hashes partition p from storage and checks it (see
// the top of this file). A problem found is reported in the result, with a
// nil error; the error is for verification that could not run or finish
// (unknown partition, engine closed, ctx ended).
func (e *Engine) VerifyPartition(ctx context.Context, p Partition, opts VerifyOptions) (VerifyResult, error) {
	opts.setDefaults()
	res := VerifyResult{Partition: p}
	v, err := e.view(p)
	if err != nil {
		return e.unviewable(p, res, err)
	}
	defer v.release()
	res.Sealed, res.Size, res.Root = v.cat.Sealed, v.cat.Size, v.cat.Root
	if v.cat.Dropped { // only the catalog is left: peers still compare its root
		res.Dropped, res.Pruned = true, v.cat.Size
		return res, nil
	}
	vr := &verifier{e: e, v: v, res: &res, opts: opts}
	if err := vr.start(opts.Resume); err != nil {
		return res, fmt.Errorf("engine: verify %s: %w", p, err)
	}
	if err := vr.run(ctx); err != nil {
		return res, fmt.Errorf("engine: verify %s: %w", p, err)
	}
	return res, nil
}

// unviewable handles a partition whose view could not be opened: a segment
// that fails its checks at open, or is missing although retention did not
// drop it (view handles that), is a problem; anything else is an error.
func (e *Engine) unviewable(p Partition, res VerifyResult, err error) (VerifyResult, error) {
	cat, found, cerr := e.readCatalog(e.db, p)
	if cerr != nil || !found || !cat.Sealed {
		return res, fmt.Errorf("engine: verify %s: %w", p, err)
	}
	res.Sealed, res.Size, res.Root = true, cat.Size, cat.Root
	switch {
	case errors.Is(err, ErrCorrupt):
		res.Problem = &IntegrityError{Partition: p, Kind: ProblemSegment, Where: "segment", Err: err}
		return res, nil
	case errors.Is(err, fs.ErrNotExist):
		res.Problem = &IntegrityError{Partition: p, Kind: ProblemSegment, Where: "segment",
			Err: fmt.Errorf("segment file missing with %d of %d payloads unpruned: %w", cat.Size-cat.Pruned, cat.Size, err)}
		return res, nil
	}
	return res, fmt.Errorf("engine: verify %s: %w", p, err)
}

// verifier is the state of one VerifyPartition: the tree being rebuilt
// (O(log n) hashes), compared node by node with the stored one (a
// segment's tiles stay cached in the view while they are being reached, at
// most one per tile level).
type verifier struct {
	e    *Engine
	v    *view
	res  *VerifyResult
	opts VerifyOptions
	app  *merkle.Appender
	prev merkle.Hash // leaf hash of the previous leaf
	// opErr is an operational failure (engine closing, ctx) met while
	// reading: it ends verification without being a problem.
	opErr error
}

// start sets up the rebuilt tree: empty, or resumed from r when r is an
// OK result for this partition whose right edge reproduces its root.
func (vr *verifier) start(r *VerifyResult) error {
	if r != nil && r.OK() && !r.Dropped && r.Partition == vr.v.p && r.Size > 0 && r.Size <= vr.res.Size {
		app, err := merkle.NewAppender(r.Size, r.RightEdge)
		if err == nil && app.Root() == r.Root {
			vr.app, vr.prev, vr.res.From = app, r.LastLeaf, r.Size
			return nil
		}
	}
	var err error
	vr.app, err = merkle.NewAppender(0, nil)
	return err
}

// errStop ends a scan early once a problem is recorded.
var errStop = errors.New("stop")

func (vr *verifier) run(ctx context.Context) error {
	if vr.v.seg != nil && !vr.checkSegment() {
		return nil
	}
	err := vr.scan(ctx, func(leaf uint64, data []byte, pruned bool) error {
		if (leaf-vr.res.From)%uint64(vr.opts.Batch) == 0 {
			if err := vr.pace(ctx, leaf); err != nil {
				return err
			}
		}
		if !vr.leaf(ctx, leaf, data, pruned) {
			return errStop
		}
		return nil
	})
	switch {
	case vr.opErr != nil:
		return vr.opErr
	case errors.Is(err, errStop):
		return nil
	case err != nil && operational(err):
		return err
	case err != nil && vr.v.seg != nil:
		vr.fail(ProblemSegment, "segment entries", err)
		return nil
	case err != nil:
		vr.fail(ProblemEntry, "entries", err)
		return nil
	}
	vr.checkTree()
	vr.res.RightEdge, vr.res.LastLeaf = vr.app.RightEdge(), vr.prev
	return nil
}

func (vr *verifier) pace(ctx context.Context, leaf uint64) error {
	if vr.opts.Limiter == nil {
		return ctx.Err()
	}
	n := min(uint64(vr.opts.Batch), vr.res.Size-leaf)
	return vr.opts.Limiter.WaitN(ctx, int(n))
}

// operational reports errors that say nothing about the stored data.
func operational(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, ErrClosed) || errors.Is(err, os.ErrClosed) || errors.Is(err, pebble.ErrClosed)
}

func (vr *verifier) fail(kind ProblemKind, where string, err error) {
	if vr.res.Problem == nil {
		vr.res.Problem = &IntegrityError{Partition: vr.v.p, Kind: kind, Where: where, Err: err}
	}
}

// checkSegment re-reads the whole segment file against its trailing hash
// (the cached reader may have been opened long ago) and its header against
// the catalog.
func (vr *verifier) checkSegment() bool {
	r := vr.v.seg.r
	if err := r.Verify(); err != nil {
		vr.fail(ProblemSegment, "segment", err)
		return false
	}
	if h := r.Header(); h.Size != vr.res.Size || h.Root != vr.res.Root {
		vr.fail(ProblemSegment, "segment header", fmt.Errorf("size %d root %s, catalog size %d root %s: %w",
			h.Size, h.Root, vr.res.Size, vr.res.Root, ErrCorrupt))
		return false
	}
	return true
}

// scan calls fn for leaves 0..Size-1 of the view in order; data is only
// valid during the call and nil for a pruned leaf.
func (vr *verifier) scan(ctx context.Context, fn func(leaf uint64, data []byte, pruned bool) error) error {
	from, size := vr.res.From, vr.res.Size
	if vr.v.seg != nil {
		return vr.v.seg.r.Scan(from, func(leaf uint64, data []byte) error {
			if leaf >= size {
				return errStop
			}
			return fn(leaf, data, data == nil)
		})
	}
	return vr.scanFiles(from, size, fn)
}

// scanFiles reads an open partition's entries in order; a leaf with a
// prune record is reported pruned.
func (vr *verifier) scanFiles(from, size uint64, fn func(uint64, []byte, bool) error) error {
	pf := vr.v.files
	var start int64
	if from > 0 {
		end, err := pf.entriesEnd(from)
		if err != nil {
			return err
		}
		start = end
	}
	offsets := bufio.NewReaderSize(io.NewSectionReader(pf.offsets, int64(from)*offsetSize, int64(size-from)*offsetSize), 1<<16)
	entries := bufio.NewReaderSize(io.NewSectionReader(pf.entries, start, 1<<62), 1<<20)
	var off [offsetSize]byte
	var data []byte
	// A file that ends or points outside itself is damage at that leaf.
	damaged := func(leaf uint64, err error) error {
		vr.fail(ProblemEntry, fmt.Sprintf("leaf %d", leaf), fmt.Errorf("%w: %w", err, ErrCorrupt))
		return errStop
	}
	for leaf := from; leaf < size; leaf++ {
		if _, err := io.ReadFull(offsets, off[:]); err != nil {
			return damaged(leaf, fmt.Errorf("read its offset: %w", err))
		}
		end := int64(binary.BigEndian.Uint64(off[:]))
		if end < start || end-start > 1<<30 {
			return damaged(leaf, fmt.Errorf("it spans [%d, %d)", start, end))
		}
		data = slices.Grow(data[:0], int(end-start))[:end-start]
		if _, err := io.ReadFull(entries, data); err != nil {
			return damaged(leaf, fmt.Errorf("read its entry: %w", err))
		}
		start = end
		pruned := false
		if vr.v.cat.Pruned > 0 {
			var err error
			if pruned, err = vr.e.pruneMarked(vr.v.p, leaf); err != nil {
				return err
			}
		}
		if pruned {
			data = nil
		}
		if err := fn(leaf, data, pruned); err != nil {
			return err
		}
	}
	return nil
}

// leaf checks one leaf and adds it to the rebuilt tree; false means a
// problem was recorded.
func (vr *verifier) leaf(ctx context.Context, leaf uint64, data []byte, pruned bool) bool {
	stored, ok := vr.storedNode(merkle.NodeID{Level: 0, Index: leaf})
	if !ok {
		return false
	}
	h := stored
	if pruned {
		vr.res.Pruned++
	} else {
		vr.res.Hashed++
		if h = merkle.LeafHash(data); h != stored {
			vr.fail(ProblemEntry, fmt.Sprintf("leaf %d", leaf), fmt.Errorf(
				"entry bytes hash to %s, the stored leaf hash is %s: %w", h, stored, ErrCorrupt))
			return false
		}
		if !vr.chain(ctx, leaf, data) {
			return false
		}
	}
	vr.prev = h
	vr.app.Append(h, vr.visit)
	return vr.res.Problem == nil
}

// chain checks the entry's prev_leaf_hash: against the previous leaf
// within the partition (its stored hash when it was pruned), and for leaf
// 0 against the end of the tenant's previous partition.
func (vr *verifier) chain(ctx context.Context, leaf uint64, data []byte) bool {
	if leaf > 0 {
		if err := checkPrev(data, vr.prev, leaf); err != nil {
			vr.fail(ProblemChain, fmt.Sprintf("leaf %d", leaf), err)
			return false
		}
		return true
	}
	if err := vr.e.checkLink(ctx, vr.v.p, data); err != nil {
		if operational(err) {
			return true // the rest of the partition is still worth checking
		}
		vr.fail(ProblemLink, "leaf 0", err)
		return false
	}
	return true
}

// visit compares a node the rebuilt tree completed with the stored one.
// Leaves were compared already, before their chain link.
func (vr *verifier) visit(id merkle.NodeID, h merkle.Hash) {
	if id.Level == 0 || vr.res.Problem != nil {
		return
	}
	stored, ok := vr.storedNode(id)
	if ok && stored != h {
		vr.fail(ProblemTile, vr.nodeWhere(id),
			fmt.Errorf("stored %s, rebuilt from the entries %s: %w", stored, h, ErrCorrupt))
	}
}

// storedNode reads a stored node, keeping a segment tile only while its
// nodes are still being reached; a failure is recorded as a problem.
func (vr *verifier) storedNode(id merkle.NodeID) (merkle.Hash, bool) {
	tid, row, pos := merkle.TileForNode(id)
	h, err := vr.v.node(id)
	if err != nil {
		if operational(err) {
			vr.opErr = err
		} else {
			vr.fail(ProblemTile, vr.nodeWhere(id), fmt.Errorf("read stored node: %w", err))
		}
		return merkle.Hash{}, false
	}
	if vr.v.tiles != nil && row == merkle.TileHeight-1 && pos == 1 { // the tile's last node
		delete(vr.v.tiles, tid)
	}
	return h, true
}

// nodeWhere names a stored node: in its tile, for a segment.
func (vr *verifier) nodeWhere(id merkle.NodeID) string {
	if vr.v.seg != nil {
		tid, _, _ := merkle.TileForNode(id)
		return fmt.Sprintf("tile %s node %s", tid, id)
	}
	return fmt.Sprintf("node %s", id)
}

// checkTree compares the rebuilt tree with the catalog.
func (vr *verifier) checkTree() {
	cat, app := vr.v.cat, vr.app
	switch {
	case app.Size() != cat.Size:
		vr.fail(ProblemRoot, "tree", fmt.Errorf("rebuilt %d leaves, catalog size %d: %w", app.Size(), cat.Size, ErrCorrupt))
	case app.Root() != cat.Root:
		vr.fail(ProblemRoot, "root", fmt.Errorf("rebuilt %s at size %d, catalog %s: %w", app.Root(), cat.Size, cat.Root, ErrCorrupt))
	case !cat.Sealed && cat.RightEdge != nil && !equalHashes(app.RightEdge(), cat.RightEdge):
		// Future appends build on the right edge: a wrong one would turn
		// every later root wrong.
		vr.fail(ProblemRoot, "right edge", fmt.Errorf("catalog right edge differs from the rebuilt one at size %d: %w", cat.Size, ErrCorrupt))
	}
}

func equalHashes(a, b []merkle.Hash) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// checkLink checks leaf 0 of p (entry bytes data) against the tenant's
// previous partition: its prev_leaf_hash must be that partition's last
// leaf hash and its link that partition's final month, size and root; the
// tenant's first partition links to nothing and chains to 32 zero bytes.
func (e *Engine) checkLink(ctx context.Context, p Partition, data []byte) error {
	en := new(trailv1.Entry)
	if err := proto.Unmarshal(data, en); err != nil {
		return fmt.Errorf("decode entry: %v: %w", err, ErrCorrupt)
	}
	prev, found, err := e.previousPartition(ctx, p)
	if err != nil {
		return err
	}
	if !found {
		if merkle.Hash(en.GetPrevLeafHash()) != (merkle.Hash{}) || en.GetPrevPartition() != nil {
			return fmt.Errorf("first partition of the tenant, but leaf 0 links to %v: %w", en.GetPrevPartition(), ErrCorrupt)
		}
		return nil
	}
	l := en.GetPrevPartition()
	if l.GetPartition() != prev.Month.String() || l.GetSize() != prev.Size || merkle.Hash(l.GetRoot()) != prev.Root {
		return fmt.Errorf("links to %s size %d root %x, previous partition is %s size %d root %s: %w",
			l.GetPartition(), l.GetSize(), l.GetRoot(), prev.Month, prev.Size, prev.Root, ErrCorrupt)
	}
	last, ok, err := e.lastLeafHash(ctx, prev)
	if err != nil || !ok {
		return err // ok=false: the previous segment was dropped, nothing to compare with
	}
	if got := merkle.Hash(en.GetPrevLeafHash()); got != last {
		return fmt.Errorf("prev_leaf_hash %s, last leaf of %s is %s: %w", got, prev.Partition, last, ErrCorrupt)
	}
	return nil
}

// previousPartition is the tenant's partition before p, if any.
func (e *Engine) previousPartition(ctx context.Context, p Partition) (PartitionInfo, bool, error) {
	parts, err := e.Partitions(ctx, p.Tenant)
	if err != nil {
		return PartitionInfo{}, false, err
	}
	var prev PartitionInfo
	found := false
	for _, pi := range parts {
		if pi.Month.Before(p.Month) {
			prev, found = pi, true
		}
	}
	return prev, found, nil
}

// lastLeafHash reads the last leaf hash of a partition from its tiles;
// ok is false when its segment file was dropped by retention.
func (e *Engine) lastLeafHash(ctx context.Context, pi PartitionInfo) (merkle.Hash, bool, error) {
	if pi.Size == 0 {
		return merkle.Hash{}, false, fmt.Errorf("previous partition %s is empty: %w", pi.Partition, ErrCorrupt)
	}
	if pi.Dropped {
		return merkle.Hash{}, false, nil
	}
	v, err := e.view(pi.Partition)
	if err != nil {
		return merkle.Hash{}, false, fmt.Errorf("previous partition: %w", err)
	}
	defer v.release()
	hs, err := v.ReadNodes(ctx, []merkle.NodeID{{Level: 0, Index: pi.Size - 1}})
	if err != nil {
		return merkle.Hash{}, false, fmt.Errorf("previous partition: %w", err)
	}
	return hs[0], true, nil
}

// Tenants lists every tenant with at least one entry, in order.
func (e *Engine) Tenants(ctx context.Context) ([]string, error) {
	if err := e.checkOpen(); err != nil {
		return nil, err
	}
	e.stateMu.RLock()
	var out []string
	for id, ts := range e.tenants {
		if ts.pub.Load() != nil {
			out = append(out, id)
		}
	}
	e.stateMu.RUnlock()
	slices.Sort(out)
	return out, nil
}
