package engine

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/trailaudit/trail/filter"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// Aggregations count the events a filter selects, grouped by a field's
// value (top N) or by time bucket, from the posting lists rather than the
// entries. An entry is read only where the index cannot answer: to place
// a time boundary within a month (a binary search, O(log n) reads per
// boundary), and, for a multi-word phrase or a small selection grouped by
// a field, to check or group each candidate.

// GroupBy is what an aggregation groups by: an indexed field, or a time
// bucket of sequencer time (UTC).
type GroupBy int

// Groupings.
const (
	GroupActor GroupBy = iota + 1
	GroupSubject
	GroupTarget
	GroupCategory
	GroupAction
	GroupPurpose
	GroupPIIField
	GroupHour
	GroupDay
	GroupMonth
)

// Aggregation limits.
const (
	DefaultAggregateLimit = 10
	MaxAggregateLimit     = 1000
	MaxBuckets            = 10_000
	// maxAggregateGroups bounds the distinct values a field grouping
	// counts; maxAggregateReads the entries one aggregation reads.
	maxAggregateGroups = 1_000_000
	maxAggregateReads  = 200_000
	// readBelow: a selection this small grouped by a field is grouped by
	// reading its entries (~10 us each), cheaper than visiting every
	// value's list of a field of many values.
	readBelow = 2_000
)

// Aggregation asks for counts of the events Filter selects in Tenant.
type Aggregation struct {
	Tenant string
	filter.Filter
	By GroupBy
	// Limit is the number of groups by a field returned, largest first
	// (default 10, at most 1000); time buckets are all returned.
	Limit int
}

// Group is one group's count; for time buckets Key is the bucket's start
// (RFC 3339) and Start is set.
type Group struct {
	Key   string
	Start time.Time
	Count uint64
}

// AggregateResult holds the groups and the number of events selected.
type AggregateResult struct {
	Groups []Group
	Total  uint64
}

func (g GroupBy) kind() (IndexKind, bool) {
	switch g {
	case GroupActor:
		return IndexActor, true
	case GroupSubject:
		return IndexSubject, true
	case GroupTarget:
		return IndexTarget, true
	case GroupCategory:
		return IndexCategory, true
	case GroupAction:
		return IndexAction, true
	case GroupPurpose:
		return IndexPurpose, true
	case GroupPIIField:
		return IndexPIIField, true
	}
	return 0, false
}

// Aggregate counts the events a selects.
func (e *Engine) Aggregate(ctx context.Context, a Aggregation) (AggregateResult, error) {
	if err := e.checkOpen(); err != nil {
		return AggregateResult{}, err
	}
	if err := ValidateTenantID(a.Tenant); err != nil {
		return AggregateResult{}, fmt.Errorf("%w: %v", ErrBadQuery, err)
	}
	if err := a.Filter.Check(); err != nil {
		return AggregateResult{}, fmt.Errorf("%w: %w", ErrBadQuery, err)
	}
	if a.Limit <= 0 {
		a.Limit = DefaultAggregateLimit
	}
	if a.Limit > MaxAggregateLimit {
		return AggregateResult{}, fmt.Errorf("%w: limit %d above %d", ErrBadQuery, a.Limit, MaxAggregateLimit)
	}
	if len(a.Text) > 0 && a.TextAttributes == nil {
		a.TextAttributes = e.TextAttributes(a.Tenant)
	}
	ag := &aggregator{e: e, a: a, views: map[Month]*view{}, bounds: map[Month][2]uint64{}, placed: map[placeKey]uint64{}}
	defer ag.close()
	sel, err := ag.selection(ctx)
	if err != nil {
		return AggregateResult{}, fmt.Errorf("engine: aggregate tenant %s: %w", a.Tenant, err)
	}
	var res AggregateResult
	for _, p := range sel {
		res.Total += uint64(len(p.leaves))
	}
	if kind, ok := a.By.kind(); ok {
		res.Groups, err = ag.byField(ctx, kind, sel, res.Total)
	} else {
		res.Groups, err = ag.byTime(ctx, sel)
	}
	if err != nil {
		return AggregateResult{}, fmt.Errorf("engine: aggregate tenant %s: %w", a.Tenant, err)
	}
	return res, nil
}

// piece is part of a selection: selected leaves of one month, ascending,
// from chunk seq. Pieces are disjoint; a chunk and month may have
// several (one per category, when everything is selected).
type piece struct {
	seq    uint64
	month  Month
	leaves []uint64
}

type aggregator struct {
	e *Engine
	a Aggregation
	// all: the filter selects every live event in the time range, so a
	// list's count is that of its leaves in the range, with no
	// intersection.
	all    bool
	views  map[Month]*view
	bounds map[Month][2]uint64 // leaf range of [From, To) in a month
	placed map[placeKey]uint64 // firstAtOrAfter, memoized
	reads  int
}

type placeKey struct {
	m Month
	t int64
}

func (ag *aggregator) close() {
	for _, v := range ag.views {
		v.release()
	}
}

func (ag *aggregator) view(m Month) (*view, error) {
	if v := ag.views[m]; v != nil {
		return v, nil
	}
	v, err := ag.e.view(Partition{Tenant: ag.a.Tenant, Month: m})
	if err != nil {
		return nil, err
	}
	ag.views[m] = v
	return v, nil
}

// selection returns the selected leaves as pieces, months oldest first:
// the plan's candidates per chunk (or, when the filter indexes nothing,
// every category's lists, which together hold every live event once), cut
// to the time range, and checked entry by entry only for multi-word
// phrases.
func (ag *aggregator) selection(ctx context.Context) ([]piece, error) {
	p, ok := planOf(&ag.a.Filter)
	ag.all = !ok && len(p.exclude) == 0
	it, err := ag.e.db.NewIterWithContext(ctx, &pebble.IterOptions{})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	q := Query{Tenant: ag.a.Tenant, Filter: filter.Filter{From: ag.a.From, To: ag.a.To}}
	lo, hi := q.monthRange()
	phrases := slices.ContainsFunc(ag.a.Text, func(c string) bool {
		words, _, _ := filter.ClauseWords(c)
		return len(words) > 1
	})
	if !ok {
		var cats []indexTerm
		for c := range trailv1.Category_name {
			if c != 0 {
				cats = append(cats, indexTerm{IndexCategory, trailv1.Category(c).String()})
			}
		}
		if ag.all {
			return ag.allPieces(ctx, it, q, cats, lo, hi)
		}
		p.groups = []termGroup{{terms: cats}} // exclusions alone
	}
	var out []piece
	for _, c := range ag.e.searchChunks(q) {
		lists, err := ag.e.candidates(ctx, it, c, ag.a.Tenant, &p)
		if err != nil {
			return nil, err
		}
		for _, l := range lists {
			if out, err = ag.appendPiece(ctx, out, c.seq, l, lo, hi, phrases); err != nil {
				return nil, err
			}
		}
	}
	sortPieces(out)
	return out, nil
}

// allPieces returns every category's lists, cut to the time range: every
// live event once, with no union to compute.
func (ag *aggregator) allPieces(ctx context.Context, it *pebble.Iterator, q Query, cats []indexTerm, lo, hi Month) ([]piece, error) {
	var out []piece
	for _, c := range ag.e.searchChunks(q) {
		for _, t := range cats {
			lists, err := ag.e.chunkLists(it, c, ag.a.Tenant, t)
			if err != nil {
				return nil, err
			}
			for _, l := range lists {
				if out, err = ag.appendPiece(ctx, out, c.seq, l, lo, hi, false); err != nil {
					return nil, err
				}
			}
		}
	}
	sortPieces(out)
	return out, nil
}

// appendPiece appends chunk seq's list l, cut to the time range (months lo
// to hi, then the leaves inside From/To) and, with phrases, to the entries
// whose words hold them, unless nothing of it is left.
func (ag *aggregator) appendPiece(ctx context.Context, out []piece, seq uint64, l monthList, lo, hi Month, phrases bool) ([]piece, error) {
	if l.month.Before(lo) || hi.Before(l.month) {
		return out, nil
	}
	leaves, err := ag.inTime(ctx, l.month, l.leaves)
	if err != nil {
		return nil, err
	}
	if phrases {
		if leaves, err = ag.matching(ctx, l.month, leaves); err != nil {
			return nil, err
		}
	}
	if len(leaves) == 0 {
		return out, nil
	}
	return append(out, piece{seq: seq, month: l.month, leaves: leaves}), nil
}

func sortPieces(ps []piece) {
	slices.SortStableFunc(ps, func(a, b piece) int {
		if c := compareMonths(a.month, b.month); c != 0 {
			return c
		}
		return cmp.Compare(a.seq, b.seq)
	})
}

// inTime cuts ascending leaves of month m to the time range.
func (ag *aggregator) inTime(ctx context.Context, m Month, leaves []uint64) ([]uint64, error) {
	b, err := ag.timeBounds(ctx, m)
	if err != nil {
		return nil, err
	}
	i, _ := slices.BinarySearch(leaves, b[0])
	j, _ := slices.BinarySearch(leaves, b[1])
	return leaves[i:j], nil
}

// timeBounds returns the leaf range of month m within [From, To).
func (ag *aggregator) timeBounds(ctx context.Context, m Month) ([2]uint64, error) {
	if b, ok := ag.bounds[m]; ok {
		return b, nil
	}
	v, err := ag.view(m)
	if err != nil {
		return [2]uint64{}, err
	}
	b := [2]uint64{0, v.cat.Size}
	if !ag.a.From.IsZero() && ag.a.From.After(m.Start()) {
		if b[0], err = ag.firstAtOrAfter(ctx, v, ag.a.From); err != nil {
			return b, err
		}
	}
	if !ag.a.To.IsZero() && ag.a.To.Before(m.Next().Start()) {
		if b[1], err = ag.firstAtOrAfter(ctx, v, ag.a.To); err != nil {
			return b, err
		}
	}
	ag.bounds[m] = b
	return b, nil
}

// firstAtOrAfter returns the first leaf of v sequenced at or after t
// (v's size if none): sequencer time is monotonic within a partition. A
// pruned leaf has no time left; it takes that of the next live one,
// which keeps the order, and since a pruned leaf is never selected,
// where a boundary falls within a run of them changes no count.
func (ag *aggregator) firstAtOrAfter(ctx context.Context, v *view, t time.Time) (uint64, error) {
	k := placeKey{v.p.Month, t.UnixNano()}
	if n, ok := ag.placed[k]; ok {
		return n, nil
	}
	var failed error
	n := sort.Search(int(v.cat.Size), func(i int) bool {
		if failed != nil {
			return true
		}
		at, err := ag.liveTime(ctx, v, uint64(i))
		if err != nil {
			failed = err
			return true
		}
		return !at.Before(t)
	})
	if failed == nil {
		ag.placed[k] = uint64(n)
	}
	return uint64(n), failed
}

// liveTime returns the sequencer time of leaf, or of the first live leaf
// after it; the far future when there is none.
func (ag *aggregator) liveTime(ctx context.Context, v *view, leaf uint64) (time.Time, error) {
	for ; leaf < v.cat.Size; leaf++ {
		if err := ctx.Err(); err != nil {
			return time.Time{}, err
		}
		ag.reads++
		data, pruned, err := v.entryBytes(leaf)
		if err != nil {
			return time.Time{}, err
		}
		if !pruned {
			return sequencerTimeOf(data)
		}
	}
	return time.Unix(1<<40, 0), nil
}

// matching reads the candidates and keeps those the filter matches.
func (ag *aggregator) matching(ctx context.Context, m Month, leaves []uint64) ([]uint64, error) {
	out := leaves[:0:0]
	err := ag.eachEntry(ctx, m, leaves, func(leaf uint64, en *trailv1.Entry) {
		ev := filter.EventOf(en)
		if ag.a.Filter.Match(&ev) {
			out = append(out, leaf)
		}
	})
	return out, err
}

// eachEntry reads the live entries among leaves.
func (ag *aggregator) eachEntry(ctx context.Context, m Month, leaves []uint64, fn func(uint64, *trailv1.Entry)) error {
	if ag.reads+len(leaves) > maxAggregateReads {
		return fmt.Errorf("%w: the aggregation would read more than %d entries: narrow the filter or the time range", ErrTooCostly, maxAggregateReads)
	}
	v, err := ag.view(m)
	if err != nil {
		return err
	}
	for _, leaf := range leaves {
		if err := ctx.Err(); err != nil {
			return err
		}
		ag.reads++
		data, pruned, err := v.entryBytes(leaf)
		if err != nil {
			return err
		}
		if pruned {
			continue
		}
		en := new(trailv1.Entry)
		if err := proto.Unmarshal(data, en); err != nil {
			return fmt.Errorf("partition %s leaf %d: decode: %w: %v", v.p, leaf, ErrCorrupt, err)
		}
		fn(leaf, en)
	}
	return nil
}

// byField counts the selection per value of kind: by reading a small
// selection, else from every value's lists (intersected with the
// selection's piece of the same chunk and month, or, when everything in
// the range is selected, counted within the range).
func (ag *aggregator) byField(ctx context.Context, kind IndexKind, sel []piece, total uint64) ([]Group, error) {
	counts := map[string]uint64{}
	if total <= readBelow {
		for _, p := range sel {
			err := ag.eachEntry(ctx, p.month, p.leaves, func(_ uint64, en *trailv1.Entry) {
				for _, v := range fieldValues(kind, en.GetEvent()) {
					counts[v]++
				}
			})
			if err != nil {
				return nil, err
			}
		}
		return topGroups(counts, ag.a.Limit), nil
	}
	type chunkMonth struct {
		seq uint64
		m   Month
	}
	selected := map[chunkMonth][]uint64{}
	if !ag.all {
		for _, p := range sel {
			selected[chunkMonth{p.seq, p.month}] = p.leaves
		}
	}
	it, err := ag.e.db.NewIterWithContext(ctx, &pebble.IterOptions{})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	q := Query{Tenant: ag.a.Tenant, Filter: filter.Filter{From: ag.a.From, To: ag.a.To}}
	lo, hi := q.monthRange()
	for _, c := range ag.e.searchChunks(q) {
		err := ag.e.eachTerm(ctx, it, c, ag.a.Tenant, kind, func(value []byte, m Month, leaves []uint64) error {
			var n uint64
			if ag.all {
				if m.Before(lo) || hi.Before(m) {
					return nil
				}
				in, err := ag.inTime(ctx, m, leaves)
				if err != nil {
					return err
				}
				n = uint64(len(in))
			} else if s := selected[chunkMonth{c.seq, m}]; len(s) > 0 {
				n = countBoth(leaves, s)
			}
			if n > 0 {
				counts[string(value)] += n
				if len(counts) > maxAggregateGroups {
					return fmt.Errorf("%w: more than %d groups: narrow the filter", ErrTooCostly, maxAggregateGroups)
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	if kind == IndexTarget {
		named := make(map[string]uint64, len(counts))
		for k, n := range counts {
			named[targetName(k)] += n
		}
		counts = named
	}
	return topGroups(counts, ag.a.Limit), nil
}

// fieldValues returns an event's values of kind, as groups name them.
func fieldValues(kind IndexKind, ev *trailv1.Event) []string {
	one := func(v string) []string {
		if v == "" {
			return nil
		}
		return []string{v}
	}
	switch kind {
	case IndexActor:
		return one(ev.GetActor().GetId())
	case IndexSubject:
		return one(ev.GetSubjectId())
	case IndexTarget:
		if ev.GetTarget().GetType() == "" && ev.GetTarget().GetId() == "" {
			return nil
		}
		return []string{ev.GetTarget().GetType() + "/" + ev.GetTarget().GetId()}
	case IndexCategory:
		return []string{ev.GetCategory().String()}
	case IndexAction:
		return one(ev.GetAction())
	case IndexPurpose:
		return one(ev.GetPurposeCode())
	case IndexPIIField:
		return slices.Compact(slices.Sorted(slices.Values(ev.GetPiiFieldsAccessed())))
	}
	return nil
}

// targetName turns a target term (targetTerm) into "type/id".
func targetName(term string) string {
	n, k := protowire.ConsumeVarint([]byte(term))
	if k < 0 || uint64(len(term)-k) < n {
		return term
	}
	return term[k:k+int(n)] + "/" + term[k+int(n):]
}

// countBoth counts the leaves in both ascending lists. A value's list in
// a chunk is usually far shorter than the month's selection: each of its
// leaves is then found by galloping from the last one's place, so the
// cost follows the short list.
func countBoth(a, b []uint64) uint64 {
	if len(a) > len(b) {
		a, b = b, a
	}
	var n uint64
	if len(b) > 8*len(a) {
		for _, x := range a {
			step := 1
			for step < len(b) && b[step-1] < x {
				step *= 2
			}
			i, found := slices.BinarySearch(b[:min(step, len(b))], x)
			if found {
				n++
			}
			if b = b[i:]; len(b) == 0 {
				break
			}
		}
		return n
	}
	for i, j := 0, 0; i < len(a) && j < len(b); {
		switch {
		case a[i] < b[j]:
			i++
		case a[i] > b[j]:
			j++
		default:
			n++
			i++
			j++
		}
	}
	return n
}

func topGroups(counts map[string]uint64, limit int) []Group {
	out := make([]Group, 0, len(counts))
	for k, n := range counts {
		out = append(out, Group{Key: k, Count: n})
	}
	slices.SortFunc(out, func(a, b Group) int {
		if c := cmp.Compare(b.Count, a.Count); c != 0 {
			return c
		}
		return cmp.Compare(a.Key, b.Key)
	})
	if len(out) > limit {
		out = out[:limit]
	}
	return out
}

// byTime counts the selection per bucket, placing each bucket boundary in
// each month once, by binary search.
func (ag *aggregator) byTime(ctx context.Context, sel []piece) ([]Group, error) {
	if len(sel) == 0 {
		return nil, nil
	}
	from, to := ag.a.From, ag.a.To
	if from.IsZero() {
		from = sel[0].month.Start()
	}
	if to.IsZero() {
		to = sel[len(sel)-1].month.Next().Start()
	}
	starts := ag.bucketStarts(from, to)
	if len(starts) > MaxBuckets {
		return nil, fmt.Errorf("%w: %d time buckets, at most %d: use a coarser bucket or a shorter range", ErrTooCostly, len(starts), MaxBuckets)
	}
	groups := make([]Group, len(starts))
	for i, s := range starts {
		groups[i] = Group{Key: s.Format(time.RFC3339), Start: s}
	}
	// bounds[i] is the first leaf of bucket i in the current month.
	var month Month
	var bounds []uint64
	for _, p := range sel {
		if bounds == nil || p.month != month {
			month = p.month
			var err error
			if bounds, err = ag.bucketLeaves(ctx, month, starts, to); err != nil {
				return nil, err
			}
		}
		for i := range starts {
			a, _ := slices.BinarySearch(p.leaves, bounds[i])
			b, _ := slices.BinarySearch(p.leaves, bounds[i+1])
			groups[i].Count += uint64(b - a)
		}
	}
	return groups, nil
}

// bucketLeaves returns, for month m, the first leaf of each bucket and,
// last, the end of the last one.
func (ag *aggregator) bucketLeaves(ctx context.Context, m Month, starts []time.Time, to time.Time) ([]uint64, error) {
	v, err := ag.view(m)
	if err != nil {
		return nil, err
	}
	out := make([]uint64, len(starts)+1)
	edges := append(slices.Clone(starts), to)
	for i, t := range edges {
		switch {
		case !t.After(m.Start()):
			out[i] = 0
		case !t.Before(m.Next().Start()):
			out[i] = v.cat.Size
		default:
			if out[i], err = ag.firstAtOrAfter(ctx, v, t); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// bucketStarts returns the starts of the buckets covering [from, to).
func (ag *aggregator) bucketStarts(from, to time.Time) []time.Time {
	from, to = from.UTC(), to.UTC()
	var start time.Time
	step := func(t time.Time) time.Time { return t.Add(time.Hour) }
	switch ag.a.By {
	case GroupHour:
		start = from.Truncate(time.Hour)
	case GroupDay:
		start = time.Date(from.Year(), from.Month(), from.Day(), 0, 0, 0, 0, time.UTC)
		step = func(t time.Time) time.Time { return t.AddDate(0, 0, 1) }
	default:
		start = time.Date(from.Year(), from.Month(), 1, 0, 0, 0, 0, time.UTC)
		step = func(t time.Time) time.Time { return t.AddDate(0, 1, 0) }
	}
	var out []time.Time
	for t := start; t.Before(to) && len(out) <= MaxBuckets; t = step(t) {
		out = append(out, t)
	}
	return out
}

// eachTerm calls fn with every list of kind of tenant in chunk c: the
// value, month and leaves (ascending).
func (e *Engine) eachTerm(ctx context.Context, it *pebble.Iterator, c searchable, tenant string, kind IndexKind, fn func(value []byte, m Month, leaves []uint64) error) error {
	if c.mem != nil {
		done, err := c.mem.eachTerm(tenant, kind, fn)
		if done || err != nil {
			return err
		}
		// Retired since the aggregation listed it: read it from Pebble.
	}
	prefix := postingPrefix(c.seq, tenant, kind, "")
	prefix = prefix[:len(prefix)-1-8] // 'z' chunk tenant 0 kind
	for valid := it.SeekGE(prefix); valid && bytes.HasPrefix(it.Key(), prefix); valid = it.Next() {
		if err := ctx.Err(); err != nil {
			return err
		}
		k := it.Key()
		if len(k) < len(prefix)+8+1+postingMonthSize {
			return fmt.Errorf("posting key %x: %w", k, ErrCorrupt)
		}
		m, err := decodeMonthKey(k[len(k)-postingMonthSize:])
		if err != nil {
			return fmt.Errorf("posting key %x: %w", k, ErrCorrupt)
		}
		leaves, err := decodeLeaves(it.Value())
		if err != nil {
			return fmt.Errorf("posting list %x: %w", k, ErrCorrupt)
		}
		if err := fn(k[len(prefix)+8:len(k)-1-postingMonthSize], m, leaves); err != nil {
			return err
		}
	}
	return it.Error()
}

// eachTerm calls fn with the chunk's lists of kind of tenant while it is
// in memory; done is false when it was retired meanwhile.
func (c *chunk) eachTerm(tenant string, kind IndexKind, fn func(value []byte, m Month, leaves []uint64) error) (done bool, err error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.retired {
		return false, nil
	}
	cp := &c.postings
	want := tenant + "\x00" + string(rune(kind))
	pid, ok := cp.prefixes[want]
	if !ok {
		return true, nil // no term of kind for tenant
	}
	split := func(key []byte) ([]byte, Month, error) {
		m, err := decodeMonthKey(key[len(key)-postingMonthSize:])
		return key[len(want)+8 : len(key)-1-postingMonthSize], m, err
	}
	var leaves []uint64
	for _, dt := range cp.terms {
		if dt.pid != pid {
			continue
		}
		leaves = leaves[:0]
		for p := dt.first; p >= 0; p = cp.posts[p].next {
			leaves = append(leaves, cp.posts[p].leaf)
		}
		value, m, err := split(cp.arena[dt.start:dt.end])
		if err != nil {
			return true, err
		}
		if err := fn(value, m, leaves); err != nil {
			return true, err
		}
	}
	for _, sp := range cp.sparse {
		if sp.pid != pid {
			continue
		}
		value, m, err := split(cp.sparseArena[sp.start:sp.end])
		if err != nil {
			return true, err
		}
		if err := fn(value, m, []uint64{sp.leaf}); err != nil {
			return true, err
		}
	}
	return true, nil
}

// entrySequencerTime reads an entry's sequencer time from its bytes.
func sequencerTimeOf(entry []byte) (time.Time, error) {
	for b := entry; len(b) > 0; {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return time.Time{}, fmt.Errorf("decode entry: %w", ErrCorrupt)
		}
		b = b[n:]
		if num == entrySequencerTime && typ == protowire.BytesType {
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return time.Time{}, fmt.Errorf("decode entry: %w", ErrCorrupt)
			}
			return decodeTimestamp(v)
		}
		if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
			return time.Time{}, fmt.Errorf("decode entry: %w", ErrCorrupt)
		}
		b = b[n:]
	}
	return time.Time{}, fmt.Errorf("decode entry: no sequencer time: %w", ErrCorrupt)
}

func decodeTimestamp(b []byte) (time.Time, error) {
	var secs, nanos int64
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || typ != protowire.VarintType {
			return time.Time{}, fmt.Errorf("decode sequencer time: %w", ErrCorrupt)
		}
		b = b[n:]
		v, n := protowire.ConsumeVarint(b)
		if n < 0 {
			return time.Time{}, fmt.Errorf("decode sequencer time: %w", ErrCorrupt)
		}
		b = b[n:]
		switch num {
		case tsSeconds:
			secs = int64(v)
		case tsNanos:
			nanos = int64(int32(v))
		}
	}
	return time.Unix(secs, nanos).UTC(), nil
}
