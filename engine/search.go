package engine

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/cockroachdb/pebble/v2"
	"google.golang.org/protobuf/proto"

	"github.com/trailaudit/trail/engine/eventwire"
	"github.com/trailaudit/trail/filter"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// IndexKind names a secondary index.
type IndexKind byte

// The secondary indexes of docs/architecture.md, "Storage engine". Time is not an
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
	IndexText // words, see text.go
)

type indexTerm struct {
	kind  IndexKind
	value string
}

// targetTerm joins type and id unambiguously (neither contains NUL, and the
// type is length-prefixed).
func targetTerm[T string | []byte](typ, id T) []byte {
	b := binary.AppendUvarint(make([]byte, 0, 2+len(typ)+len(id)), uint64(len(typ)))
	b = append(b, typ...)
	return append(b, id...)
}

// addPostings adds leaf to the chunk's lists of every term of ev: actor,
// category, action, subject, target, purpose and each distinct PII field.
// The caller holds the chunk's lock.
func (a *applier) addPostings(c *chunk, ev *eventwire.Event, op *openPartition, leaf uint64) {
	t, m := op.p.Tenant, op.p.Month
	a.addTerm(c, t, IndexActor, ev.ActorID, m, leaf)
	a.term = termKey(a.term, t, IndexCategory, trailv1.Category(ev.Category).String(), m)
	c.addPosting(IndexCategory, a.term, len(t)+2, leaf)
	a.addTerm(c, t, IndexAction, ev.Action, m, leaf)
	if len(ev.SubjectID) > 0 {
		a.addTerm(c, t, IndexSubject, ev.SubjectID, m, leaf)
	}
	if len(ev.TargetType) > 0 || len(ev.TargetID) > 0 {
		a.target = binary.AppendUvarint(a.target[:0], uint64(len(ev.TargetType)))
		a.target = append(append(a.target, ev.TargetType...), ev.TargetID...)
		a.addTerm(c, t, IndexTarget, a.target, m, leaf)
	}
	if len(ev.PurposeCode) > 0 {
		a.addTerm(c, t, IndexPurpose, ev.PurposeCode, m, leaf)
	}
	for i, f := range ev.PIIFields {
		if !slices.ContainsFunc(ev.PIIFields[:i], func(g []byte) bool { return bytes.Equal(f, g) }) {
			a.addTerm(c, t, IndexPIIField, f, m, leaf)
		}
	}
	a.addText(c, ev, op, leaf)
}

func (a *applier) addTerm(c *chunk, tenant string, kind IndexKind, value []byte, m Month, leaf uint64) {
	a.term = termKey(a.term, tenant, kind, value, m)
	c.addPosting(kind, a.term, len(tenant)+2, leaf)
}

// eventTerms lists the terms addPostings indexes ev under, for pruning.
func eventTerms(ev *eventwire.Event) []indexTerm {
	terms := []indexTerm{
		{IndexActor, string(ev.ActorID)},
		{IndexCategory, trailv1.Category(ev.Category).String()},
		{IndexAction, string(ev.Action)},
	}
	if len(ev.SubjectID) > 0 {
		terms = append(terms, indexTerm{IndexSubject, string(ev.SubjectID)})
	}
	if len(ev.TargetType) > 0 || len(ev.TargetID) > 0 {
		terms = append(terms, indexTerm{IndexTarget, string(targetTerm(ev.TargetType, ev.TargetID))})
	}
	if len(ev.PurposeCode) > 0 {
		terms = append(terms, indexTerm{IndexPurpose, string(ev.PurposeCode)})
	}
	for _, f := range ev.PIIFields {
		t := indexTerm{IndexPIIField, string(f)}
		if !slices.Contains(terms, t) {
			terms = append(terms, t)
		}
	}
	return textTerms(ev, terms)
}

// Query selects a tenant's entries: those its Filter matches, in log
// order or newest first, a page at a time.
type Query struct {
	Tenant string
	filter.Filter
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

// position is a point in a tenant's log: (month, leaf), and for index
// scans the chunk whose posting lists hold it, where a next page resumes.
type position struct {
	m     Month
	leaf  uint64
	chunk uint64
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
	b = binary.BigEndian.AppendUint64(b, p.chunk)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s string, newest bool) (position, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) != 20 || b[11] > 1 || (b[11] == 1) != newest {
		return position{}, fmt.Errorf("%w: malformed cursor", ErrBadQuery)
	}
	m, err := decodeMonthKey(b)
	if err != nil {
		return position{}, fmt.Errorf("%w: malformed cursor", ErrBadQuery)
	}
	return position{m: m, leaf: binary.BigEndian.Uint64(b[3:]), chunk: binary.BigEndian.Uint64(b[12:])}, nil
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
	if err := q.Filter.Check(); err != nil {
		return SearchResult{}, fmt.Errorf("%w: %w", ErrBadQuery, err)
	}
	if len(q.Text) > 0 && q.TextAttributes == nil {
		q.TextAttributes = e.TextAttributes(q.Tenant)
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
	if p, ok := planOf(&q.Filter); ok {
		err = s.scanIndex(ctx, &p)
	} else {
		err = s.scanLog(ctx)
	}
	if err != nil {
		return SearchResult{}, fmt.Errorf("engine: search tenant %s: %w", q.Tenant, err)
	}
	return s.res, nil
}

func (q *Query) matches(en *trailv1.Entry) bool {
	ev := filter.EventOf(en)
	return q.Filter.Match(&ev)
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

// scanIndex walks the plan's candidates, chunk by chunk in scan order:
// the chunks in Pebble whose events' times meet the query's range, then
// the one being checkpointed and the current one. A tenant's leaves in a
// later chunk come after those of an earlier one, so the walk is in log
// order.
func (s *searcher) scanIndex(ctx context.Context, p *plan) error {
	chunks := s.e.searchChunks(s.q)
	forward := !s.q.NewestFirst
	lo, hi := s.q.monthRange()
	it, err := s.e.db.NewIterWithContext(ctx, &pebble.IterOptions{
		LowerBound: []byte{prefixPostings}, UpperBound: []byte{prefixPostings + 1}})
	if err != nil {
		return err
	}
	defer it.Close()
	for i := range chunks {
		c := chunks[i]
		if !forward {
			c = chunks[len(chunks)-1-i]
		}
		if s.after != nil && (forward && c.seq < s.after.chunk || !forward && c.seq > s.after.chunk) {
			continue
		}
		lists, err := s.e.candidates(ctx, it, c, s.q.Tenant, p)
		if err != nil {
			return err
		}
		for j := range lists {
			l := lists[j]
			if !forward {
				l = lists[len(lists)-1-j]
			}
			if l.month.Before(lo) || hi.Before(l.month) {
				continue
			}
			for k := range l.leaves {
				leaf := l.leaves[k]
				if !forward {
					leaf = l.leaves[len(l.leaves)-1-k]
				}
				stop, err := s.visit(ctx, position{m: l.month, leaf: leaf, chunk: c.seq})
				if err != nil || stop {
					return err
				}
			}
		}
	}
	return nil
}

// searchable is a chunk a search reads: in Pebble (mem nil) or in memory.
type searchable struct {
	seq uint64
	mem *chunk
}

// searchChunks lists the chunks that may hold hits of q, oldest first.
func (e *Engine) searchChunks(q Query) []searchable {
	from, to := int64(math.MinInt64), int64(math.MaxInt64)
	if !q.From.IsZero() {
		from = q.From.UnixNano()
	}
	if !q.To.IsZero() {
		to = q.To.UnixNano()
	}
	e.stateMu.RLock()
	defer e.stateMu.RUnlock()
	var out []searchable
	for _, c := range e.chunks {
		if c.maxTime >= from && c.minTime < to {
			out = append(out, searchable{seq: c.seq})
		}
	}
	for _, c := range []*chunk{e.flushing, e.cur} {
		if c != nil {
			out = append(out, searchable{seq: c.seq, mem: c})
		}
	}
	return out
}

// monthList is one posting list: a term's leaves of one month in a chunk.
type monthList struct {
	month  Month
	leaves []uint64
}

// chunkLists returns a term's lists in chunk c, oldest month first.
func (e *Engine) chunkLists(it *pebble.Iterator, c searchable, tenant string, term indexTerm) ([]monthList, error) {
	if c.mem != nil {
		var out []monthList
		var key []byte
		retired := false
		for _, m := range c.mem.months(tenant) {
			key = termKey(key, tenant, term.kind, term.value, m)
			leaves, gone := c.mem.leaves(term.kind, key, len(tenant)+2)
			if gone {
				retired = true
				break
			}
			if len(leaves) > 0 {
				out = append(out, monthList{month: m, leaves: leaves})
			}
		}
		if !retired && !c.mem.isRetired() {
			return out, nil
		}
		// Checkpointed and retired since the search listed it: its
		// lists are in Pebble now.
	}
	prefix := postingPrefix(c.seq, tenant, term.kind, term.value)
	var out []monthList
	for valid := it.SeekGE(prefix); valid && bytes.HasPrefix(it.Key(), prefix); valid = it.Next() {
		k := it.Key()
		if len(k) != len(prefix)+postingMonthSize {
			return nil, fmt.Errorf("posting key %x: %w", k, ErrCorrupt)
		}
		m, err := decodeMonthKey(k[len(prefix):])
		if err != nil {
			return nil, fmt.Errorf("posting key %x: %w", k, ErrCorrupt)
		}
		leaves, err := decodeLeaves(it.Value())
		if err != nil {
			return nil, fmt.Errorf("posting list %x: %w", k, ErrCorrupt)
		}
		out = append(out, monthList{month: m, leaves: leaves})
	}
	return out, it.Error()
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
