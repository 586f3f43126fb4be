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
	"strconv"
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
// [From, To); zero times are unbounded. An event any of whose fields has
// a value listed in Exclude is left out. Every Text clause must match
// (text.go). The zero Filter selects all.
type Filter struct {
	From         time.Time  `json:"from,omitzero"`
	To           time.Time  `json:"to,omitzero"`
	ActorIDs     []string   `json:"actor_ids,omitempty"`
	SubjectIDs   []string   `json:"subject_ids,omitempty"`
	Targets      []Target   `json:"targets,omitempty"`
	Categories   Categories `json:"categories,omitempty"`
	Actions      []string   `json:"actions,omitempty"`
	PurposeCodes []string   `json:"purpose_codes,omitempty"`
	PIIFields    []string   `json:"pii_fields,omitempty"`
	Exclude      Fields     `json:"exclude,omitzero"`
	Text         []string   `json:"text,omitempty"`
	// TextAttributes are the attribute keys whose values Text reads, as
	// well as the action, actor display name and target: the tenant's
	// indexed attributes when the filter was made, recorded with it so a
	// verifier reads the text the server read.
	TextAttributes []string `json:"text_attributes,omitempty"`
}

// Fields are sets of values of an event's indexed fields.
type Fields struct {
	ActorIDs     []string   `json:"actor_ids,omitempty"`
	SubjectIDs   []string   `json:"subject_ids,omitempty"`
	Targets      []Target   `json:"targets,omitempty"`
	Categories   Categories `json:"categories,omitempty"`
	Actions      []string   `json:"actions,omitempty"`
	PurposeCodes []string   `json:"purpose_codes,omitempty"`
	PIIFields    []string   `json:"pii_fields,omitempty"`
}

// fields returns f's inclusion sets.
func (f *Filter) fields() Fields {
	return Fields{f.ActorIDs, f.SubjectIDs, f.Targets, f.Categories, f.Actions, f.PurposeCodes, f.PIIFields}
}

// empty reports whether no field has a value.
func (s *Fields) empty() bool {
	return len(s.ActorIDs)+len(s.SubjectIDs)+len(s.Targets)+len(s.Categories)+
		len(s.Actions)+len(s.PurposeCodes)+len(s.PIIFields) == 0
}

// Event is what a filter reads of an entry: its sequencer time, the
// event's indexed fields and the text Text clauses read.
type Event struct {
	SequencerTime        time.Time
	ActorID, SubjectID   string
	TargetType, TargetID string
	Category             trailv1.Category
	Action, PurposeCode  string
	PIIFields            []string
	DisplayName          string            // the actor's
	Attributes           map[string]string // nil when Text is not used
}

// EventOf returns what a filter reads of a stored entry.
func EventOf(en *trailv1.Entry) Event {
	ev := en.GetEvent()
	return Event{
		SequencerTime: en.GetSequencerTime().AsTime(),
		ActorID:       ev.GetActor().GetId(), SubjectID: ev.GetSubjectId(),
		TargetType: ev.GetTarget().GetType(), TargetID: ev.GetTarget().GetId(),
		Category: ev.GetCategory(), Action: ev.GetAction(), PurposeCode: ev.GetPurposeCode(),
		PIIFields: ev.GetPiiFieldsAccessed(), DisplayName: ev.GetActor().GetDisplayName(),
		Attributes: ev.GetAttributes(),
	}
}

// Selective reports whether a field other than time is set: then a
// selection holds the matching entries only, not a contiguous slice of
// the log.
func (f *Filter) Selective() bool {
	fs := f.fields()
	return !fs.empty() || !f.Exclude.empty() || len(f.Text) > 0
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
	if !f.InTime(ev.SequencerTime) {
		return "sequencer time " + ev.SequencerTime.UTC().Format(time.RFC3339Nano) + " outside " + f.timeRange()
	}
	fs := f.fields()
	if why := fs.mismatch(ev); why != "" {
		return why
	}
	if why := f.Exclude.excludes(ev); why != "" {
		return why
	}
	for _, clause := range f.Text {
		if !textMatch(clause, ev, f.TextAttributes) {
			return fmt.Sprintf("text %q not found", clause)
		}
	}
	return ""
}

// mismatch names the first field of ev with none of the field's values.
func (s *Fields) mismatch(ev *Event) string {
	switch {
	case !oneOf(s.ActorIDs, ev.ActorID):
		return fmt.Sprintf("actor %q is not %s", ev.ActorID, quoteAll(s.ActorIDs))
	case !oneOf(s.SubjectIDs, ev.SubjectID):
		return fmt.Sprintf("subject %q is not %s", ev.SubjectID, quoteAll(s.SubjectIDs))
	case len(s.Targets) > 0 && !slices.Contains(s.Targets, Target{ev.TargetType, ev.TargetID}):
		return fmt.Sprintf("target %s/%s is not %s", ev.TargetType, ev.TargetID, targetsString(s.Targets))
	case len(s.Categories) > 0 && !slices.Contains(s.Categories, ev.Category):
		return fmt.Sprintf("category %s is not %s", CategoryName(ev.Category), categoriesString(s.Categories))
	case !oneOf(s.Actions, ev.Action):
		return fmt.Sprintf("action %q is not %s", ev.Action, quoteAll(s.Actions))
	case !oneOf(s.PurposeCodes, ev.PurposeCode):
		return fmt.Sprintf("purpose code %q is not %s", ev.PurposeCode, quoteAll(s.PurposeCodes))
	case len(s.PIIFields) > 0 && !slices.ContainsFunc(ev.PIIFields, func(p string) bool { return slices.Contains(s.PIIFields, p) }):
		return fmt.Sprintf("PII fields %s include none of %s", quoteAll(ev.PIIFields), quoteAll(s.PIIFields))
	}
	return ""
}

// excludes names the first field of ev with one of the excluded values.
func (s *Fields) excludes(ev *Event) string {
	switch {
	case slices.Contains(s.ActorIDs, ev.ActorID):
		return fmt.Sprintf("actor %q is excluded", ev.ActorID)
	case slices.Contains(s.SubjectIDs, ev.SubjectID):
		return fmt.Sprintf("subject %q is excluded", ev.SubjectID)
	case slices.Contains(s.Targets, Target{ev.TargetType, ev.TargetID}):
		return fmt.Sprintf("target %s/%s is excluded", ev.TargetType, ev.TargetID)
	case slices.Contains(s.Categories, ev.Category):
		return fmt.Sprintf("category %s is excluded", CategoryName(ev.Category))
	case slices.Contains(s.Actions, ev.Action):
		return fmt.Sprintf("action %q is excluded", ev.Action)
	case slices.Contains(s.PurposeCodes, ev.PurposeCode):
		return fmt.Sprintf("purpose code %q is excluded", ev.PurposeCode)
	}
	for _, p := range ev.PIIFields {
		if slices.Contains(s.PIIFields, p) {
			return fmt.Sprintf("PII field %q is excluded", p)
		}
	}
	return ""
}

func oneOf(set []string, v string) bool { return len(set) == 0 || slices.Contains(set, v) }

// Check reports why no request can be made with f, or nil.
func (f *Filter) Check() error {
	if !f.From.IsZero() && !f.To.IsZero() && !f.From.Before(f.To) {
		return fmt.Errorf("%w: time range %s is empty", ErrInvalid, f.timeRange())
	}
	fs := f.fields()
	if err := fs.check(""); err != nil {
		return err
	}
	if err := f.Exclude.check("exclude."); err != nil {
		return err
	}
	if err := checkValues("text_attributes", f.TextAttributes); err != nil {
		return err
	}
	return checkText(f.Text)
}

// check reports why s cannot be a filter's sets; prefix names them.
func (s *Fields) check(prefix string) error {
	for _, field := range []struct {
		name   string
		values []string
	}{
		{"actor_ids", s.ActorIDs}, {"subject_ids", s.SubjectIDs}, {"actions", s.Actions},
		{"purpose_codes", s.PurposeCodes}, {"pii_fields", s.PIIFields},
	} {
		if err := checkValues(prefix+field.name, field.values); err != nil {
			return err
		}
	}
	if len(s.Targets) > MaxValues {
		return fmt.Errorf("%w: %stargets: %d values, at most %d", ErrInvalid, prefix, len(s.Targets), MaxValues)
	}
	for _, t := range s.Targets {
		if t.Type == "" || t.ID == "" {
			return fmt.Errorf("%w: %stargets: a target needs both type and id, got %q/%q", ErrInvalid, prefix, t.Type, t.ID)
		}
		if err := checkValues(prefix+"targets", []string{t.Type, t.ID}); err != nil {
			return err
		}
	}
	if len(s.Categories) > MaxValues {
		return fmt.Errorf("%w: %scategories: %d values, at most %d", ErrInvalid, prefix, len(s.Categories), MaxValues)
	}
	for _, c := range s.Categories {
		if c == trailv1.Category_CATEGORY_UNSPECIFIED || trailv1.Category_name[int32(c)] == "" {
			return fmt.Errorf("%w: %scategories: %d is not a category", ErrInvalid, prefix, c)
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
	c.Exclude = f.Exclude.clone()
	c.Text, c.TextAttributes = slices.Clone(f.Text), slices.Clone(f.TextAttributes)
	return c
}

func (s *Fields) clone() Fields {
	return Fields{slices.Clone(s.ActorIDs), slices.Clone(s.SubjectIDs), slices.Clone(s.Targets), slices.Clone(s.Categories),
		slices.Clone(s.Actions), slices.Clone(s.PurposeCodes), slices.Clone(s.PIIFields)}
}

// Normalize sorts each field's values and drops repeats, and case-folds
// text clauses, so that equal selections have one spelling (export
// headers record it).
func (f *Filter) Normalize() {
	for _, vs := range []*[]string{&f.ActorIDs, &f.SubjectIDs, &f.Actions, &f.PurposeCodes, &f.PIIFields} {
		*vs = sortedSet(*vs)
	}
	f.Targets = sortedTargets(f.Targets)
	f.Categories = sortedCategories(f.Categories)
	f.Exclude.normalize()
	for i, c := range f.Text {
		f.Text[i] = normalizeClause(c)
	}
	f.Text = sortedSet(f.Text)
	f.TextAttributes = sortedSet(f.TextAttributes)
	f.From, f.To = f.From.UTC(), f.To.UTC()
}

func (s *Fields) normalize() {
	for _, vs := range []*[]string{&s.ActorIDs, &s.SubjectIDs, &s.Actions, &s.PurposeCodes, &s.PIIFields} {
		*vs = sortedSet(*vs)
	}
	s.Targets = sortedTargets(s.Targets)
	s.Categories = sortedCategories(s.Categories)
}

func sortedSet(vs []string) []string {
	slices.Sort(vs)
	return slices.Compact(vs)
}

func sortedTargets(ts []Target) []Target {
	slices.SortFunc(ts, func(a, b Target) int {
		return strings.Compare(a.Type+"\x00"+a.ID, b.Type+"\x00"+b.ID)
	})
	return slices.Compact(ts)
}

func sortedCategories(cs Categories) Categories {
	slices.Sort(cs)
	return slices.Compact(cs)
}

// FromProto returns the filter p describes, its query combined with its
// fields, checked and normalized; nil is the empty filter.
func FromProto(p *trailv1.Filter) (Filter, error) {
	f := Filter{
		ActorIDs: p.GetActorIds(), SubjectIDs: p.GetSubjectIds(), Categories: p.GetCategories(),
		Actions: p.GetActions(), PurposeCodes: p.GetPurposeCodes(), PIIFields: p.GetPiiFields(),
		Targets: targetsOf(p.GetTargets()), Text: p.GetText(),
		Exclude: fieldsOf(p.GetExclude()),
	}
	f = f.Clone()
	var err error
	if f.From, err = timeOf("from", p.GetFrom()); err != nil {
		return Filter{}, err
	}
	if f.To, err = timeOf("to", p.GetTo()); err != nil {
		return Filter{}, err
	}
	if q := p.GetQuery(); q != "" {
		parsed, err := Parse(q)
		if err != nil {
			return Filter{}, err
		}
		if f, err = combine(f, parsed); err != nil {
			return Filter{}, err
		}
	}
	if err := f.Check(); err != nil {
		return Filter{}, err
	}
	f.Normalize()
	return f, nil
}

func targetsOf(ts []*trailv1.Target) []Target {
	var out []Target
	for _, t := range ts {
		out = append(out, Target{Type: t.GetType(), ID: t.GetId()})
	}
	return out
}

func fieldsOf(p *trailv1.FilterFields) Fields {
	return Fields{
		ActorIDs: p.GetActorIds(), SubjectIDs: p.GetSubjectIds(), Targets: targetsOf(p.GetTargets()),
		Categories: p.GetCategories(), Actions: p.GetActions(), PurposeCodes: p.GetPurposeCodes(),
		PIIFields: p.GetPiiFields(),
	}
}

func (s *Fields) proto() *trailv1.FilterFields {
	if s.empty() {
		return nil
	}
	p := &trailv1.FilterFields{
		ActorIds: s.ActorIDs, SubjectIds: s.SubjectIDs, Categories: s.Categories,
		Actions: s.Actions, PurposeCodes: s.PurposeCodes, PiiFields: s.PIIFields,
	}
	for _, t := range s.Targets {
		p.Targets = append(p.Targets, &trailv1.Target{Type: t.Type, Id: t.ID})
	}
	return p
}

// combine adds a parsed query q to the fields f: a field set in both is
// refused, since neither "either" nor "both" is clearly what was meant.
// Exclusions and text clauses add up.
func combine(f, q Filter) (Filter, error) {
	both := func(name string) error {
		return fmt.Errorf("%w: %s given both in the query and in the filter's fields: use one", ErrInvalid, name)
	}
	for _, s := range []struct {
		name     string
		dst, src *[]string
	}{
		{"actor", &f.ActorIDs, &q.ActorIDs}, {"subject", &f.SubjectIDs, &q.SubjectIDs}, {"action", &f.Actions, &q.Actions},
		{"purpose", &f.PurposeCodes, &q.PurposeCodes}, {"pii", &f.PIIFields, &q.PIIFields},
	} {
		if len(*s.src) == 0 {
			continue
		}
		if len(*s.dst) > 0 {
			return Filter{}, both(s.name)
		}
		*s.dst = *s.src
	}
	switch {
	case len(q.Targets) > 0 && len(f.Targets) > 0:
		return Filter{}, both("target")
	case len(q.Categories) > 0 && len(f.Categories) > 0:
		return Filter{}, both("category")
	case !q.From.IsZero() && !f.From.IsZero():
		return Filter{}, both("from")
	case !q.To.IsZero() && !f.To.IsZero():
		return Filter{}, both("to")
	}
	if len(q.Targets) > 0 {
		f.Targets = q.Targets
	}
	if len(q.Categories) > 0 {
		f.Categories = q.Categories
	}
	if !q.From.IsZero() {
		f.From = q.From
	}
	if !q.To.IsZero() {
		f.To = q.To
	}
	ex := &f.Exclude
	ex.ActorIDs = append(ex.ActorIDs, q.Exclude.ActorIDs...)
	ex.SubjectIDs = append(ex.SubjectIDs, q.Exclude.SubjectIDs...)
	ex.Targets = append(ex.Targets, q.Exclude.Targets...)
	ex.Categories = append(ex.Categories, q.Exclude.Categories...)
	ex.Actions = append(ex.Actions, q.Exclude.Actions...)
	ex.PurposeCodes = append(ex.PurposeCodes, q.Exclude.PurposeCodes...)
	ex.PIIFields = append(ex.PIIFields, q.Exclude.PIIFields...)
	f.Text = append(f.Text, q.Text...)
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
	p.Exclude, p.Text = f.Exclude.proto(), f.Text
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
		Exclude: p.GetExclude(), Text: p.GetText(), Query: p.GetQuery(),
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

// String writes f in the query syntax (query.go), which Parse reads back,
// e.g. `actor:alice,"bob smith" category:data_access -action:user.login
// "export" from:2026-01-01T00:00:00Z`; empty when nothing is selected.
// TextAttributes are not part of the syntax.
func (f *Filter) String() string {
	fs := f.fields()
	parts := fs.terms("")
	parts = append(parts, f.Exclude.terms("-")...)
	for _, c := range f.Text {
		parts = append(parts, textTerm(c))
	}
	if !f.From.IsZero() {
		parts = append(parts, "from:"+f.From.UTC().Format(time.RFC3339Nano))
	}
	if !f.To.IsZero() {
		parts = append(parts, "to:"+f.To.UTC().Format(time.RFC3339Nano))
	}
	return strings.Join(parts, " ")
}

// Describe is String for people: "all entries" when nothing is selected.
func (f *Filter) Describe() string {
	if s := f.String(); s != "" {
		return s
	}
	return "all entries"
}

// terms writes s's sets as query terms, each prefixed with sign.
func (s *Fields) terms(sign string) []string {
	var parts []string
	add := func(k string, vs []string) {
		if len(vs) > 0 {
			parts = append(parts, sign+k+":"+strings.Join(quoteEach(vs), ","))
		}
	}
	add("actor", s.ActorIDs)
	add("subject", s.SubjectIDs)
	if len(s.Targets) > 0 {
		parts = append(parts, sign+"target:"+targetsString(s.Targets))
	}
	if len(s.Categories) > 0 {
		parts = append(parts, sign+"category:"+categoriesString(s.Categories))
	}
	add("action", s.Actions)
	add("purpose", s.PurposeCodes)
	add("pii", s.PIIFields)
	return parts
}

// textTerm writes a text clause so Parse reads it back as one clause.
func textTerm(c string) string {
	body, prefix := strings.CutSuffix(c, "*")
	if cl, err := parseClause(c); err == nil && len(cl.words) == 1 && body == cl.words[0] {
		return c
	}
	t := strconv.Quote(body)
	if prefix {
		t += "*"
	}
	return "text:" + t
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
