package report

import (
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/trailaudit/trail/merkle"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
	"github.com/trailaudit/trail/shred"
)

// Report kinds, as the content and the attestation name them.
const (
	KindPIIAccess     = "pii-access"
	KindEntityHistory = "entity-history"
)

// Flags of a PII access row.
const (
	// FlagMissingPurpose: the access names no purpose code.
	FlagMissingPurpose = "missing_purpose_code"
	// FlagInvalidPurpose: the purpose code is not one of the tenant's valid
	// codes (only when the tenant has a list).
	FlagInvalidPurpose = "invalid_purpose_code"
)

// PayloadState is what a report shows of a row's sealed payload (an
// event's changes and attributes sealed under its subject's data key,
// package shred). The empty state is that of an event that is not sealed.
type PayloadState string

// Payload states.
const (
	// PayloadClear: the event is not sealed; its changes are in clear in
	// the entry bytes.
	PayloadClear PayloadState = ""
	// PayloadOpened: the server opened the sealed payload; the row's source
	// carries the event's opening key, which opens the ciphertext in the
	// entry bytes to exactly what the row shows.
	PayloadOpened PayloadState = "opened"
	// PayloadErased: the subject's data key was erased (GDPR Art. 17): the
	// payload can never be opened again, and the row shows no changes.
	PayloadErased PayloadState = "erased"
	// PayloadUnavailable: the server could not open the payload (it holds
	// no sealing secret, or another one), and the row shows no changes.
	PayloadUnavailable PayloadState = "unavailable"
)

// contentVersion is the version of the content layout. Payload states
// and opening keys did not change it: they appear only on rows of sealed
// events, which a verifier that predates them refuses as unknown fields
// rather than misreads.
const contentVersion = 1

// MaxRows bounds the rows of one report: JSON and PDF need the whole row
// set in memory, and a report larger than this is better cut by time range.
const MaxRows = 100_000

// MaxPDFRows bounds the rows of a PDF report: the PDF library holds every
// page in memory and rendering allocates some 75 KB per row, and a PDF of
// more than about 800 pages is read by no one; JSON and CSV serve larger
// reports.
const MaxPDFRows = 25_000

// ErrInvalid is wrapped by errors about entries or documents that cannot
// form a valid report.
var ErrInvalid = errors.New("invalid report")

// Hash is a SHA-256 hash written as lowercase hex in reports.
type Hash merkle.Hash

// MarshalText implements encoding.TextMarshaler.
func (h Hash) MarshalText() ([]byte, error) { return []byte(merkle.Hash(h).String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler; it accepts only the
// lowercase form MarshalText writes, so one hash has one spelling.
func (h *Hash) UnmarshalText(b []byte) error {
	p, err := merkle.ParseHash(string(b))
	if err != nil {
		return err
	}
	if hex.EncodeToString(p[:]) != string(b) {
		return fmt.Errorf("hash %q is not lowercase hex", b)
	}
	*h = Hash(p)
	return nil
}

func (h Hash) String() string { return merkle.Hash(h).String() }

// LogEntry is one leaf as stored: its position and the exact bytes that
// were hashed. Rows are built from Data alone, and keep it (reports can be
// large, so it is not copied): do not modify it afterwards.
//
// Payload and OpeningKey are the server's account of a sealed event: for
// an event that is not sealed, PayloadClear and no key; for a sealed one,
// its state and, when PayloadOpened, the event's opening key. They are
// claims checked against Data: a state for an event that is not sealed,
// none for a sealed one, or a key that does not open the payload make the
// entry invalid.
type LogEntry struct {
	Partition  string // "YYYY-MM"
	LeafIndex  uint64
	Data       []byte
	Payload    PayloadState
	OpeningKey []byte
}

// PIIAccessQuery selects the rows of a PII access report.
type PIIAccessQuery struct {
	Tenant    string
	SubjectID string
	// From and To bound sequencer time as [From, To); zero values are open.
	From, To time.Time
	// ValidPurposeCodes, when not empty, are the only codes that do not
	// flag an access; when empty, any non-empty code is valid.
	ValidPurposeCodes []string
}

// EntityHistoryQuery selects the rows of an entity history.
type EntityHistoryQuery struct {
	Tenant     string
	TargetType string
	TargetID   string
	From, To   time.Time
}

// Content is what a report states; its compact JSON encoding is the
// canonical content that the digest covers.
type Content struct {
	Kind        string       `json:"kind"`
	Version     int          `json:"version"`
	LogName     string       `json:"log_name"`
	TenantID    string       `json:"tenant_id"`
	GeneratedAt time.Time    `json:"generated_at"`
	Parameters  Parameters   `json:"parameters"`
	Summary     Summary      `json:"summary"`
	Accesses    []AccessRow  `json:"accesses,omitempty"`
	History     []HistoryRow `json:"history,omitempty"`
}

// Parameters are the report's query.
type Parameters struct {
	SubjectID         string    `json:"subject_id,omitempty"`
	TargetType        string    `json:"target_type,omitempty"`
	TargetID          string    `json:"target_id,omitempty"`
	From              time.Time `json:"from,omitzero"`
	To                time.Time `json:"to,omitzero"`
	ValidPurposeCodes []string  `json:"valid_purpose_codes,omitempty"`
}

// Summary counts what the rows show.
type Summary struct {
	// Rows is the number of accesses (PII report) or events (history).
	Rows int `json:"rows"`
	// Changes is the number of field changes (history).
	Changes int `json:"changes"`
	// Flagged accesses, and the two reasons (PII report).
	Flagged        int `json:"flagged"`
	MissingPurpose int `json:"missing_purpose_code"`
	InvalidPurpose int `json:"invalid_purpose_code"`
	// Actors is the number of distinct actor ids.
	Actors int `json:"distinct_actors"`
	// Partitions the rows come from, in order.
	Partitions []string  `json:"partitions,omitempty"`
	First      time.Time `json:"first,omitzero"`
	Last       time.Time `json:"last,omitzero"`
	// Rows of sealed events by payload state; absent when zero.
	Opened      int `json:"payload_opened,omitempty"`
	Erased      int `json:"payload_erased,omitempty"`
	Unavailable int `json:"payload_unavailable,omitempty"`
}

// Sealed is the number of rows of sealed events.
func (s Summary) Sealed() int { return s.Opened + s.Erased + s.Unavailable }

// Source locates a row's leaf and carries its exact entry bytes, and for
// a sealed payload that was opened, the event's opening key.
type Source struct {
	Partition  string `json:"partition"`
	LeafIndex  uint64 `json:"leaf_index"`
	LeafHash   Hash   `json:"leaf_hash"`
	EntryBytes []byte `json:"entry_bytes"`
	OpeningKey []byte `json:"opening_key,omitempty"`
}

// Actor is who acted, flattened into rows.
type Actor struct {
	ActorID    string   `json:"actor_id"`
	ActorType  string   `json:"actor_type,omitempty"`
	ActorRoles []string `json:"actor_roles,omitempty"`
	ActorName  string   `json:"actor_display_name,omitempty"`
	ActorIP    string   `json:"actor_ip,omitempty"`
}

// AccessRow is one data_access event on the subject.
type AccessRow struct {
	SequencerTime time.Time `json:"sequencer_time"`
	OccurredAt    time.Time `json:"occurred_at,omitzero"`
	EventID       string    `json:"event_id"`
	Actor
	Action         string   `json:"action"`
	Outcome        string   `json:"outcome"`
	FieldsAccessed []string `json:"fields_accessed,omitempty"`
	PurposeCode    string   `json:"purpose_code,omitempty"`
	Flag           string   `json:"flag,omitempty"`
	// Payload is the state of the event's sealed payload; "" when the
	// event is not sealed.
	Payload PayloadState `json:"payload_state,omitempty"`
	Source
}

// HistoryRow is one event on the entity.
type HistoryRow struct {
	SequencerTime time.Time `json:"sequencer_time"`
	OccurredAt    time.Time `json:"occurred_at,omitzero"`
	EventID       string    `json:"event_id"`
	Category      string    `json:"category"`
	Action        string    `json:"action"`
	Outcome       string    `json:"outcome"`
	Actor
	SubjectID string `json:"subject_id,omitempty"`
	// Payload is the state of the event's sealed payload; "" when the
	// event is not sealed. An opened payload's changes are shown; an
	// erased or unavailable one's are not.
	Payload PayloadState `json:"payload_state,omitempty"`
	Changes []Change     `json:"changes,omitempty"`
	Source
}

// Change is one field-level modification; an absent side is "".
type Change struct {
	Field  string `json:"field"`
	Before string `json:"before"`
	After  string `json:"after"`
}

// NewPIIAccess builds a PII access report from entries, which must all be
// data_access events on q's subject in q's tenant and time range.
func NewPIIAccess(logName string, q PIIAccessQuery, generatedAt time.Time, entries []LogEntry) (*Content, error) {
	c := newContent(KindPIIAccess, logName, q.Tenant, generatedAt)
	c.Parameters = Parameters{SubjectID: q.SubjectID, From: utc(q.From), To: utc(q.To), ValidPurposeCodes: canonicalCodes(q.ValidPurposeCodes)}
	if q.Tenant == "" || q.SubjectID == "" {
		return nil, fmt.Errorf("report: %w: a PII access report needs a tenant and a subject id", ErrInvalid)
	}
	decoded, err := decodeEntries(q.Tenant, entries)
	if err != nil {
		return nil, err
	}
	for _, d := range decoded {
		ev := d.entry.GetEvent()
		if ev.GetSubjectId() != q.SubjectID || ev.GetCategory() != trailv1.Category_CATEGORY_DATA_ACCESS {
			return nil, d.errorf("is not a data_access event on subject %q", q.SubjectID)
		}
		if err := d.checkRange(q.From, q.To); err != nil {
			return nil, err
		}
		c.Accesses = append(c.Accesses, accessRow(d, c.Parameters.ValidPurposeCodes))
	}
	c.summarize()
	return c, nil
}

// NewEntityHistory builds an entity history from entries, which must all
// be events on q's target in q's tenant and time range.
func NewEntityHistory(logName string, q EntityHistoryQuery, generatedAt time.Time, entries []LogEntry) (*Content, error) {
	c := newContent(KindEntityHistory, logName, q.Tenant, generatedAt)
	c.Parameters = Parameters{TargetType: q.TargetType, TargetID: q.TargetID, From: utc(q.From), To: utc(q.To)}
	if q.Tenant == "" || q.TargetType == "" || q.TargetID == "" {
		return nil, fmt.Errorf("report: %w: an entity history needs a tenant and a target type and id", ErrInvalid)
	}
	decoded, err := decodeEntries(q.Tenant, entries)
	if err != nil {
		return nil, err
	}
	for _, d := range decoded {
		t := d.entry.GetEvent().GetTarget()
		if t.GetType() != q.TargetType || t.GetId() != q.TargetID {
			return nil, d.errorf("is not an event on %s/%s", q.TargetType, q.TargetID)
		}
		if err := d.checkRange(q.From, q.To); err != nil {
			return nil, err
		}
		c.History = append(c.History, historyRow(d))
	}
	c.summarize()
	return c, nil
}

func newContent(kind, logName, tenant string, at time.Time) *Content {
	return &Content{Kind: kind, Version: contentVersion, LogName: logName, TenantID: tenant, GeneratedAt: utc(at)}
}

// utc normalizes a time for the content: UTC, so that it has one encoding,
// and no monotonic reading.
func utc(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC().Round(0)
}

// canonicalCodes sorts and deduplicates the valid purpose codes, so that one
// set of codes has one encoding in the content.
func canonicalCodes(codes []string) []string {
	out := slices.Clone(codes)
	out = slices.DeleteFunc(out, func(s string) bool { return s == "" })
	slices.Sort(out)
	return slices.Compact(out)
}

// decoded is a LogEntry with its leaf hash and decoded entry.
type decoded struct {
	LogEntry
	hash  merkle.Hash
	entry *trailv1.Entry
	// opened is the sealed payload as its opening key opens it.
	opened *trailv1.SealedFields
}

func (d decoded) errorf(format string, args ...any) error {
	return fmt.Errorf("report: %w: %s leaf %d: entry %s", ErrInvalid, d.Partition, d.LeafIndex, fmt.Sprintf(format, args...))
}

func (d decoded) checkRange(from, to time.Time) error {
	t := d.entry.GetSequencerTime().AsTime()
	if !from.IsZero() && t.Before(from) || !to.IsZero() && !t.Before(to) {
		return d.errorf("sequenced at %s is outside the report's time range", t.Format(time.RFC3339Nano))
	}
	return nil
}

// decodeEntries decodes entries, checks that each records the tenant and
// position it was given at, and orders them oldest first. Sequencer time is
// monotonic per tenant, so log order is time order.
func decodeEntries(tenant string, entries []LogEntry) ([]decoded, error) {
	if len(entries) > MaxRows {
		return nil, fmt.Errorf("report: %w: %d rows, at most %d", ErrInvalid, len(entries), MaxRows)
	}
	out := make([]decoded, len(entries))
	for i, le := range entries {
		d := decoded{LogEntry: le, hash: merkle.LeafHash(le.Data), entry: new(trailv1.Entry)}
		if len(le.Data) == 0 {
			return nil, d.errorf("has no bytes (pruned entries cannot be reported)")
		}
		if err := proto.Unmarshal(le.Data, d.entry); err != nil {
			return nil, d.errorf("does not decode: %v", err)
		}
		switch {
		case d.entry.GetEvent().GetTenantId() != tenant:
			return nil, d.errorf("is of tenant %q, not %q", d.entry.GetEvent().GetTenantId(), tenant)
		case d.entry.GetPartition() != le.Partition || d.entry.GetLeafIndex() != le.LeafIndex:
			return nil, d.errorf("records position %s leaf %d", d.entry.GetPartition(), d.entry.GetLeafIndex())
		}
		if err := d.checkPayload(); err != nil {
			return nil, err
		}
		out[i] = d
	}
	slices.SortFunc(out, func(a, b decoded) int {
		if c := strings.Compare(a.Partition, b.Partition); c != 0 {
			return c
		}
		return cmpUint(a.LeafIndex, b.LeafIndex)
	})
	for i := 1; i < len(out); i++ {
		if out[i].Partition == out[i-1].Partition && out[i].LeafIndex == out[i-1].LeafIndex {
			return nil, out[i].errorf("appears twice")
		}
	}
	return out, nil
}

// checkPayload checks the entry's payload state and opening key against
// its bytes, and opens an opened payload: a state is claimed for sealed
// events only, and an opening key only for an opened one, which it must
// open.
func (d *decoded) checkPayload() error {
	ev := d.entry.GetEvent()
	sealed := ev.GetSealed() != nil
	switch d.Payload {
	case PayloadClear:
		if sealed {
			return d.errorf("has a sealed payload, and no payload state")
		}
		if len(d.OpeningKey) > 0 {
			return d.errorf("is not sealed, and has an opening key")
		}
		return nil
	case PayloadOpened, PayloadErased, PayloadUnavailable:
	default:
		return d.errorf("has unknown payload state %q", d.Payload)
	}
	switch {
	case !sealed:
		return d.errorf("is not sealed: its payload cannot be %s", d.Payload)
	case len(ev.GetChanges()) > 0 || len(ev.GetAttributes()) > 0:
		return d.errorf("has changes or attributes in clear beside its sealed payload")
	case d.Payload != PayloadOpened && len(d.OpeningKey) > 0:
		return d.errorf("has an opening key, and its payload is %s", d.Payload)
	case d.Payload != PayloadOpened:
		return nil
	}
	fields, err := shred.Open(ev, d.OpeningKey)
	if err != nil {
		return d.errorf("has a sealed payload that its opening key does not open: %v", err)
	}
	d.opened = fields
	return nil
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func source(d decoded) Source {
	return Source{Partition: d.Partition, LeafIndex: d.LeafIndex, LeafHash: Hash(d.hash), EntryBytes: d.Data, OpeningKey: d.OpeningKey}
}

func actorOf(a *trailv1.Actor) Actor {
	return Actor{ActorID: a.GetId(), ActorType: a.GetType(), ActorRoles: slices.Clone(a.GetRoles()), ActorName: a.GetDisplayName(), ActorIP: a.GetIp()}
}

// optTime converts an optional timestamp; nil is the zero time.
func optTime(ts *timestamppb.Timestamp) time.Time {
	if ts == nil {
		return time.Time{}
	}
	return utc(ts.AsTime())
}

func accessRow(d decoded, valid []string) AccessRow {
	ev := d.entry.GetEvent()
	return AccessRow{
		SequencerTime:  utc(d.entry.GetSequencerTime().AsTime()),
		OccurredAt:     optTime(ev.GetOccurredAt()),
		EventID:        ev.GetEventId(),
		Actor:          actorOf(ev.GetActor()),
		Action:         ev.GetAction(),
		Outcome:        enumName("OUTCOME_", ev.GetOutcome().String()),
		FieldsAccessed: slices.Clone(ev.GetPiiFieldsAccessed()),
		PurposeCode:    ev.GetPurposeCode(),
		Flag:           PurposeFlag(ev.GetPurposeCode(), valid),
		Payload:        d.Payload,
		Source:         source(d),
	}
}

func historyRow(d decoded) HistoryRow {
	ev := d.entry.GetEvent()
	r := HistoryRow{
		SequencerTime: utc(d.entry.GetSequencerTime().AsTime()),
		OccurredAt:    optTime(ev.GetOccurredAt()),
		EventID:       ev.GetEventId(),
		Category:      enumName("CATEGORY_", ev.GetCategory().String()),
		Action:        ev.GetAction(),
		Outcome:       enumName("OUTCOME_", ev.GetOutcome().String()),
		Actor:         actorOf(ev.GetActor()),
		SubjectID:     ev.GetSubjectId(),
		Payload:       d.Payload,
		Source:        source(d),
	}
	changes := ev.GetChanges() // none when sealed
	if d.opened != nil {
		changes = d.opened.GetChanges()
	}
	for _, ch := range changes {
		r.Changes = append(r.Changes, Change{Field: ch.GetField(), Before: ch.GetBefore(), After: ch.GetAfter()})
	}
	return r
}

// enumName is the short lowercase form of an enum value: "success".
func enumName(prefix, name string) string {
	return strings.ToLower(strings.TrimPrefix(name, prefix))
}

// PurposeFlag returns the flag of an access with purpose code code, given
// the tenant's valid codes (empty: any non-empty code is valid), or "".
func PurposeFlag(code string, valid []string) string {
	switch {
	case code == "":
		return FlagMissingPurpose
	case len(valid) > 0 && !slices.Contains(valid, code):
		return FlagInvalidPurpose
	}
	return ""
}

// summarize counts the rows.
func (c *Content) summarize() {
	s := Summary{}
	actors := make(map[string]bool)
	var parts []string
	note := func(t time.Time, actor, partition string, payload PayloadState) {
		s.Rows++
		switch payload {
		case PayloadOpened:
			s.Opened++
		case PayloadErased:
			s.Erased++
		case PayloadUnavailable:
			s.Unavailable++
		}
		actors[actor] = true
		if len(parts) == 0 || parts[len(parts)-1] != partition {
			parts = append(parts, partition)
		}
		if s.First.IsZero() {
			s.First = t
		}
		s.Last = t
	}
	for _, r := range c.Accesses {
		note(r.SequencerTime, r.ActorID, r.Partition, r.Payload)
		switch r.Flag {
		case FlagMissingPurpose:
			s.MissingPurpose++
		case FlagInvalidPurpose:
			s.InvalidPurpose++
		}
	}
	for _, r := range c.History {
		note(r.SequencerTime, r.ActorID, r.Partition, r.Payload)
		s.Changes += len(r.Changes)
	}
	s.Flagged = s.MissingPurpose + s.InvalidPurpose
	s.Actors = len(actors)
	s.Partitions = parts
	c.Summary = s
}

// Partitions returns the partitions the rows come from, in order. They are
// taken from the rows themselves, not from the summary, so that a verifier
// asks for a checkpoint of every partition a row claims.
func (c *Content) Partitions() []string {
	var out []string
	for _, s := range c.sources() {
		out = append(out, s.Partition)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// entries returns every row's entry as the report states it: position,
// bytes, payload state and opening key, in row order.
func (c *Content) entries() []LogEntry {
	out := make([]LogEntry, 0, len(c.Accesses)+len(c.History))
	add := func(s Source, p PayloadState) {
		out = append(out, LogEntry{Partition: s.Partition, LeafIndex: s.LeafIndex, Data: s.EntryBytes, Payload: p, OpeningKey: s.OpeningKey})
	}
	for _, r := range c.Accesses {
		add(r.Source, r.Payload)
	}
	for _, r := range c.History {
		add(r.Source, r.Payload)
	}
	return out
}

// sources returns every row's source, in row order.
func (c *Content) sources() []Source {
	out := make([]Source, 0, len(c.Accesses)+len(c.History))
	for _, r := range c.Accesses {
		out = append(out, r.Source)
	}
	for _, r := range c.History {
		out = append(out, r.Source)
	}
	return out
}
