package bundle

import (
	"fmt"

	"github.com/trailaudit/trail/merkle"
)

// Run proofs.
//
// A run line opens a run of leaves [begin, end) of a partition whose
// checkpoint has size N and root R. It carries the compact range of
// [0, begin): the roots of the perfect subtrees a tree of begin leaves
// consists of. The verifier seeds a merkle.Appender with them, appends
// the leaf hash of each entry of the run as it reads it (recomputed from
// the entry bytes; a pruned entry contributes its stated leaf hash), and
// at the run_end line takes the root r of the tree of size end. It then
// requires r == R when end == N, and otherwise a consistency proof from
// (end, r) to (N, R).
//
// Why this is sound, that is, why forged prefix hashes or entries cannot
// pass: the consistency proof (or the equality) establishes that r is the
// root of the first end leaves of the tree R commits to; a tree of size
// end with another root would need a SHA-256 collision to produce a valid
// proof. The shape of the tree of size end is fixed by end alone, and
// every perfect subtree of [0, begin) is a node of it, so r is computed
// over exactly the nodes the true tree has at those places: each hash
// that goes into r, prefix hash or leaf hash, is an input of a node hash
// whose output is fixed from the root down. Going down from r, equal
// outputs mean equal inputs unless SHA-256 collides, and the 0x00/0x01
// prefixes keep a leaf from passing for a node. So every prefix hash
// equals the true node, and the leaf hash at each position in [begin,
// end) equals the log's leaf there: forged prefix hashes only make r
// wrong, and an entry that is altered, added, dropped or moved changes
// r. The count of prefix hashes is checked against begin (one per set
// bit), entries must be exactly begin, begin+1, ..., end-1, and runs of a
// partition ascend without overlapping, so what was proven is what the
// bundle lists.
//
// A run proof thus does what an inclusion proof per entry did, with
// O(log N) hashes per run instead of per entry, and a verifier holds one
// appender (O(log N) hashes) per open run.

// runState is the run being read.
type runState struct {
	part  *partState // valid while the run is open: no checkpoint can come
	begin uint64
	next  uint64 // the leaf the next entry must be
	tree  *merkle.Appender
}

func (s *verification) openRun(line []byte) error {
	var r Run
	if err := decodeLine(line, &r); err != nil {
		return err
	}
	p := s.cur()
	switch {
	case s.run != nil:
		return failf(ErrMalformed, "run of %s from leaf %d opens inside the run from leaf %d", r.Partition, r.Begin, s.run.begin)
	case p == nil || r.Partition != p.Partition:
		return failf(ErrMalformed, "run of partition %s does not follow that partition's checkpoint", r.Partition)
	case r.Begin >= p.CheckpointSize:
		return failf(ErrMalformed, "run from leaf %d of %s is beyond its checkpoint's size %d", r.Begin, r.Partition, p.CheckpointSize)
	case p.hasLeaf && r.Begin <= p.LastLeaf:
		return failf(ErrMalformed, "run from leaf %d of %s overlaps leaf %d before it: runs repeated, overlapping or out of order", r.Begin, r.Partition, p.LastLeaf)
	}
	prefix, err := hashes(r.Prefix)
	if err != nil {
		return err
	}
	tree, err := merkle.NewAppender(r.Begin, prefix)
	if err != nil {
		return failf(ErrMalformed, "run from leaf %d of %s: prefix of %d hashes: %v", r.Begin, r.Partition, len(prefix), err)
	}
	s.run = &runState{part: p, begin: r.Begin, next: r.Begin, tree: tree}
	return nil
}

func (s *verification) endRun(line []byte) error {
	var r RunEnd
	if err := decodeLine(line, &r); err != nil {
		return err
	}
	run := s.run
	switch {
	case run == nil:
		return failf(ErrMalformed, "run_end of %s from leaf %d with no run open", r.Partition, r.Begin)
	case r.Partition != run.part.Partition || r.Begin != run.begin:
		return failf(ErrMalformed, "run_end of %s from leaf %d closes the run of %s from leaf %d", r.Partition, r.Begin, run.part.Partition, run.begin)
	case r.End != run.next || r.End == r.Begin:
		return failf(ErrMalformed, "run of %s claims leaves [%d, %d), its entries are leaves [%d, %d): entries missing or added",
			r.Partition, r.Begin, r.End, run.begin, run.next)
	}
	s.run = nil
	p := run.part
	proof, err := hashes(r.Consistency)
	if err != nil {
		return err
	}
	// run.next <= p.CheckpointSize: every entry was checked to be below it.
	root := run.tree.Root()
	if err := merkle.VerifyConsistency(r.End, p.CheckpointSize, root, p.root, proof); err != nil {
		return fmt.Errorf("run [%d, %d) of %s is not in the signed tree of size %d: %w: %w", r.Begin, r.End, p.Partition, p.CheckpointSize, ErrProof, err)
	}
	s.rep.RunProofs++
	return nil
}
