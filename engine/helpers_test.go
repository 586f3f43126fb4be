package engine

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/trailaudit/trail/internal/eventgen"
	"github.com/trailaudit/trail/merkle"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

func openEngine(t testing.TB, dir string) *Engine {
	t.Helper()
	cache := int64(8 << 20)
	if _, bench := t.(*testing.B); bench {
		cache = 0 // the production default
	}
	e, err := Open(context.Background(), Options{Dir: dir, LogName: "test.trail", CacheBytes: cache})
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// event returns a minimal valid event.
func event(tenant, id string) *trailv1.Event {
	return &trailv1.Event{
		TenantId:   tenant,
		EventId:    id,
		Category:   trailv1.Category_CATEGORY_AUTHENTICATION,
		Action:     "user.login",
		Outcome:    trailv1.Outcome_OUTCOME_SUCCESS,
		Actor:      &trailv1.Actor{Id: "alice"},
		OccurredAt: timestamppb.New(time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)),
	}
}

var nov = time.Date(2026, 11, 10, 12, 0, 0, 0, time.UTC)

// applyOK applies events as one batch and fails the test on any error.
func applyOK(t testing.TB, e *Engine, index uint64, at time.Time, evs ...*trailv1.Event) []Receipt {
	t.Helper()
	res, err := e.Apply(context.Background(), &Batch{Index: index, Time: at, Events: evs})
	if err != nil {
		t.Fatalf("Apply(%d): %v", index, err)
	}
	out := make([]Receipt, len(res))
	for i, r := range res {
		if r.Err != nil {
			t.Fatalf("Apply(%d) event %d: %v", index, i, r.Err)
		}
		out[i] = r.Receipt
	}
	return out
}

// genBatches makes n batches of size events from a seeded generator.
func genBatches(seed uint64, n, size int, start time.Time, step time.Duration) []*Batch {
	g := eventgen.New(eventgen.Config{Seed: seed, Tenants: 3, TargetBytes: 300})
	out := make([]*Batch, n)
	for i := range out {
		b := &Batch{Index: uint64(i + 1), Time: start.Add(time.Duration(i) * step)}
		for range size {
			b.Events = append(b.Events, g.Next())
		}
		out[i] = b
	}
	return out
}

// checkPartition verifies every inclusion proof of p at its current size
// and a consistency proof from every earlier size, with transparency-dev's
// verifier, and returns the partition's info.
func checkPartition(t testing.TB, e *Engine, p Partition) PartitionInfo {
	t.Helper()
	ctx := context.Background()
	info, err := e.PartitionInfo(ctx, p)
	if err != nil {
		t.Fatalf("PartitionInfo(%s): %v", p, err)
	}
	for leaf := uint64(0); leaf < info.Size; leaf++ {
		se, err := e.Entry(ctx, p, leaf)
		if err != nil {
			t.Fatalf("Entry(%s, %d): %v", p, leaf, err)
		}
		pr, size, err := e.InclusionProof(ctx, p, leaf, 0)
		if err != nil {
			t.Fatalf("InclusionProof(%s, %d): %v", p, leaf, err)
		}
		if err := proof.VerifyInclusion(rfc6962.DefaultHasher, leaf, size, se.LeafHash[:], toBytes(pr), info.Root[:]); err != nil {
			t.Fatalf("%s leaf %d: transparency-dev rejects our inclusion proof: %v", p, leaf, err)
		}
		pe, err := e.ProveLeaf(ctx, p, leaf, 0)
		if err != nil {
			t.Fatalf("ProveLeaf(%s, %d): %v", p, leaf, err)
		}
		if !reflect.DeepEqual(pe, ProvedEntry{StoredEntry: se, Proof: pr, TreeSize: size}) {
			t.Fatalf("ProveLeaf(%s, %d) = %+v, want Entry and InclusionProof's %+v %v %d", p, leaf, pe, se, pr, size)
		}
	}
	for from := uint64(1); from < info.Size; from += 1 + from/3 {
		cp, err := e.Checkpoint(ctx, p, from)
		if err != nil {
			t.Fatalf("Checkpoint(%s, %d): %v", p, from, err)
		}
		pr, err := e.ConsistencyProof(ctx, p, from, info.Size)
		if err != nil {
			t.Fatalf("ConsistencyProof(%s, %d, %d): %v", p, from, info.Size, err)
		}
		if err := proof.VerifyConsistency(rfc6962.DefaultHasher, from, info.Size, toBytes(pr), cp.Root[:], info.Root[:]); err != nil {
			t.Fatalf("%s %d..%d: transparency-dev rejects our consistency proof: %v", p, from, info.Size, err)
		}
	}
	return info
}

// checkPartitionSample is checkPartition for large partitions: proofs of
// the first, last and a spread of leaves, and consistency from a few sizes.
func checkPartitionSample(t testing.TB, e *Engine, p Partition) {
	t.Helper()
	ctx := context.Background()
	info, err := e.PartitionInfo(ctx, p)
	if err != nil {
		t.Fatalf("PartitionInfo(%s): %v", p, err)
	}
	if info.Size == 0 {
		return
	}
	step := max(1, info.Size/20)
	for leaf := uint64(0); leaf < info.Size; leaf += step {
		for _, l := range []uint64{leaf, info.Size - 1} {
			se, err := e.Entry(ctx, p, l)
			if err != nil {
				t.Fatalf("Entry(%s, %d): %v", p, l, err)
			}
			pr, size, err := e.InclusionProof(ctx, p, l, 0)
			if err != nil {
				t.Fatalf("InclusionProof(%s, %d): %v", p, l, err)
			}
			if err := proof.VerifyInclusion(rfc6962.DefaultHasher, l, size, se.LeafHash[:], toBytes(pr), info.Root[:]); err != nil {
				t.Fatalf("%s leaf %d: inclusion proof rejected: %v", p, l, err)
			}
		}
		if leaf > 0 {
			cp, err := e.Checkpoint(ctx, p, leaf)
			if err != nil {
				t.Fatal(err)
			}
			pr, err := e.ConsistencyProof(ctx, p, leaf, info.Size)
			if err != nil {
				t.Fatal(err)
			}
			if err := proof.VerifyConsistency(rfc6962.DefaultHasher, leaf, info.Size, toBytes(pr), cp.Root[:], info.Root[:]); err != nil {
				t.Fatalf("%s %d..%d: consistency proof rejected: %v", p, leaf, info.Size, err)
			}
		}
	}
}

func toBytes(hs []merkle.Hash) [][]byte {
	out := make([][]byte, len(hs))
	for i := range hs {
		out[i] = hs[i][:]
	}
	return out
}

// verifyTenantChain walks every partition of tenant oldest first and checks
// the linear chain, partition links, and each partition's root rebuilt from
// its leaf hashes.
func verifyTenantChain(t testing.TB, e *Engine, tenant string) uint64 {
	t.Helper()
	ctx := context.Background()
	parts, err := e.Partitions(ctx, tenant)
	if err != nil {
		t.Fatalf("Partitions(%s): %v", tenant, err)
	}
	chain := merkle.NewChainVerifier(merkle.Hash{}, 0)
	var total uint64
	var prev *PartitionInfo
	for i := range parts {
		pi := parts[i]
		app, _ := merkle.NewAppender(0, nil)
		for leaf := uint64(0); leaf < pi.Size; leaf++ {
			se, err := e.Entry(ctx, pi.Partition, leaf)
			if err != nil {
				t.Fatalf("Entry(%s, %d): %v", pi.Partition, leaf, err)
			}
			app.Append(se.LeafHash, nil)
			if se.Pruned {
				chain = merkle.NewChainVerifier(se.LeafHash, total+1)
				total++
				continue
			}
			en := decodeEntry(t, se.Data)
			if err := chain.Next(se.LeafHash, merkle.Hash(en.PrevLeafHash)); err != nil {
				t.Fatalf("%s leaf %d: %v", pi.Partition, leaf, err)
			}
			if leaf == 0 && prev != nil {
				l := en.GetPrevPartition()
				if l.GetPartition() != prev.Month.String() || l.GetSize() != prev.Size || merkle.Hash(l.GetRoot()) != prev.Root {
					t.Fatalf("%s leaf 0 link %v, previous partition %s size %d root %s", pi.Partition, l, prev.Month, prev.Size, prev.Root)
				}
			}
			if en.GetLeafIndex() != leaf || en.GetPartition() != pi.Month.String() {
				t.Fatalf("%s leaf %d: entry says leaf %d partition %s", pi.Partition, leaf, en.GetLeafIndex(), en.GetPartition())
			}
			total++
		}
		if app.Root() != pi.Root {
			t.Fatalf("%s: root rebuilt from leaves %s, stored %s", pi.Partition, app.Root(), pi.Root)
		}
		prev = &pi
	}
	return total
}

func mustPartition(t testing.TB, tenant, month string) Partition {
	t.Helper()
	m, err := ParseMonth(month)
	if err != nil {
		t.Fatal(err)
	}
	return Partition{Tenant: tenant, Month: m}
}

func ids(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%d", prefix, i)
	}
	return out
}

func decodeEntry(t testing.TB, b []byte) *trailv1.Entry {
	t.Helper()
	en := new(trailv1.Entry)
	if err := proto.Unmarshal(b, en); err != nil {
		t.Fatalf("decode entry: %v", err)
	}
	return en
}

func openRawPebble(t testing.TB, dir string) *pebble.DB {
	t.Helper()
	quiet := pebbleLogger{slog.New(slog.NewTextHandler(io.Discard, nil))}
	db, err := pebble.Open(filepath.Join(dir, "db"), &pebble.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// dec5 is a time after November 2026 has ended: November may be sealed.
var dec5 = time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)

// sealNovember seals p, a November partition, as the next command.
func sealNovember(t testing.TB, e *Engine, p Partition) {
	t.Helper()
	if err := e.Seal(context.Background(), e.AppliedIndex()+1, p, dec5); err != nil {
		t.Fatalf("seal %s: %v", p, err)
	}
}

// flipSegmentByte changes one byte in the middle of p's segment file.
func flipSegmentByte(t testing.TB, dir string, p Partition) {
	t.Helper()
	path := mustSegmentPath(t, dir, p)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/3] ^= 1
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// overwriteEntry replaces the bytes of leaf of open partition p in its
// entries file with b, which must have the entry's length: damage, as a
// disk or an operator could do it.
func overwriteEntry(t testing.TB, e *Engine, p Partition, leaf uint64, b []byte) {
	t.Helper()
	op := e.openPartitionOf(p)
	if op == nil {
		t.Fatalf("%s is not open", p)
	}
	var start int64
	if leaf > 0 {
		end, err := op.files.entriesEnd(leaf)
		if err != nil {
			t.Fatal(err)
		}
		start = end
	}
	if _, err := op.files.entries.WriteAt(b, start); err != nil {
		t.Fatal(err)
	}
}

// overwriteNode replaces a stored node of open partition p.
func overwriteNode(t testing.TB, e *Engine, p Partition, id merkle.NodeID, h merkle.Hash) {
	t.Helper()
	op := e.openPartitionOf(p)
	if op == nil {
		t.Fatalf("%s is not open", p)
	}
	if _, err := op.files.hashes.WriteAt(h[:], int64(nodePosition(id))*merkle.HashSize); err != nil {
		t.Fatal(err)
	}
}

func dirExists(dir string) bool {
	_, err := os.Stat(dir)
	return err == nil
}

func mustSegmentPath(t testing.TB, dir string, p Partition) string {
	t.Helper()
	path, err := segmentPath(dir, p)
	if err != nil {
		t.Fatal(err)
	}
	return path
}
