package main

import (
	"bytes"
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/trailaudit/trail/merkle"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// inclusion is what a verified inclusion proof established.
type inclusion struct {
	checkpoint merkle.Checkpoint
	origin     origin
	leafIndex  uint64
	leafHash   merkle.Hash
	eventID    string // empty when the payload was pruned
	pruned     bool
}

// checkInclusion verifies a saved or fetched inclusion proof offline:
// the checkpoint's signature and origin, the leaf hash recomputed from the
// entry bytes (never trusting the leaf_hash field), the entry's own record
// of where it sits, and the Merkle path to the signed root.
func checkInclusion(t trust, pf proofFile) (inclusion, error) {
	p := pf.Proof
	if err := validTenant(pf.TenantID); err != nil {
		return inclusion{}, fmt.Errorf("proof file tenant_id: %w", err)
	}
	cp, o, err := t.openCheckpoint(p.GetCheckpoint())
	if err != nil {
		return inclusion{}, err
	}
	switch {
	case o.tenant != pf.TenantID || o.partition != p.GetPartition():
		return inclusion{}, fmt.Errorf("checkpoint %s is not for tenant %q partition %q named by the proof",
			cp.Origin, pf.TenantID, p.GetPartition())
	case cp.Size != p.GetTreeSize():
		return inclusion{}, fmt.Errorf("proof is for tree size %d but its checkpoint is for size %d", p.GetTreeSize(), cp.Size)
	case p.GetLeafIndex() >= cp.Size:
		return inclusion{}, fmt.Errorf("leaf index %d is not below tree size %d", p.GetLeafIndex(), cp.Size)
	}
	in := inclusion{checkpoint: cp, origin: o, leafIndex: p.GetLeafIndex()}
	if in.leafHash, in.eventID, err = provenLeaf(p, o); err != nil {
		return inclusion{}, err
	}
	in.pruned = len(p.GetEntryBytes()) == 0
	path, err := toHashes(p.GetProof())
	if err != nil {
		return inclusion{}, err
	}
	if err := merkle.VerifyInclusion(in.leafIndex, cp.Size, in.leafHash, path, cp.Root); err != nil {
		return inclusion{}, fmt.Errorf("leaf %d is not proven in %s at size %d: %w", in.leafIndex, cp.Origin, cp.Size, err)
	}
	return in, nil
}

// provenLeaf returns the leaf hash to prove and the event id. With entry
// bytes, the hash is recomputed from them (invariant 1: hash what you
// receive) and the entry must place itself where the proof says it is.
// Without (payload pruned by retention) only the leaf hash can be proven.
func provenLeaf(p *trailv1.GetInclusionProofResponse, o origin) (merkle.Hash, string, error) {
	if len(p.GetEntryBytes()) == 0 {
		h, err := toHash(p.GetLeafHash())
		if err != nil {
			return merkle.Hash{}, "", fmt.Errorf("entry is pruned and its leaf_hash is unusable: %w", err)
		}
		return h, "", nil
	}
	leaf := merkle.LeafHash(p.GetEntryBytes())
	if claimed := p.GetLeafHash(); len(claimed) != 0 && !bytes.Equal(claimed, leaf[:]) {
		return merkle.Hash{}, "", fmt.Errorf("entry_bytes hash to leaf %s but the proof names leaf hash %x: the entry was altered", leaf, claimed)
	}
	en, err := decodeEntry(p.GetEntryBytes())
	if err != nil {
		return merkle.Hash{}, "", err
	}
	if err := checkEntryPlace(en, o.tenant, o.partition, p.GetLeafIndex()); err != nil {
		return merkle.Hash{}, "", err
	}
	return leaf, en.GetEvent().GetEventId(), nil
}

func decodeEntry(b []byte) (*trailv1.Entry, error) {
	en := new(trailv1.Entry)
	if err := proto.Unmarshal(b, en); err != nil {
		return nil, fmt.Errorf("entry_bytes are not an Entry: %w", err)
	}
	return en, nil
}

// checkEntryPlace checks that an entry records the tenant, partition and
// leaf index it is claimed to have. These fields are inside the hashed
// bytes, so a genuine entry cannot be passed off as another position.
func checkEntryPlace(en *trailv1.Entry, tenant, partition string, leaf uint64) error {
	switch {
	case en.GetEvent().GetTenantId() != tenant:
		return fmt.Errorf("entry belongs to tenant %q, not %q", en.GetEvent().GetTenantId(), tenant)
	case en.GetPartition() != partition:
		return fmt.Errorf("entry records partition %q, not %q", en.GetPartition(), partition)
	case en.GetLeafIndex() != leaf:
		return fmt.Errorf("entry records leaf index %d, not %d", en.GetLeafIndex(), leaf)
	}
	return nil
}

// consistency is what a verified consistency proof established.
type consistency struct {
	from, to merkle.Checkpoint
	origin   origin
}

// checkConsistency verifies both checkpoints and the proof that the first
// tree is a prefix of the second.
func checkConsistency(t trust, r *trailv1.GetConsistencyProofResponse) (consistency, error) {
	from, o, err := t.openCheckpoint(r.GetFromCheckpoint())
	if err != nil {
		return consistency{}, fmt.Errorf("from_checkpoint: %w", err)
	}
	to, _, err := t.openCheckpoint(r.GetToCheckpoint())
	if err != nil {
		return consistency{}, fmt.Errorf("to_checkpoint: %w", err)
	}
	switch {
	case from.Origin != to.Origin:
		return consistency{}, fmt.Errorf("the checkpoints are for different partitions: %s and %s", from.Origin, to.Origin)
	case from.Size != r.GetFromSize() || to.Size != r.GetToSize():
		return consistency{}, fmt.Errorf("proof is for sizes %d..%d but the checkpoints are for sizes %d..%d",
			r.GetFromSize(), r.GetToSize(), from.Size, to.Size)
	}
	path, err := toHashes(r.GetProof())
	if err != nil {
		return consistency{}, err
	}
	if err := merkle.VerifyConsistency(from.Size, to.Size, from.Root, to.Root, path); err != nil {
		return consistency{}, fmt.Errorf("%s at size %d is not proven a prefix of size %d: %w", from.Origin, from.Size, to.Size, err)
	}
	return consistency{from: from, to: to, origin: o}, nil
}

func toHash(b []byte) (merkle.Hash, error) {
	var h merkle.Hash
	if len(b) != merkle.HashSize {
		return h, fmt.Errorf("hash is %d bytes, want %d", len(b), merkle.HashSize)
	}
	copy(h[:], b)
	return h, nil
}

func toHashes(bs [][]byte) ([]merkle.Hash, error) {
	out := make([]merkle.Hash, len(bs))
	for i, b := range bs {
		h, err := toHash(b)
		if err != nil {
			return nil, fmt.Errorf("proof element %d: %w", i, err)
		}
		out[i] = h
	}
	return out, nil
}
