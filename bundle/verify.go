package bundle

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
	"google.golang.org/protobuf/proto"

	"github.com/trailaudit/trail/merkle"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// Verifier checks bundles against the one thing an auditor trusts: the
// log's public key.
type Verifier struct {
	key  note.Verifier
	vkey string // the trusted key's text, when given as text
	// LogName is the log every checkpoint origin must name; by default the
	// key's name, which is how traild names its log.
	LogName string
	// MaxLine bounds one line (default DefaultMaxLine).
	MaxLine int
}

// NewVerifier returns a Verifier trusting the signed-note verifier key
// vkey ("name+hash+base64key").
func NewVerifier(vkey string) (*Verifier, error) {
	vkey = strings.TrimSpace(vkey)
	k, err := merkle.NewVerifier(vkey)
	if err != nil {
		return nil, fmt.Errorf("bundle: trusted key: %w", err)
	}
	v := NewKeyVerifier(k)
	v.vkey = vkey
	return v, nil
}

// NewKeyVerifier returns a Verifier trusting an already parsed key.
func NewKeyVerifier(key note.Verifier) *Verifier {
	return &Verifier{key: key, LogName: key.Name(), MaxLine: DefaultMaxLine}
}

// keyLabel names the key as signature lines do: "name+hash".
func keyLabel(k note.Verifier) string { return fmt.Sprintf("%s+%08x", k.Name(), k.KeyHash()) }

// Verify reads a whole bundle from r and checks it. It returns the report
// of what was verified, or the first failure as an *Error. Memory is
// bounded by one line plus a few hashes per partition.
func (v *Verifier) Verify(ctx context.Context, r io.Reader) (*Report, error) {
	limit := v.MaxLine
	if limit <= 0 {
		limit = DefaultMaxLine
	}
	s := &verification{v: v, lr: newLineReader(r, limit), digest: sha256.New(), rep: &Report{Key: keyLabel(v.key)}}
	if err := s.run(ctx); err != nil {
		var be *Error
		if errors.As(err, &be) {
			return nil, err
		}
		return nil, &Error{Line: s.lr.n, Type: s.typ, Err: err}
	}
	return s.rep, nil
}

// verification is the state of one Verify call.
type verification struct {
	v      *Verifier
	lr     *lineReader
	digest hash.Hash
	rep    *Report
	typ    string // type of the current line

	hdr     *Header
	parts   []partState // in bundle order; one per checkpoint
	prev    *leafState  // the last entry
	chain   *merkle.ChainVerifier
	last    time.Time
	pending *pendingLink
	done    bool // the manifest was read
}

// partState is a partition's checkpoint and what the bundle held of it.
type partState struct {
	PartitionCount
	root    merkle.Hash
	hasLeaf bool
}

// leafState is where the last entry sits; the chain verifier holds its hash.
type leafState struct {
	partition string
	leaf      uint64
}

// pendingLink is a partition link whose consistency proof must be the
// next line: leaf 0 of linkedFrom records size and root for partition,
// and the bundle's checkpoint of partition is part. It is resolved by the
// very next line, before parts can grow, so part stays a valid pointer.
type pendingLink struct {
	linkedFrom string
	size       uint64
	root       merkle.Hash
	part       *partState
}

func (s *verification) run(ctx context.Context) error {
	for {
		line, err := s.lr.next()
		if errors.Is(err, io.EOF) {
			return s.atEOF()
		}
		if err != nil {
			return err
		}
		if s.lr.n%1024 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		if s.done {
			s.typ = ""
			return failf(ErrMalformed, "data after the manifest")
		}
		if err := s.line(line); err != nil {
			return err
		}
		if !s.done {
			s.digest.Write(line)
		}
	}
}

func (s *verification) atEOF() error {
	if !s.done {
		s.typ = ""
		return failf(ErrTruncated, "the bundle ends after line %d without its manifest", s.lr.n)
	}
	return nil
}

// line checks one line according to its type.
func (s *verification) line(line []byte) error {
	typ, err := lineType(line)
	s.typ = typ
	if err != nil {
		return err
	}
	if s.hdr == nil && typ != TypeHeader {
		return failf(ErrMalformed, "the first line must be the header, not %q", typ)
	}
	if s.pending != nil && typ != TypeConsistency {
		p := s.pending
		return failf(ErrChain, "leaf 0 of %s records size %d for partition %s, whose checkpoint in the bundle has size %d, and no consistency proof follows it",
			p.linkedFrom, p.size, p.part.Partition, p.part.CheckpointSize)
	}
	switch typ {
	case TypeHeader:
		return s.header(line)
	case TypeCheckpoint:
		return s.checkpoint(line)
	case TypeEntry:
		return s.entry(line)
	case TypeConsistency:
		return s.consistency(line)
	case TypeManifest:
		return s.manifest(line)
	}
	return failf(ErrMalformed, "unknown line type %q", typ)
}

func (s *verification) cur() *partState {
	if len(s.parts) == 0 {
		return nil
	}
	return &s.parts[len(s.parts)-1]
}

func (s *verification) find(partition string) *partState {
	for i := range s.parts {
		if s.parts[i].Partition == partition {
			return &s.parts[i]
		}
	}
	return nil
}

func (s *verification) header(line []byte) error {
	if s.hdr != nil {
		return failf(ErrMalformed, "a second header")
	}
	var h Header
	if err := decodeLine(line, &h); err != nil {
		return err
	}
	if h.Format != Format {
		return failf(ErrMalformed, "format %q, this verifier reads %q", h.Format, Format)
	}
	if h.Tenant == "" || strings.ContainsAny(h.Tenant, "/\n") {
		return failf(ErrMalformed, "tenant %q is not a tenant id", h.Tenant)
	}
	if err := h.Filters.check(); err != nil {
		return failf(ErrMalformed, "%v", err)
	}
	if err := s.checkKey(&h); err != nil {
		return err
	}
	s.hdr = &h
	s.rep.setHeader(&h)
	return nil
}

// checkKey requires the header's informational key to be the trusted one.
func (s *verification) checkKey(h *Header) error {
	k := s.v.key
	if h.LogName != s.v.LogName {
		return failf(ErrUntrustedKey, "the bundle is of log %q, the trusted log is %q", h.LogName, s.v.LogName)
	}
	if h.KeyName != k.Name() || h.KeyHash != fmt.Sprintf("%08x", k.KeyHash()) {
		return failf(ErrUntrustedKey, "the bundle names log key %s+%s, the trusted key is %s", h.KeyName, h.KeyHash, keyLabel(k))
	}
	if h.VKey == "" {
		return nil
	}
	if s.v.vkey != "" {
		if h.VKey != s.v.vkey {
			return failf(ErrUntrustedKey, "the bundle's verifier key %q is not the trusted key %q", h.VKey, s.v.vkey)
		}
		return nil
	}
	hk, err := note.NewVerifier(h.VKey)
	if err != nil || hk.Name() != k.Name() || hk.KeyHash() != k.KeyHash() {
		return failf(ErrUntrustedKey, "the bundle's verifier key %q is not the trusted key %s", h.VKey, keyLabel(k))
	}
	return nil
}

func (s *verification) checkpoint(line []byte) error {
	var c Checkpoint
	if err := decodeLine(line, &c); err != nil {
		return err
	}
	if err := validPartition(c.Partition); err != nil {
		return failf(ErrMalformed, "%v", err)
	}
	if cur := s.cur(); cur != nil && c.Partition <= cur.Partition {
		return failf(ErrMalformed, "checkpoint of %s after the checkpoint of %s: partitions must be in month order, each once", c.Partition, cur.Partition)
	}
	cp, err := merkle.OpenCheckpoint([]byte(c.Note), s.v.key)
	if err != nil {
		return fmt.Errorf("checkpoint of %s is not signed by the trusted key %s: %w: %w", c.Partition, keyLabel(s.v.key), ErrSignature, err)
	}
	if want := s.hdr.LogName + "/" + s.hdr.Tenant + "/" + c.Partition; cp.Origin != want {
		return failf(ErrSignature, "signed checkpoint origin %q, want %q", cp.Origin, want)
	}
	if cp.Size != c.Size || !bytes.Equal(c.Root, cp.Root[:]) {
		return failf(ErrSignature, "fields size %d root %x differ from the signed size %d root %s", c.Size, c.Root, cp.Size, cp.Root)
	}
	if cp.Size == 0 {
		return failf(ErrMalformed, "checkpoint of %s has size 0: nothing can be proven against it", c.Partition)
	}
	s.parts = append(s.parts, partState{PartitionCount: PartitionCount{Partition: c.Partition, CheckpointSize: cp.Size}, root: cp.Root})
	s.rep.Partitions = append(s.rep.Partitions, PartitionReport{Partition: c.Partition, Origin: cp.Origin, Size: cp.Size, Root: cp.Root})
	return nil
}

func (s *verification) consistency(line []byte) error {
	var c Consistency
	if err := decodeLine(line, &c); err != nil {
		return err
	}
	p := s.pending
	if p == nil {
		return failf(ErrMalformed, "a consistency record that no partition link calls for")
	}
	s.pending = nil
	if c.Partition != p.part.Partition || c.LinkedFrom != p.linkedFrom {
		return failf(ErrMalformed, "consistency record of %s linked from %s, want %s linked from %s",
			c.Partition, c.LinkedFrom, p.part.Partition, p.linkedFrom)
	}
	if c.FromSize != p.part.CheckpointSize || c.ToSize != p.size {
		return failf(ErrMalformed, "consistency record from size %d to %d, want %d to %d", c.FromSize, c.ToSize, p.part.CheckpointSize, p.size)
	}
	proof, err := hashes(c.Proof)
	if err != nil {
		return err
	}
	if err := merkle.VerifyConsistency(p.part.CheckpointSize, p.size, p.part.root, p.root, proof); err != nil {
		return fmt.Errorf("partition %s: the checkpoint at size %d is not a prefix of the size %d and root %s that leaf 0 of %s records: %w: %w",
			p.part.Partition, p.part.CheckpointSize, p.size, p.root, p.linkedFrom, ErrProof, err)
	}
	s.rep.ConsistencyProofs++
	s.rep.PartitionLinks++
	return nil
}

// hashes converts proof hashes, each of which must be 32 bytes.
func hashes(in [][]byte) ([]merkle.Hash, error) {
	out := make([]merkle.Hash, len(in))
	for i, b := range in {
		if len(b) != merkle.HashSize {
			return nil, failf(ErrMalformed, "proof hash %d has %d bytes, want %d", i, len(b), merkle.HashSize)
		}
		copy(out[i][:], b)
	}
	return out, nil
}

func (s *verification) manifest(line []byte) error {
	var m Manifest
	if err := decodeLine(line, &m); err != nil {
		return err
	}
	sum := hex.EncodeToString(s.digest.Sum(nil))
	if m.SHA256 != sum {
		return failf(ErrManifest, "the lines before the manifest hash to sha256 %s, the manifest says %s: lines were changed, added, dropped or reordered", sum, m.SHA256)
	}
	if err := s.checkCounts(&m); err != nil {
		return err
	}
	n, err := note.Open([]byte(m.SignedNote), note.VerifierList(s.v.key))
	if err != nil {
		return fmt.Errorf("the manifest is not signed by the trusted key %s: %w: %w", keyLabel(s.v.key), ErrSignature, err)
	}
	if want := noteText(s.hdr.LogName, s.hdr.Tenant, &m); n.Text != want {
		return failf(ErrSignature, "the manifest's signed note does not state this bundle's digest and counts (it says %q)", firstLines(n.Text, 3))
	}
	s.done = true
	s.rep.Lines = s.lr.n
	s.rep.SHA256 = sum
	s.rep.finish(s.parts)
	return nil
}

// checkCounts compares the manifest's counts with what was read.
func (s *verification) checkCounts(m *Manifest) error {
	lines := s.lr.n - 1
	switch {
	case m.Lines != lines:
		return failf(ErrManifest, "the manifest counts %d lines before it, the bundle has %d", m.Lines, lines)
	case m.Entries != s.rep.Entries || m.Pruned != s.rep.Pruned:
		return failf(ErrManifest, "the manifest counts %d entries (%d pruned), the bundle has %d (%d pruned)", m.Entries, m.Pruned, s.rep.Entries, s.rep.Pruned)
	case len(m.Partitions) != len(s.parts):
		return failf(ErrManifest, "the manifest lists %d partitions, the bundle has %d", len(m.Partitions), len(s.parts))
	}
	for i, p := range s.parts {
		if m.Partitions[i] != p.PartitionCount {
			return failf(ErrManifest, "the manifest says %+v for partition %s, the bundle has %+v", m.Partitions[i], p.Partition, p.PartitionCount)
		}
	}
	return nil
}

// entry checks one leaf: placement, hash, proof, content, chain, link.
func (s *verification) entry(line []byte) error {
	var e Entry
	if err := decodeLine(line, &e); err != nil {
		return err
	}
	p := s.cur()
	if p == nil || e.Partition != p.Partition {
		return failf(ErrMalformed, "entry of partition %s does not follow that partition's checkpoint", e.Partition)
	}
	if err := s.place(p, &e); err != nil {
		return err
	}
	leaf, err := s.leafHash(&e)
	if err != nil {
		return err
	}
	proof, err := hashes(e.Proof)
	if err != nil {
		return err
	}
	if err := merkle.VerifyInclusion(e.LeafIndex, p.CheckpointSize, leaf, proof, p.root); err != nil {
		return fmt.Errorf("leaf %d of %s is not in the signed tree of size %d: %w: %w", e.LeafIndex, e.Partition, p.CheckpointSize, ErrProof, err)
	}
	var en *trailv1.Entry
	if !e.Pruned {
		if en, err = s.content(&e); err != nil {
			return err
		}
	}
	if err := s.link(p, &e, leaf, en); err != nil {
		return err
	}
	s.count(p, &e)
	return nil
}

// place checks the leaf is inside the checkpoint and after the last one.
func (s *verification) place(p *partState, e *Entry) error {
	switch {
	case e.LeafIndex >= p.CheckpointSize:
		return failf(ErrMalformed, "leaf %d of %s is beyond its checkpoint's size %d", e.LeafIndex, e.Partition, p.CheckpointSize)
	case p.hasLeaf && e.LeafIndex <= p.LastLeaf:
		return failf(ErrMalformed, "leaf %d of %s after leaf %d: entries repeated or out of order", e.LeafIndex, e.Partition, p.LastLeaf)
	}
	return nil
}

// leafHash returns the leaf hash: recomputed from the bytes, or, for a
// pruned entry, the stated one, which only the proof vouches for.
func (s *verification) leafHash(e *Entry) (merkle.Hash, error) {
	var h merkle.Hash
	if len(e.LeafHash) != merkle.HashSize {
		return h, failf(ErrMalformed, "leaf_hash has %d bytes, want %d", len(e.LeafHash), merkle.HashSize)
	}
	copy(h[:], e.LeafHash)
	switch {
	case e.Pruned && len(e.Entry) != 0:
		return h, failf(ErrMalformed, "marked pruned but carries entry bytes")
	case e.Pruned:
		return h, nil
	case len(e.Entry) == 0:
		return h, failf(ErrMalformed, "no entry bytes, and not marked pruned")
	}
	if got := merkle.LeafHash(e.Entry); got != h {
		return h, failf(ErrEntry, "the entry bytes of leaf %d of %s hash to %s, not to its leaf hash %s: the entry was altered", e.LeafIndex, e.Partition, got, h)
	}
	return h, nil
}

// content decodes the entry and checks it is filed where it says, in time
// order, inside the export's filters.
func (s *verification) content(e *Entry) (*trailv1.Entry, error) {
	en := new(trailv1.Entry)
	if err := proto.Unmarshal(e.Entry, en); err != nil {
		return nil, failf(ErrEntry, "the entry bytes do not decode as a trail.v1.Entry: %v", err)
	}
	switch {
	case en.GetEvent().GetTenantId() != s.hdr.Tenant:
		return nil, failf(ErrEntry, "the entry is of tenant %q, the bundle of %q", en.GetEvent().GetTenantId(), s.hdr.Tenant)
	case en.GetPartition() != e.Partition || en.GetLeafIndex() != e.LeafIndex:
		return nil, failf(ErrEntry, "the entry records leaf %d of %s but is filed as leaf %d of %s", en.GetLeafIndex(), en.GetPartition(), e.LeafIndex, e.Partition)
	case !en.GetSequencerTime().IsValid():
		return nil, failf(ErrEntry, "the entry has no valid sequencer time")
	case e.LeafIndex != 0 && en.GetPrevPartition() != nil:
		return nil, failf(ErrEntry, "leaf %d records a prev_partition link, which only leaf 0 may", e.LeafIndex)
	}
	t := en.GetSequencerTime().AsTime().UTC()
	if t.Format("2006-01") != e.Partition {
		return nil, failf(ErrEntry, "sequencer time %s is not in partition %s", t.Format(time.RFC3339Nano), e.Partition)
	}
	if t.Before(s.last) {
		return nil, failf(ErrEntry, "sequencer time %s goes back before %s", t.Format(time.RFC3339Nano), s.last.Format(time.RFC3339Nano))
	}
	s.last = t
	if why := s.hdr.Filters.mismatch(en); why != "" {
		return nil, failf(ErrFilter, "leaf %d of %s: %s", e.LeafIndex, e.Partition, why)
	}
	return en, nil
}

// link checks the entry's place in the linear chain (DESIGN invariant 3).
// A leaf that directly follows the previous one in the bundle (the next
// leaf of the partition, or leaf 0 of the partition its link names right
// after that partition's last leaf) must record its leaf hash; otherwise a
// new run starts. A pruned leaf's own link is gone, but the next leaf must
// still record its hash.
func (s *verification) link(p *partState, e *Entry, leaf merkle.Hash, en *trailv1.Entry) error {
	adjacent := s.prev != nil && s.prev.partition == e.Partition && s.prev.leaf+1 == e.LeafIndex
	if l := en.GetPrevPartition(); l != nil && s.prev != nil {
		adjacent = s.prev.partition == l.GetPartition() && s.prev.leaf+1 == l.GetSize()
	}
	if en == nil {
		if !adjacent {
			s.rep.ChainRuns++
		}
		s.chain = merkle.NewChainVerifier(leaf, e.LeafIndex+1)
		return nil
	}
	prev, err := toHash(en.GetPrevLeafHash())
	if err != nil {
		return failf(ErrEntry, "prev_leaf_hash: %v", err)
	}
	if adjacent {
		if err := s.chain.Next(leaf, prev); err != nil {
			return fmt.Errorf("leaf %d of %s does not record the leaf hash of the entry before it (leaf %d of %s): %w: %w",
				e.LeafIndex, e.Partition, s.prev.leaf, s.prev.partition, ErrChain, err)
		}
		s.rep.ChainLinks++
	} else {
		s.rep.ChainRuns++
		// Positions in the verifier's messages are leaf indexes.
		s.chain = merkle.NewChainVerifier(prev, e.LeafIndex)
		_ = s.chain.Next(leaf, prev) // cannot fail: it starts from prev
	}
	if e.LeafIndex == 0 {
		return s.partitionLink(e, en, prev)
	}
	return nil
}

// partitionLink checks what leaf 0 says about the partition before it: a
// tenant's first leaf records no link and a zero previous hash; any other
// leaf 0 records the previous partition's final size and root, which must
// agree with that partition's checkpoint when the bundle holds it.
func (s *verification) partitionLink(e *Entry, en *trailv1.Entry, prev merkle.Hash) error {
	l := en.GetPrevPartition()
	if l == nil {
		if prev != (merkle.Hash{}) {
			return failf(ErrChain, "leaf 0 of %s has no prev_partition, so it must be the tenant's first entry, but it records previous leaf hash %s", e.Partition, prev)
		}
		if len(s.parts) > 1 {
			return failf(ErrChain, "leaf 0 of %s claims to be the tenant's first entry, but the bundle holds the earlier partition %s", e.Partition, s.parts[0].Partition)
		}
		return nil
	}
	if err := validPartition(l.GetPartition()); err != nil || l.GetPartition() >= e.Partition {
		return failf(ErrChain, "leaf 0 of %s links to partition %q, which is not an earlier partition", e.Partition, l.GetPartition())
	}
	root, err := toHash(l.GetRoot())
	if err != nil {
		return failf(ErrEntry, "prev_partition root: %v", err)
	}
	mp := s.find(l.GetPartition())
	switch {
	case mp == nil:
		s.rep.note("leaf 0 of %s links to partition %s (final size %d, root %s), which the bundle does not hold: that link was not checked",
			e.Partition, l.GetPartition(), l.GetSize(), root)
		return nil
	case l.GetSize() < mp.CheckpointSize:
		return failf(ErrChain, "leaf 0 of %s records final size %d for %s, but the log signed a checkpoint of %s at size %d: the partition grew after it was closed",
			e.Partition, l.GetSize(), mp.Partition, mp.Partition, mp.CheckpointSize)
	case l.GetSize() == mp.CheckpointSize && root != mp.root:
		return failf(ErrChain, "leaf 0 of %s records root %s for %s at size %d, but the signed checkpoint has root %s",
			e.Partition, root, mp.Partition, l.GetSize(), mp.root)
	case l.GetSize() == mp.CheckpointSize:
		s.rep.PartitionLinks++
		return nil
	}
	s.pending = &pendingLink{linkedFrom: e.Partition, size: l.GetSize(), root: root, part: mp}
	return nil
}

// firstLines returns the first n lines of s, for messages.
func firstLines(s string, n int) string {
	parts := strings.SplitN(s, "\n", n+1)
	return strings.Join(parts[:min(n, len(parts))], "\n")
}

func toHash(b []byte) (merkle.Hash, error) {
	var h merkle.Hash
	if len(b) != merkle.HashSize {
		return h, fmt.Errorf("%d bytes, want %d", len(b), merkle.HashSize)
	}
	copy(h[:], b)
	return h, nil
}

// count records an accepted entry.
func (s *verification) count(p *partState, e *Entry) {
	if !p.hasLeaf {
		p.FirstLeaf = e.LeafIndex
	}
	p.LastLeaf, p.hasLeaf = e.LeafIndex, true
	p.Entries++
	s.rep.Entries++
	if e.Pruned {
		p.Pruned++
		s.rep.Pruned++
	}
	s.prev = &leafState{partition: e.Partition, leaf: e.LeafIndex}
}
