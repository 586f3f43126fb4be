package server

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/trailaudit/trail/engine"
	"github.com/trailaudit/trail/merkle"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
	"github.com/trailaudit/trail/raftnode"
)

// cosignedCheckpoint is p's checkpoint at size (0: current) signed by the
// log key and cosigned by the nodes: each node recomputes the root from
// its own copy and adds its signature only when it matches. It fails
// unless a majority of the voters cosigned, and records an integrity
// violation for every node that refused because its root differs.
// Cosigned notes are cached like signed ones: a node's cosignature is an
// Ed25519 signature, deterministic, so a cached note is what asking again
// would give.
func (s *Server) cosignedCheckpoint(ctx context.Context, p engine.Partition, size uint64) (*trailv1.Checkpoint, error) {
	signed, err := s.signedCheckpoint(ctx, p, size)
	if err != nil {
		return nil, err
	}
	cp := merkle.Checkpoint{Origin: signed.GetOrigin(), Size: signed.GetTreeSize(), Root: merkle.Hash(signed.GetRootHash())}
	if n, ok := s.cosigns.get(cp); ok {
		signed.SignedNote = n
		return signed, nil
	}
	voters := 0
	for _, n := range s.cluster.Status().Nodes {
		if n.Voter {
			voters++
		}
	}
	var lines, failed []string
	for _, cs := range s.cluster.Cosign(ctx, p, cp.Marshal()) {
		switch {
		case cs.Err == nil:
			lines = append(lines, cs.Line)
		case errors.Is(cs.Err, raftnode.ErrRootDiffers):
			failed = append(failed, fmt.Sprintf("%s: root differs", cs.NodeID))
			s.rootDiffers(p, cp, cs)
		default:
			failed = append(failed, fmt.Sprintf("%s: %v", cs.NodeID, cs.Err))
		}
	}
	if 2*len(lines) <= voters {
		return nil, status.Errorf(codes.Unavailable, "checkpoint of %s at size %d cosigned by %d of %d voters, not a majority (%s)",
			p, cp.Size, len(lines), voters, strings.Join(failed, "; "))
	}
	signed.SignedNote += strings.Join(lines, "\n") + "\n"
	if len(failed) == 0 {
		// Only a note every node cosigned is kept: one with a node
		// missing is asked for again, so the node's signature is added
		// once it is back.
		s.cosigns.put(cp, signed.SignedNote)
	}
	return signed, nil
}

// rootDiffers records, in the background, that a node refused to cosign
// because its copy gives another root: its copy has diverged or been
// tampered with, or the checkpoint shown to it was not this log's.
func (s *Server) rootDiffers(p engine.Partition, cp merkle.Checkpoint, cs raftnode.Cosignature) {
	if s.integrity == nil {
		s.log.Error("node refused to cosign: its root differs", "node", cs.NodeID, "partition", p.String(), "size", cp.Size, "err", cs.Err)
		return
	}
	pin := &trailv1.PartitionIntegrity{
		TenantId: p.Tenant, Partition: p.Month.String(), Size: cp.Size, RootHash: cp.Root[:],
		Problem: fmt.Sprintf("node %s refused to cosign the checkpoint at size %d: %v", cs.NodeID, cp.Size, cs.Err),
		Peers:   []*trailv1.PeerRoot{{NodeId: cs.NodeID, Error: cs.Err.Error()}},
	}
	go s.integrity.violation(pin, problemAt{kind: "cosign", where: cs.NodeID})
}
