package bundle

import (
	"crypto/sha256"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/trailaudit/trail/merkle"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// entry checks one leaf: its place in the open run, its hash, content and
// chain links, then folds it into the run's tree. No inclusion proof is
// checked here: the run's proof, at its run_end line, covers every leaf of
// the run (see runs.go).
func (s *verification) entry(line []byte) error {
	var err error
	e := &s.el
	if s.buf, err = parseEntryLine(line, e, s.buf); err != nil {
		return err
	}
	run := s.run
	if run == nil {
		return failf(ErrMalformed, "entry %s/%d outside a run", e.partition, e.leafIndex)
	}
	p := run.part
	if err := s.place(run, e); err != nil {
		return err
	}
	leaf, err := s.leafHash(p, e)
	if err != nil {
		return err
	}
	// The stated leaf hash is now the entry bytes' (or, pruned, bound by
	// the run proof): the line's digest record can stand for the line.
	s.rec = appendEntryRecord(s.rec[:0], e.partition, e.leafIndex, e.pruned, &e.leafHash)
	s.digest.Write(s.rec)
	var link *trailv1.PartitionLink
	if !e.pruned {
		if link, err = s.content(p, e); err != nil {
			return err
		}
	}
	if err := s.link(p, e, leaf, link); err != nil {
		return err
	}
	run.tree.Append(leaf, nil)
	run.next++
	s.count(p, e)
	if !e.pruned && s.ef.sealed {
		s.rep.Sealed++
		s.sealed, s.sealedLeaf = append(s.sealed[:0], e.entry...), e.leafIndex
	}
	if !e.pruned {
		s.noteErasureRecord(&s.ef)
	}
	return nil
}

// place checks the entry is the run's next leaf, inside the checkpoint.
func (s *verification) place(run *runState, e *entryLine) error {
	p := run.part
	switch {
	case string(e.partition) != p.Partition:
		return failf(ErrMalformed, "entry of partition %s inside the run of %s", e.partition, p.Partition)
	case e.leafIndex >= p.CheckpointSize:
		return failf(ErrMalformed, "leaf %d of %s is beyond its checkpoint's size %d", e.leafIndex, p.Partition, p.CheckpointSize)
	case e.leafIndex < run.next:
		return failf(ErrMalformed, "leaf %d of %s after leaf %d: entries repeated or out of order", e.leafIndex, p.Partition, run.next-1)
	case e.leafIndex > run.next:
		return failf(ErrMalformed, "leaf %d of %s where the run from leaf %d needs leaf %d: entries missing or out of order", e.leafIndex, p.Partition, run.begin, run.next)
	}
	return nil
}

// leafHash returns the leaf hash: recomputed from the bytes, or, for a
// pruned entry, the stated one, which only the run proof vouches for. A
// stated hash the bytes do not match is named here, at the entry, rather
// than as a run proof failure later.
func (s *verification) leafHash(p *partState, e *entryLine) (merkle.Hash, error) {
	h := merkle.Hash(e.leafHash)
	if e.pruned {
		return h, nil
	}
	// parseEntryLine left buf[0] free for the leaf prefix: one contiguous
	// SHA-256 input, no copy and no allocation.
	s.buf[0] = 0x00
	got := merkle.Hash(sha256.Sum256(s.buf[:1+len(e.entry)]))
	if got != h {
		return h, failf(ErrEntry, "the entry bytes of leaf %d of %s hash to %s, not to its leaf hash %s: the entry was altered", e.leafIndex, p.Partition, got, h)
	}
	return h, nil
}

// content decodes what the checks need of the entry and checks it is
// filed where it says, in time order, inside the export's filters. It
// returns the entry's prev_partition link, decoded in full: only leaf 0
// has one.
func (s *verification) content(p *partState, e *entryLine) (*trailv1.PartitionLink, error) {
	f := &s.ef
	if err := decodeEntryFields(e.entry, f); err != nil {
		return nil, failf(ErrEntry, "the entry bytes do not decode as a trail.v1.Entry: %v", err)
	}
	switch {
	case string(f.tenant) != s.hdr.Tenant:
		return nil, failf(ErrEntry, "the entry is of tenant %q, the bundle of %q", f.tenant, s.hdr.Tenant)
	case string(f.partition) != p.Partition || f.leafIndex != e.leafIndex:
		return nil, failf(ErrEntry, "the entry records leaf %d of %s but is filed as leaf %d of %s", f.leafIndex, f.partition, e.leafIndex, p.Partition)
	case e.leafIndex != 0 && f.hasPrevPartition:
		return nil, failf(ErrEntry, "leaf %d records a prev_partition link, which only leaf 0 may", e.leafIndex)
	}
	t, ok := f.sequencerTime()
	if !ok {
		return nil, failf(ErrEntry, "the entry has no valid sequencer time")
	}
	if y, m, _ := t.Date(); y != p.month.Year() || m != p.month.Month() {
		return nil, failf(ErrEntry, "sequencer time %s is not in partition %s", t.Format(time.RFC3339Nano), p.Partition)
	}
	if t.Before(s.last) {
		return nil, failf(ErrEntry, "sequencer time %s goes back before %s", t.Format(time.RFC3339Nano), s.last.Format(time.RFC3339Nano))
	}
	s.last = t
	if why := mismatch(&s.hdr.Filter, f, t); why != "" {
		return nil, failf(ErrFilter, "leaf %d of %s: %s", e.leafIndex, p.Partition, why)
	}
	if !f.hasPrevPartition {
		return nil, nil
	}
	// Leaf 0 only, once per partition: a full decode is cheap here and
	// reads the link exactly as every other tool does.
	en := new(trailv1.Entry)
	if err := proto.Unmarshal(e.entry, en); err != nil {
		return nil, failf(ErrEntry, "the entry bytes do not decode as a trail.v1.Entry: %v", err)
	}
	return en.GetPrevPartition(), nil
}

// link checks the entry's place in the linear chain (invariant 3).
// A leaf that directly follows the previous one in the bundle (the next
// leaf of the partition, or leaf 0 of the partition its link names right
// after that partition's last leaf) must record its leaf hash; otherwise a
// new chain run starts. A pruned leaf's own link is gone, but the next
// leaf must still record its hash.
func (s *verification) link(p *partState, e *entryLine, leaf merkle.Hash, l *trailv1.PartitionLink) error {
	adjacent := s.prev != nil && s.prev.partition == p.Partition && s.prev.leaf+1 == e.leafIndex
	if l != nil && s.prev != nil {
		adjacent = s.prev.partition == l.GetPartition() && s.prev.leaf+1 == l.GetSize()
	}
	if e.pruned {
		if !adjacent {
			s.rep.ChainRuns++
		}
		s.chain = merkle.NewChainVerifier(leaf, e.leafIndex+1)
		return nil
	}
	prev, err := toHash(s.ef.prevLeafHash)
	if err != nil {
		return failf(ErrEntry, "prev_leaf_hash: %v", err)
	}
	if adjacent {
		if err := s.chain.Next(leaf, prev); err != nil {
			return fmt.Errorf("leaf %d of %s does not record the leaf hash of the entry before it (leaf %d of %s): %w: %w",
				e.leafIndex, p.Partition, s.prev.leaf, s.prev.partition, ErrChain, err)
		}
		s.rep.ChainLinks++
	} else {
		s.rep.ChainRuns++
		// Positions in the verifier's messages are leaf indexes.
		s.chain = merkle.NewChainVerifier(prev, e.leafIndex)
		_ = s.chain.Next(leaf, prev) // cannot fail: it starts from prev
	}
	if e.leafIndex == 0 {
		return s.partitionLink(p.Partition, l, prev)
	}
	return nil
}

// partitionLink checks what leaf 0 says about the partition before it: a
// tenant's first leaf records no link and a zero previous hash; any other
// leaf 0 records the previous partition's final size and root, which must
// agree with that partition's checkpoint when the bundle holds it.
func (s *verification) partitionLink(partition string, l *trailv1.PartitionLink, prev merkle.Hash) error {
	if l == nil {
		if prev != (merkle.Hash{}) {
			return failf(ErrChain, "leaf 0 of %s has no prev_partition, so it must be the tenant's first entry, but it records previous leaf hash %s", partition, prev)
		}
		if len(s.parts) > 1 {
			return failf(ErrChain, "leaf 0 of %s claims to be the tenant's first entry, but the bundle holds the earlier partition %s", partition, s.parts[0].Partition)
		}
		return nil
	}
	if err := validPartition(l.GetPartition()); err != nil || l.GetPartition() >= partition {
		return failf(ErrChain, "leaf 0 of %s links to partition %q, which is not an earlier partition", partition, l.GetPartition())
	}
	root, err := toHash(l.GetRoot())
	if err != nil {
		return failf(ErrEntry, "prev_partition root: %v", err)
	}
	mp := s.find(l.GetPartition())
	switch {
	case mp == nil:
		s.rep.note("leaf 0 of %s links to partition %s (final size %d, root %s), which the bundle does not hold: that link was not checked",
			partition, l.GetPartition(), l.GetSize(), root)
		return nil
	case l.GetSize() < mp.CheckpointSize:
		return failf(ErrChain, "leaf 0 of %s records final size %d for %s, but the log signed a checkpoint of %s at size %d: the partition grew after it was closed",
			partition, l.GetSize(), mp.Partition, mp.Partition, mp.CheckpointSize)
	case l.GetSize() == mp.CheckpointSize && root != mp.root:
		return failf(ErrChain, "leaf 0 of %s records root %s for %s at size %d, but the signed checkpoint has root %s",
			partition, root, mp.Partition, l.GetSize(), mp.root)
	case l.GetSize() == mp.CheckpointSize:
		s.rep.PartitionLinks++
		return nil
	}
	s.pending = &pendingLink{linkedFrom: partition, size: l.GetSize(), root: root, part: mp}
	return nil
}

// count records an accepted entry.
func (s *verification) count(p *partState, e *entryLine) {
	if !p.hasLeaf {
		p.FirstLeaf = e.leafIndex
	}
	p.LastLeaf, p.hasLeaf = e.leafIndex, true
	p.Entries++
	s.rep.Entries++
	if e.pruned {
		p.Pruned++
		s.rep.Pruned++
	}
	if s.prev == nil {
		s.prev = new(leafState)
	}
	s.prev.partition, s.prev.leaf = p.Partition, e.leafIndex
}
