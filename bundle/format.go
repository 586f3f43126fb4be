package bundle

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/trailaudit/trail/filter"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// Format is the format version a header names; verifiers refuse others.
// Version 1 proved every entry on its own; version 2 proves runs; version
// 3 records the export's selection as a filter.Filter (sets of values);
// version 4 adds opening lines after sealed entries.
const Format = "trail-bundle/4"

// formatV3 is version 3: version 4 without opening lines. Verifiers still
// read it.
const formatV3 = "trail-bundle/3"

// ContentType is the media type of a bundle, and FileExt its file name
// extension.
const (
	ContentType = "application/x-ndjson"
	FileExt     = ".trail-bundle.jsonl"
)

// Line types, the value of every line's "type" key.
const (
	TypeHeader      = "header"
	TypeCheckpoint  = "checkpoint"
	TypeRun         = "run"
	TypeEntry       = "entry"
	TypeRunEnd      = "run_end"
	TypeConsistency = "consistency"
	TypeManifest    = "manifest"
	TypeOpening     = "opening"
)

// Opening follows a sealed entry (docs/erasure.md) and says what the
// exporting server could do with its payload: opened, with the event's
// key, which the verifier checks opens the ciphertext the leaf hash
// covers; or erased, the subject's data key gone. A sealed entry the
// server could not open has no opening line.
type Opening struct {
	Type      string `json:"type"`
	Partition string `json:"partition"`
	LeafIndex uint64 `json:"leaf_index"`
	State     string `json:"state"`
	Key       []byte `json:"key,omitempty"`
}

// States of an Opening.
const (
	OpeningOpened = "opened"
	OpeningErased = "erased"
)

// formatV2 is the previous format: the same lines, but a header whose
// "filters" held one value per field. Verifiers still read it.
const formatV2 = "trail-bundle/2"

// v2Filters are a trail-bundle/2 header's filters. Zero values are not
// filters.
type v2Filters struct {
	From       time.Time `json:"from,omitzero"`
	To         time.Time `json:"to,omitzero"`
	ActorID    string    `json:"actor_id,omitempty"`
	SubjectID  string    `json:"subject_id,omitempty"`
	TargetType string    `json:"target_type,omitempty"`
	TargetID   string    `json:"target_id,omitempty"`
	Category   string    `json:"category,omitempty"` // enum name, e.g. CATEGORY_DATA_ACCESS
	Action     string    `json:"action,omitempty"`
}

// filter returns the selection f describes.
func (f *v2Filters) filter() (filter.Filter, error) {
	out := filter.Filter{From: f.From, To: f.To}
	one := func(v string) []string {
		if v == "" {
			return nil
		}
		return []string{v}
	}
	out.ActorIDs, out.SubjectIDs, out.Actions = one(f.ActorID), one(f.SubjectID), one(f.Action)
	if f.TargetType != "" || f.TargetID != "" {
		out.Targets = []filter.Target{{Type: f.TargetType, ID: f.TargetID}}
	}
	if f.Category != "" {
		c, ok := trailv1.Category_value[f.Category]
		if !ok || c == 0 {
			return filter.Filter{}, fmt.Errorf("filter category %q is not a category", f.Category)
		}
		out.Categories = []trailv1.Category{trailv1.Category(c)}
	}
	return out, out.Check()
}

// Header is the first line of a bundle.
type Header struct {
	Type    string `json:"type"`
	Format  string `json:"format"`
	LogName string `json:"log_name"`
	Tenant  string `json:"tenant"`
	// Filter is the selection the export was made with (trail-bundle/3).
	Filter filter.Filter `json:"filter"`
	// V2Filters is where a trail-bundle/2 header kept it; a verifier moves
	// it into Filter. Writers never set it.
	V2Filters *v2Filters `json:"filters,omitempty"`
	Created   time.Time  `json:"created"`
	// KeyName and KeyHash identify the log key ("name+hash" as signature
	// lines name it); VKey is its full verifier key text when the server
	// knows it. All three are informational: a verifier uses the key it
	// trusts and only checks that these agree with it.
	KeyName string `json:"key_name"`
	KeyHash string `json:"key_hash"` // 8 hex digits
	VKey    string `json:"vkey,omitempty"`
}

// Checkpoint is a partition's signed checkpoint; every entry of the
// partition in the bundle is proven against it.
type Checkpoint struct {
	Type      string `json:"type"`
	Partition string `json:"partition"`
	// Size and Root repeat the signed note's body; they must agree with it.
	Size uint64 `json:"size"`
	Root []byte `json:"root"`
	Note string `json:"note"`
}

// Run opens a run of consecutive leaves of Partition starting at Begin.
// Prefix is the compact range [0, Begin) of the partition's tree: the
// roots of its perfect subtrees, largest first, one per set bit of Begin
// (none for Begin 0). The verifier resumes the tree from it and folds in
// the run's leaves as they stream past.
type Run struct {
	Type      string   `json:"type"`
	Partition string   `json:"partition"`
	Begin     uint64   `json:"begin"`
	Prefix    [][]byte `json:"prefix"`
}

// RunEnd closes the run opened at Begin: its entries were exactly the
// leaves [Begin, End). Consistency proves the tree at End, as the run's
// prefix and leaves build it, is a prefix of the partition's checkpoint;
// it is empty when End is the checkpoint's size, whose root must then be
// the one built.
type RunEnd struct {
	Type        string   `json:"type"`
	Partition   string   `json:"partition"`
	Begin       uint64   `json:"begin"`
	End         uint64   `json:"end"`
	Consistency [][]byte `json:"consistency"`
}

// Entry is one leaf: the exact entry bytes that were hashed, or only the
// leaf hash when retention pruned the payload. Its line has a fixed layout
// (see entryline.go), the field order below, which the verifier parses
// without reflection.
type Entry struct {
	Type      string `json:"type"`
	Partition string `json:"partition"`
	LeafIndex uint64 `json:"leaf_index"`
	LeafHash  []byte `json:"leaf_hash"`
	Entry     []byte `json:"entry,omitempty"`
	Pruned    bool   `json:"pruned,omitempty"`
}

// Consistency proves that the tree of Partition at FromSize is a prefix of
// its tree at ToSize. One of the two is the partition's checkpoint in the
// bundle, the other the final size and root that leaf 0 of LinkedFrom
// records for it (Entry.prev_partition).
type Consistency struct {
	Type       string   `json:"type"`
	Partition  string   `json:"partition"`
	LinkedFrom string   `json:"linked_from"`
	FromSize   uint64   `json:"from_size"`
	ToSize     uint64   `json:"to_size"`
	Proof      [][]byte `json:"proof"`
}

// PartitionCount is what the bundle holds of one partition.
type PartitionCount struct {
	Partition      string `json:"partition"`
	CheckpointSize uint64 `json:"checkpoint_size"`
	Entries        uint64 `json:"entries"` // pruned ones included
	Pruned         uint64 `json:"pruned"`
	FirstLeaf      uint64 `json:"first_leaf"`
	LastLeaf       uint64 `json:"last_leaf"`
}

// Manifest is the last line: counts, the SHA-256 of every byte before the
// manifest line, and the log key's signature over both.
type Manifest struct {
	Type       string           `json:"type"`
	Lines      uint64           `json:"lines"` // lines before the manifest
	Entries    uint64           `json:"entries"`
	Pruned     uint64           `json:"pruned"`
	Partitions []PartitionCount `json:"partitions"`
	SHA256     string           `json:"sha256"` // lowercase hex
	SignedNote string           `json:"signed_note"`
}

// noteText is the text the manifest's signed note carries. Its second line
// ("<log>/<tenant>") is not a decimal size, so no checkpoint parser can
// read it as a checkpoint: the log key signs it without ever signing a
// second tree head for any origin.
func noteText(format, logName, tenant string, m *Manifest) string {
	var b strings.Builder
	b.WriteString(format + " manifest\n")
	b.WriteString(logName + "/" + tenant + "\n")
	b.WriteString("sha256 " + m.SHA256 + "\n")
	b.WriteString("lines " + strconv.FormatUint(m.Lines, 10) + "\n")
	b.WriteString("entries " + strconv.FormatUint(m.Entries, 10) + " pruned " + strconv.FormatUint(m.Pruned, 10) + "\n")
	for _, p := range m.Partitions {
		fmt.Fprintf(&b, "partition %s size %d entries %d pruned %d leaves %d..%d\n",
			p.Partition, p.CheckpointSize, p.Entries, p.Pruned, p.FirstLeaf, p.LastLeaf)
	}
	return b.String()
}

// validPartition checks a partition name is "YYYY-MM" as the log writes
// it, so that string order is month order.
func validPartition(s string) error {
	t, err := time.Parse("2006-01", s)
	if err != nil || t.Format("2006-01") != s || t.Year() < 1970 {
		return fmt.Errorf("partition %q is not YYYY-MM", s)
	}
	return nil
}
