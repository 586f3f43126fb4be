package merkle

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
)

const benchTreeSize = 1 << 20

// benchTree is a tree of benchTreeSize leaves stored as encoded tiles, built
// once for all benchmarks that need it.
var benchTree struct {
	once    sync.Once
	encoded *tileStore
	decoded decodedTiles
	leaves  []Hash
	root    Hash
}

func loadBenchTree(b *testing.B) {
	b.Helper()
	benchTree.once.Do(func() {
		rng := rand.New(rand.NewPCG(21, 22))
		leaves := randomLeaves(rng, benchTreeSize)
		store, app := buildTiles(b, rng, leaves, 1000)
		decoded := make(decodedTiles, len(store.enc))
		for id, enc := range store.enc {
			t, err := DecodeTile(enc)
			if err != nil {
				b.Fatal(err)
			}
			decoded[id] = t
		}
		benchTree.encoded, benchTree.decoded = store, decoded
		benchTree.leaves, benchTree.root = leaves, app.Root()
	})
	if benchTree.encoded == nil {
		b.Fatal("building the benchmark tree failed")
	}
}

// decodedTiles is a NodeReader over tiles decoded once, to time proof
// generation without tile decoding.
type decodedTiles map[TileID]*Tile

func (d decodedTiles) ReadNodes(_ context.Context, ids []NodeID) ([]Hash, error) {
	out := make([]Hash, len(ids))
	for i, id := range ids {
		tid, row, pos := TileForNode(id)
		t := d[tid]
		if t == nil {
			return nil, fmt.Errorf("tile %s: %w", tid, ErrNodeNotFound)
		}
		h, ok := t.Node(row, pos)
		if !ok {
			return nil, fmt.Errorf("node %s: %w", id, ErrNodeNotFound)
		}
		out[i] = h
	}
	return out, nil
}

func BenchmarkAppend(b *testing.B) {
	leaves := randomLeaves(rand.New(rand.NewPCG(23, 24)), 1<<16)
	b.Run("bare", func(b *testing.B) {
		app, _ := NewAppender(0, nil)
		i := 0
		for b.Loop() {
			app.Append(leaves[i%len(leaves)], nil)
			i++
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "leaves/s")
	})
	b.Run("tiles", func(b *testing.B) {
		// As the engine does: completed nodes go into cached tiles, and
		// full tiles leave the cache.
		app, _ := NewAppender(0, nil)
		tiles := make(map[TileID]*Tile)
		visit := func(id NodeID, h Hash) {
			tid, row, pos := TileForNode(id)
			t := tiles[tid]
			if t == nil {
				t = new(Tile)
				tiles[tid] = t
			}
			if err := t.Set(row, pos, h); err != nil {
				b.Fatal(err)
			}
			if row == TileHeight-1 && pos == 1 {
				delete(tiles, tid)
			}
		}
		i := 0
		for b.Loop() {
			app.Append(leaves[i%len(leaves)], visit)
			i++
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "leaves/s")
	})
}

func BenchmarkLeafHash512(b *testing.B) {
	data := make([]byte, 512)
	for i := range data {
		data[i] = byte(i)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		LeafHash(data)
	}
}

func BenchmarkNodeHash(b *testing.B) {
	l, r := LeafHash([]byte("l")), LeafHash([]byte("r"))
	b.ReportAllocs()
	for b.Loop() {
		l = NodeHash(l, r)
	}
}

// benchReaders returns the tile-backed readers to time proofs with.
func benchReaders(b *testing.B) []struct {
	name string
	r    NodeReader
} {
	loadBenchTree(b)
	return []struct {
		name string
		r    NodeReader
	}{
		{"decoded", benchTree.decoded},
		{"encoded", benchTree.encoded},                 // decodes each tile it reads
		{"encoded-node", tileBytes{benchTree.encoded}}, // DecodeTileNode: reads only the nodes
	}
}

func BenchmarkInclusionProof(b *testing.B) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(25, 26))
	for _, rd := range benchReaders(b) {
		b.Run(rd.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := InclusionProof(ctx, rng.Uint64N(benchTreeSize), benchTreeSize, rd.r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkConsistencyProof(b *testing.B) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(27, 28))
	for _, rd := range benchReaders(b) {
		b.Run(rd.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ConsistencyProof(ctx, 1+rng.Uint64N(benchTreeSize-1), benchTreeSize, rd.r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkVerifyInclusion(b *testing.B) {
	loadBenchTree(b)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(29, 30))
	type tc struct {
		index uint64
		proof []Hash
	}
	cases := make([]tc, 256)
	for i := range cases {
		index := rng.Uint64N(benchTreeSize)
		proof, err := InclusionProof(ctx, index, benchTreeSize, benchTree.decoded)
		if err != nil {
			b.Fatal(err)
		}
		cases[i] = tc{index, proof}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		c := cases[i%len(cases)]
		if err := VerifyInclusion(c.index, benchTreeSize, benchTree.leaves[c.index], c.proof, benchTree.root); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkVerifyConsistency(b *testing.B) {
	loadBenchTree(b)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(31, 32))
	type tc struct {
		size1 uint64
		root1 Hash
		proof []Hash
	}
	cases := make([]tc, 256)
	for i := range cases {
		size1 := 1 + rng.Uint64N(benchTreeSize-1)
		proof, err1 := ConsistencyProof(ctx, size1, benchTreeSize, benchTree.decoded)
		root1, err2 := RootAt(ctx, size1, benchTree.decoded)
		if err1 != nil || err2 != nil {
			b.Fatal(err1, err2)
		}
		cases[i] = tc{size1, root1, proof}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		c := cases[i%len(cases)]
		if err := VerifyConsistency(c.size1, benchTreeSize, c.root1, benchTree.root, c.proof); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkTileEncodeDecode(b *testing.B) {
	tile := new(Tile)
	app, _ := NewAppender(0, nil)
	for _, l := range randomLeavesN(TileWidth) {
		app.Append(l, func(id NodeID, h Hash) {
			if tid, row, pos := TileForNode(id); tid == (TileID{}) {
				if err := tile.Set(row, pos, h); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	buf, err := tile.AppendBinary(nil)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		if buf, err = tile.AppendBinary(buf[:0]); err != nil {
			b.Fatal(err)
		}
		if _, err := DecodeTile(buf); err != nil {
			b.Fatal(err)
		}
	}
}
