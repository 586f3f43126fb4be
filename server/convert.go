package server

import (
	"fmt"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/trailaudit/trail/engine"
	"github.com/trailaudit/trail/merkle"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// Conversions between engine values and API messages. Entry bytes are
// passed through untouched (invariant 1): the decoded Entry is a
// convenience next to them, never a replacement.

func receiptProto(r engine.Receipt, appliedIndex uint64) *trailv1.Receipt {
	return &trailv1.Receipt{
		TenantId:      r.Tenant,
		EventId:       r.EventID,
		Partition:     r.Partition.String(),
		LeafIndex:     r.LeafIndex,
		LeafHash:      r.LeafHash[:],
		TreeSize:      r.TreeSize,
		SequencerTime: timestamppb.New(r.SequencerTime),
		Duplicate:     r.Duplicate,
		AppliedIndex:  appliedIndex,
	}
}

// storedEntryProto converts a stored entry, decoding its bytes. An entry
// that does not decode was corrupted after it was hashed and verified,
// which the engine's leaf-hash check makes near impossible; it is reported
// as data loss rather than served half-decoded.
// A sealed payload is opened for the reader (openEntry).
func (s *Server) storedEntryProto(se engine.StoredEntry) (*trailv1.StoredEntry, error) {
	out := &trailv1.StoredEntry{
		TenantId:   se.Partition.Tenant,
		Partition:  se.Partition.Month.String(),
		LeafIndex:  se.LeafIndex,
		LeafHash:   se.LeafHash[:],
		EntryBytes: se.Data,
		Pruned:     se.Pruned,
	}
	if se.Pruned {
		return out, nil
	}
	en := new(trailv1.Entry)
	if err := proto.Unmarshal(se.Data, en); err != nil {
		return nil, fmt.Errorf("%s leaf %d: decode entry: %w: %v", se.Partition, se.LeafIndex, engine.ErrCorrupt, err)
	}
	out.Entry = en
	s.openEntry(out)
	return out, nil
}

// hitProto converts a search hit, whose entry the engine already decoded,
// opening a sealed payload for the reader.
func (s *Server) hitProto(h engine.Hit) *trailv1.StoredEntry {
	out := &trailv1.StoredEntry{
		TenantId:   h.Partition.Tenant,
		Partition:  h.Partition.Month.String(),
		LeafIndex:  h.LeafIndex,
		LeafHash:   h.LeafHash[:],
		EntryBytes: h.Data,
		Entry:      h.Entry,
		Pruned:     h.Pruned,
	}
	s.openEntry(out)
	return out
}

func partitionInfoProto(pi engine.PartitionInfo, final *trailv1.Checkpoint) *trailv1.PartitionInfo {
	out := &trailv1.PartitionInfo{
		Partition:       pi.Month.String(),
		Size:            pi.Size,
		RootHash:        pi.Root[:],
		Sealed:          pi.Sealed,
		Pruned:          pi.Pruned,
		FinalCheckpoint: final,
	}
	if pi.Size > 0 {
		out.FirstTime = timestamppb.New(pi.FirstTime)
		out.LastTime = timestamppb.New(pi.LastTime)
	}
	return out
}

func hashesProto(hs []merkle.Hash) [][]byte {
	out := make([][]byte, len(hs))
	for i := range hs {
		out[i] = hs[i][:]
	}
	return out
}

// parsePartition parses a partition name from a request.
func parsePartition(tenant, name string) (engine.Partition, error) {
	m, err := engine.ParseMonth(name)
	if err != nil {
		return engine.Partition{}, badRequest("partition %q: want YYYY-MM", name)
	}
	return engine.Partition{Tenant: tenant, Month: m}, nil
}
