package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// printEntry prints one stored entry, and its receipt if known, as
// aligned key/value rows.
func printEntry(w io.Writer, se *trailv1.StoredEntry, r *trailv1.Receipt) error {
	en := se.GetEntry()
	ev := en.GetEvent()
	rows := [][2]string{
		{"tenant", se.GetTenantId()},
		{"partition", se.GetPartition()},
		{"leaf index", formatUint(se.GetLeafIndex())},
		{"leaf hash", hexOf(se.GetLeafHash())},
	}
	if se.GetPruned() {
		rows = append(rows, [2]string{"pruned", "yes: the payload was removed by retention; the leaf hash remains"})
		return keyValues(w, rows)
	}
	rows = append(rows, [][2]string{
		{"event id", ev.GetEventId()},
		{"sequenced", formatTime(en.GetSequencerTime())},
		{"occurred", formatTime(ev.GetOccurredAt())},
		{"category", shortEnum("CATEGORY_", ev.GetCategory().String())},
		{"action", ev.GetAction()},
		{"outcome", shortEnum("OUTCOME_", ev.GetOutcome().String())},
	}...)
	rows = append(rows, actorRows(ev.GetActor())...)
	rows = append(rows, [][2]string{
		{"subject", ev.GetSubjectId()},
		{"target", targetString(ev.GetTarget())},
		{"pii fields", strings.Join(ev.GetPiiFieldsAccessed(), ", ")},
		{"purpose", ev.GetPurposeCode()},
		{"source", ev.GetSourceService()},
		{"trace id", ev.GetTraceId()},
	}...)
	for _, c := range ev.GetChanges() {
		rows = append(rows, [2]string{"change", fmt.Sprintf("%s: %q -> %q", c.GetField(), c.GetBefore(), c.GetAfter())})
	}
	for _, k := range slices.Sorted(maps.Keys(ev.GetAttributes())) {
		rows = append(rows, [2]string{"attribute", k + "=" + ev.GetAttributes()[k]})
	}
	rows = append(rows, [2]string{"prev leaf hash", hexOf(en.GetPrevLeafHash())})
	if l := en.GetPrevPartition(); l != nil {
		rows = append(rows, [2]string{"prev partition", fmt.Sprintf("%s size %d root %s", l.GetPartition(), l.GetSize(), hexOf(l.GetRoot()))})
	}
	if r != nil {
		rows = append(rows, [2]string{"tree size at append", formatUint(r.GetTreeSize())})
	}
	return keyValues(w, rows)
}

func actorRows(a *trailv1.Actor) [][2]string {
	return [][2]string{
		{"actor", a.GetId()},
		{"actor type", a.GetType()},
		{"actor name", a.GetDisplayName()},
		{"actor roles", strings.Join(a.GetRoles(), ", ")},
		{"actor ip", a.GetIp()},
		{"actor agent", a.GetUserAgent()},
		{"actor session", a.GetSessionId()},
	}
}

func targetString(t *trailv1.Target) string {
	if t == nil {
		return ""
	}
	return t.GetType() + "/" + t.GetId()
}

// entryRowHeader and entryRow are the one-line form of an entry used by
// search and tail.
const entryRowHeader = "PARTITION\tLEAF\tSEQUENCED\tCATEGORY\tACTION\tOUTCOME\tACTOR\tSUBJECT\tTARGET\tEVENT_ID"

func entryRow(se *trailv1.StoredEntry) string {
	if se.GetPruned() {
		return fmt.Sprintf("%s\t%d\t(pruned)\t\t\t\t\t\t\t", se.GetPartition(), se.GetLeafIndex())
	}
	en := se.GetEntry()
	ev := en.GetEvent()
	return fmt.Sprintf("%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s", se.GetPartition(), se.GetLeafIndex(),
		formatTime(en.GetSequencerTime()), shortEnum("CATEGORY_", ev.GetCategory().String()), ev.GetAction(),
		shortEnum("OUTCOME_", ev.GetOutcome().String()), ev.GetActor().GetId(), ev.GetSubjectId(),
		targetString(ev.GetTarget()), ev.GetEventId())
}
