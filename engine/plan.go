package engine

import (
	"context"
	"slices"

	"github.com/cockroachdb/pebble/v2"

	"github.com/trailaudit/trail/filter"
)

// A plan is how a filter finds its candidates in a chunk's posting
// lists: the intersection of groups, each the union of its terms' lists
// (the values of one field; a text clause's words are one group each),
// less the union of the excluded terms' lists. Entries are then read and
// matched exactly (Filter.Match): phrases must be in order, times in
// range, and a list may hold a pruned leaf.
type plan struct {
	groups  []termGroup
	exclude []indexTerm
}

// termGroup is a union of terms; prefix, when set, adds every word of the
// chunk that starts with it (a text clause's last word).
type termGroup struct {
	terms  []indexTerm
	prefix string
}

// planOf returns the plan of f, or false when no field of f is indexed
// (only time and exclusions): such a query reads the log.
func planOf(f *filter.Filter) (plan, bool) {
	var p plan
	add := func(kind IndexKind, values []string) {
		if len(values) > 0 {
			p.groups = append(p.groups, termGroup{terms: termsOf(kind, values)})
		}
	}
	add(IndexSubject, f.SubjectIDs)
	add(IndexActor, f.ActorIDs)
	add(IndexTarget, targetValues(f.Targets))
	add(IndexPIIField, f.PIIFields)
	add(IndexPurpose, f.PurposeCodes)
	add(IndexAction, f.Actions)
	add(IndexCategory, categoryValues(f.Categories))
	for _, c := range f.Text {
		words, prefix, err := filter.ClauseWords(c)
		if err != nil {
			continue // Check refused it already
		}
		last := len(words) - 1
		for i, w := range words {
			if i == last && prefix {
				p.groups = append(p.groups, termGroup{prefix: w})
			} else {
				p.groups = append(p.groups, termGroup{terms: []indexTerm{{IndexText, w}}})
			}
		}
	}
	ex := &f.Exclude
	p.exclude = append(p.exclude, termsOf(IndexActor, ex.ActorIDs)...)
	p.exclude = append(p.exclude, termsOf(IndexSubject, ex.SubjectIDs)...)
	p.exclude = append(p.exclude, termsOf(IndexTarget, targetValues(ex.Targets))...)
	p.exclude = append(p.exclude, termsOf(IndexCategory, categoryValues(ex.Categories))...)
	p.exclude = append(p.exclude, termsOf(IndexAction, ex.Actions)...)
	p.exclude = append(p.exclude, termsOf(IndexPurpose, ex.PurposeCodes)...)
	p.exclude = append(p.exclude, termsOf(IndexPIIField, ex.PIIFields)...)
	return p, len(p.groups) > 0
}

func termsOf(kind IndexKind, values []string) []indexTerm {
	out := make([]indexTerm, len(values))
	for i, v := range values {
		out[i] = indexTerm{kind, v}
	}
	return out
}

func targetValues(ts []filter.Target) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = string(targetTerm(t.Type, t.ID))
	}
	return out
}

func categoryValues(cs filter.Categories) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.String()
	}
	return out
}

// candidates evaluates the plan in chunk c: per month, oldest first, the
// leaves that may match, ascending.
func (e *Engine) candidates(ctx context.Context, it *pebble.Iterator, c searchable, tenant string, p *plan) ([]monthList, error) {
	var acc map[Month][]uint64
	for i, g := range p.groups {
		terms := g.terms
		if g.prefix != "" {
			words, err := e.prefixWords(ctx, c, tenant, g.prefix)
			if err != nil {
				return nil, err
			}
			terms = termsOf(IndexText, words)
		}
		u, err := e.union(it, c, tenant, terms)
		if err != nil {
			return nil, err
		}
		if i == 0 {
			acc = u
		} else {
			acc = intersectMonths(acc, u)
		}
		if len(acc) == 0 {
			return nil, nil
		}
	}
	if len(p.exclude) > 0 {
		ex, err := e.union(it, c, tenant, p.exclude)
		if err != nil {
			return nil, err
		}
		for m, leaves := range acc {
			if out := subtract(leaves, ex[m]); len(out) > 0 {
				acc[m] = out
			} else {
				delete(acc, m)
			}
		}
	}
	return sortedMonths(acc), nil
}

// union returns the union of the terms' lists in c, by month.
func (e *Engine) union(it *pebble.Iterator, c searchable, tenant string, terms []indexTerm) (map[Month][]uint64, error) {
	out := map[Month][]uint64{}
	for _, t := range terms {
		lists, err := e.chunkLists(it, c, tenant, t)
		if err != nil {
			return nil, err
		}
		for _, l := range lists {
			out[l.month] = append(out[l.month], l.leaves...)
		}
	}
	if len(terms) > 1 {
		for m, leaves := range out {
			slices.Sort(leaves)
			out[m] = slices.Compact(leaves)
		}
	}
	return out, nil
}

func intersectMonths(a, b map[Month][]uint64) map[Month][]uint64 {
	out := map[Month][]uint64{}
	for m, x := range a {
		if y, ok := b[m]; ok {
			if both := intersect(x, y); len(both) > 0 {
				out[m] = both
			}
		}
	}
	return out
}

// intersect returns the leaves in both ascending lists.
func intersect(a, b []uint64) []uint64 {
	var out []uint64
	for i, j := 0, 0; i < len(a) && j < len(b); {
		switch {
		case a[i] < b[j]:
			i++
		case a[i] > b[j]:
			j++
		default:
			out = append(out, a[i])
			i++
			j++
		}
	}
	return out
}

// subtract returns the leaves of a that are not in b, both ascending.
func subtract(a, b []uint64) []uint64 {
	if len(b) == 0 {
		return a
	}
	out := a[:0:0]
	j := 0
	for _, x := range a {
		for j < len(b) && b[j] < x {
			j++
		}
		if j < len(b) && b[j] == x {
			continue
		}
		out = append(out, x)
	}
	return out
}

func sortedMonths(m map[Month][]uint64) []monthList {
	out := make([]monthList, 0, len(m))
	for month, leaves := range m {
		out = append(out, monthList{month: month, leaves: leaves})
	}
	slices.SortFunc(out, func(a, b monthList) int { return compareMonths(a.month, b.month) })
	return out
}
