package engine

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"google.golang.org/protobuf/proto"

	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// IndexKind names a secondary index.
type IndexKind byte

// The secondary indexes of DESIGN.md ("Storage engine"). Time is not an
// index: sequencer time is monotonic per tenant, so (partition, leaf) order
// is time order.
const (
	IndexActor IndexKind = 1 + iota
	IndexSubject
	IndexTarget
	IndexCategory
	IndexAction
	IndexPurpose
	IndexPIIField
)

type indexTerm struct {
	kind  IndexKind
	value string
}

// targetTerm joins type and id unambiguously (neither contains NUL, and the
// type is length-prefixed).
func targetTerm(typ, id string) string {
	return string(binary.AppendUvarint(nil, uint64(len(typ)))) + typ + id
}

func indexTerms(ev *trailv1.Event) []indexTerm {
	terms := make([]indexTerm, 0, 6+len(ev.GetPiiFieldsAccessed()))
	terms = append(terms,
		indexTerm{IndexActor, ev.GetActor().GetId()},
		indexTerm{IndexCategory, ev.GetCategory().String()},
		indexTerm{IndexAction, ev.GetAction()})
	if s := ev.GetSubjectId(); s != "" {
		terms = append(terms, indexTerm{IndexSubject, s})
	}
	if t := ev.GetTarget(); t.GetType() != "" || t.GetId() != "" {
		terms = append(terms, indexTerm{IndexTarget, targetTerm(t.GetType(), t.GetId())})
	}
	if p := ev.GetPurposeCode(); p != "" {
		terms = append(terms, indexTerm{IndexPurpose, p})
	}
	seen := make(map[string]bool, len(ev.GetPiiFieldsAccessed()))
	for _, f := range ev.GetPiiFieldsAccessed() {
		if !seen[f] {
			seen[f] = true
			terms = append(terms, indexTerm{IndexPIIField, f})
		}
	}
	return terms
}

// postings collects a batch's index terms: one posting list per (tenant,
// term, month), written as a single key whose leaf is the list's first.
// Low-cardinality terms (category, action, purpose, PII field) then cost a
// few keys per batch instead of one per event.
type postings struct {
	lists map[postingKey][]uint64
	order []postingKey // first-seen order, so the batch is built deterministically
}

type postingKey struct {
	tenant string
	kind   IndexKind
	value  string
	month  Month
}

func (ps *postings) add(ev *trailv1.Event, m Month, leaf uint64) {
	if ps.lists == nil {
		ps.lists = make(map[postingKey][]uint64)
	}
	for _, t := range indexTerms(ev) {
		k := postingKey{ev.TenantId, t.kind, t.value, m}
		l, ok := ps.lists[k]
		if !ok {
			ps.order = append(ps.order, k)
		}
		ps.lists[k] = append(l, leaf)
	}
}

func (ps *postings) write(wb *pebble.Batch) error {
	for _, k := range ps.order {
		leaves := ps.lists[k]
		if err := wb.Set(indexKey(k.tenant, k.kind, k.value, k.month, leaves[0]), encodeLeaves(leaves), nil); err != nil {
			return err
		}
	}
	return nil
}

// removePostings takes leaf out of the posting lists of ev's terms. wb must
// be an indexed batch, so that several removals from one list compose.
func removePostings(wb *pebble.Batch, ev *trailv1.Event, m Month, leaf uint64) error {
	for _, t := range indexTerms(ev) {
		if err := removePosting(wb, ev.TenantId, t, m, leaf); err != nil {
			return err
		}
	}
	return nil
}

func removePosting(wb *pebble.Batch, tenant string, t indexTerm, m Month, leaf uint64) error {
	lo := m.appendKey(indexValuePrefix(tenant, t.kind, t.value))
	it, err := wb.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: indexKey(tenant, t.kind, t.value, m, leaf+1)})
	if err != nil {
		return err
	}
	defer it.Close()
	if !it.Last() {
		return it.Error() // no list: nothing indexed this leaf
	}
	key := bytes.Clone(it.Key())
	leaves, err := decodeLeaves(it.Value())
	if err != nil {
		return fmt.Errorf("posting list %x: %w", key, ErrCorrupt)
	}
	kept := slices.DeleteFunc(leaves, func(l uint64) bool { return l == leaf })
	if len(kept) == 0 {
		return wb.Delete(key, nil)
	}
	// The key keeps its first leaf even when that leaf is removed: it only
	// orders the lists, and search reads the leaves from the value.
	return wb.Set(key, encodeLeaves(kept), nil)
}

// Query selects a tenant's entries. Every set filter must match; zero
// values are not filters. From and To bound sequencer time as [From, To).
type Query struct {
	Tenant      string
	ActorID     string
	SubjectID   string
	TargetType  string
	TargetID    string
	Category    trailv1.Category
	Action      string
	PurposeCode string
	PIIField    string
	From, To    time.Time
	NewestFirst bool
	Limit       int    // default 100, at most MaxSearchLimit
	Cursor      string // from a previous SearchResult
	// MaxBytes, when positive, ends a page once its hits' entry bytes
	// reach it (a page always holds at least one hit), bounding responses.
	MaxBytes int
}

// Search limits.
const (
	DefaultSearchLimit = 100
	MaxSearchLimit     = 1000
	// maxExamined bounds the entries one page may read; a page that hits it
	// returns what it found with a cursor to continue.
	maxExamined = 50_000
)

// Hit is one search result; it carries what is needed to prove it.
type Hit struct {
	StoredEntry
	Entry *trailv1.Entry
}

// SearchResult is one page of hits; NextCursor is empty on the last page.
type SearchResult struct {
	Hits       []Hit
	NextCursor string
}

// ErrBadQuery is wrapped by invalid search requests.
var ErrBadQuery = errors.New("invalid query")

// position is a point in a tenant's log: (month, leaf).
type position struct {
	m    Month
	leaf uint64
}

func (p position) less(o position) bool {
	return p.m.Before(o.m) || (p.m == o.m && p.leaf < o.leaf)
}

func encodeCursor(p position, newest bool) string {
	b := p.m.appendKey(nil)
	b = binary.BigEndian.AppendUint64(b, p.leaf)
	if newest {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s string, newest bool) (position, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) != 12 || b[11] > 1 || (b[11] == 1) != newest {
		return position{}, fmt.Errorf("%w: malformed cursor", ErrBadQuery)
	}
	m, err := decodeMonthKey(b)
	if err != nil {
		return position{}, fmt.Errorf("%w: malformed cursor", ErrBadQuery)
	}
	return position{m: m, leaf: binary.BigEndian.Uint64(b[3:])}, nil
}

// Search returns one page of entries matching q.
func (e *Engine) Search(ctx context.Context, q Query) (SearchResult, error) {
	if err := e.checkOpen(); err != nil {
		return SearchResult{}, err
	}
	if err := ValidateTenantID(q.Tenant); err != nil {
		return SearchResult{}, fmt.Errorf("%w: %v", ErrBadQuery, err)
	}
	if q.Limit <= 0 {
		q.Limit = DefaultSearchLimit
	}
	if q.Limit > MaxSearchLimit {
		return SearchResult{}, fmt.Errorf("%w: limit %d above %d", ErrBadQuery, q.Limit, MaxSearchLimit)
	}
	if (q.TargetType == "") != (q.TargetID == "") {
		return SearchResult{}, fmt.Errorf("%w: target filter needs both target_type and target_id", ErrBadQuery)
	}
	if !q.From.IsZero() && !q.To.IsZero() && !q.From.Before(q.To) {
		return SearchResult{}, fmt.Errorf("%w: time range is empty", ErrBadQuery)
	}
	s := &searcher{e: e, q: q, views: make(map[Month]*view)}
	defer s.close()
	if q.Cursor != "" {
		c, err := decodeCursor(q.Cursor, q.NewestFirst)
		if err != nil {
			return SearchResult{}, err
		}
		s.after = &c
	}
	var err error
	if term, ok := q.indexTerm(); ok {
		err = s.scanIndex(ctx, term)
	} else {
		err = s.scanLog(ctx)
	}
	if err != nil {
		return SearchResult{}, fmt.Errorf("engine: search tenant %s: %w", q.Tenant, err)
	}
	return s.res, nil
}

// indexTerm picks the index to scan: the most selective filter set.
func (q *Query) indexTerm() (indexTerm, bool) {
	switch {
	case q.SubjectID != "":
		return indexTerm{IndexSubject, q.SubjectID}, true
	case q.ActorID != "":
		return indexTerm{IndexActor, q.ActorID}, true
	case q.TargetID != "":
		return indexTerm{IndexTarget, targetTerm(q.TargetType, q.TargetID)}, true
	case q.PIIField != "":
		return indexTerm{IndexPIIField, q.PIIField}, true
	case q.PurposeCode != "":
		return indexTerm{IndexPurpose, q.PurposeCode}, true
	case q.Action != "":
		return indexTerm{IndexAction, q.Action}, true
	case q.Category != trailv1.Category_CATEGORY_UNSPECIFIED:
		return indexTerm{IndexCategory, q.Category.String()}, true
	}
	return indexTerm{}, false
}

func (q *Query) matches(en *trailv1.Entry) bool {
	ev := en.GetEvent()
	t := en.GetSequencerTime().AsTime()
	switch {
	case !q.From.IsZero() && t.Before(q.From), !q.To.IsZero() && !t.Before(q.To):
		return false
	case q.SubjectID != "" && ev.GetSubjectId() != q.SubjectID,
		q.ActorID != "" && ev.GetActor().GetId() != q.ActorID,
		q.TargetID != "" && (ev.GetTarget().GetId() != q.TargetID || ev.GetTarget().GetType() != q.TargetType),
		q.PurposeCode != "" && ev.GetPurposeCode() != q.PurposeCode,
		q.Action != "" && ev.GetAction() != q.Action,
		q.Category != trailv1.Category_CATEGORY_UNSPECIFIED && ev.GetCategory() != q.Category:
		return false
	case q.PIIField != "":
		for _, f := range ev.GetPiiFieldsAccessed() {
			if f == q.PIIField {
				return true
			}
		}
		return false
	}
	return true
}

// monthRange is the partitions the time filter allows.
func (q *Query) monthRange() (lo, hi Month) {
	lo, hi = Month{Year: 0, Month: 1}, Month{Year: 65535, Month: 12}
	if !q.From.IsZero() {
		lo = MonthOf(q.From)
	}
	if !q.To.IsZero() {
		hi = MonthOf(q.To.Add(-1))
	}
	return lo, hi
}

type searcher struct {
	e        *Engine
	q        Query
	after    *position
	views    map[Month]*view
	res      SearchResult
	examined int
	last     position // last position examined
	bytes    int      // entry bytes of the hits so far
}

func (s *searcher) close() {
	for _, v := range s.views {
		v.release()
	}
}

func (s *searcher) viewOf(m Month) (*view, error) {
	if v := s.views[m]; v != nil {
		return v, nil
	}
	v, err := s.e.view(Partition{Tenant: s.q.Tenant, Month: m})
	if err != nil {
		return nil, err
	}
	s.views[m] = v
	return v, nil
}

// visit examines one position; it reports whether the scan should stop.
func (s *searcher) visit(ctx context.Context, pos position) (bool, error) {
	if s.after != nil {
		if !s.q.NewestFirst && !s.after.less(pos) || s.q.NewestFirst && !pos.less(*s.after) {
			return false, nil
		}
	}
	if len(s.res.Hits) == s.q.Limit || s.examined == maxExamined || s.q.MaxBytes > 0 && s.bytes >= s.q.MaxBytes {
		// Another candidate exists: hand out a cursor to continue from it.
		s.res.NextCursor = encodeCursor(s.last, s.q.NewestFirst)
		return true, nil
	}
	if err := ctx.Err(); err != nil {
		return true, err
	}
	s.examined++
	s.last = pos
	v, err := s.viewOf(pos.m)
	if err != nil {
		return true, err
	}
	se, err := v.entry(ctx, pos.leaf)
	if err != nil {
		return true, err
	}
	if se.Pruned {
		return false, nil
	}
	en := new(trailv1.Entry)
	if err := proto.Unmarshal(se.Data, en); err != nil {
		return true, fmt.Errorf("partition %s leaf %d: decode: %w: %v", se.Partition, se.LeafIndex, ErrCorrupt, err)
	}
	if s.pastRange(en) {
		return true, nil
	}
	if s.q.matches(en) {
		s.res.Hits = append(s.res.Hits, Hit{StoredEntry: se, Entry: en})
		s.bytes += len(se.Data)
	}
	return false, nil
}

// pastRange reports whether en, and so everything after it in scan order,
// lies beyond the time range: sequencer time is monotonic per tenant.
func (s *searcher) pastRange(en *trailv1.Entry) bool {
	t := en.GetSequencerTime().AsTime()
	if s.q.NewestFirst {
		return !s.q.From.IsZero() && t.Before(s.q.From)
	}
	return !s.q.To.IsZero() && !t.Before(s.q.To)
}

// scanIndex walks one index's keys for the query's months in scan order.
func (s *searcher) scanIndex(ctx context.Context, term indexTerm) error {
	prefix := indexValuePrefix(s.q.Tenant, term.kind, term.value)
	opts := &pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)}
	if !s.q.From.IsZero() {
		opts.LowerBound = MonthOf(s.q.From).appendKey(bytes.Clone(prefix))
	}
	if !s.q.To.IsZero() {
		opts.UpperBound = MonthOf(s.q.To.Add(-1)).Next().appendKey(bytes.Clone(prefix))
	}
	it, err := s.e.db.NewIterWithContext(ctx, opts)
	if err != nil {
		return err
	}
	defer it.Close()
	forward := !s.q.NewestFirst
	var valid bool
	switch {
	case s.after != nil && forward:
		// The list holding the cursor may start before it.
		if valid = it.SeekLT(indexKey(s.q.Tenant, term.kind, term.value, s.after.m, s.after.leaf+1)); !valid {
			valid = it.First()
		}
	case s.after != nil:
		valid = it.SeekLT(indexKey(s.q.Tenant, term.kind, term.value, s.after.m, s.after.leaf))
	case forward:
		valid = it.First()
	default:
		valid = it.Last()
	}
	for ; valid; valid = s.step(it) {
		m, _, err := decodeIndexSuffix(it.Key())
		if err != nil {
			return err
		}
		leaves, err := decodeLeaves(it.Value())
		if err != nil {
			return fmt.Errorf("posting list of %s: %w", m, ErrCorrupt)
		}
		for i := range leaves {
			leaf := leaves[i]
			if !forward {
				leaf = leaves[len(leaves)-1-i]
			}
			stop, err := s.visit(ctx, position{m: m, leaf: leaf})
			if err != nil || stop {
				return err
			}
		}
	}
	return it.Error()
}

func (s *searcher) step(it *pebble.Iterator) bool {
	if s.q.NewestFirst {
		return it.Prev()
	}
	return it.Next()
}

// passed reports whether the cursor is already beyond all of month m.
func (s *searcher) passed(m Month) bool {
	if s.after == nil {
		return false
	}
	if s.q.NewestFirst {
		return s.after.m.Before(m)
	}
	return m.Before(s.after.m)
}

// scanLog walks every entry of the partitions in the query's months.
func (s *searcher) scanLog(ctx context.Context) error {
	parts, err := s.e.Partitions(ctx, s.q.Tenant)
	if err != nil {
		return err
	}
	lo, hi := s.q.monthRange()
	for i := range parts {
		pi := parts[i]
		if s.q.NewestFirst {
			pi = parts[len(parts)-1-i]
		}
		// A dropped partition has no payloads left to match (drop.go).
		if pi.Month.Before(lo) || hi.Before(pi.Month) || pi.Size == 0 || pi.Dropped || s.passed(pi.Month) {
			continue
		}
		first, last := uint64(0), pi.Size-1
		if s.after != nil && s.after.m == pi.Month {
			if s.q.NewestFirst {
				if s.after.leaf == 0 {
					continue
				}
				last = min(last, s.after.leaf-1)
			} else {
				first = s.after.leaf + 1
			}
		}
		for n := uint64(0); first+n <= last; n++ {
			leaf := first + n
			if s.q.NewestFirst {
				leaf = last - n
			}
			stop, err := s.visit(ctx, position{m: pi.Month, leaf: leaf})
			if err != nil || stop {
				return err
			}
		}
	}
	return nil
}
