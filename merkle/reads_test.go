package merkle

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"testing"
)

// countingReader is a synthetic NodeReader: it derives each node's hash from
// its id, so proofs over huge trees need no real tree. It counts calls and
// nodes, and rejects any id that is not a perfect subtree inside [0, size).
type countingReader struct {
	size  uint64
	calls int
	nodes int
}

func (r *countingReader) ReadNodes(_ context.Context, ids []NodeID) ([]Hash, error) {
	r.calls++
	r.nodes += len(ids)
	out := make([]Hash, len(ids))
	for i, id := range ids {
		if id.Level >= 64 || id.Index >= r.size>>id.Level {
			return nil, fmt.Errorf("node %s is not a perfect subtree of a tree of size %d", id, r.size)
		}
		var b [9]byte
		b[0] = id.Level
		binary.BigEndian.PutUint64(b[1:], id.Index)
		out[i] = sha256.Sum256(b[:])
	}
	return out, nil
}

func (r *countingReader) reset() { r.calls, r.nodes = 0, 0 }

// maxReads is the bound the tests hold proofs to: about two nodes per level.
func maxReads(size uint64) int {
	ceilLog2 := bits.Len64(size - 1) // ceil(log2 size) for size >= 1
	return 2*ceilLog2 + 2
}

func TestProofReadsAreLogarithmic(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(9, 10))
	sizes := []uint64{1, 2, 3, 7, 8, 9, 255, 256, 257, 1000, 65535, 65536, 65537, 1<<20 - 1, 1 << 20}
	for range 40 {
		sizes = append(sizes, 1+rng.Uint64N(1<<20))
	}
	for _, size := range sizes {
		r := &countingReader{size: size}
		limit := maxReads(size)
		indexes := []uint64{0, size / 2, size - 1, rng.Uint64N(size)}
		for _, index := range indexes {
			r.reset()
			if _, err := InclusionProof(ctx, index, size, r); err != nil {
				t.Fatalf("InclusionProof(%d, %d): %v", index, size, err)
			}
			if r.nodes > limit || r.calls > 1 {
				t.Errorf("InclusionProof(%d, %d) read %d nodes in %d calls, want <= %d in 1", index, size, r.nodes, r.calls, limit)
			}
		}
		// Consistency reads nodes of the larger tree; size1 ranges over
		// the same picks (index+1 is a valid size1).
		for _, index := range indexes {
			size1 := index + 1
			r.reset()
			if _, err := ConsistencyProof(ctx, size1, size, r); err != nil {
				t.Fatalf("ConsistencyProof(%d, %d): %v", size1, size, err)
			}
			if r.nodes > limit || r.calls > 1 {
				t.Errorf("ConsistencyProof(%d, %d) read %d nodes in %d calls, want <= %d in 1", size1, size, r.nodes, r.calls, limit)
			}
		}
		r.reset()
		if _, err := RootAt(ctx, size, r); err != nil {
			t.Fatalf("RootAt(%d): %v", size, err)
		}
		if want := bits.OnesCount64(size); r.nodes != want || r.calls != 1 {
			t.Errorf("RootAt(%d) read %d nodes in %d calls, want %d in 1", size, r.nodes, r.calls, want)
		}
	}
}

// TestProofReadsWorstCase walks every index of a few awkward sizes, where
// the composite right-border node is largest.
func TestProofReadsWorstCase(t *testing.T) {
	ctx := context.Background()
	for _, size := range []uint64{1<<12 - 1, 1<<12 + 1, 0b101010101010} {
		r := &countingReader{size: size}
		limit := maxReads(size)
		for index := range size {
			r.reset()
			if _, err := InclusionProof(ctx, index, size, r); err != nil {
				t.Fatal(err)
			}
			if r.nodes > limit {
				t.Fatalf("InclusionProof(%d, %d) read %d nodes, want <= %d", index, size, r.nodes, limit)
			}
			r.reset()
			if _, err := ConsistencyProof(ctx, index+1, size, r); err != nil {
				t.Fatal(err)
			}
			if r.nodes > limit {
				t.Fatalf("ConsistencyProof(%d, %d) read %d nodes, want <= %d", index+1, size, r.nodes, limit)
			}
		}
	}
}
