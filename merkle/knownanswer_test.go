package merkle

import (
	"context"
	"errors"
	"slices"
	"testing"
)

// Known-answer tests against the RFC 6962 reference vectors in
// testdata/rfc6962.json.

func TestKnownHashes(t *testing.T) {
	v := loadVectors(t)
	if got, want := EmptyRoot(), mustHash(t, v.Roots[0]); got != want {
		t.Errorf("EmptyRoot() = %s, want %s", got, want)
	}
	for i, leaf := range v.Leaves {
		if got, want := LeafHash(mustHex(t, leaf)), mustHash(t, v.Nodes[0][i]); got != want {
			t.Errorf("LeafHash(%q) = %s, want %s", leaf, got, want)
		}
	}
	for level := 1; level < len(v.Nodes); level++ {
		for i, s := range v.Nodes[level] {
			left := mustHash(t, v.Nodes[level-1][2*i])
			right := mustHash(t, v.Nodes[level-1][2*i+1])
			if got, want := NodeHash(left, right), mustHash(t, s); got != want {
				t.Errorf("NodeHash of node %d/%d = %s, want %s", level, i, got, want)
			}
		}
	}
}

func TestKnownRoots(t *testing.T) {
	v := loadVectors(t)
	app, err := NewAppender(0, nil)
	if err != nil {
		t.Fatal(err)
	}
	mem := NewMemoryNodes(nil)
	for size := range len(v.Roots) {
		want := mustHash(t, v.Roots[size])
		if got := app.Root(); got != want {
			t.Errorf("size %d: Appender.Root() = %s, want %s", size, got, want)
		}
		if got := app.Root(); got != want { // Root must not change state
			t.Errorf("size %d: second Appender.Root() = %s, want %s", size, got, want)
		}
		got, err := RootAt(context.Background(), uint64(size), mem)
		if err != nil || got != want {
			t.Errorf("size %d: RootAt = %s, %v, want %s", size, got, err, want)
		}
		if size == len(v.Leaves) {
			break
		}
		leaf := LeafHash(mustHex(t, v.Leaves[size]))
		app.Append(leaf, func(id NodeID, h Hash) {
			if want := mustHash(t, v.Nodes[id.Level][id.Index]); h != want {
				t.Errorf("visit %s = %s, want %s", id, h, want)
			}
		})
		mem.Append(leaf)
	}
}

// proofError reports whether err is a rejection with one of the documented
// sentinels.
func proofError(err error) bool {
	return errors.Is(err, ErrInvalidProof) || errors.Is(err, ErrRootMismatch)
}

func TestKnownInclusion(t *testing.T) {
	v := loadVectors(t)
	var leaves []Hash
	for _, l := range v.Leaves {
		leaves = append(leaves, LeafHash(mustHex(t, l)))
	}
	for _, tc := range v.Inclusion {
		proof := mustHashes(t, tc.Proof)
		leaf := leaves[tc.Index]
		root := mustHash(t, v.Roots[tc.Size])

		got, err := InclusionProof(context.Background(), tc.Index, tc.Size, NewMemoryNodes(leaves))
		if err != nil || !slices.Equal(got, proof) {
			t.Errorf("InclusionProof(%d, %d) = %v, %v, want %v", tc.Index, tc.Size, got, err, proof)
		}
		if err := VerifyInclusion(tc.Index, tc.Size, leaf, proof, root); err != nil {
			t.Errorf("VerifyInclusion(%d, %d): %v", tc.Index, tc.Size, err)
		}

		for _, m := range inclusionMutations(tc.Index, tc.Size, leaf, proof, root) {
			err := VerifyInclusion(m.index, m.size, m.leaf, m.proof, m.root)
			if m.resized && refVerifyInclusion(m.index, m.size, m.leaf, m.proof, m.root) == nil {
				// Same path shape at another size: the root binds the
				// hashes, not the size (the signed checkpoint does).
				if err != nil {
					t.Errorf("inclusion %d/%d, %s: VerifyInclusion = %v, but the reference accepts it", tc.Index, tc.Size, m.name, err)
				}
				continue
			}
			if !proofError(err) {
				t.Errorf("inclusion %d/%d, %s: VerifyInclusion = %v, want rejection", tc.Index, tc.Size, m.name, err)
			}
		}
	}
}

type inclusionCase struct {
	name        string
	resized     bool // only the size changed
	index, size uint64
	leaf        Hash
	proof       []Hash
	root        Hash
}

// inclusionMutations returns variants of a valid inclusion proof. All must
// be rejected, except that a resized variant is accepted exactly when the
// reference accepts it: when the path has the same shape at both sizes, the
// RFC 9162 walk does the same hashing, so nothing in the proof can tell the
// sizes apart. The size is authenticated by the signed checkpoint instead.
func inclusionMutations(index, size uint64, leaf Hash, proof []Hash, root Hash) []inclusionCase {
	base := inclusionCase{index: index, size: size, leaf: leaf, proof: proof, root: root}
	var out []inclusionCase
	add := func(name string, f func(c *inclusionCase)) {
		c := base
		c.name = name
		c.proof = slices.Clone(proof)
		f(&c)
		out = append(out, c)
	}
	for i := range proof {
		for _, b := range []int{0, 17, 31} {
			add("flip byte of element", func(c *inclusionCase) { c.proof[i] = flip(c.proof[i], b) })
		}
	}
	add("flip leaf", func(c *inclusionCase) { c.leaf = flip(c.leaf, 3) })
	add("flip root", func(c *inclusionCase) { c.root = flip(c.root, 30) })
	add("index+1", func(c *inclusionCase) { c.index++ })
	add("index=size", func(c *inclusionCase) { c.index = c.size })
	add("index^1", func(c *inclusionCase) { c.index ^= 1 })
	if index > 0 {
		add("index-1", func(c *inclusionCase) { c.index-- })
	}
	add("size+1", func(c *inclusionCase) {
		c.resized = true
		c.size++
	})
	add("size*2", func(c *inclusionCase) {
		c.resized = true
		c.size *= 2
	})
	add("size-1", func(c *inclusionCase) {
		c.resized = true
		c.size--
	})
	add("size 0", func(c *inclusionCase) { c.size = 0 })
	if len(proof) > 0 {
		add("truncated", func(c *inclusionCase) { c.proof = c.proof[:len(c.proof)-1] })
		add("first element dropped", func(c *inclusionCase) { c.proof = c.proof[1:] })
		add("extended with copy", func(c *inclusionCase) { c.proof = append(c.proof, c.proof[0]) })
		add("swapped with leaf", func(c *inclusionCase) { c.leaf, c.proof[0] = c.proof[0], c.leaf })
	}
	if len(proof) > 1 {
		add("elements swapped", func(c *inclusionCase) { c.proof[0], c.proof[1] = c.proof[1], c.proof[0] })
	}
	add("extended with zero", func(c *inclusionCase) { c.proof = append(c.proof, Hash{}) })
	add("extended with root", func(c *inclusionCase) { c.proof = append(c.proof, c.root) })
	return out
}

func TestKnownConsistency(t *testing.T) {
	v := loadVectors(t)
	var leaves []Hash
	for _, l := range v.Leaves {
		leaves = append(leaves, LeafHash(mustHex(t, l)))
	}
	for _, tc := range v.Consistency {
		proof := mustHashes(t, tc.Proof)
		root1, root2 := mustHash(t, v.Roots[tc.Size1]), mustHash(t, v.Roots[tc.Size2])

		got, err := ConsistencyProof(context.Background(), tc.Size1, tc.Size2, NewMemoryNodes(leaves))
		if err != nil || !slices.Equal(got, proof) {
			t.Errorf("ConsistencyProof(%d, %d) = %v, %v, want %v", tc.Size1, tc.Size2, got, err, proof)
		}
		if err := VerifyConsistency(tc.Size1, tc.Size2, root1, root2, proof); err != nil {
			t.Errorf("VerifyConsistency(%d, %d): %v", tc.Size1, tc.Size2, err)
		}
		for _, m := range consistencyMutations(tc.Size1, tc.Size2, root1, root2, proof) {
			err := VerifyConsistency(m.size1, m.size2, m.root1, m.root2, m.proof)
			if m.resized && m.size1 != 0 && refVerifyConsistency(m.size1, m.size2, m.root1, m.root2, m.proof) == nil {
				if err != nil {
					t.Errorf("consistency %d->%d, %s: VerifyConsistency = %v, but the reference accepts it", tc.Size1, tc.Size2, m.name, err)
				}
				continue
			}
			if !proofError(err) {
				t.Errorf("consistency %d->%d, %s: VerifyConsistency = %v, want rejection", tc.Size1, tc.Size2, m.name, err)
			}
		}
	}
}

type consistencyCase struct {
	name         string
	resized      bool // only size2 changed
	size1, size2 uint64
	root1, root2 Hash
	proof        []Hash
}

// consistencyMutations returns variants of a valid consistency proof. All
// must be rejected, except resized ones the reference also accepts (see
// inclusionMutations).
func consistencyMutations(size1, size2 uint64, root1, root2 Hash, proof []Hash) []consistencyCase {
	base := consistencyCase{size1: size1, size2: size2, root1: root1, root2: root2}
	var out []consistencyCase
	add := func(name string, f func(c *consistencyCase)) {
		c := base
		c.name = name
		c.proof = slices.Clone(proof)
		f(&c)
		out = append(out, c)
	}
	for i := range proof {
		for _, b := range []int{0, 17, 31} {
			add("flip byte of element", func(c *consistencyCase) { c.proof[i] = flip(c.proof[i], b) })
		}
	}
	add("flip root1", func(c *consistencyCase) { c.root1 = flip(c.root1, 1) })
	add("flip root2", func(c *consistencyCase) { c.root2 = flip(c.root2, 2) })
	if root1 != root2 {
		add("roots swapped", func(c *consistencyCase) { c.root1, c.root2 = c.root2, c.root1 })
	}
	add("size1+1", func(c *consistencyCase) { c.size1++ })
	add("size1-1", func(c *consistencyCase) { c.size1-- })
	add("size2+1", func(c *consistencyCase) {
		c.resized = true
		c.size2++
	})
	add("size2*2", func(c *consistencyCase) {
		c.resized = true
		c.size2 *= 2
	})
	if size2 > size1 {
		add("size2-1", func(c *consistencyCase) {
			c.resized = true
			c.size2--
		})
	}
	add("size1>size2", func(c *consistencyCase) { c.size1 = c.size2 + 1 })
	if len(proof) > 0 {
		add("truncated", func(c *consistencyCase) { c.proof = c.proof[:len(c.proof)-1] })
		add("first element dropped", func(c *consistencyCase) { c.proof = c.proof[1:] })
		add("extended with copy", func(c *consistencyCase) { c.proof = append(c.proof, c.proof[0]) })
		add("empty", func(c *consistencyCase) { c.proof = nil })
	}
	if len(proof) > 1 {
		add("elements swapped", func(c *consistencyCase) { c.proof[0], c.proof[1] = c.proof[1], c.proof[0] })
	}
	add("extended with zero", func(c *consistencyCase) { c.proof = append(c.proof, Hash{}) })
	add("prefixed with root1", func(c *consistencyCase) { c.proof = append([]Hash{c.root1}, c.proof...) })
	return out
}

func TestVerifyEdgeCases(t *testing.T) {
	empty := EmptyRoot()
	leaf := LeafHash([]byte("x"))
	for _, tc := range []struct {
		name string
		err  error
		want error
	}{
		{"inclusion size 0", VerifyInclusion(0, 0, leaf, nil, empty), ErrInvalidProof},
		{"inclusion single leaf", VerifyInclusion(0, 1, leaf, nil, leaf), nil},
		{"inclusion single leaf wrong root", VerifyInclusion(0, 1, leaf, nil, empty), ErrRootMismatch},
		{"inclusion huge index", VerifyInclusion(1<<63, 1<<63+1, leaf, nil, leaf), ErrInvalidProof},
		{"consistency 0 to 0", VerifyConsistency(0, 0, empty, empty, nil), nil},
		{"consistency 0 to 0 bad root2", VerifyConsistency(0, 0, empty, leaf, nil), ErrRootMismatch},
		{"consistency 0 to 0 bad roots", VerifyConsistency(0, 0, leaf, leaf, nil), ErrRootMismatch},
		{"consistency 0 to 5", VerifyConsistency(0, 5, empty, leaf, nil), nil},
		{"consistency 0 to 5 bad root1", VerifyConsistency(0, 5, leaf, leaf, nil), ErrRootMismatch},
		{"consistency 0 to 5 non-empty proof", VerifyConsistency(0, 5, empty, leaf, []Hash{leaf}), ErrInvalidProof},
		{"consistency equal sizes", VerifyConsistency(3, 3, leaf, leaf, nil), nil},
		{"consistency equal sizes different roots", VerifyConsistency(3, 3, leaf, empty, nil), ErrRootMismatch},
		{"consistency equal sizes non-empty proof", VerifyConsistency(3, 3, leaf, leaf, []Hash{leaf}), ErrInvalidProof},
		{"consistency shrinking", VerifyConsistency(4, 3, leaf, leaf, nil), ErrInvalidProof},
		{"consistency empty proof", VerifyConsistency(3, 4, leaf, leaf, nil), ErrInvalidProof},
	} {
		if tc.want == nil && tc.err != nil || tc.want != nil && !errors.Is(tc.err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, tc.err, tc.want)
		}
	}
}

func TestProofArgumentErrors(t *testing.T) {
	ctx := context.Background()
	mem := NewMemoryNodes(randomLeavesN(5))
	if _, err := InclusionProof(ctx, 5, 5, mem); !errors.Is(err, ErrOutOfRange) {
		t.Errorf("InclusionProof(5, 5) = %v, want ErrOutOfRange", err)
	}
	if _, err := InclusionProof(ctx, 0, 0, mem); !errors.Is(err, ErrOutOfRange) {
		t.Errorf("InclusionProof(0, 0) = %v, want ErrOutOfRange", err)
	}
	if _, err := ConsistencyProof(ctx, 4, 3, mem); !errors.Is(err, ErrOutOfRange) {
		t.Errorf("ConsistencyProof(4, 3) = %v, want ErrOutOfRange", err)
	}
	for _, sizes := range [][2]uint64{{0, 5}, {5, 5}, {0, 0}} {
		p, err := ConsistencyProof(ctx, sizes[0], sizes[1], mem)
		if err != nil || p == nil || len(p) != 0 {
			t.Errorf("ConsistencyProof(%d, %d) = %v, %v, want empty proof", sizes[0], sizes[1], p, err)
		}
	}
	// A reader that does not hold the nodes: the tree is smaller than asked.
	if _, err := InclusionProof(ctx, 2, 9, mem); !errors.Is(err, ErrNodeNotFound) {
		t.Errorf("InclusionProof beyond the tree = %v, want ErrNodeNotFound", err)
	}
	if _, err := RootAt(ctx, 6, mem); !errors.Is(err, ErrNodeNotFound) {
		t.Errorf("RootAt beyond the tree = %v, want ErrNodeNotFound", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := InclusionProof(cancelled, 1, 5, mem); !errors.Is(err, context.Canceled) {
		t.Errorf("InclusionProof with cancelled context = %v, want context.Canceled", err)
	}
	if _, err := InclusionProof(ctx, 1, 5, shortReader{mem}); err == nil {
		t.Error("InclusionProof accepted a reader returning too few hashes")
	}
}

// shortReader drops the last hash a reader returns.
type shortReader struct{ r NodeReader }

func (s shortReader) ReadNodes(ctx context.Context, ids []NodeID) ([]Hash, error) {
	hs, err := s.r.ReadNodes(ctx, ids)
	if len(hs) > 0 {
		hs = hs[:len(hs)-1]
	}
	return hs, err
}

func randomLeavesN(n int) []Hash {
	hs := make([]Hash, n)
	for i := range hs {
		hs[i] = LeafHash([]byte{byte(i), byte(i >> 8), byte(i >> 16)})
	}
	return hs
}

func TestHashString(t *testing.T) {
	h := LeafHash(nil)
	if got, want := h.String(), "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"; got != want {
		t.Errorf("String() = %s, want %s", got, want)
	}
	back, err := ParseHash(h.String())
	if err != nil || back != h {
		t.Errorf("ParseHash(String()) = %s, %v", back, err)
	}
	for _, bad := range []string{"", "00", h.String() + "00", "zz" + h.String()[2:]} {
		if _, err := ParseHash(bad); err == nil {
			t.Errorf("ParseHash(%q) succeeded", bad)
		}
	}
}
