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

	"github.com/trailaudit/trail/merkle"
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
// bounded by one line plus a few hashes per partition and the open run's
// compact range (O(log n) hashes).
func (v *Verifier) Verify(ctx context.Context, r io.Reader) (*Report, error) {
	limit := v.MaxLine
	if limit <= 0 {
		limit = DefaultMaxLine
	}
	s := &verification{v: v, lr: newLineReader(r, limit), digest: sha256.New(), rep: &Report{Key: keyLabel(v.key)}}
	if err := s.loop(ctx); err != nil {
		var be *Error
		if errors.As(err, &be) {
			return nil, err
		}
		return nil, &Error{Line: s.lr.n, Type: s.typ, Err: err}
	}
	s.matchErasures()
	return s.rep, nil
}

// verification is the state of one Verify call.
type verification struct {
	v   *Verifier
	lr  *lineReader
	rep *Report
	typ string // type of the current line

	hdr     *Header
	parts   []partState // in bundle order; one per checkpoint
	run     *runState   // the open run, if any
	prev    *leafState  // the last entry
	chain   *merkle.ChainVerifier
	last    time.Time
	pending *pendingLink
	done    bool // the manifest was read

	// digest is the manifest digest of the lines so far (digest.go).
	digest hash.Hash

	// Per-entry scratch, reused so that an entry costs no allocation.
	el  entryLine
	ef  entryFields
	buf []byte // 0x00 then the entry bytes: the leaf hash input
	rec []byte // the entry's digest record

	// sealed holds the entry bytes of the previous line when it was a
	// sealed entry, which an opening line may open (opening.go).
	sealed     []byte
	sealedLeaf uint64
	// erasedKeys counts the "erased" openings per data key (hex), and
	// erasureRecords holds the keys whose erasure record (action
	// subject.erased, target data_key/<key>) is in the bundle.
	erasedKeys     map[string]uint64
	erasureRecords map[string]bool
}

// partState is a partition's checkpoint and what the bundle held of it.
type partState struct {
	PartitionCount
	root    merkle.Hash
	hasLeaf bool
	month   time.Time // the partition's first instant
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

func (s *verification) loop(ctx context.Context) error {
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
	if typ != TypeOpening {
		s.sealed = s.sealed[:0] // an opening line must follow its entry at once
	}
	if s.run != nil && typ != TypeEntry && typ != TypeRunEnd && typ != TypeConsistency && typ != TypeOpening {
		return failf(ErrMalformed, "a %s line inside the run of %s from leaf %d, which has no run_end", typ, s.run.part.Partition, s.run.begin)
	}
	if typ != TypeEntry && typ != TypeManifest {
		digestLineRecord(s.digest, line) // entries feed theirs once checked
	}
	switch typ {
	case TypeHeader:
		return s.header(line)
	case TypeCheckpoint:
		return s.checkpoint(line)
	case TypeRun:
		return s.openRun(line)
	case TypeEntry:
		return s.entry(line)
	case TypeRunEnd:
		return s.endRun(line)
	case TypeConsistency:
		return s.consistency(line)
	case TypeManifest:
		return s.manifest(line)
	case TypeOpening:
		return s.opening(line) // opening.go
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
	if h.Format == "trail-bundle/1" {
		return failf(ErrMalformed, "format %q proves each entry on its own and is no longer read; export the bundle again to get %q", h.Format, Format)
	}
	switch {
	case (h.Format == Format || h.Format == formatV3) && h.V2Filters == nil:
	case h.Format == formatV2 && h.V2Filters != nil:
		f, err := h.V2Filters.filter()
		if err != nil {
			return failf(ErrMalformed, "%v", err)
		}
		h.Filter, h.V2Filters = f, nil
	case h.Format == Format || h.Format == formatV3 || h.Format == formatV2:
		return failf(ErrMalformed, "format %q with a header of another format's filters", h.Format)
	default:
		return failf(ErrMalformed, "format %q, this verifier reads %q, %q and %q", h.Format, Format, formatV3, formatV2)
	}
	if h.Tenant == "" || strings.ContainsAny(h.Tenant, "/\n") {
		return failf(ErrMalformed, "tenant %q is not a tenant id", h.Tenant)
	}
	if err := h.Filter.Check(); err != nil {
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
	month, _ := time.Parse("2006-01", c.Partition) // checked by validPartition
	s.parts = append(s.parts, partState{PartitionCount: PartitionCount{Partition: c.Partition, CheckpointSize: cp.Size}, root: cp.Root, month: month})
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
	if want := noteText(s.hdr.Format, s.hdr.LogName, s.hdr.Tenant, &m); n.Text != want {
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
