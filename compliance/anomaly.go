package compliance

import (
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/trailaudit/trail/engine"
	"github.com/trailaudit/trail/engine/eventwire"
	"github.com/trailaudit/trail/filter"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// Anomaly rule names, as the "rule" attribute of an anomaly event shows them.
const (
	RuleBulkSubjectAccess = "bulk_subject_access"
	RuleOffHours          = "off_hours_access"
	RuleMissingPurpose    = "missing_purpose_code"
)

// ActionSecurityAnomaly is the action of the events the anomaly rules append.
const ActionSecurityAnomaly = "audit.security_anomaly"

// DefaultMaxDistinctSubjects is the default threshold of the bulk-access
// rule: an actor reading this many distinct subjects within an hour.
const DefaultMaxDistinctSubjects = 150

// anomalyWindow is the span of the bulk-access rule.
const anomalyWindow = time.Hour

// detectorActor is the actor of anomaly events: Trail itself.
const detectorActor = "trail/anomaly-detector"

// ErrBadRules is returned for anomaly rules that cannot be applied.
var ErrBadRules = errors.New("invalid anomaly rules")

func anomalyKey(tenant string) string { return "anomaly/" + tenant }

// DefaultRules are the rules of a tenant that has set none: bulk access
// to 150 or more subjects an hour and data access without a purpose code.
// Working hours are not assumed: the off-hours rule applies only once a
// tenant sets them, since no default fits every organisation.
func DefaultRules(tenant string) *trailv1.AnomalyRules {
	return &trailv1.AnomalyRules{TenantId: tenant, MaxDistinctSubjectsPerHour: DefaultMaxDistinctSubjects}
}

// CheckRules validates rules and fills their defaults in place.
func CheckRules(r *trailv1.AnomalyRules) error {
	if err := engine.ValidateTenantID(r.GetTenantId()); err != nil {
		return fmt.Errorf("%w: %w", ErrBadRules, err)
	}
	if r.GetMaxDistinctSubjectsPerHour() == 0 {
		r.MaxDistinctSubjectsPerHour = DefaultMaxDistinctSubjects
	}
	if _, err := compileRules(r); err != nil {
		return err
	}
	for _, c := range r.GetValidPurposeCodes() {
		if c == "" || len(c) > engine.MaxIndexedLen {
			return fmt.Errorf("%w: purpose code %q: empty or longer than %d bytes", ErrBadRules, c, engine.MaxIndexedLen)
		}
	}
	return nil
}

// MarshalRules encodes rules for the settings store, deterministically.
func MarshalRules(r *trailv1.AnomalyRules) ([]byte, error) {
	return proto.MarshalOptions{Deterministic: true}.Marshal(r)
}

// RulesSetting is the setting operation that stores rules.
func RulesSetting(r *trailv1.AnomalyRules) (engine.SettingOp, error) {
	b, err := MarshalRules(r)
	if err != nil {
		return engine.SettingOp{}, fmt.Errorf("compliance: encode anomaly rules: %w", err)
	}
	return engine.SettingOp{Key: anomalyKey(r.GetTenantId()), Value: b}, nil
}

// ReadRules returns the tenant's anomaly rules from e's settings, or the
// defaults when none were set.
func ReadRules(e *engine.Engine, tenant string) (*trailv1.AnomalyRules, error) {
	b, err := e.Setting(anomalyKey(tenant))
	switch {
	case errors.Is(err, engine.ErrNotFound):
		return DefaultRules(tenant), nil
	case err != nil:
		return nil, fmt.Errorf("compliance: read anomaly rules of %s: %w", tenant, err)
	}
	r := new(trailv1.AnomalyRules)
	if err := proto.Unmarshal(b, r); err != nil {
		return nil, fmt.Errorf("compliance: anomaly rules of %s: %w", tenant, err)
	}
	return r, nil
}

// compiled is a tenant's rules ready to evaluate.
type compiled struct {
	rules      *trailv1.AnomalyRules
	loc        *time.Location
	start, end int // minutes after midnight; start == end: no working hours
	days       [8]bool
	purposes   map[string]bool // nil: any non-empty code
}

func compileRules(r *trailv1.AnomalyRules) (*compiled, error) {
	c := &compiled{rules: r, loc: time.UTC}
	if tz := r.GetTimeZone(); tz != "" {
		loc, err := time.LoadLocation(tz)
		if err != nil {
			return nil, fmt.Errorf("%w: time_zone %q: %v", ErrBadRules, tz, err)
		}
		c.loc = loc
	}
	var err error
	if c.start, err = parseClock("working_hours_start", r.GetWorkingHoursStart()); err != nil {
		return nil, err
	}
	if c.end, err = parseClock("working_hours_end", r.GetWorkingHoursEnd()); err != nil {
		return nil, err
	}
	if (r.GetWorkingHoursStart() == "") != (r.GetWorkingHoursEnd() == "") {
		return nil, fmt.Errorf("%w: set both working_hours_start and working_hours_end, or neither", ErrBadRules)
	}
	days := r.GetWorkingDays()
	if len(days) == 0 {
		days = []uint32{1, 2, 3, 4, 5}
	}
	for _, d := range days {
		if d < 1 || d > 7 {
			return nil, fmt.Errorf("%w: working day %d: want 1 (Monday) to 7 (Sunday)", ErrBadRules, d)
		}
		c.days[d] = true
	}
	if codes := r.GetValidPurposeCodes(); len(codes) > 0 {
		c.purposes = make(map[string]bool, len(codes))
		for _, code := range codes {
			c.purposes[code] = true
		}
	}
	return c, nil
}

// parseClock parses "HH:MM" into minutes after midnight ("" is 0).
func parseClock(field, s string) (int, error) {
	if s == "" {
		return 0, nil
	}
	h, m, ok := strings.Cut(s, ":")
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if !ok || len(h) != 2 || len(m) != 2 || err1 != nil || err2 != nil || hh > 23 || mm > 59 || hh < 0 || mm < 0 {
		return 0, fmt.Errorf("%w: %s %q: want HH:MM", ErrBadRules, field, s)
	}
	return hh*60 + mm, nil
}

// offHours reports whether t falls outside the working hours.
func (c *compiled) offHours(t time.Time) bool {
	if c.start == c.end {
		return false
	}
	local := t.In(c.loc)
	day := int(local.Weekday())
	if day == 0 {
		day = 7
	}
	if !c.days[day] {
		return true
	}
	m := local.Hour()*60 + local.Minute()
	if c.start < c.end {
		return m < c.start || m >= c.end
	}
	return m < c.start && m >= c.end // a night shift: 22:00-06:00
}

// ValidPurpose reports whether code is a valid purpose code under rules.
func ValidPurpose(rules *trailv1.AnomalyRules, code string) bool {
	if code == "" {
		return false
	}
	codes := rules.GetValidPurposeCodes()
	return len(codes) == 0 || slices.Contains(codes, code)
}

// Detector evaluates the anomaly rules on ingest. The leader runs it on
// every batch before proposing it, and the anomaly events it returns go
// into the same Raft entry as the events that caused them, so the log
// holds them atomically and every replica holds the same ones (docs/architecture.md
// invariant 6 concerns the FSM; the detector runs before it, on the
// leader only).
//
// The bulk-access rule keeps, per (tenant, actor), the distinct subjects
// read in the last hour of occurred_at time: at most threshold of them,
// and at most MaxActors actors (least recently active dropped first), so
// memory is bounded whatever the load. The first time a detector sees an
// actor (a new leader's detector, or an actor dropped from the cache) it
// rebuilds the window from the log (warm), so a burst straddling a leader
// change is still flagged, and once. Each flag's event id derives from the
// event that crossed the threshold, so a retried batch is deduplicated
// like any event.
type Detector struct {
	// MaxActors bounds the actors tracked (default 100000).
	MaxActors int

	mu     sync.Mutex
	actors map[actorKey]*list.Element
	lru    list.List // of *actorWindow, most recently active at the front

	// rules caches the tenants' compiled rules, valid for one engine at
	// one settings version: reading and decoding them from the settings
	// on every batch was most of the detector's cost.
	rulesMu      sync.Mutex
	rulesEngine  *engine.Engine
	rulesVersion uint64
	rules        map[string]*compiled
}

type actorKey struct{ tenant, actor string }

type actorWindow struct {
	key      actorKey
	subjects map[string]time.Time // subject -> latest access
	quietTil time.Time            // bulk access flagged: not again before this
	offTil   time.Time            // off-hours alert raised: it covers accesses before this
}

// NewDetector returns a detector with empty windows.
func NewDetector() *Detector { return &Detector{} }

// access is what the rules read of a data-access event.
type access struct {
	tenant, eventID, actor, subject, purpose, traceID string
	at                                                time.Time // occurred_at
}

func accessOf(ev *eventwire.Event) *access {
	return &access{
		tenant: string(ev.TenantID), eventID: string(ev.EventID), actor: string(ev.ActorID),
		subject: string(ev.SubjectID), purpose: string(ev.PurposeCode), traceID: string(ev.TraceID),
		at: time.Unix(ev.OccurredSeconds, int64(ev.OccurredNanos)).UTC(),
	}
}

// Inspect evaluates the tenants' rules (read from e) on events and returns
// the anomaly events to append after them. Events of the system tenant
// and anomaly events themselves are never inspected.
func (d *Detector) Inspect(ctx context.Context, e *engine.Engine, events []*eventwire.Event) ([]*trailv1.Event, error) {
	var out []*trailv1.Event
	var raised map[actorKey]*trailv1.Event // this batch's off-hours alerts
	for _, ev := range events {
		if ev.Category != int32(trailv1.Category_CATEGORY_DATA_ACCESS) || string(ev.TenantID) == engine.SystemTenant {
			continue
		}
		a := accessOf(ev)
		c, err := d.tenantRules(e, a.tenant)
		if err != nil {
			return nil, err
		}
		if c.rules.GetDisabled() {
			continue
		}
		if raised == nil {
			raised = map[actorKey]*trailv1.Event{}
		}
		out = append(out, d.evaluate(ctx, e, c, a, raised)...)
	}
	return out, ctx.Err()
}

// tenantRules returns a tenant's compiled rules, from the cache while the
// settings have not changed since they were read.
func (d *Detector) tenantRules(e *engine.Engine, tenant string) (*compiled, error) {
	version := e.SettingsVersion()
	d.rulesMu.Lock()
	if d.rulesEngine != e || d.rulesVersion != version {
		d.rulesEngine, d.rulesVersion, d.rules = e, version, map[string]*compiled{}
	}
	c, ok := d.rules[tenant]
	d.rulesMu.Unlock()
	if ok {
		return c, nil
	}
	r, err := ReadRules(e, tenant)
	if err != nil {
		return nil, err
	}
	if c, err = compileRules(r); err != nil {
		// Rules are checked when set; a stored rule that no longer
		// compiles (a time zone gone from tzdata) must not stop
		// ingestion, so the tenant's off-hours rule is skipped.
		c = &compiled{rules: r, loc: time.UTC}
	}
	d.rulesMu.Lock()
	if d.rulesEngine == e && d.rulesVersion == version {
		d.rules[tenant] = c
	}
	d.rulesMu.Unlock()
	return c, nil
}

func (d *Detector) evaluate(ctx context.Context, e *engine.Engine, c *compiled, ev *access, raised map[actorKey]*trailv1.Event) []*trailv1.Event {
	var out []*trailv1.Event
	at := ev.at
	if !ValidPurpose(c.rules, ev.purpose) {
		reason := "no purpose code"
		if ev.purpose != "" {
			reason = fmt.Sprintf("purpose code %q is not one of the tenant's valid codes", ev.purpose)
		}
		out = append(out, anomaly(ev, RuleMissingPurpose, map[string]string{"reason": reason}))
	}
	off := c.offHours(at)
	if !off && ev.subject == "" {
		return out
	}
	limit := int(c.rules.GetMaxDistinctSubjectsPerHour())
	w := d.window(ctx, e, ev, at, limit)
	defer d.mu.Unlock()
	if off {
		if a := w.offHours(ev, at, c, raised); a != nil {
			out = append(out, a)
		}
	}
	if ev.subject != "" {
		if n, hit := w.observe(ev.subject, at, limit); hit {
			out = append(out, anomaly(ev, RuleBulkSubjectAccess, map[string]string{
				"distinct_subjects": strconv.Itoa(n),
				"threshold":         strconv.Itoa(limit),
				"window":            anomalyWindow.String(),
			}))
		}
	}
	return out
}

// window returns ev's actor's window, warmed from the log if the detector
// has not seen the actor, with d.mu held: the caller unlocks it.
func (d *Detector) window(ctx context.Context, e *engine.Engine, ev *access, at time.Time, limit int) *actorWindow {
	k := actorKey{ev.tenant, ev.actor}
	d.mu.Lock()
	if w := d.lookup(k); w != nil {
		return w
	}
	// The warm-up searches the log: other actors' events, and other
	// calls' proposals, go on meanwhile. A call that warmed the same
	// actor at the same time is merged with, not overwritten.
	d.mu.Unlock()
	warmed := &actorWindow{key: k, subjects: map[string]time.Time{}}
	d.warm(ctx, e, warmed, at, limit)
	d.mu.Lock()
	return d.adopt(warmed)
}

// offHours returns the off-hours alert for an access outside working
// hours at time at, or nil when an alert raised within the last window
// already covers it. An alert counts, in its "accesses" attribute, the
// actor's off-hours accesses in the batch that raised it (raised holds the
// batch's alerts): a burst sent in one request is one alert with its
// size, and one spread over many requests is still one alert, whose
// window_end says how long it covers the actor. Alerting on the first
// access rather than at the end of the burst keeps the alert timely; the
// burst itself is one search away (actor, window_start to window_end).
func (w *actorWindow) offHours(ev *access, at time.Time, c *compiled, raised map[actorKey]*trailv1.Event) *trailv1.Event {
	if at.Before(w.offTil) {
		if a := raised[w.key]; a != nil {
			n, _ := strconv.Atoi(a.Attributes["accesses"])
			a.Attributes["accesses"] = strconv.Itoa(n + 1)
		}
		return nil
	}
	w.offTil = at.Add(anomalyWindow)
	a := anomaly(ev, RuleOffHours, map[string]string{
		"local_time":    at.In(c.loc).Format("2006-01-02 15:04 Mon"),
		"time_zone":     c.loc.String(),
		"working_hours": c.rules.GetWorkingHoursStart() + "-" + c.rules.GetWorkingHoursEnd(),
		"window":        anomalyWindow.String(),
		"window_start":  at.Format(time.RFC3339Nano),
		"window_end":    w.offTil.Format(time.RFC3339Nano),
		"accesses":      "1",
	})
	raised[w.key] = a
	return a
}

// observe records that the actor read subject at time at, and reports
// whether that brings the actor to limit distinct subjects within the
// window (once per window).
func (w *actorWindow) observe(subject string, at time.Time, limit int) (int, bool) {
	for s, t := range w.subjects {
		if !t.After(at.Add(-anomalyWindow)) {
			delete(w.subjects, s)
		}
	}
	if last, ok := w.subjects[subject]; !ok || at.After(last) {
		w.subjects[subject] = at
	}
	n := len(w.subjects)
	if n < limit || at.Before(w.quietTil) {
		return n, false
	}
	// Flagged: start a fresh window, so the next flag needs another full
	// burst rather than one more subject.
	w.quietTil = at.Add(anomalyWindow)
	clear(w.subjects)
	return n, true
}

// lookup returns the actor's window, marked most recently active, or nil.
func (d *Detector) lookup(k actorKey) *actorWindow {
	el, ok := d.actors[k]
	if !ok {
		return nil
	}
	d.lru.MoveToFront(el)
	return el.Value.(*actorWindow)
}

// adopt tracks a window warmed from the log, evicting the least recently
// active actors beyond MaxActors; if another call tracked the same actor
// while this one was warming, the two are merged into that window.
func (d *Detector) adopt(warmed *actorWindow) *actorWindow {
	if w := d.lookup(warmed.key); w != nil {
		w.merge(warmed)
		return w
	}
	if d.actors == nil {
		d.actors = map[actorKey]*list.Element{}
	}
	max := d.MaxActors
	if max <= 0 {
		max = 100_000
	}
	for d.lru.Len() >= max {
		old := d.lru.Back()
		delete(d.actors, old.Value.(*actorWindow).key)
		d.lru.Remove(old)
	}
	d.actors[warmed.key] = d.lru.PushFront(warmed)
	return warmed
}

// merge adds o's accesses and flag to w: the later access of each subject,
// the later flag, and nothing from before the flag (the window restarted
// then, as observe does).
func (w *actorWindow) merge(o *actorWindow) {
	for s, t := range o.subjects {
		if last, ok := w.subjects[s]; !ok || t.After(last) {
			w.subjects[s] = t
		}
	}
	if o.quietTil.After(w.quietTil) {
		w.quietTil = o.quietTil
	}
	if o.offTil.After(w.offTil) {
		w.offTil = o.offTil
	}
	w.dropBeforeFlag()
}

// dropBeforeFlag forgets the accesses at or before the window's last flag.
func (w *actorWindow) dropBeforeFlag() {
	if w.quietTil.IsZero() {
		return
	}
	flagged := w.quietTil.Add(-anomalyWindow)
	for s, t := range w.subjects {
		if !t.After(flagged) {
			delete(w.subjects, s)
		}
	}
}

// warmPages bounds the index pages a window's warm-up reads.
const warmPages = 2

// warm fills a new window from the log: the actor's data accesses of the
// hour before at, and whether a bulk-access anomaly already flagged it in
// that hour. A detector starts empty on a new leader, and an actor's
// window may have been dropped from the bounded cache; without this, a
// burst straddling a leader change or an eviction would go unflagged, or
// be flagged twice. The log is searched by sequencer time, which tracks
// occurred_at for live traffic, with an hour's margin; the window itself
// keeps occurred_at, as observe does. Errors leave the window as it is:
// the rules must never stop ingestion.
func (d *Detector) warm(ctx context.Context, e *engine.Engine, w *actorWindow, at time.Time, limit int) {
	if e == nil {
		return
	}
	from := at.Add(-2 * anomalyWindow)
	accesses := engine.Query{Tenant: w.key.tenant, Filter: filter.Filter{ActorIDs: []string{w.key.actor},
		Categories: []trailv1.Category{trailv1.Category_CATEGORY_DATA_ACCESS}, From: from},
		NewestFirst: true, Limit: engine.MaxSearchLimit, MaxBytes: 4 << 20}
	d.scan(ctx, e, accesses, func(ev *trailv1.Event) bool {
		t := ev.GetOccurredAt().AsTime()
		if ev.GetSubjectId() != "" && t.After(at.Add(-anomalyWindow)) && !t.After(at) {
			if last, ok := w.subjects[ev.GetSubjectId()]; !ok || t.After(last) {
				w.subjects[ev.GetSubjectId()] = t
			}
		}
		return len(w.subjects) < limit
	})
	flags := engine.Query{Tenant: w.key.tenant, Filter: filter.Filter{Targets: []filter.Target{{Type: "actor", ID: w.key.actor}},
		Actions: []string{ActionSecurityAnomaly}, From: from}, NewestFirst: true, Limit: 100}
	d.scan(ctx, e, flags, func(ev *trailv1.Event) bool {
		t := ev.GetOccurredAt().AsTime()
		if !t.After(at.Add(-anomalyWindow)) || t.After(at) {
			return true
		}
		// Newest first: the first flag of each rule is its latest.
		switch ev.GetAttributes()["rule"] {
		case RuleBulkSubjectAccess:
			if w.quietTil.IsZero() {
				w.quietTil = t.Add(anomalyWindow)
			}
		case RuleOffHours:
			if w.offTil.IsZero() {
				w.offTil = t.Add(anomalyWindow)
			}
		}
		return w.quietTil.IsZero() || w.offTil.IsZero()
	})
	if at.Before(w.quietTil) {
		// Flagged already: the window restarted then, as observe does.
		w.dropBeforeFlag()
	}
}

// scan feeds fn the events q finds, at most warmPages pages, until fn
// returns false.
func (d *Detector) scan(ctx context.Context, e *engine.Engine, q engine.Query, fn func(*trailv1.Event) bool) {
	for range warmPages {
		res, err := e.Search(ctx, q)
		if err != nil {
			return
		}
		for _, h := range res.Hits {
			if !fn(h.Entry.GetEvent()) {
				return
			}
		}
		if res.NextCursor == "" {
			return
		}
		q.Cursor = res.NextCursor
	}
}

// anomaly builds the anomaly event for rule on ev. Everything in it comes
// from ev and the rule, so a retried batch yields the identical event,
// which the log deduplicates by its id.
func anomaly(ev *access, rule string, attrs map[string]string) *trailv1.Event {
	sum := sha256.Sum256([]byte(rule + "\x00" + ev.eventID))
	attrs["rule"] = rule
	attrs["event_id"] = ev.eventID
	attrs["actor_id"] = ev.actor
	return &trailv1.Event{
		TenantId:      ev.tenant,
		EventId:       "anomaly/" + rule + "/" + hex.EncodeToString(sum[:16]),
		Category:      trailv1.Category_CATEGORY_SECURITY,
		Action:        ActionSecurityAnomaly,
		Outcome:       trailv1.Outcome_OUTCOME_SUCCESS,
		Actor:         &trailv1.Actor{Id: detectorActor, Type: "system"},
		SubjectId:     ev.subject,
		Target:        &trailv1.Target{Type: "actor", Id: ev.actor},
		SourceService: eventwire.TrailSource,
		TraceId:       ev.traceID,
		OccurredAt:    timestamppb.New(ev.at),
		Attributes:    attrs,
	}
}
