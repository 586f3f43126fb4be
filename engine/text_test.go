package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trailaudit/trail/filter"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// textFixture: six events with words in their actions, display names,
// targets and attributes ("reason" is indexed by default, "secret" is
// not).
func textFixture(t *testing.T, e *Engine) {
	evs := []*trailv1.Event{}
	add := func(id, action, name, reason, secret string) {
		ev := event("acme", id)
		ev.Category, ev.Action = trailv1.Category_CATEGORY_DATA_ACCESS, action
		ev.Actor.DisplayName = name
		ev.Target = &trailv1.Target{Type: "case_file", Id: "C-" + id}
		ev.Attributes = map[string]string{"reason": reason, "secret": secret}
		evs = append(evs, ev)
	}
	add("t0", "record.export", "Ädu Müller", "Bulk download for FOI request 42", "needle")
	add("t1", "record.view", "Mari Tamm", "download of one record", "")
	add("t2", "record.export", "Mari Tamm", "quarterly report", "")
	add("t3", "user.login", "Ädu Müller", "", "")
	add("t4", "record.view", "Jaan Kask", "Download bulk, then review", "")
	add("t5", "record.export", "Jaan Kask", "EXPORTED by mistake", "")
	applyOK(t, e, 1, nov, evs[:3]...)
	applyOK(t, e, 2, nov.Add(time.Hour), evs[3:]...)
}

func textIDs(t *testing.T, e *Engine, f filter.Filter) []string {
	t.Helper()
	var out []string
	for _, h := range searchAll(t, e, Query{Tenant: "acme", Filter: f, Limit: 2}) {
		out = append(out, h.Entry.GetEvent().GetEventId())
	}
	return out
}

func TestTextSearch(t *testing.T) {
	for _, reopen := range []bool{false, true} {
		t.Run(fmt.Sprintf("reopened=%v", reopen), func(t *testing.T) {
			dir := t.TempDir()
			e := openEngine(t, dir)
			textFixture(t, e)
			if reopen {
				if err := e.Close(); err != nil {
					t.Fatal(err)
				}
				e = openEngine(t, dir)
			}
			tests := []struct {
				name string
				f    filter.Filter
				want []string
			}{
				{"a word of the action", filter.Filter{Text: []string{"export"}}, []string{"t0", "t2", "t5"}},
				{"any case, accents", filter.Filter{Text: []string{"MÜLLER"}}, []string{"t0", "t3"}},
				{"a phrase in order", filter.Filter{Text: []string{"bulk download"}}, []string{"t0"}},
				{"the phrase reversed", filter.Filter{Text: []string{"download bulk"}}, []string{"t4"}},
				{"a prefix", filter.Filter{Text: []string{"export*"}}, []string{"t0", "t2", "t5"}},
				{"a prefix in a phrase", filter.Filter{Text: []string{"mari ta*"}}, []string{"t1", "t2"}},
				{"two clauses", filter.Filter{Text: []string{"download", "record"}}, []string{"t0", "t1", "t4"}},
				{"the target's type", filter.Filter{Text: []string{"case file"}}, []string{"t0", "t1", "t2", "t3", "t4", "t5"}},
				{"not the target's id", filter.Filter{Text: []string{"t3"}}, nil},
				{"a phrase spans one text only", filter.Filter{Text: []string{"file record"}}, nil},
				{"text and a field", filter.Filter{Text: []string{"download"}, Actions: []string{"record.view"}}, []string{"t1", "t4"}},
				{"text less an exclusion", filter.Filter{Text: []string{"download"}, Exclude: filter.Fields{Actions: []string{"record.view"}}}, []string{"t0"}},
				{"an attribute that is not indexed", filter.Filter{Text: []string{"needle"}}, nil},
				{"no such word", filter.Filter{Text: []string{"zebra"}}, nil},
				{"exclusions alone read the log", filter.Filter{Exclude: filter.Fields{Actions: []string{"record.export", "record.view"}}}, []string{"t3"}},
			}
			for _, tt := range tests {
				if got := textIDs(t, e, tt.f); !slices.Equal(got, tt.want) {
					t.Errorf("%s: found %v, want %v", tt.name, got, tt.want)
				}
			}
		})
	}
}

// TestTextAttributesSetting: a tenant's choice of text attributes applies
// to the events appended after it.
func TestTextAttributesSetting(t *testing.T) {
	e := openEngine(t, t.TempDir())
	textFixture(t, e)
	op, err := TextAttributesSetting("acme", []string{"secret", "reason", "secret"})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.ApplySettings(context.Background(), 3, []SettingOp{op}); err != nil {
		t.Fatal(err)
	}
	if got := e.TextAttributes("acme"); !slices.Equal(got, []string{"reason", "secret"}) {
		t.Fatalf("text attributes %v", got)
	}
	late := event("acme", "t6")
	late.Attributes = map[string]string{"secret": "needle in the haystack"}
	applyOK(t, e, 4, nov.Add(2*time.Hour), late)
	// t0's needle was appended before "secret" was indexed.
	if got := textIDs(t, e, filter.Filter{Text: []string{"needle"}}); !slices.Equal(got, []string{"t6"}) {
		t.Fatalf("needle found in %v, want t6 only", got)
	}
	for _, keys := range [][]string{{""}, {"a\nb"}, slices.Repeat([]string{"k"}, MaxTextAttributes+1)} {
		if _, err := TextAttributesSetting("acme", keys); !errors.Is(err, ErrBadSetting) {
			t.Errorf("text attributes %q accepted", keys)
		}
	}
	none, err := TextAttributesSetting("acme", []string{})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.ApplySettings(context.Background(), 5, []SettingOp{none}); err != nil {
		t.Fatal(err)
	}
	if got := e.TextAttributes("acme"); len(got) != 0 {
		t.Fatalf("an empty choice reads back as %v", got)
	}
	reset, _ := TextAttributesSetting("acme", nil)
	if err := e.ApplySettings(context.Background(), 6, []SettingOp{reset}); err != nil {
		t.Fatal(err)
	}
	if got := e.TextAttributes("acme"); !slices.Equal(got, filter.DefaultTextAttributes) {
		t.Fatalf("reset reads back as %v", got)
	}
}

// TestTextPrefixTooBroad: a prefix standing for too many words of a chunk
// is refused with a clear error, not scanned.
func TestTextPrefixTooBroad(t *testing.T) {
	e := openEngine(t, t.TempDir())
	var evs []*trailv1.Event
	for i := range MaxPrefixWords/200 + 1 {
		var words []string
		for j := range 201 {
			words = append(words, fmt.Sprintf("zz%05d", i*201+j))
		}
		ev := event("acme", fmt.Sprintf("w%d", i))
		ev.Attributes = map[string]string{"comment": strings.Join(words, " ")}
		evs = append(evs, ev)
	}
	applyOK(t, e, 1, nov, evs...)
	_, err := e.Search(context.Background(), Query{Tenant: "acme", Filter: filter.Filter{Text: []string{"zz*"}}})
	if !errors.Is(err, ErrTooCostly) || !errors.Is(err, ErrBadQuery) || !strings.Contains(err.Error(), "make it longer") {
		t.Fatalf("broad prefix: %v", err)
	}
	res, err := e.Search(context.Background(), Query{Tenant: "acme", Filter: filter.Filter{Text: []string{"zz0000*"}}})
	if err != nil || len(res.Hits) != 1 {
		t.Fatalf("narrow prefix: %d hits, %v", len(res.Hits), err)
	}
}

// TestPruneRemovesWords: a pruned entry's words leave the index.
func TestPruneRemovesWords(t *testing.T) {
	e := openEngine(t, t.TempDir())
	textFixture(t, e)
	p := Partition{Tenant: "acme", Month: MonthOf(nov)}
	if _, err := e.Prune(context.Background(), 3, p, []uint64{0}); err != nil {
		t.Fatal(err)
	}
	lists, err := e.wordLists(t, p, "müller")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(lists, []uint64{3}) {
		t.Fatalf("müller indexed at %v after pruning leaf 0, want [3]", lists)
	}
}

// wordLists returns a word's posting lists in p, across every chunk:
// what the index holds, pruned leaves included if they were left.
func (e *Engine) wordLists(t *testing.T, p Partition, word string) ([]uint64, error) {
	it, err := e.db.NewIter(nil)
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var out []uint64
	for _, c := range e.searchChunks(Query{Tenant: p.Tenant}) {
		lists, err := e.chunkLists(it, c, p.Tenant, indexTerm{IndexText, word})
		if err != nil {
			return nil, err
		}
		for _, l := range lists {
			if l.month == p.Month {
				out = append(out, l.leaves...)
			}
		}
	}
	return out, nil
}
