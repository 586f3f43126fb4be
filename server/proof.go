package server

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"

	"github.com/trailaudit/trail/engine"
	"github.com/trailaudit/trail/merkle"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// proofService implements trail.v1.ProofService. Every checkpoint it
// returns is signed with the log key; a proof comes with the checkpoint of
// the tree it was computed against, so a verifier needs nothing else but
// the log's public key.
type proofService struct {
	trailv1.UnimplementedProofServiceServer
	s *Server
}

// sign returns cp as a signed note. Ed25519 signatures are deterministic,
// so one checkpoint always yields the same bytes: a sealed partition's
// final checkpoint is byte-identical on every call and every node.
func (s *Server) sign(cp merkle.Checkpoint) (*trailv1.Checkpoint, error) {
	note, ok := s.signs.get(cp)
	if !ok {
		b, err := merkle.SignCheckpoint(cp, s.cfg.Signer)
		if err != nil {
			return nil, err
		}
		note = string(b)
		s.signs.put(cp, note)
	}
	return &trailv1.Checkpoint{SignedNote: note, Origin: cp.Origin, TreeSize: cp.Size, RootHash: cp.Root[:]}, nil
}

// signedCheckpoint reads and signs p's checkpoint at size (0: current),
// with the witnesses' cosignatures when that checkpoint was witnessed.
func (s *Server) signedCheckpoint(ctx context.Context, p engine.Partition, size uint64) (*trailv1.Checkpoint, error) {
	eng := s.cluster.Engine()
	cp, err := eng.Checkpoint(ctx, p, size)
	if err != nil {
		return nil, err
	}
	signed, err := s.sign(cp)
	if err != nil {
		return nil, err
	}
	signed.SignedNote = s.withCosignatures(eng, cp.Origin, signed.SignedNote)
	return signed, nil
}

// beginProof checks and audits a proof request on tenant's partition and
// waits for minIndex. The caller finishes the returned record.
func (ps *proofService) beginProof(ctx context.Context, tenant string, minIndex uint64) (*access, error) {
	ac, err := ps.s.authorizeTenant(ctx, permRead, trailv1.Category_CATEGORY_DATA_ACCESS, tenant)
	if err != nil {
		return nil, err
	}
	if err := ps.s.waitApplied(ctx, minIndex); err != nil {
		ac.finish(err)
		return nil, err
	}
	return ac, nil
}

func (ps *proofService) observe(kind string, start time.Time) {
	ps.s.metrics.proofSeconds.WithLabelValues(kind).Observe(time.Since(start).Seconds())
}

func (ps *proofService) GetCheckpoint(ctx context.Context, req *trailv1.GetCheckpointRequest) (_ *trailv1.GetCheckpointResponse, err error) {
	ac, err := ps.beginProof(ctx, req.GetTenantId(), req.GetMinIndex())
	if err != nil {
		return nil, err
	}
	defer func() { ac.finish(err) }()
	ac.set("partition", req.GetPartition())
	ac.setUint("tree_size", req.GetTreeSize())
	defer ps.observe("checkpoint", time.Now())
	p, err := parsePartition(req.GetTenantId(), req.GetPartition())
	if err != nil {
		return nil, err
	}
	if req.GetCosigned() {
		ac.set("cosigned", "true")
		cp, err := ps.s.cosignedCheckpoint(ctx, p, req.GetTreeSize())
		if err != nil {
			return nil, err
		}
		return &trailv1.GetCheckpointResponse{Checkpoint: cp}, nil
	}
	cp, err := ps.s.signedCheckpoint(ctx, p, req.GetTreeSize())
	if err != nil {
		return nil, err
	}
	return &trailv1.GetCheckpointResponse{Checkpoint: cp}, nil
}

// GetInclusionProof proves one leaf, named by event_id or by partition and
// leaf_index, in the tree of tree_size leaves (default: current), and
// returns the entry's bytes and the signed checkpoint the proof leads to.
func (ps *proofService) GetInclusionProof(ctx context.Context, req *trailv1.GetInclusionProofRequest) (_ *trailv1.GetInclusionProofResponse, err error) {
	ac, err := ps.beginProof(ctx, req.GetTenantId(), req.GetMinIndex())
	if err != nil {
		return nil, err
	}
	defer func() { ac.finish(err) }()
	ac.setUint("tree_size", req.GetTreeSize())
	defer ps.observe("inclusion", time.Now())
	pctx, end := ps.s.span(ctx, "trail.proof.inclusion", attribute.String("trail.tenant", req.GetTenantId()))
	pe, err := ps.prove(pctx, ac, req)
	end(err)
	if err != nil {
		return nil, err
	}
	cp, err := ps.s.signedCheckpoint(ctx, pe.Partition, pe.TreeSize)
	if err != nil {
		return nil, err
	}
	return &trailv1.GetInclusionProofResponse{
		Partition:  pe.Partition.Month.String(),
		LeafIndex:  pe.LeafIndex,
		TreeSize:   pe.TreeSize,
		LeafHash:   pe.LeafHash[:],
		Proof:      hashesProto(pe.Proof),
		Checkpoint: cp,
		EntryBytes: pe.Data,
	}, nil
}

// prove reads and proves the entry an inclusion proof request names.
func (ps *proofService) prove(ctx context.Context, ac *access, req *trailv1.GetInclusionProofRequest) (engine.ProvedEntry, error) {
	eng := ps.s.cluster.Engine()
	switch {
	case req.GetEventId() != "" && (req.GetPartition() != "" || req.GetLeafIndex() != 0):
		return engine.ProvedEntry{}, badRequest("give either event_id, or partition and leaf_index, not both")
	case req.GetEventId() != "":
		ac.eventIDs = []string{req.GetEventId()}
		return eng.ProveEvent(ctx, req.GetTenantId(), req.GetEventId(), req.GetTreeSize())
	case req.GetPartition() != "":
		ac.set("partition", req.GetPartition())
		ac.setUint("leaf_index", req.GetLeafIndex())
		p, err := parsePartition(req.GetTenantId(), req.GetPartition())
		if err != nil {
			return engine.ProvedEntry{}, err
		}
		return eng.ProveLeaf(ctx, p, req.GetLeafIndex(), req.GetTreeSize())
	case req.GetLeafIndex() != 0:
		return engine.ProvedEntry{}, badRequest("leaf_index needs the partition it is a leaf of")
	}
	return engine.ProvedEntry{}, badRequest("event_id, or partition and leaf_index, is required")
}

// GetConsistencyProof proves that the tree of from_size leaves is a prefix
// of the tree of to_size leaves (default: current), with both checkpoints.
func (ps *proofService) GetConsistencyProof(ctx context.Context, req *trailv1.GetConsistencyProofRequest) (_ *trailv1.GetConsistencyProofResponse, err error) {
	ac, err := ps.beginProof(ctx, req.GetTenantId(), req.GetMinIndex())
	if err != nil {
		return nil, err
	}
	defer func() { ac.finish(err) }()
	ac.set("partition", req.GetPartition())
	ac.setUint("from_size", req.GetFromSize())
	ac.setUint("to_size", req.GetToSize())
	defer ps.observe("consistency", time.Now())
	p, err := parsePartition(req.GetTenantId(), req.GetPartition())
	if err != nil {
		return nil, err
	}
	if req.GetFromSize() == 0 {
		// Every tree extends the empty one; there is nothing to prove, and
		// no checkpoint of size 0 to sign.
		return nil, badRequest("from_size must be at least 1")
	}
	eng := ps.s.cluster.Engine()
	to := req.GetToSize()
	if to == 0 {
		// Resolve "current" once, so the proof and both checkpoints are
		// about the same tree even while appends continue.
		info, err := eng.PartitionInfo(ctx, p)
		if err != nil {
			return nil, err
		}
		to = info.Size
	}
	pctx, end := ps.s.span(ctx, "trail.proof.consistency", attribute.String("trail.tenant", req.GetTenantId()))
	proof, err := eng.ConsistencyProof(pctx, p, req.GetFromSize(), to)
	end(err)
	if err != nil {
		return nil, err
	}
	from, err := ps.s.signedCheckpoint(ctx, p, req.GetFromSize())
	if err != nil {
		return nil, err
	}
	toCP, err := ps.s.signedCheckpoint(ctx, p, to)
	if err != nil {
		return nil, err
	}
	return &trailv1.GetConsistencyProofResponse{
		FromSize: req.GetFromSize(), ToSize: to, Proof: hashesProto(proof),
		FromCheckpoint: from, ToCheckpoint: toCP,
	}, nil
}

// ListPartitions lists a tenant's partitions, each sealed one with its
// final checkpoint.
func (ps *proofService) ListPartitions(ctx context.Context, req *trailv1.ListPartitionsRequest) (_ *trailv1.ListPartitionsResponse, err error) {
	ac, err := ps.beginProof(ctx, req.GetTenantId(), req.GetMinIndex())
	if err != nil {
		return nil, err
	}
	defer func() { ac.finish(err) }()
	parts, err := ps.s.cluster.Engine().Partitions(ctx, req.GetTenantId())
	if err != nil {
		return nil, err
	}
	resp := &trailv1.ListPartitionsResponse{Partitions: make([]*trailv1.PartitionInfo, len(parts))}
	for i, pi := range parts {
		var final *trailv1.Checkpoint
		if pi.Sealed {
			if final, err = ps.s.signedCheckpoint(ctx, pi.Partition, pi.Size); err != nil {
				return nil, err
			}
		}
		resp.Partitions[i] = partitionInfoProto(pi, final)
	}
	return resp, nil
}
