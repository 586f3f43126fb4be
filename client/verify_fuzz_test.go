package client

import (
	"bytes"
	"context"
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/trailaudit/trail/merkle"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// genuineProof builds, offline, a log of five entries for tenant acme,
// signs its checkpoint and proves leaf 2: the receipt and proof a server
// would hand out.
func genuineProof(t testing.TB) (*Verifier, *trailv1.Receipt, *trailv1.GetInclusionProofResponse) {
	skey, vkey, err := merkle.GenerateKey("test.trail", nil)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := merkle.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	var leaves []merkle.Hash
	var entries [][]byte
	for i := range 5 {
		en := &trailv1.Entry{
			Event: &trailv1.Event{TenantId: "acme", EventId: string(rune('a' + i)), Action: "record.view",
				Actor: &trailv1.Actor{Id: "alice"}, Category: trailv1.Category_CATEGORY_DATA_ACCESS,
				Outcome: trailv1.Outcome_OUTCOME_SUCCESS},
			Partition: "2026-12", LeafIndex: uint64(i),
		}
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(en)
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, b)
		leaves = append(leaves, merkle.LeafHash(b))
	}
	tree := merkle.NewMemoryNodes(leaves)
	const leaf, size = 2, 5
	path, err := merkle.InclusionProof(context.Background(), leaf, size, tree)
	if err != nil {
		t.Fatal(err)
	}
	note, err := merkle.SignCheckpoint(merkle.Checkpoint{Origin: "test.trail/acme/2026-12", Size: size, Root: tree.Root()}, signer)
	if err != nil {
		t.Fatal(err)
	}
	p := &trailv1.GetInclusionProofResponse{
		Partition: "2026-12", LeafIndex: leaf, TreeSize: size, LeafHash: leaves[leaf][:],
		Checkpoint: &trailv1.Checkpoint{SignedNote: string(note)}, EntryBytes: entries[leaf],
	}
	for _, h := range path {
		p.Proof = append(p.Proof, bytes.Clone(h[:]))
	}
	r := &trailv1.Receipt{TenantId: "acme", EventId: "c", Partition: "2026-12", LeafIndex: leaf,
		LeafHash: leaves[leaf][:], TreeSize: 3}
	v, err := NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return v, r, p
}

// FuzzVerify changes one thing of a genuine receipt and proof at a time.
// Verify never panics, and whatever it accepts proves the genuine leaf:
// the same path, the same leaf hash and entry (or none), the same place.
func FuzzVerify(f *testing.F) {
	v, r0, p0 := genuineProof(f)
	if err := v.Verify(r0, p0); err != nil {
		f.Fatalf("genuine proof: %v", err)
	}
	for what := range uint8(9) {
		f.Add(what, uint16(0), byte(1))
	}
	f.Add(uint8(2), uint16(100), byte(0x80))
	f.Fuzz(func(t *testing.T, what uint8, pos uint16, val byte) {
		r, p := proto.CloneOf(r0), proto.CloneOf(p0)
		flip := func(b []byte) []byte {
			if len(b) == 0 {
				return b
			}
			b = bytes.Clone(b)
			b[int(pos)%len(b)] ^= val
			return b
		}
		switch what % 9 {
		case 0:
			i := int(pos) % len(p.Proof)
			p.Proof[i] = flip(p.Proof[i])
		case 1:
			p.EntryBytes = flip(p.EntryBytes)
		case 2:
			p.Checkpoint.SignedNote = string(flip([]byte(p.Checkpoint.SignedNote)))
		case 3:
			r.LeafHash = flip(r.LeafHash)
		case 4:
			p.LeafIndex ^= uint64(val)
			r.LeafIndex ^= uint64(val)
		case 5:
			p.TreeSize ^= uint64(val)
		case 6:
			p.Proof = p.Proof[:int(pos)%(len(p.Proof)+1)]
		case 7:
			p.EntryBytes = p.EntryBytes[:int(pos)%(len(p.EntryBytes)+1)]
		case 8:
			p.Proof = append(p.Proof, flip(p.Proof[0]))
		}
		if v.Verify(r, p) != nil {
			return
		}
		switch {
		case !slices.EqualFunc(p.Proof, p0.Proof, bytes.Equal):
			t.Fatalf("accepted a changed path")
		case !bytes.Equal(r.LeafHash, r0.LeafHash):
			t.Fatalf("accepted a changed leaf hash")
		case len(p.EntryBytes) > 0 && !bytes.Equal(p.EntryBytes, p0.EntryBytes):
			t.Fatalf("accepted changed entry bytes")
		case p.LeafIndex != p0.LeafIndex || r.LeafIndex != r0.LeafIndex || p.TreeSize != p0.TreeSize:
			t.Fatalf("accepted a changed position")
		}
	})
}
