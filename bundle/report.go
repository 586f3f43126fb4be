package bundle

import (
	"fmt"
	"time"

	"github.com/trailaudit/trail/filter"
	"github.com/trailaudit/trail/merkle"
)

// maxNotes bounds the notes a report keeps, so a bundle crafted to cause
// one per line cannot grow the verifier's memory.
const maxNotes = 64

// Report is what a successful verification established.
type Report struct {
	Format  string
	LogName string
	Tenant  string
	Filter  filter.Filter
	Created time.Time
	Key     string // the trusted key, "name+hash"

	Lines      uint64 // including the manifest
	Entries    uint64 // pruned ones included
	Pruned     uint64
	Partitions []PartitionReport
	// ChainRuns counts the runs of consecutive leaves in the bundle and
	// ChainLinks the prev_leaf_hash links checked inside them.
	ChainRuns  uint64
	ChainLinks uint64
	// RunProofs counts the run proofs checked: each proves one run of
	// consecutive leaves against its partition's checkpoint.
	RunProofs uint64
	// PartitionLinks counts the prev_partition links of leaf 0 checked
	// against the previous partition's checkpoint, ConsistencyProofs those
	// of them that needed a consistency proof.
	PartitionLinks    uint64
	ConsistencyProofs uint64
	// Sealed counts the entries whose payload is sealed (crypto-shredding),
	// Opened those of them the bundle opens with a key checked against the
	// ciphertext, Erased those it says were erased.
	Sealed, Opened, Erased uint64
	// ErasedRecorded counts the erased entries whose erasure record (a
	// signed-off event of the log naming their data key) is in the bundle;
	// for the others, "erased" is the exporting server's word.
	ErasedRecorded uint64
	SHA256         string // of every line before the manifest
	Notes          []string
	notesDropped   int
}

// PartitionReport is one partition's signed checkpoint and what the
// bundle held of it.
type PartitionReport struct {
	Partition string
	Origin    string
	Size      uint64
	Root      merkle.Hash
	Entries   uint64
	Pruned    uint64
	FirstLeaf uint64
	LastLeaf  uint64
}

func (r *Report) setHeader(h *Header) {
	r.Format, r.LogName, r.Tenant, r.Filter, r.Created = h.Format, h.LogName, h.Tenant, h.Filter, h.Created
}

func (r *Report) note(format string, args ...any) {
	if len(r.Notes) == maxNotes {
		r.notesDropped++
		return
	}
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

// finish copies the per-partition counts and adds the closing notes.
func (r *Report) finish(parts []partState) {
	for i, p := range parts {
		pr := &r.Partitions[i]
		pr.Entries, pr.Pruned, pr.FirstLeaf, pr.LastLeaf = p.Entries, p.Pruned, p.FirstLeaf, p.LastLeaf
	}
	if r.Pruned > 0 {
		r.note("%d entries are pruned (retention removed their payload): only their leaf hashes are proven, and their own link to the entry before cannot be checked", r.Pruned)
	}
	if r.Filter.Selective() {
		r.note("the export is filtered (%s): it holds the matching entries, each proven, but cannot prove that no other entry matches", r.Filter.String())
	}
	if r.notesDropped > 0 {
		r.Notes = append(r.Notes, fmt.Sprintf("%d more notes not shown", r.notesDropped))
	}
}

// Summary states what was verified, one "OK ..." line per fact.
func (r *Report) Summary() []string {
	out := []string{fmt.Sprintf("OK bundle %s of tenant %s (log %s, %s), created %s, %d lines",
		r.Format, r.Tenant, r.LogName, r.Filter.Describe(), r.Created.UTC().Format(time.RFC3339), r.Lines)}
	for _, p := range r.Partitions {
		out = append(out, fmt.Sprintf("OK checkpoint %s size %d root %s signed by key %s", p.Origin, p.Size, p.Root, r.Key))
	}
	out = append(out,
		fmt.Sprintf("OK %d entries (%d pruned) in %d partitions: leaf hashes recomputed from the entry bytes, proven included in their partition's signed checkpoint by %d run proofs, tenant, partition, leaf index, sequencer time and filters checked",
			r.Entries, r.Pruned, len(r.Partitions), r.RunProofs),
		fmt.Sprintf("OK chain: %d prev_leaf_hash links checked in %d runs of consecutive leaves", r.ChainLinks, r.ChainRuns),
		fmt.Sprintf("OK partition links: %d checked against the previous partition's checkpoint (%d by consistency proof)", r.PartitionLinks, r.ConsistencyProofs),
		fmt.Sprintf("OK manifest: sha256 %s over all %d preceding lines and the counts, signed by key %s", r.SHA256, r.Lines-1, r.Key),
	)
	if r.Sealed > 0 {
		out = append(out, fmt.Sprintf("OK sealed payloads: %d entries, %d opened with their event keys (checked against the hashed ciphertext), %d erased (%d of them with their erasure record in this bundle; the others on the exporting server's word), %d not opened",
			r.Sealed, r.Opened, r.Erased, r.ErasedRecorded, r.Sealed-r.Opened-r.Erased))
	}
	for _, p := range r.Partitions {
		if p.Entries > 0 {
			out = append(out, fmt.Sprintf("OK %s: %d entries, leaves %d..%d of %d", p.Partition, p.Entries, p.FirstLeaf, p.LastLeaf, p.Size))
		}
	}
	return out
}
