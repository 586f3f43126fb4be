package bundle

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"math/bits"

	"golang.org/x/mod/sumdb/note"

	"github.com/trailaudit/trail/merkle"
)

// Writer writes a bundle line by line to an io.Writer, hashing as it goes;
// it holds nothing but the current partition's counts. It enforces the
// order the format requires, so a bundle it writes is never rejected for
// its shape. A Writer is not safe for concurrent use; after any error it
// refuses further lines.
type Writer struct {
	w       io.Writer
	digest  hash.Hash
	logName string
	tenant  string
	lines   uint64
	entries uint64
	pruned  uint64
	parts   []PartitionCount
	cur     *PartitionCount // the partition of the last checkpoint
	hasLeaf bool            // cur holds at least one entry
	atLeaf0 bool            // the last line written is a leaf 0 entry
	run     *openRun        // the run being written, if any
	buf     []byte          // entry lines, reused
	rec     []byte          // entry digest records, reused
	err     error
}

// openRun is a run whose run line is out and whose run_end is not.
type openRun struct {
	begin, next uint64
}

// NewWriter writes h's header line to w and returns a Writer for the rest
// of the bundle. Type and Format are filled in, and the filter is written
// normalized.
func NewWriter(w io.Writer, h Header) (*Writer, error) {
	if h.LogName == "" || h.Tenant == "" {
		return nil, errors.New("bundle: header needs a log name and a tenant")
	}
	if err := h.Filter.Check(); err != nil {
		return nil, fmt.Errorf("bundle: header: %w", err)
	}
	h.Type, h.Format, h.V2Filters = TypeHeader, Format, nil
	h.Filter = h.Filter.Clone()
	h.Filter.Normalize() // one spelling per selection
	bw := &Writer{w: w, digest: sha256.New(), logName: h.LogName, tenant: h.Tenant}
	if err := bw.line(h); err != nil {
		return nil, err
	}
	return bw, nil
}

// line writes one object as a line and feeds it to the digest.
func (w *Writer) line(v any) error {
	if w.err != nil {
		return w.err
	}
	b, err := json.Marshal(v)
	if err != nil {
		w.err = fmt.Errorf("bundle: encode line %d: %w", w.lines+1, err)
		return w.err
	}
	b = append(b, '\n')
	digestLineRecord(w.digest, b)
	return w.raw(b)
}

// raw writes one encoded line, "\n" included; the caller has fed the
// digest its record.
func (w *Writer) raw(b []byte) error {
	if w.err != nil {
		return w.err
	}
	w.atLeaf0 = false
	if _, err := w.w.Write(b); err != nil {
		w.err = fmt.Errorf("bundle: write line %d: %w", w.lines+1, err)
		return w.err
	}
	w.lines++
	return nil
}

// Checkpoint starts a partition: every entry written until the next
// checkpoint belongs to it and is proven against it. Partitions must come
// in month order, each once.
func (w *Writer) Checkpoint(c Checkpoint) error {
	if err := validPartition(c.Partition); err != nil {
		return fmt.Errorf("bundle: checkpoint: %w", err)
	}
	if w.cur != nil && c.Partition <= w.cur.Partition {
		return fmt.Errorf("bundle: checkpoint of %s after %s: partitions must be in month order", c.Partition, w.cur.Partition)
	}
	if w.run != nil {
		return fmt.Errorf("bundle: checkpoint of %s while the run of %s from leaf %d is open", c.Partition, w.cur.Partition, w.run.begin)
	}
	c.Type = TypeCheckpoint
	if err := w.line(c); err != nil {
		return err
	}
	w.parts = append(w.parts, PartitionCount{Partition: c.Partition, CheckpointSize: c.Size})
	w.cur, w.hasLeaf = &w.parts[len(w.parts)-1], false
	return nil
}

// Run opens a run of consecutive leaves of the current partition from
// r.Begin; r.Prefix is the compact range [0, r.Begin) of its tree. Runs
// ascend and do not overlap. Entries follow, then EndRun.
func (w *Writer) Run(r Run) error {
	switch {
	case w.cur == nil || r.Partition != w.cur.Partition:
		return fmt.Errorf("bundle: run of partition %s without its checkpoint before it", r.Partition)
	case w.run != nil:
		return fmt.Errorf("bundle: run of %s from leaf %d while the run from leaf %d is open", r.Partition, r.Begin, w.run.begin)
	case r.Begin >= w.cur.CheckpointSize:
		return fmt.Errorf("bundle: run of %s from leaf %d beyond the checkpoint size %d", r.Partition, r.Begin, w.cur.CheckpointSize)
	case w.hasLeaf && r.Begin <= w.cur.LastLeaf:
		return fmt.Errorf("bundle: run of %s from leaf %d after leaf %d: runs must ascend", r.Partition, r.Begin, w.cur.LastLeaf)
	case len(r.Prefix) != bits.OnesCount64(r.Begin):
		return fmt.Errorf("bundle: run of %s from leaf %d: prefix of %d hashes, want %d", r.Partition, r.Begin, len(r.Prefix), bits.OnesCount64(r.Begin))
	}
	for i, h := range r.Prefix {
		if len(h) != merkle.HashSize {
			return fmt.Errorf("bundle: run of %s from leaf %d: prefix hash %d has %d bytes", r.Partition, r.Begin, i, len(h))
		}
	}
	r.Type = TypeRun
	if r.Prefix == nil {
		r.Prefix = [][]byte{}
	}
	if err := w.line(r); err != nil {
		return err
	}
	w.run = &openRun{begin: r.Begin, next: r.Begin}
	return nil
}

// RunOpen returns the partition, first leaf and next leaf of the open
// run, if any: EndRun's arguments are its partition, begin and next.
func (w *Writer) RunOpen() (partition string, begin, next uint64, ok bool) {
	if w.run == nil {
		return "", 0, 0, false
	}
	return w.cur.Partition, w.run.begin, w.run.next, true
}

// Entry writes the next leaf of the open run.
func (w *Writer) Entry(e Entry) error {
	switch {
	case w.cur == nil || e.Partition != w.cur.Partition:
		return fmt.Errorf("bundle: entry of partition %s without its checkpoint before it", e.Partition)
	case w.run == nil:
		return fmt.Errorf("bundle: entry %s/%d outside a run", e.Partition, e.LeafIndex)
	case e.LeafIndex >= w.cur.CheckpointSize:
		return fmt.Errorf("bundle: entry %s/%d beyond the checkpoint size %d", e.Partition, e.LeafIndex, w.cur.CheckpointSize)
	case e.LeafIndex != w.run.next:
		return fmt.Errorf("bundle: entry %s/%d in a run whose next leaf is %d", e.Partition, e.LeafIndex, w.run.next)
	case e.Pruned != (e.Entry == nil):
		return fmt.Errorf("bundle: entry %s/%d: pruned exactly when it has no bytes", e.Partition, e.LeafIndex)
	case !e.Pruned && len(e.Entry) == 0:
		return fmt.Errorf("bundle: entry %s/%d: no entry bytes", e.Partition, e.LeafIndex)
	case len(e.LeafHash) != merkle.HashSize:
		return fmt.Errorf("bundle: entry %s/%d: leaf hash of %d bytes", e.Partition, e.LeafIndex, len(e.LeafHash))
	}
	var leafHash [32]byte
	copy(leafHash[:], e.LeafHash)
	w.digest.Write(appendEntryRecord(w.rec[:0], []byte(e.Partition), e.LeafIndex, e.Pruned, &leafHash))
	w.buf = appendEntryLine(w.buf[:0], &e)
	if err := w.raw(w.buf); err != nil {
		return err
	}
	if !w.hasLeaf {
		w.cur.FirstLeaf = e.LeafIndex
	}
	w.cur.LastLeaf, w.hasLeaf = e.LeafIndex, true
	w.atLeaf0 = e.LeafIndex == 0
	w.run.next++
	w.cur.Entries++
	w.entries++
	if e.Pruned {
		w.cur.Pruned++
		w.pruned++
	}
	return nil
}

// EndRun closes the open run after its last entry: r.End is the leaf
// after it, and r.Consistency the consistency proof from the tree at End
// to the checkpoint (empty when End is the checkpoint's size).
func (w *Writer) EndRun(r RunEnd) error {
	switch {
	case w.run == nil || r.Partition != w.cur.Partition || r.Begin != w.run.begin:
		return fmt.Errorf("bundle: end of a run of %s from leaf %d that is not open", r.Partition, r.Begin)
	case r.End != w.run.next || r.End == r.Begin:
		return fmt.Errorf("bundle: run of %s [%d, %d) holds leaves [%d, %d)", r.Partition, r.Begin, r.End, w.run.begin, w.run.next)
	case r.End == w.cur.CheckpointSize && len(r.Consistency) != 0:
		return fmt.Errorf("bundle: run of %s ends at the checkpoint size: no consistency proof", r.Partition)
	}
	r.Type = TypeRunEnd
	if r.Consistency == nil {
		r.Consistency = [][]byte{}
	}
	if err := w.line(r); err != nil {
		return err
	}
	w.run = nil
	return nil
}

// Consistency writes a consistency record; it must directly follow the
// leaf 0 entry whose partition link it resolves.
func (w *Writer) Consistency(c Consistency) error {
	if !w.atLeaf0 || c.LinkedFrom != w.cur.Partition {
		return fmt.Errorf("bundle: consistency record for %s must follow leaf 0 of %s", c.Partition, c.LinkedFrom)
	}
	c.Type = TypeConsistency
	if c.Proof == nil {
		c.Proof = [][]byte{}
	}
	return w.line(c)
}

// Entries returns the number of entries written so far.
func (w *Writer) Entries() uint64 { return w.entries }

// Close writes the manifest, signed by signer (the log key), and returns
// it. It does not close the underlying writer.
func (w *Writer) Close(signer note.Signer) (*Manifest, error) {
	if w.err != nil {
		return nil, w.err
	}
	if w.run != nil {
		return nil, fmt.Errorf("bundle: close while the run of %s from leaf %d is open", w.cur.Partition, w.run.begin)
	}
	m := &Manifest{
		Type: TypeManifest, Lines: w.lines, Entries: w.entries, Pruned: w.pruned,
		Partitions: w.parts, SHA256: hex.EncodeToString(w.digest.Sum(nil)),
	}
	if m.Partitions == nil {
		m.Partitions = []PartitionCount{}
	}
	signed, err := note.Sign(&note.Note{Text: noteText(Format, w.logName, w.tenant, m)}, signer)
	if err != nil {
		return nil, fmt.Errorf("bundle: sign manifest: %w", err)
	}
	m.SignedNote = string(signed)
	if err := w.line(m); err != nil {
		return nil, err
	}
	w.err = errors.New("bundle: writer closed")
	return m, nil
}
