package engine

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"google.golang.org/protobuf/proto"

	"github.com/trailaudit/trail/merkle"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// verifyOK verifies p and fails on an error or a problem.
func verifyOK(t testing.TB, e *Engine, p Partition) VerifyResult {
	t.Helper()
	res, err := e.VerifyPartition(context.Background(), p, VerifyOptions{})
	if err != nil {
		t.Fatalf("VerifyPartition(%s): %v", p, err)
	}
	if !res.OK() {
		t.Fatalf("VerifyPartition(%s): %v", p, res.Problem)
	}
	return res
}

func TestVerifyCleanPartitions(t *testing.T) {
	e := openEngine(t, t.TempDir())
	ctx := context.Background()
	novP, decP := fillTwoMonths(t, e, 300)
	for _, p := range []Partition{novP, decP} {
		info, _ := e.PartitionInfo(ctx, p)
		res := verifyOK(t, e, p)
		if res.Size != info.Size || res.Root != info.Root || res.Hashed != info.Size || res.Pruned != 0 || res.Sealed {
			t.Fatalf("%s: result %+v, partition %+v", p, res, info)
		}
	}
	// Multi-tenant batches, several tiles per partition.
	for _, b := range genBatches(11, 20, 100, nov.AddDate(0, 1, 0), time.Minute) {
		b.Index += e.AppliedIndex()
		if _, err := e.Apply(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	tenants, err := e.Tenants(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(tenants) != 4 || tenants[0] != "acme" {
		t.Fatalf("Tenants() = %v", tenants)
	}
	for _, tenant := range tenants {
		parts, _ := e.Partitions(ctx, tenant)
		for _, pi := range parts {
			verifyOK(t, e, pi.Partition)
		}
	}
}

func TestVerifySealedPartition(t *testing.T) {
	e := openEngine(t, t.TempDir())
	novP, decP := fillTwoMonths(t, e, 300)
	sealNovember(t, e, novP)
	res := verifyOK(t, e, novP)
	if !res.Sealed || res.Size != 300 || res.Hashed != 300 {
		t.Fatalf("sealed result %+v", res)
	}
	// December's leaf 0 links to the sealed month's last leaf.
	verifyOK(t, e, decP)
}

func TestVerifyPrunedEntries(t *testing.T) {
	e := openEngine(t, t.TempDir())
	ctx := context.Background()
	novP, decP := fillTwoMonths(t, e, 300)
	// Pruning leaf 0 of December skips its link check; pruning 255 and 256
	// puts pruned leaves on both sides of a tile boundary.
	if _, err := e.Prune(ctx, e.AppliedIndex()+1, decP, []uint64{0, 7, 8, 255, 256}); err != nil {
		t.Fatal(err)
	}
	if res := verifyOK(t, e, decP); res.Pruned != 5 || res.Hashed != 295 {
		t.Fatalf("open pruned: %+v", res)
	}
	sealNovember(t, e, novP)
	if _, err := e.Prune(ctx, e.AppliedIndex()+1, novP, []uint64{3, 299}); err != nil {
		t.Fatal(err)
	}
	if res := verifyOK(t, e, novP); res.Pruned != 2 || res.Hashed != 298 {
		t.Fatalf("sealed pruned: %+v", res)
	}
	verifyOK(t, e, decP) // its leaf 0 now links to a pruned last leaf
}

// corruption is one way of damaging stored data, and where verification
// must say the damage is. damage returns the engine to verify with (a
// damage done while the engine is closed reopens it).
type corruption struct {
	name   string
	damage func(t *testing.T, e *Engine, p Partition) *Engine
	kind   ProblemKind
	where  string
}

func TestVerifyDetectsCorruption(t *testing.T) {
	node := func(level uint8, index uint64) func(t *testing.T, e *Engine, p Partition) *Engine {
		return func(t *testing.T, e *Engine, p Partition) *Engine {
			id := merkle.NodeID{Level: level, Index: index}
			h, err := e.openPartitionOf(p).files.node(id)
			if err != nil {
				t.Fatal(err)
			}
			h[0] ^= 1
			overwriteNode(t, e, p, id, h)
			return e
		}
	}
	cases := []corruption{
		{"entry bytes", func(t *testing.T, e *Engine, p Partition) *Engine { flipEntryByte(t, e, p, 42); return e }, ProblemEntry, "leaf 42"},
		{"entries file cut short", func(t *testing.T, e *Engine, p Partition) *Engine {
			op := e.openPartitionOf(p)
			end, err := op.files.entriesEnd(17)
			if err != nil {
				t.Fatal(err)
			}
			if err := op.files.entries.Truncate(end + 5); err != nil {
				t.Fatal(err)
			}
			return e
		}, ProblemEntry, "leaf 17"},
		{"leaf hash", node(0, 9), ProblemEntry, "leaf 9"},
		{"interior node", node(3, 5), ProblemTile, "node 3/5"},
		{"node above the first tile", node(8, 0), ProblemTile, "node 8/0"},
		{"hashes file cut short", func(t *testing.T, e *Engine, p Partition) *Engine {
			truncateHashes(t, e, p, nodePosition(merkle.NodeID{Level: 0, Index: 256}))
			return e
		}, ProblemTile, "node 0/256"},
		{"hashes file emptied", func(t *testing.T, e *Engine, p Partition) *Engine {
			truncateHashes(t, e, p, 0)
			return e
		}, ProblemTile, "node 0/0"},
		{"catalog root", func(t *testing.T, e *Engine, p Partition) *Engine {
			dir := e.opts.Dir
			if err := e.Close(); err != nil {
				t.Fatal(err)
			}
			db := openRawPebble(t, dir)
			v, closer, err := db.Get(catalogKey(p))
			if err != nil {
				t.Fatal(err)
			}
			cat, err := unmarshalCatalog(v)
			closer.Close()
			if err != nil {
				t.Fatal(err)
			}
			cat.Root[0] ^= 1
			if err := db.Set(catalogKey(p), cat.marshal(), pebble.Sync); err != nil {
				t.Fatal(err)
			}
			db.Close()
			return openEngine(t, dir)
		}, ProblemRoot, "root"},
		{"chain rewritten with its tree", func(t *testing.T, e *Engine, p Partition) *Engine {
			rewritePartition(t, e, p, func(leaf uint64, en *trailv1.Entry) bool {
				if leaf != 120 {
					return false
				}
				en.PrevLeafHash = make([]byte, 32)
				return true
			})
			return e
		}, ProblemChain, "leaf 120"},
		{"link rewritten with its tree", func(t *testing.T, e *Engine, p Partition) *Engine {
			rewritePartition(t, e, p, func(leaf uint64, en *trailv1.Entry) bool {
				if leaf != 0 {
					return false
				}
				en.PrevPartition.Size--
				return true
			})
			return e
		}, ProblemLink, "leaf 0"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := openEngine(t, t.TempDir())
			_, decP := fillTwoMonths(t, e, 300)
			e = c.damage(t, e, decP)
			assertProblem(t, e, decP, c.kind, c.where)
		})
	}
}

func truncateHashes(t *testing.T, e *Engine, p Partition, nodes uint64) {
	t.Helper()
	if err := e.openPartitionOf(p).files.hashes.Truncate(int64(nodes) * merkle.HashSize); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyDetectsCorruptSegment(t *testing.T) {
	for _, reopen := range []bool{false, true} {
		t.Run(fmt.Sprintf("reopen=%v", reopen), func(t *testing.T) {
			dir := t.TempDir()
			e := openEngine(t, dir)
			novP, _ := fillTwoMonths(t, e, 300)
			sealNovember(t, e, novP)
			verifyOK(t, e, novP) // the segment reader is now cached
			flipSegmentByte(t, dir, novP)
			if reopen {
				e.Close()
				e = openEngine(t, dir)
			}
			assertProblem(t, e, novP, ProblemSegment, "segment")
		})
	}
}

func TestVerifyDroppedAndMissingSegments(t *testing.T) {
	dir := t.TempDir()
	e := openEngine(t, dir)
	ctx := context.Background()
	novP, decP := fillTwoMonths(t, e, 40)
	sealNovember(t, e, novP)
	all := make([]uint64, 40)
	for i := range all {
		all[i] = uint64(i)
	}
	if _, err := e.Prune(ctx, e.AppliedIndex()+1, novP, all); err != nil {
		t.Fatal(err)
	}
	if err := e.DropSegment(ctx, e.AppliedIndex()+1, novP); err != nil {
		t.Fatal(err)
	}
	if res := verifyOK(t, e, novP); !res.Dropped || res.Size != 40 || res.Hashed != 0 {
		t.Fatalf("dropped: %+v", res)
	}
	verifyOK(t, e, decP) // leaf 0 links to a month whose leaves are gone

	// A segment that vanished without a drop is a problem.
	other := Partition{Tenant: "other", Month: novP.Month}
	applyOK(t, e, e.AppliedIndex()+1, nov, event("other", "o-1"), event("other", "o-2"))
	sealNovember(t, e, other)
	e.Close()
	if err := os.Remove(mustSegmentPath(t, dir, other)); err != nil {
		t.Fatal(err)
	}
	e = openEngine(t, dir)
	assertProblem(t, e, other, ProblemSegment, "segment")
}

func assertProblem(t *testing.T, e *Engine, p Partition, kind ProblemKind, where string) {
	t.Helper()
	res, err := e.VerifyPartition(context.Background(), p, VerifyOptions{})
	if err != nil {
		t.Fatalf("VerifyPartition: %v", err)
	}
	if res.OK() {
		t.Fatalf("damage not detected: %+v", res)
	}
	pr := res.Problem
	if pr.Kind != kind || pr.Where != where || pr.Partition != p {
		t.Fatalf("problem %s %q in %s (%v), want %s %q", pr.Kind, pr.Where, pr.Partition, pr, kind, where)
	}
	if !errors.Is(pr, ErrCorrupt) || !strings.Contains(pr.Error(), where) {
		t.Fatalf("problem error %q", pr)
	}
}

func flipEntryByte(t *testing.T, e *Engine, p Partition, leaf uint64) {
	t.Helper()
	se, err := e.Entry(context.Background(), p, leaf)
	if err != nil {
		t.Fatal(err)
	}
	se.Data[len(se.Data)/2] ^= 0x40
	overwriteEntry(t, e, p, leaf, se.Data)
}

// rewritePartition is the tamperer who can write storage: it changes the
// entries tamper returns true for, re-encodes them, and rebuilds the
// partition's files and root to match, so that only the chain can give it
// away.
func rewritePartition(t *testing.T, e *Engine, p Partition, tamper func(leaf uint64, en *trailv1.Entry) bool) {
	t.Helper()
	ctx := context.Background()
	info, err := e.PartitionInfo(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	op := e.openPartitionOf(p)
	var entries, offsets, hashes []byte
	app, _ := merkle.NewAppender(0, nil)
	for leaf := range info.Size {
		data, err := op.files.entry(leaf)
		if err != nil {
			t.Fatal(err)
		}
		if en := decodeEntry(t, data); tamper(leaf, en) {
			if data, err = (proto.MarshalOptions{Deterministic: true}).Marshal(en); err != nil {
				t.Fatal(err)
			}
		}
		entries = append(entries, data...)
		offsets = binary.BigEndian.AppendUint64(offsets, uint64(len(entries)))
		app.Append(merkle.LeafHash(data), func(_ merkle.NodeID, h merkle.Hash) { hashes = append(hashes, h[:]...) })
	}
	for _, f := range []*os.File{op.files.entries, op.files.offsets, op.files.hashes} {
		if err := f.Truncate(0); err != nil {
			t.Fatal(err)
		}
	}
	if err := op.files.write(lengths{}, entries, offsets, hashes); err != nil {
		t.Fatal(err)
	}
	e.writeMu.Lock()
	op.app, op.at = app, lengthsAt(app.Size(), int64(len(entries)))
	op.cat.Root = app.Root()
	op.publish()
	e.writeMu.Unlock()
	if after, _ := e.PartitionInfo(ctx, p); after.Root == info.Root {
		t.Fatal("rewrite did not change the root")
	}
}

func TestVerifyResume(t *testing.T) {
	e := openEngine(t, t.TempDir())
	ctx := context.Background()
	_, decP := fillTwoMonths(t, e, 300)
	first := verifyOK(t, e, decP)
	dec := time.Date(2026, 12, 20, 0, 0, 0, 0, time.UTC)
	for i := range 3 {
		var evs []*trailv1.Event
		for k := range 40 {
			evs = append(evs, event("acme", fmt.Sprintf("more-%d-%d", i, k)))
		}
		applyOK(t, e, e.AppliedIndex()+1, dec, evs...)
	}
	res, err := e.VerifyPartition(ctx, decP, VerifyOptions{Resume: &first})
	if err != nil || !res.OK() || res.From != 300 || res.Hashed != 120 || res.Size != 420 {
		t.Fatalf("resumed: %+v, %v", res, err)
	}
	if info, _ := e.PartitionInfo(ctx, decP); res.Root != info.Root {
		t.Fatalf("resumed root %s, partition %s", res.Root, info.Root)
	}
	// Nothing new: nothing hashed, the root still compared.
	if again, err := e.VerifyPartition(ctx, decP, VerifyOptions{Resume: &res}); err != nil || !again.OK() || again.Hashed != 0 {
		t.Fatalf("resumed at the same size: %+v, %v", again, err)
	}
	// A result that does not fit is ignored.
	bogus := first
	bogus.Root[0] ^= 1
	if full, err := e.VerifyPartition(ctx, decP, VerifyOptions{Resume: &bogus}); err != nil || !full.OK() || full.From != 0 || full.Hashed != 420 {
		t.Fatalf("bogus resume: %+v, %v", full, err)
	}
	// New damage is found by a resumed run, old damage only by a full one.
	flipEntryByte(t, e, decP, 350)
	if r, _ := e.VerifyPartition(ctx, decP, VerifyOptions{Resume: &first}); r.OK() || r.Problem.Where != "leaf 350" {
		t.Fatalf("resumed run missed new damage: %+v", r)
	}
	if r, _ := e.VerifyPartition(ctx, decP, VerifyOptions{Resume: &res}); !r.OK() {
		t.Fatalf("resumed past the damage: %+v", r)
	}
	assertProblem(t, e, decP, ProblemEntry, "leaf 350")
}

func TestVerifyUsesSizeAtStart(t *testing.T) {
	e := openEngine(t, t.TempDir())
	ctx := context.Background()
	_, decP := fillTwoMonths(t, e, 300)
	before, _ := e.PartitionInfo(ctx, decP)
	var wg sync.WaitGroup
	wg.Add(1)
	var res VerifyResult
	var err error
	lim := &slowLimiter{started: make(chan struct{}), pause: 50 * time.Millisecond}
	go func() {
		defer wg.Done()
		// About 300 ms: the appends below land while it runs.
		res, err = e.VerifyPartition(ctx, decP, VerifyOptions{Limiter: lim, Batch: 50})
	}()
	<-lim.started
	dec := time.Date(2026, 12, 20, 0, 0, 0, 0, time.UTC)
	for i := range 100 {
		applyOK(t, e, e.AppliedIndex()+1, dec, event("acme", fmt.Sprintf("late-%d", i)))
	}
	wg.Wait()
	if err != nil || !res.OK() || res.Size != before.Size || res.Root != before.Root {
		t.Fatalf("verify during appends: %+v, %v (partition was %d %s)", res, err, before.Size, before.Root)
	}
	if res := verifyOK(t, e, decP); res.Size != before.Size+100 {
		t.Fatalf("after appends: size %d", res.Size)
	}
}

// slowLimiter pauses before every batch and says when the first came.
type slowLimiter struct {
	once    sync.Once
	started chan struct{}
	pause   time.Duration
}

func (l *slowLimiter) WaitN(ctx context.Context, n int) error {
	l.once.Do(func() { close(l.started) })
	time.Sleep(l.pause)
	return ctx.Err()
}

func TestVerifyRateLimit(t *testing.T) {
	e := openEngine(t, t.TempDir())
	_, decP := fillTwoMonths(t, e, 300)
	cases := []struct {
		name    string
		opts    VerifyOptions
		atLeast time.Duration
	}{
		// 300 entries in batches of 50: five waits of 50 ms after the first.
		{"rate", VerifyOptions{Rate: 1000, Batch: 50}, 240 * time.Millisecond},
		{"shared limiter", VerifyOptions{Limiter: NewRateLimiter(2000), Batch: 100}, 90 * time.Millisecond},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			res, err := e.VerifyPartition(context.Background(), decP, c.opts)
			if err != nil || !res.OK() {
				t.Fatalf("%+v %v", res, err)
			}
			if d := time.Since(start); d < c.atLeast {
				t.Fatalf("took %s, want at least %s", d, c.atLeast)
			}
		})
	}
	// A cancelled verification is an error, not a problem.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	res, err := e.VerifyPartition(ctx, decP, VerifyOptions{Rate: 100, Batch: 10})
	if !errors.Is(err, context.DeadlineExceeded) || res.Problem != nil {
		t.Fatalf("cancelled: %+v, %v", res, err)
	}
}

func TestVerifyUnknownPartition(t *testing.T) {
	e := openEngine(t, t.TempDir())
	if _, err := e.VerifyPartition(context.Background(), mustPartition(t, "ghost", "2026-11"), VerifyOptions{}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown partition: %v", err)
	}
}

func BenchmarkVerifyPartition(b *testing.B) {
	for _, sealed := range []bool{false, true} {
		b.Run(fmt.Sprintf("sealed=%v", sealed), func(b *testing.B) {
			e := openEngine(b, b.TempDir())
			ctx := context.Background()
			pool := eventPool(1024)
			const n = 20_000
			for i := 0; i < n; i += 1000 {
				batch := &Batch{Index: uint64(i/1000 + 1), Time: nov.Add(time.Duration(i) * time.Second)}
				for j := range 1000 {
					ev := proto.Clone(pool[(i+j)%len(pool)]).(*trailv1.Event)
					ev.TenantId, ev.EventId = "bench", fmt.Sprintf("e-%d", i+j)
					batch.Events = append(batch.Events, ev)
				}
				if _, err := e.Apply(ctx, batch); err != nil {
					b.Fatal(err)
				}
			}
			p := Partition{Tenant: "bench", Month: MonthOf(nov)}
			if sealed {
				if err := e.Seal(ctx, e.AppliedIndex()+1, p, nov.AddDate(0, 1, 0)); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			var hashed uint64
			for b.Loop() {
				res, err := e.VerifyPartition(ctx, p, VerifyOptions{})
				if err != nil || !res.OK() {
					b.Fatalf("%+v %v", res, err)
				}
				hashed += res.Hashed
			}
			b.ReportMetric(float64(hashed)/b.Elapsed().Seconds(), "entries/s")
		})
	}
}
