package merkle

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/note"
)

// Fuzz targets. The verification targets are seeded with real proofs from a
// small tree; the fuzzer then mutates sizes, indexes and bytes, and every
// verdict must agree with transparency-dev/merkle's verifier.

const fuzzTreeSize = 37

func fuzzTree() (*MemoryNodes, []Hash) {
	leaves := randomLeaves(rand.New(rand.NewPCG(15, 16)), fuzzTreeSize)
	return NewMemoryNodes(leaves), leaves
}

// hashFrom copies up to HashSize bytes of b into a Hash.
func hashFrom(b []byte) Hash {
	var h Hash
	copy(h[:], b)
	return h
}

// hashesFrom splits b into whole hashes, dropping any remainder.
func hashesFrom(b []byte) []Hash {
	hs := make([]Hash, 0, len(b)/HashSize)
	for ; len(b) >= HashSize; b = b[HashSize:] {
		hs = append(hs, Hash(b[:HashSize]))
	}
	return hs
}

func concat(hs []Hash) []byte {
	var b []byte
	for _, h := range hs {
		b = append(b, h[:]...)
	}
	return b
}

func FuzzVerifyInclusion(f *testing.F) {
	mem, leaves := fuzzTree()
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(17, 18))
	for range 40 {
		size := 1 + rng.Uint64N(fuzzTreeSize)
		index := rng.Uint64N(size)
		proof, err := InclusionProof(ctx, index, size, mem)
		if err != nil {
			f.Fatal(err)
		}
		root, err := RootAt(ctx, size, mem)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(index, size, leaves[index][:], concat(proof), root[:])
		f.Add(index, size+1, leaves[index][:], concat(proof), root[:])
		f.Add(index^1, size, leaves[index][:], concat(proof), root[:])
	}
	f.Fuzz(func(t *testing.T, index, size uint64, leafB, proofB, rootB []byte) {
		leaf, root, proof := hashFrom(leafB), hashFrom(rootB), hashesFrom(proofB)
		err := VerifyInclusion(index, size, leaf, proof, root)
		if err != nil && !proofError(err) {
			t.Fatalf("VerifyInclusion error without a sentinel: %v", err)
		}
		ref := refVerifyInclusion(index, size, leaf, proof, root)
		if (err == nil) != (ref == nil) {
			t.Fatalf("VerifyInclusion(%d, %d, %d hashes) = %v, reference says %v", index, size, len(proof), err, ref)
		}
	})
}

func FuzzVerifyConsistency(f *testing.F) {
	mem, _ := fuzzTree()
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(19, 20))
	for range 40 {
		size2 := 1 + rng.Uint64N(fuzzTreeSize)
		size1 := rng.Uint64N(size2 + 1)
		proof, err := ConsistencyProof(ctx, size1, size2, mem)
		if err != nil {
			f.Fatal(err)
		}
		root1, err1 := RootAt(ctx, size1, mem)
		root2, err2 := RootAt(ctx, size2, mem)
		if err := errors.Join(err1, err2); err != nil {
			f.Fatal(err)
		}
		f.Add(size1, size2, root1[:], root2[:], concat(proof))
		f.Add(size1+1, size2, root1[:], root2[:], concat(proof))
		f.Add(size1, size2+1, root1[:], root2[:], concat(proof))
	}
	empty := EmptyRoot()
	f.Add(uint64(0), uint64(5), empty[:], empty[:], []byte{})
	f.Fuzz(func(t *testing.T, size1, size2 uint64, root1B, root2B, proofB []byte) {
		root1, root2, proof := hashFrom(root1B), hashFrom(root2B), hashesFrom(proofB)
		err := VerifyConsistency(size1, size2, root1, root2, proof)
		if err != nil && !proofError(err) {
			t.Fatalf("VerifyConsistency error without a sentinel: %v", err)
		}
		ref := refVerifyConsistency(size1, size2, root1, root2, proof)
		if err == nil && ref != nil {
			t.Fatalf("VerifyConsistency(%d, %d, %d hashes) accepted a proof the reference rejects: %v", size1, size2, len(proof), ref)
		}
		// We are stricter in one place only: the claimed root of the empty
		// tree must be the empty root.
		stricter := size1 == 0 && root1 != EmptyRoot()
		if err != nil && ref == nil && !stricter {
			t.Fatalf("VerifyConsistency(%d, %d, %d hashes) = %v, reference accepts", size1, size2, len(proof), err)
		}
	})
}

func FuzzParseCheckpoint(f *testing.F) {
	root := LeafHash(nil)
	for _, c := range []Checkpoint{
		{Origin: "trail.example/acme/2026-11", Size: 123, Root: root},
		{Origin: "o", Size: 0, Root: EmptyRoot()},
		{Origin: "o", Size: 1<<64 - 1, Root: root, Extension: "x\ny\n"},
	} {
		f.Add(c.Marshal())
	}
	f.Add([]byte("o\n05\nAAAA\n"))
	f.Add([]byte("o\n5\n\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		c, err := ParseCheckpoint(body)
		if err != nil {
			if !errors.Is(err, ErrInvalidCheckpoint) {
				t.Fatalf("error without ErrInvalidCheckpoint: %v", err)
			}
			return
		}
		if got := c.Marshal(); !bytes.Equal(got, body) {
			t.Fatalf("ParseCheckpoint(%q).Marshal() = %q", body, got)
		}
		var ref log.Checkpoint
		rest, err := ref.Unmarshal(body)
		if err != nil || ref.Origin != c.Origin || ref.Size != c.Size || !bytes.Equal(ref.Hash, c.Root[:]) || string(rest) != c.Extension {
			t.Fatalf("reference parses %q as %+v, rest %q, err %v; we parse %+v", body, ref, rest, err, c)
		}
	})
}

func FuzzOpenCheckpoint(f *testing.F) {
	signer, verifier, _ := testKey(f, "trail.example", 1)
	other, _, _ := testKey(f, "other.example", 2)
	for _, c := range []Checkpoint{
		{Origin: "trail.example/acme/2026-11", Size: 123, Root: LeafHash(nil)},
		{Origin: "trail.example/acme/2026-12", Size: 0, Root: EmptyRoot(), Extension: "ext\n"},
	} {
		msg, err := SignCheckpoint(c, signer)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(msg)
		both, err := note.Sign(&note.Note{Text: string(c.Marshal())}, other, signer)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(both)
		f.Add(msg[:len(msg)-2])
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		c, err := OpenCheckpoint(msg, verifier)
		if err != nil {
			if !errors.Is(err, ErrUnverified) && !errors.Is(err, ErrInvalidCheckpoint) {
				t.Fatalf("error without a sentinel: %v", err)
			}
			return
		}
		n, err := note.Open(msg, note.VerifierList(verifier))
		if err != nil {
			t.Fatalf("OpenCheckpoint accepted a note that note.Open rejects: %v", err)
		}
		if got := string(c.Marshal()); got != n.Text {
			t.Fatalf("checkpoint %+v marshals to %q, signed text is %q", c, got, n.Text)
		}
	})
}

// FuzzDecodeTile also checks that DecodeTileNode agrees with DecodeTile.
func FuzzDecodeTile(f *testing.F) {
	for _, n := range []int{1, 2, 3, 100, 256} {
		tile := new(Tile)
		app, _ := NewAppender(0, nil)
		for _, l := range randomLeavesN(n) {
			app.Append(l, func(id NodeID, h Hash) {
				if tid, row, pos := TileForNode(id); tid == (TileID{}) {
					if err := tile.Set(row, pos, h); err != nil {
						f.Fatal(err)
					}
				}
			})
		}
		b, err := tile.AppendBinary(nil)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(b[:len(b)-1])
	}
	f.Add([]byte{tileVersion, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		tile, err := DecodeTile(b)
		if err != nil {
			if !errors.Is(err, ErrInvalidTile) {
				t.Fatalf("error without ErrInvalidTile: %v", err)
			}
			if _, _, err := DecodeTileNode(b, 0, 0); !errors.Is(err, ErrInvalidTile) {
				t.Fatalf("DecodeTile rejects, DecodeTileNode says %v", err)
			}
			return
		}
		if w := tile.Width(); w < 1 || w > TileWidth {
			t.Fatalf("decoded width %d", w)
		}
		got, err := tile.AppendBinary(nil)
		if err != nil || !bytes.Equal(got, b) {
			t.Fatalf("re-encoding differs (%v)", err)
		}
		if !slices.Equal(tile.BottomRow(), hashesFrom(b[tileHeaderSize:])[:tile.Width()]) {
			t.Fatal("bottom row is not the first hashes after the header")
		}
		for row := range uint8(TileHeight + 1) {
			for pos := range uint64(tile.Width()>>row) + 1 {
				want, wantOK := tile.Node(row, pos)
				got, ok, err := DecodeTileNode(b, row, pos)
				if err != nil || ok != wantOK || got != want {
					t.Fatalf("DecodeTileNode(%d, %d) = %s, %v, %v; tile has %s, %v", row, pos, got, ok, err, want, wantOK)
				}
			}
		}
	})
}

// FuzzParseTLogProof: the parser never panics, and whatever it accepts
// re-encodes to exactly the input (one spelling per proof).
func FuzzParseTLogProof(f *testing.F) {
	for _, n := range []int{1, 5, 37} {
		p, _, _ := tlogProofFixture(f, n, n/2)
		f.Add(p.Marshal())
		p.Extra = nil
		f.Add(p.Marshal())
	}
	f.Add([]byte(TLogProofHeader + "\nindex 0\n\nx\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParseTLogProof(b)
		if err != nil {
			if !errors.Is(err, ErrInvalidTLogProof) {
				t.Fatalf("error does not wrap ErrInvalidTLogProof: %v", err)
			}
			return
		}
		if got := p.Marshal(); !bytes.Equal(got, b) {
			t.Fatalf("accepted input re-encodes differently:\n in %q\nout %q", b, got)
		}
	})
}
