package merkle

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

// vectors is testdata/rfc6962.json.
type vectors struct {
	Leaves      []string            `json:"leaves"` // hex leaf data
	Roots       []string            `json:"roots"`  // Roots[n] is the root of the first n leaves
	Nodes       [][]string          `json:"nodes"`  // Nodes[level][index]
	Inclusion   []inclusionVector   `json:"inclusion"`
	Consistency []consistencyVector `json:"consistency"`
}

type inclusionVector struct {
	Index uint64   `json:"index"`
	Size  uint64   `json:"size"`
	Proof []string `json:"proof"`
}

type consistencyVector struct {
	Size1 uint64   `json:"size1"`
	Size2 uint64   `json:"size2"`
	Proof []string `json:"proof"`
}

func loadVectors(t testing.TB) vectors {
	t.Helper()
	b, err := os.ReadFile("testdata/rfc6962.json")
	if err != nil {
		t.Fatal(err)
	}
	var v vectors
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("testdata/rfc6962.json: %v", err)
	}
	return v
}

func mustHash(t testing.TB, s string) Hash {
	t.Helper()
	h, err := ParseHash(s)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func mustHashes(t testing.TB, ss []string) []Hash {
	t.Helper()
	hs := make([]Hash, len(ss))
	for i, s := range ss {
		hs[i] = mustHash(t, s)
	}
	return hs
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// randomLeaves returns n distinct pseudo-random leaf hashes.
func randomLeaves(rng *rand.Rand, n int) []Hash {
	hs := make([]Hash, n)
	for i := range hs {
		var data [16]byte
		for j := range data {
			data[j] = byte(rng.Uint32())
		}
		hs[i] = LeafHash(append(data[:], byte(i), byte(i>>8), byte(i>>16)))
	}
	return hs
}

func toSlices(hs []Hash) [][]byte {
	out := make([][]byte, len(hs))
	for i := range hs {
		out[i] = hs[i][:]
	}
	return out
}

// refVerifyInclusion verifies with transparency-dev/merkle.
func refVerifyInclusion(index, size uint64, leaf Hash, p []Hash, root Hash) error {
	return proof.VerifyInclusion(rfc6962.DefaultHasher, index, size, leaf[:], toSlices(p), root[:])
}

// refVerifyConsistency verifies with transparency-dev/merkle.
func refVerifyConsistency(size1, size2 uint64, root1, root2 Hash, p []Hash) error {
	return proof.VerifyConsistency(rfc6962.DefaultHasher, size1, size2, toSlices(p), root1[:], root2[:])
}

func flip(h Hash, i int) Hash {
	h[i%HashSize] ^= 0x01
	return h
}

// refInclusion builds the inclusion proof with transparency-dev/merkle's
// proof.Inclusion and Rehash, fetching node hashes from r.
func refInclusion(t testing.TB, index, size uint64, r NodeReader) []Hash {
	t.Helper()
	nodes, err := proof.Inclusion(index, size)
	if err != nil {
		t.Fatalf("proof.Inclusion(%d, %d): %v", index, size, err)
	}
	return refRehash(t, nodes, r)
}

// refConsistency is refInclusion for consistency proofs.
func refConsistency(t testing.TB, size1, size2 uint64, r NodeReader) []Hash {
	t.Helper()
	nodes, err := proof.Consistency(size1, size2)
	if err != nil {
		t.Fatalf("proof.Consistency(%d, %d): %v", size1, size2, err)
	}
	return refRehash(t, nodes, r)
}

func refRehash(t testing.TB, nodes proof.Nodes, r NodeReader) []Hash {
	t.Helper()
	ids := make([]NodeID, len(nodes.IDs))
	for i, id := range nodes.IDs {
		ids[i] = NodeID{Level: uint8(id.Level), Index: id.Index}
	}
	var hs []Hash
	if len(ids) > 0 {
		var err error
		if hs, err = r.ReadNodes(context.Background(), ids); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := nodes.Rehash(toSlices(hs), rfc6962.DefaultHasher.HashChildren)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]Hash, len(raw))
	for i, b := range raw {
		out[i] = Hash(b)
	}
	return out
}

// tileStore keeps a tree as encoded hash tiles, the way the engine does: the
// Appender's visits update tiles held in a cache, flush encodes them, and
// ReadNodes decodes tiles from their encoded form only, so it sees exactly
// what was flushed.
type tileStore struct {
	enc   map[TileID][]byte
	cache map[TileID]*Tile
	err   error
	reads int // ReadNodes calls
}

func newTileStore() *tileStore {
	return &tileStore{enc: make(map[TileID][]byte), cache: make(map[TileID]*Tile)}
}

// visit is an Appender visit function.
func (s *tileStore) visit(id NodeID, h Hash) {
	if s.err != nil {
		return
	}
	tid, row, pos := TileForNode(id)
	t := s.cache[tid]
	if t == nil {
		t = new(Tile)
		if b, ok := s.enc[tid]; ok {
			var err error
			if t, err = DecodeTile(b); err != nil {
				s.err = err
				return
			}
		}
		s.cache[tid] = t
	}
	if err := t.Set(row, pos, h); err != nil {
		s.err = fmt.Errorf("node %s: %w", id, err)
	}
}

// flush encodes every cached tile and empties the cache, so later visits
// continue from decoded tiles.
func (s *tileStore) flush(t testing.TB) {
	t.Helper()
	if s.err != nil {
		t.Fatal(s.err)
	}
	for id, tile := range s.cache {
		b, err := tile.AppendBinary(nil)
		if err != nil {
			t.Fatalf("tile %s: %v", id, err)
		}
		s.enc[id] = b
	}
	clear(s.cache)
}

func (s *tileStore) ReadNodes(ctx context.Context, ids []NodeID) ([]Hash, error) {
	s.reads++
	out := make([]Hash, len(ids))
	tiles := make(map[TileID]*Tile)
	for i, id := range ids {
		tid, row, pos := TileForNode(id)
		t := tiles[tid]
		if t == nil {
			b, ok := s.enc[tid]
			if !ok {
				return nil, fmt.Errorf("tile %s: %w", tid, ErrNodeNotFound)
			}
			var err error
			if t, err = DecodeTile(b); err != nil {
				return nil, err
			}
			tiles[tid] = t
		}
		h, ok := t.Node(row, pos)
		if !ok {
			return nil, fmt.Errorf("node %s in tile %s: %w", id, tid, ErrNodeNotFound)
		}
		out[i] = h
	}
	return out, nil
}

// tileBytes reads the same store with DecodeTileNode, never decoding a
// whole tile.
type tileBytes struct{ s *tileStore }

func (tb tileBytes) ReadNodes(ctx context.Context, ids []NodeID) ([]Hash, error) {
	out := make([]Hash, len(ids))
	for i, id := range ids {
		tid, row, pos := TileForNode(id)
		b, ok := tb.s.enc[tid]
		if !ok {
			return nil, fmt.Errorf("tile %s: %w", tid, ErrNodeNotFound)
		}
		h, ok, err := DecodeTileNode(b, row, pos)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("node %s in tile %s: %w", id, tid, ErrNodeNotFound)
		}
		out[i] = h
	}
	return out, nil
}

// buildTiles appends leaves to a fresh tree stored as tiles, flushing after
// batches of random sizes up to maxBatch (1 flushes after every leaf), and
// returns the store and the Appender.
func buildTiles(t testing.TB, rng *rand.Rand, leaves []Hash, maxBatch int) (*tileStore, *Appender) {
	t.Helper()
	s := newTileStore()
	app, err := NewAppender(0, nil)
	if err != nil {
		t.Fatal(err)
	}
	batch := 0
	for _, l := range leaves {
		app.Append(l, s.visit)
		if batch--; batch <= 0 {
			s.flush(t)
			batch = 1 + rng.IntN(maxBatch)
		}
	}
	s.flush(t)
	return s, app
}
