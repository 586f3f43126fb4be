// Package filter is Trail's one model of which events a request selects.
// Search, export and the reports build a Filter from their requests, the
// engine evaluates it, and the offline bundle verifier checks every
// exported entry against the Filter its header records, so the three can
// never disagree on what "category data_access or authentication, purpose
// case-handling" means.
package filter

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// ErrInvalid is wrapped by every filter a request cannot be made with.
var ErrInvalid = errors.New("invalid filter")

// Limits on a filter's size: a filter is evaluated against every
// candidate entry, so its cost must stay bounded.
const (
	MaxValues   = 64  // values of one field
	MaxValueLen = 256 // bytes of one value, as event fields are indexed
)

// Target is one target entity.
type Target struct {
	Type string `json:"type"`
	ID   string `json:"id"`
}

// Filter selects events. Every field that is set must match; the values
// of one field are alternatives. From and To bound sequencer time as
// [From, To); zero times are unbounded. The zero Filter selects all.
type Filter struct {
	From         time.Time          `json:"from,omitzero"`
	To           time.Time          `json:"to,omitzero"`
	ActorIDs     []string           `json:"actor_ids,omitempty"`
	SubjectIDs   []string           `json:"subject_ids,omitempty"`
	Targets      []Target           `json:"targets,omitempty"`
	Categories   []trailv1.Category `json:"-"` // as names in JSON (json.go)
	Actions      []string           `json:"actions,omitempty"`
	PurposeCodes []string           `json:"purpose_codes,omitempty"`
	PIIFields    []string           `json:"pii_fields,omitempty"`
}

// Event is what a filter reads of an entry: its sequencer time and the
// event's indexed fields.
type Event struct {
	SequencerTime        time.Time
	ActorID, SubjectID   string
	TargetType, TargetID string
	Category             trailv1.Category
	Action, PurposeCode  string
	PIIFields            []string
}

// EventOf returns what a filter reads of a stored entry.
func EventOf(en *trailv1.Entry) Event {
	ev := en.GetEvent()
	return Event{
		SequencerTime: en.GetSequencerTime().AsTime(),
		ActorID:       ev.GetActor().GetId(), SubjectID: ev.GetSubjectId(),
		TargetType: ev.GetTarget().GetType(), TargetID: ev.GetTarget().GetId(),
		Category: ev.GetCategory(), Action: ev.GetAction(), PurposeCode: ev.GetPurposeCode(),
		PIIFields: ev.GetPiiFieldsAccessed(),
	}
}

// Selective reports whether a field other than time is set: then a
// selection holds the matching entries only, not a contiguous slice of
// the log.
func (f *Filter) Selective() bool {
	return len(f.ActorIDs)+len(f.SubjectIDs)+len(f.Targets)+len(f.Categories)+
		len(f.Actions)+len(f.PurposeCodes)+len(f.PIIFields) > 0
}

// InTime reports whether sequencer time t lies in [From, To).
func (f *Filter) InTime(t time.Time) bool {
	return (f.From.IsZero() || !t.Before(f.From)) && (f.To.IsZero() || t.Before(f.To))
}

// Match reports whether ev is selected.
func (f *Filter) Match(ev *Event) bool {
	return f.Mismatch(ev) == ""
}

// Mismatch names the first field ev does not match, or returns "" when
// it is selected: verifiers show it.
func (f *Filter) Mismatch(ev *Event) string {
	switch {
	case !f.InTime(ev.SequencerTime):
		return "sequencer time " + ev.SequencerTime.UTC().Format(time.RFC3339Nano) + " outside " + f.timeRange()
	case !oneOf(f.ActorIDs, ev.ActorID):
		return fmt.Sprintf("actor %q is not %s", ev.ActorID, quoteAll(f.ActorIDs))
	case !oneOf(f.SubjectIDs, ev.SubjectID):
		return fmt.Sprintf("subject %q is not %s", ev.SubjectID, quoteAll(f.SubjectIDs))
	case len(f.Targets) > 0 && !slices.Contains(f.Targets, Target{ev.TargetType, ev.TargetID}):
		return fmt.Sprintf("target %s/%s is not %s", ev.TargetType, ev.TargetID, targetsString(f.Targets))
	case len(f.Categories) > 0 && !slices.Contains(f.Categories, ev.Category):
		return fmt.Sprintf("category %s is not %s", CategoryName(ev.Category), categoriesString(f.Categories))
	case !oneOf(f.Actions, ev.Action):
		return fmt.Sprintf("action %q is not %s", ev.Action, quoteAll(f.Actions))
	case !oneOf(f.PurposeCodes, ev.PurposeCode):
		return fmt.Sprintf("purpose code %q is not %s", ev.PurposeCode, quoteAll(f.PurposeCodes))
	case len(f.PIIFields) > 0 && !slices.ContainsFunc(ev.PIIFields, func(p string) bool { return slices.Contains(f.PIIFields, p) }):
		return fmt.Sprintf("PII fields %s include none of %s", quoteAll(ev.PIIFields), quoteAll(f.PIIFields))
	}
	return ""
}

func oneOf(set []string, v string) bool { return len(set) == 0 || slices.Contains(set, v) }

// Check reports why no request can be made with f, or nil.
func (f *Filter) Check() error {
	if !f.From.IsZero() && !f.To.IsZero() && !f.From.Before(f.To) {
		return fmt.Errorf("%w: time range %s is empty", ErrInvalid, f.timeRange())
	}
	for _, field := range []struct {
		name   string
		values []string
	}{
		{"actor_ids", f.ActorIDs}, {"subject_ids", f.SubjectIDs}, {"actions", f.Actions},
		{"purpose_codes", f.PurposeCodes}, {"pii_fields", f.PIIFields},
	} {
		if err := checkValues(field.name, field.values); err != nil {
			return err
		}
	}
	if len(f.Targets) > MaxValues {
		return fmt.Errorf("%w: targets: %d values, at most %d", ErrInvalid, len(f.Targets), MaxValues)
	}
	for _, t := range f.Targets {
		if t.Type == "" || t.ID == "" {
			return fmt.Errorf("%w: targets: a target needs both type and id, got %q/%q", ErrInvalid, t.Type, t.ID)
		}
		if err := checkValues("targets", []string{t.Type, t.ID}); err != nil {
			return err
		}
	}
	if len(f.Categories) > MaxValues {
		return fmt.Errorf("%w: categories: %d values, at most %d", ErrInvalid, len(f.Categories), MaxValues)
	}
	for _, c := range f.Categories {
		if c == trailv1.Category_CATEGORY_UNSPECIFIED || trailv1.Category_name[int32(c)] == "" {
			return fmt.Errorf("%w: categories: %d is not a category", ErrInvalid, c)
		}
	}
	return nil
}

func checkValues(name string, values []string) error {
	if len(values) > MaxValues {
		return fmt.Errorf("%w: %s: %d values, at most %d", ErrInvalid, name, len(values), MaxValues)
	}
	for _, v := range values {
		if v == "" {
			return fmt.Errorf("%w: %s: an empty value matches nothing", ErrInvalid, name)
		}
		if len(v) > MaxValueLen {
			return fmt.Errorf("%w: %s: a value of %d bytes, at most %d", ErrInvalid, name, len(v), MaxValueLen)
		}
	}
	return nil
}

// Clone returns a copy of f that shares no memory with it.
func (f *Filter) Clone() Filter {
	c := *f
	c.ActorIDs, c.SubjectIDs, c.Targets = slices.Clone(f.ActorIDs), slices.Clone(f.SubjectIDs), slices.Clone(f.Targets)
	c.Categories, c.Actions = slices.Clone(f.Categories), slices.Clone(f.Actions)
	c.PurposeCodes, c.PIIFields = slices.Clone(f.PurposeCodes), slices.Clone(f.PIIFields)
	return c
}

// Normalize sorts each field's values and drops repeats, so that equal
// selections have one spelling (export headers record it).
func (f *Filter) Normalize() {
	for _, vs := range []*[]string{&f.ActorIDs, &f.SubjectIDs, &f.Actions, &f.PurposeCodes, &f.PIIFields} {
		slices.Sort(*vs)
		*vs = slices.Compact(*vs)
	}
	slices.SortFunc(f.Targets, func(a, b Target) int {
		return strings.Compare(a.Type+"\x00"+a.ID, b.Type+"\x00"+b.ID)
	})
	f.Targets = slices.Compact(f.Targets)
	slices.Sort(f.Categories)
	f.Categories = slices.Compact(f.Categories)
	f.From, f.To = f.From.UTC(), f.To.UTC()
}

// FromProto returns the filter p describes, checked and normalized; nil
// is the empty filter.
func FromProto(p *trailv1.Filter) (Filter, error) {
	f := Filter{
		ActorIDs: p.GetActorIds(), SubjectIDs: p.GetSubjectIds(), Categories: p.GetCategories(),
		Actions: p.GetActions(), PurposeCodes: p.GetPurposeCodes(), PIIFields: p.GetPiiFields(),
	}
	f = f.Clone()
	for _, t := range p.GetTargets() {
		f.Targets = append(f.Targets, Target{Type: t.GetType(), ID: t.GetId()})
	}
	var err error
	if f.From, err = timeOf("from", p.GetFrom()); err != nil {
		return Filter{}, err
	}
	if f.To, err = timeOf("to", p.GetTo()); err != nil {
		return Filter{}, err
	}
	if err := f.Check(); err != nil {
		return Filter{}, err
	}
	f.Normalize()
	return f, nil
}

func timeOf(name string, ts *timestamppb.Timestamp) (time.Time, error) {
	if ts == nil {
		return time.Time{}, nil
	}
	if err := ts.CheckValid(); err != nil {
		return time.Time{}, fmt.Errorf("%w: %s: %v", ErrInvalid, name, err)
	}
	return ts.AsTime(), nil
}

// Proto returns f as the API spells it.
func (f *Filter) Proto() *trailv1.Filter {
	p := &trailv1.Filter{
		ActorIds: f.ActorIDs, SubjectIds: f.SubjectIDs, Categories: f.Categories,
		Actions: f.Actions, PurposeCodes: f.PurposeCodes, PiiFields: f.PIIFields,
	}
	for _, t := range f.Targets {
		p.Targets = append(p.Targets, &trailv1.Target{Type: t.Type, Id: t.ID})
	}
	if !f.From.IsZero() {
		p.From = timestamppb.New(f.From)
	}
	if !f.To.IsZero() {
		p.To = timestamppb.New(f.To)
	}
	return p
}

// Legacy are the single-valued fields requests had before Filter: each
// is a one-value filter on its field.
type Legacy struct {
	ActorID, SubjectID, TargetType, TargetID string
	Category                                 trailv1.Category
	Action, PurposeCode, PIIField            string
	From, To                                 *timestamppb.Timestamp
}

// Merge returns the filter of a request that may spell fields the older,
// single-valued way (l) or in a Filter (p). A field given both ways is
// refused rather than guessed at.
func Merge(l Legacy, p *trailv1.Filter) (Filter, error) {
	if p == nil {
		p = &trailv1.Filter{}
	}
	m := &trailv1.Filter{
		ActorIds: p.GetActorIds(), SubjectIds: p.GetSubjectIds(), Targets: p.GetTargets(),
		Categories: p.GetCategories(), Actions: p.GetActions(), PurposeCodes: p.GetPurposeCodes(),
		PiiFields: p.GetPiiFields(), From: p.GetFrom(), To: p.GetTo(),
	}
	both := func(name, other string) error {
		return fmt.Errorf("%w: %s and filter.%s both given: use one", ErrInvalid, name, other)
	}
	one := func(name, other, v string, dst *[]string) error {
		if v == "" {
			return nil
		}
		if len(*dst) > 0 {
			return both(name, other)
		}
		*dst = []string{v}
		return nil
	}
	for _, s := range []struct {
		name, other, v string
		dst            *[]string
	}{
		{"actor_id", "actor_ids", l.ActorID, &m.ActorIds},
		{"subject_id", "subject_ids", l.SubjectID, &m.SubjectIds},
		{"action", "actions", l.Action, &m.Actions},
		{"purpose_code", "purpose_codes", l.PurposeCode, &m.PurposeCodes},
		{"pii_field", "pii_fields", l.PIIField, &m.PiiFields},
	} {
		if err := one(s.name, s.other, s.v, s.dst); err != nil {
			return Filter{}, err
		}
	}
	if l.TargetType != "" || l.TargetID != "" {
		if l.TargetType == "" || l.TargetID == "" {
			return Filter{}, fmt.Errorf("%w: target_type and target_id go together", ErrInvalid)
		}
		if len(m.Targets) > 0 {
			return Filter{}, both("target_type/target_id", "targets")
		}
		m.Targets = []*trailv1.Target{{Type: l.TargetType, Id: l.TargetID}}
	}
	if l.Category != trailv1.Category_CATEGORY_UNSPECIFIED {
		if len(m.Categories) > 0 {
			return Filter{}, both("category", "categories")
		}
		m.Categories = []trailv1.Category{l.Category}
	}
	for _, t := range []struct {
		name string
		v    *timestamppb.Timestamp
		dst  **timestamppb.Timestamp
	}{{"from", l.From, &m.From}, {"to", l.To, &m.To}} {
		if t.v == nil {
			continue
		}
		if *t.dst != nil {
			return Filter{}, both(t.name, t.name)
		}
		*t.dst = t.v
	}
	return FromProto(m)
}

// String describes f in the query syntax a human would type, e.g.
// `category:data_access,authentication actor:alice from:2026-01-01T00:00:00Z`;
// "all entries" when nothing is selected.
func (f *Filter) String() string {
	var parts []string
	add := func(k string, vs []string) {
		if len(vs) > 0 {
			parts = append(parts, k+":"+strings.Join(quoteEach(vs), ","))
		}
	}
	add("actor", f.ActorIDs)
	add("subject", f.SubjectIDs)
	if len(f.Targets) > 0 {
		parts = append(parts, "target:"+targetsString(f.Targets))
	}
	if len(f.Categories) > 0 {
		parts = append(parts, "category:"+categoriesString(f.Categories))
	}
	add("action", f.Actions)
	add("purpose", f.PurposeCodes)
	add("pii_field", f.PIIFields)
	if !f.From.IsZero() {
		parts = append(parts, "from:"+f.From.UTC().Format(time.RFC3339Nano))
	}
	if !f.To.IsZero() {
		parts = append(parts, "to:"+f.To.UTC().Format(time.RFC3339Nano))
	}
	if len(parts) == 0 {
		return "all entries"
	}
	return strings.Join(parts, " ")
}

func (f *Filter) timeRange() string {
	from, to := "-inf", "+inf"
	if !f.From.IsZero() {
		from = f.From.UTC().Format(time.RFC3339Nano)
	}
	if !f.To.IsZero() {
		to = f.To.UTC().Format(time.RFC3339Nano)
	}
	return "[" + from + ", " + to + ")"
}

// CategoryName is a category's short lower-case name (data_access), the
// spelling people type.
func CategoryName(c trailv1.Category) string {
	if n, ok := trailv1.Category_name[int32(c)]; ok {
		return strings.ToLower(strings.TrimPrefix(n, "CATEGORY_"))
	}
	return fmt.Sprint(int32(c))
}

// ParseCategory reads a category by its short name (data_access) or full
// name (CATEGORY_DATA_ACCESS), in any case.
func ParseCategory(s string) (trailv1.Category, error) {
	u := strings.ToUpper(strings.TrimSpace(s))
	if v, ok := trailv1.Category_value[u]; ok && v != 0 {
		return trailv1.Category(v), nil
	}
	if v, ok := trailv1.Category_value["CATEGORY_"+u]; ok && v != 0 {
		return trailv1.Category(v), nil
	}
	var names []string
	for v := int32(1); trailv1.Category_name[v] != ""; v++ {
		names = append(names, CategoryName(trailv1.Category(v)))
	}
	return 0, fmt.Errorf("%w: %q is not a category (one of %s)", ErrInvalid, s, strings.Join(names, ", "))
}

func categoriesString(cs []trailv1.Category) string {
	names := make([]string, len(cs))
	for i, c := range cs {
		names[i] = CategoryName(c)
	}
	return strings.Join(names, ",")
}

func targetsString(ts []Target) string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = quote(t.Type) + "/" + quote(t.ID)
	}
	return strings.Join(out, ",")
}

func quoteAll(vs []string) string {
	if len(vs) == 1 {
		return fmt.Sprintf("%q", vs[0])
	}
	return "one of " + strings.Join(quoteEach(vs), ",")
}

func quoteEach(vs []string) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = quote(v)
	}
	return out
}

// quote leaves plain values as they are and quotes the rest, so String
// stays readable and unambiguous.
func quote(v string) string {
	if v != "" && !strings.ContainsAny(v, " ,:\"/\\\t\n") {
		return v
	}
	return fmt.Sprintf("%q", v)
}
