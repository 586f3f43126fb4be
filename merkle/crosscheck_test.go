package merkle

import (
	"context"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
)

// Cross-checks against github.com/transparency-dev/merkle: roots, node
// visits, and proofs in both directions, for proofs generated from an
// in-memory tree and from encoded hash tiles.

// checkInclusion generates the inclusion proof of index in size from every
// reader, and checks that it equals the reference proof and verifies both
// with the reference and with VerifyInclusion.
func checkInclusion(t *testing.T, index, size uint64, leaf, root Hash, readers map[string]NodeReader) {
	t.Helper()
	ctx := context.Background()
	want := refInclusion(t, index, size, readers["memory"])
	if err := VerifyInclusion(index, size, leaf, want, root); err != nil {
		t.Fatalf("reference inclusion proof %d/%d rejected: %v", index, size, err)
	}
	for name, r := range readers {
		got, err := InclusionProof(ctx, index, size, r)
		if err != nil {
			t.Fatalf("%s: InclusionProof(%d, %d): %v", name, index, size, err)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("%s: InclusionProof(%d, %d) = %v, reference %v", name, index, size, got, want)
		}
		if err := refVerifyInclusion(index, size, leaf, got, root); err != nil {
			t.Fatalf("%s: reference rejects inclusion proof %d/%d: %v", name, index, size, err)
		}
	}
}

// checkConsistency is checkInclusion for consistency proofs.
func checkConsistency(t *testing.T, size1, size2 uint64, root1, root2 Hash, readers map[string]NodeReader) {
	t.Helper()
	ctx := context.Background()
	want := refConsistency(t, size1, size2, readers["memory"])
	if err := VerifyConsistency(size1, size2, root1, root2, want); err != nil {
		t.Fatalf("reference consistency proof %d->%d rejected: %v", size1, size2, err)
	}
	for name, r := range readers {
		got, err := ConsistencyProof(ctx, size1, size2, r)
		if err != nil {
			t.Fatalf("%s: ConsistencyProof(%d, %d): %v", name, size1, size2, err)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("%s: ConsistencyProof(%d, %d) = %v, reference %v", name, size1, size2, got, want)
		}
		if err := refVerifyConsistency(size1, size2, root1, root2, got); err != nil {
			t.Fatalf("%s: reference rejects consistency proof %d->%d: %v", name, size1, size2, err)
		}
	}
}

// refRoots returns the reference root at every size 0..len(leaves), and
// checks that Appender visits the same nodes as the reference compact range.
func refRoots(t *testing.T, leaves []Hash) []Hash {
	t.Helper()
	rf := compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}
	ref := rf.NewEmptyRange(0)
	app, _ := NewAppender(0, nil)
	roots := []Hash{Hash(rfc6962.DefaultHasher.EmptyRoot())}
	type visit struct {
		id NodeID
		h  Hash
	}
	var got, want []visit
	for _, l := range leaves {
		got, want = got[:0], want[:0]
		app.Append(l, func(id NodeID, h Hash) { got = append(got, visit{id, h}) })
		err := ref.Append(slices.Clone(l[:]), func(id compact.NodeID, h []byte) {
			want = append(want, visit{NodeID{Level: uint8(id.Level), Index: id.Index}, Hash(h)})
		})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("size %d: visits %v, reference %v", app.Size(), got, want)
		}
		r, err := ref.GetRootHash(nil)
		if err != nil {
			t.Fatal(err)
		}
		roots = append(roots, Hash(r))
		if app.Root() != Hash(r) {
			t.Fatalf("size %d: root %s, reference %x", app.Size(), app.Root(), r)
		}
	}
	return roots
}

func TestCrossCheckSmallTreesExhaustive(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const n = 70 // every tree shape up to 64 leaves, and a few more
	leaves := randomLeaves(rng, n)
	roots := refRoots(t, leaves)
	tiles, _ := buildTiles(t, rng, leaves, 5)
	readers := map[string]NodeReader{"memory": NewMemoryNodes(leaves), "tiles": tiles, "tile-bytes": tileBytes{tiles}}
	for size := uint64(1); size <= n; size++ {
		for index := range size {
			checkInclusion(t, index, size, leaves[index], roots[size], readers)
		}
		for size1 := range size + 1 {
			checkConsistency(t, size1, size, roots[size1], roots[size], readers)
		}
	}
}

func TestCrossCheckRandomTrees(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	ctx := context.Background()
	for _, n := range []int{1, 255, 256, 257, 1 + rng.IntN(3000), 4096 + rng.IntN(512)} {
		leaves := randomLeaves(rng, n)
		roots := refRoots(t, leaves)
		tiles, app := buildTiles(t, rng, leaves, 64)
		mem := NewMemoryNodes(leaves)
		readers := map[string]NodeReader{"memory": mem, "tiles": tiles, "tile-bytes": tileBytes{tiles}}
		if app.Root() != roots[n] || mem.Root() != roots[n] {
			t.Fatalf("n=%d: roots differ", n)
		}
		for size := range uint64(n) + 1 {
			for name, r := range readers {
				got, err := RootAt(ctx, size, r)
				if err != nil || got != roots[size] {
					t.Fatalf("n=%d %s: RootAt(%d) = %s, %v, want %s", n, name, size, got, err, roots[size])
				}
			}
		}
		for range 200 {
			size := 1 + rng.Uint64N(uint64(n))
			index := rng.Uint64N(size)
			checkInclusion(t, index, size, leaves[index], roots[size], readers)
			size1 := rng.Uint64N(size + 1)
			checkConsistency(t, size1, size, roots[size1], roots[size], readers)
		}
		// The latest size and the edges are where off-by-ones live.
		size := uint64(n)
		checkInclusion(t, 0, size, leaves[0], roots[size], readers)
		checkInclusion(t, size-1, size, leaves[size-1], roots[size], readers)
		checkConsistency(t, 1, size, roots[1], roots[size], readers)
		checkConsistency(t, size-1, size, roots[size-1], roots[size], readers)
	}
}

// TestCrossCheckThreeTileLevels uses a tree tall enough to need tiles at
// levels 0, 1 and 2, sampling proofs and roots.
func TestCrossCheckThreeTileLevels(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a tree of 70000 leaves")
	}
	rng := rand.New(rand.NewPCG(7, 8))
	ctx := context.Background()
	n := 1<<16 + 1 + rng.IntN(5000)
	leaves := randomLeaves(rng, n)
	roots := refRoots(t, leaves)
	tiles, _ := buildTiles(t, rng, leaves, 500)
	readers := map[string]NodeReader{"memory": NewMemoryNodes(leaves), "tiles": tiles, "tile-bytes": tileBytes{tiles}}
	if _, ok := tiles.enc[TileID{Level: 2, Index: 0}]; !ok {
		t.Fatal("no level-2 tile")
	}
	for range 100 {
		size := 1 + rng.Uint64N(uint64(n))
		index := rng.Uint64N(size)
		checkInclusion(t, index, size, leaves[index], roots[size], readers)
		size1 := rng.Uint64N(size + 1)
		checkConsistency(t, size1, size, roots[size1], roots[size], readers)
		got, err := RootAt(ctx, size, tiles)
		if err != nil || got != roots[size] {
			t.Fatalf("RootAt(%d) = %s, %v, want %s", size, got, err, roots[size])
		}
	}
}

// TestAppenderResume checks that an Appender rebuilt from a saved size and
// right edge continues exactly like one that never stopped.
func TestAppenderResume(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	leaves := randomLeaves(rng, 2000)
	whole, _ := NewAppender(0, nil)
	resumed, _ := NewAppender(0, nil)
	type visit struct {
		id NodeID
		h  Hash
	}
	var a, b []visit
	for i, l := range leaves {
		if rng.IntN(10) == 0 {
			size, edge := resumed.Size(), resumed.RightEdge()
			var err error
			if resumed, err = NewAppender(size, edge); err != nil {
				t.Fatalf("leaf %d: %v", i, err)
			}
			edge[0] = Hash{} // RightEdge returns a copy; NewAppender copies too
			if resumed.Root() != whole.Root() {
				t.Fatalf("leaf %d: resumed root %s, want %s", i, resumed.Root(), whole.Root())
			}
		}
		a, b = a[:0], b[:0]
		whole.Append(l, func(id NodeID, h Hash) { a = append(a, visit{id, h}) })
		resumed.Append(l, func(id NodeID, h Hash) { b = append(b, visit{id, h}) })
		if !slices.Equal(a, b) {
			t.Fatalf("leaf %d: visits %v, want %v", i, b, a)
		}
		if resumed.Root() != whole.Root() || resumed.Size() != whole.Size() {
			t.Fatalf("leaf %d: resumed appender diverged", i)
		}
	}
}

func TestNewAppenderErrors(t *testing.T) {
	h := LeafHash(nil)
	for _, tc := range []struct {
		size uint64
		edge []Hash
	}{
		{0, []Hash{h}},
		{1, nil},
		{3, []Hash{h}},
		{4, []Hash{h, h}},
		{1<<64 - 1, []Hash{h}},
	} {
		if _, err := NewAppender(tc.size, tc.edge); err == nil {
			t.Errorf("NewAppender(%d, %d hashes) succeeded", tc.size, len(tc.edge))
		}
	}
	if a, err := NewAppender(5, []Hash{h, h}); err != nil || a.Size() != 5 || len(a.RightEdge()) != 2 {
		t.Errorf("NewAppender(5, 2 hashes) = %v, %v", a, err)
	}
}

func TestAppenderRootEmpty(t *testing.T) {
	a, _ := NewAppender(0, nil)
	if a.Root() != EmptyRoot() || a.Size() != 0 || len(a.RightEdge()) != 0 {
		t.Errorf("empty appender: root %s size %d edge %v", a.Root(), a.Size(), a.RightEdge())
	}
	a.Append(LeafHash(nil), nil) // nil visit is allowed
	if a.Root() != LeafHash(nil) {
		t.Errorf("one leaf: root %s", a.Root())
	}
}
