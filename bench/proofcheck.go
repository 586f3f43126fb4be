package main

import (
	"bytes"
	"fmt"
	"strings"

	"golang.org/x/mod/sumdb/note"

	"github.com/trailaudit/trail/merkle"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// checkInclusion verifies a served inclusion proof the way an auditor
// would: the leaf hash recomputed from the entry bytes, the checkpoint's
// signature (when the log key is known) and origin, and the proof from
// that leaf to the checkpoint's root.
func checkInclusion(resp *trailv1.GetInclusionProofResponse, tenant string, leaf, size uint64, v note.Verifier) error {
	if resp.GetLeafIndex() != leaf || resp.GetTreeSize() != size {
		return fmt.Errorf("proof of leaf %d in %d: server answered leaf %d in %d", leaf, size, resp.GetLeafIndex(), resp.GetTreeSize())
	}
	lh := merkle.LeafHash(resp.GetEntryBytes())
	if !bytes.Equal(lh[:], resp.GetLeafHash()) {
		return fmt.Errorf("leaf %d: served leaf hash is not the hash of the served entry bytes", leaf)
	}
	cp := resp.GetCheckpoint()
	var root merkle.Hash
	if v != nil {
		c, err := merkle.OpenCheckpoint([]byte(cp.GetSignedNote()), v)
		if err != nil {
			return fmt.Errorf("leaf %d: %w", leaf, err)
		}
		if c.Size != size {
			return fmt.Errorf("leaf %d: checkpoint of size %d, want %d", leaf, c.Size, size)
		}
		if want := "/" + tenant + "/" + resp.GetPartition(); !strings.HasSuffix(c.Origin, want) {
			return fmt.Errorf("leaf %d: checkpoint origin %q does not end in %q", leaf, c.Origin, want)
		}
		root = c.Root
	} else if n := copy(root[:], cp.GetRootHash()); n != merkle.HashSize {
		return fmt.Errorf("leaf %d: root hash of %d bytes", leaf, n)
	}
	proof, err := hashesOf(resp.GetProof())
	if err != nil {
		return fmt.Errorf("leaf %d: %w", leaf, err)
	}
	return merkle.VerifyInclusion(leaf, size, lh, proof, root)
}

func hashesOf(bs [][]byte) ([]merkle.Hash, error) {
	out := make([]merkle.Hash, len(bs))
	for i, b := range bs {
		if len(b) != merkle.HashSize {
			return nil, fmt.Errorf("proof hash %d has %d bytes", i, len(b))
		}
		copy(out[i][:], b)
	}
	return out, nil
}
