package report

import (
	"encoding/base64"
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/trailaudit/trail/merkle"
)

// CSV trailer record markers (first column).
const (
	CSVCheckpointRecord  = "#checkpoint"
	CSVAttestationRecord = "#attestation"
)

// csvListSep joins list values (roles, fields) inside one cell.
const csvListSep = ";"

var accessHeader = []string{
	"sequencer_time", "occurred_at", "event_id", "actor_id", "actor_type", "actor_roles", "actor_display_name",
	"actor_ip", "action", "outcome", "fields_accessed", "purpose_code", "flag",
	"partition", "leaf_index", "leaf_hash", "checkpoint_size", "checkpoint_root", "report_digest",
}

var historyHeader = []string{
	"sequencer_time", "occurred_at", "event_id", "category", "action", "outcome", "actor_id", "actor_type",
	"actor_roles", "actor_display_name", "actor_ip", "subject_id", "field", "before", "after",
	"partition", "leaf_index", "leaf_hash", "checkpoint_size", "checkpoint_root", "report_digest",
}

// WriteCSV writes d as RFC 4180 CSV (see the package documentation).
func WriteCSV(w io.Writer, d *Document) error {
	cw := csv.NewWriter(w)
	cw.UseCRLF = true // RFC 4180 line breaks; readers turn them back into "\n"
	cps, err := checkpointsByPartition(d)
	if err != nil {
		return err
	}
	var records [][]string
	if d.Content.Kind == KindEntityHistory {
		records = historyRecords(d, cps)
	} else {
		records = accessRecords(d, cps)
	}
	width := len(records[0])
	records = append(records, trailerRecords(d, width)...)
	for _, r := range records {
		if err := cw.Write(neutralize(r)); err != nil {
			return fmt.Errorf("report: write CSV: %w", err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("report: write CSV: %w", err)
	}
	return nil
}

// checkpointsByPartition parses the document's checkpoints for display.
func checkpointsByPartition(d *Document) (map[string]merkle.Checkpoint, error) {
	out := make(map[string]merkle.Checkpoint)
	for _, sc := range d.Attestation.Checkpoints {
		cp, err := checkpointOf([]byte(sc.SignedNote), d.Content.LogName, d.Content.TenantID, sc.Partition)
		if err != nil {
			return nil, err
		}
		out[sc.Partition] = cp
	}
	return out, nil
}

// proofColumns are the columns every record ends with.
func proofColumns(s Source, cps map[string]merkle.Checkpoint, digest string) []string {
	cp := cps[s.Partition]
	return []string{
		s.Partition, strconv.FormatUint(s.LeafIndex, 10), s.LeafHash.String(),
		strconv.FormatUint(cp.Size, 10), base64.StdEncoding.EncodeToString(cp.Root[:]), digest,
	}
}

func accessRecords(d *Document, cps map[string]merkle.Checkpoint) [][]string {
	out := [][]string{accessHeader}
	for _, r := range d.Content.Accesses {
		rec := []string{
			timeText(r.SequencerTime), timeText(r.OccurredAt), r.EventID, r.ActorID, r.ActorType,
			strings.Join(r.ActorRoles, csvListSep), r.ActorName, r.ActorIP, r.Action, r.Outcome,
			strings.Join(r.FieldsAccessed, csvListSep), r.PurposeCode, r.Flag,
		}
		out = append(out, append(rec, proofColumns(r.Source, cps, d.Attestation.Digest)...))
	}
	return out
}

func historyRecords(d *Document, cps map[string]merkle.Checkpoint) [][]string {
	out := [][]string{historyHeader}
	for _, r := range d.Content.History {
		changes := r.Changes
		if len(changes) == 0 {
			changes = []Change{{}} // one record for an event without changes
		}
		for _, ch := range changes {
			rec := []string{
				timeText(r.SequencerTime), timeText(r.OccurredAt), r.EventID, r.Category, r.Action, r.Outcome,
				r.ActorID, r.ActorType, strings.Join(r.ActorRoles, csvListSep), r.ActorName, r.ActorIP, r.SubjectID,
				ch.Field, ch.Before, ch.After,
			}
			out = append(out, append(rec, proofColumns(r.Source, cps, d.Attestation.Digest)...))
		}
	}
	return out
}

// trailerRecords carry the signed checkpoints and the attestation, padded
// to width so that every record has the header's number of fields.
func trailerRecords(d *Document, width int) [][]string {
	pad := func(fields ...string) []string {
		rec := make([]string, width)
		copy(rec, fields)
		return rec
	}
	var out [][]string
	for _, sc := range d.Attestation.Checkpoints {
		out = append(out, pad(CSVCheckpointRecord, sc.Partition, sc.SignedNote))
	}
	return append(out, pad(CSVAttestationRecord, d.Attestation.Digest, d.Attestation.SignedNote))
}

// neutralize prefixes cells a spreadsheet would evaluate as formulas with a
// single quote. Trailer markers ("#...") and signed notes are unaffected:
// they start with neither of these characters.
func neutralize(rec []string) []string {
	for i, v := range rec {
		if v != "" && strings.ContainsRune("=+-@\t\r", rune(v[0])) {
			rec[i] = "'" + v
		}
	}
	return rec
}
