package filter

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

func TestParse(t *testing.T) {
	day := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		q    string
		want Filter
	}{
		{"", Filter{}},
		{"actor:alice", Filter{ActorIDs: []string{"alice"}}},
		{"actor:bob,alice actor:carol", Filter{ActorIDs: []string{"alice", "bob", "carol"}}},
		{"category:data_access,AUTHENTICATION", Filter{Categories: Categories{1, 3}}},
		{"target:case/4711 target:\"a/b\"/\"c,d\"", Filter{Targets: []Target{{"a/b", "c,d"}, {"case", "4711"}}}},
		{"-action:user.login -category:system", Filter{Exclude: Fields{Actions: []string{"user.login"}, Categories: Categories{trailv1.Category_CATEGORY_SYSTEM}}}},
		{`purpose:"case handling" pii:iban`, Filter{PurposeCodes: []string{"case handling"}, PIIFields: []string{"iban"}}},
		{`export "Bulk Download" exp*`, Filter{Text: []string{"bulk download", "exp*", "export"}}},
		{`text:"a bc"* Text:Word`, Filter{Text: []string{"a bc*", "word"}}},
		{"from:2026-01-01 before:2026-02-01T00:00:00Z", Filter{From: day, To: day.AddDate(0, 1, 0)}},
		{"  subject:s1\t action:x ", Filter{SubjectIDs: []string{"s1"}, Actions: []string{"x"}}},
	}
	for _, tt := range tests {
		got, err := Parse(tt.q)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.q, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Parse(%q) = %#v, want %#v", tt.q, got, tt.want)
			continue
		}
		back, err := Parse(got.String())
		if err != nil || !reflect.DeepEqual(back, got) {
			t.Errorf("Parse(%q).String() = %q reads back as %#v, %v", tt.q, got.String(), back, err)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, tt := range []struct{ q, want string }{
		{`actr:alice`, `unknown field "actr"`},
		{`actor:`, "an empty value"},
		{`actor:a,,b`, "an empty value"},
		{`"open quote`, "not closed"},
		{`-export`, "only a field can be negated"},
		{`-from:2026-01-01`, "cannot be negated"},
		{`from:yesterday`, `time "yesterday"`},
		{`from:2026-01-01 after:2026-01-02`, "given twice"},
		{`from:2026-02-01 to:2026-01-01`, "is empty"},
		{`category:gossip`, `"gossip" is not a category`},
		{`target:case`, "a target is TYPE/ID"},
		{`e*`, "a prefix needs at least 2 bytes"},
		{`"!!"`, "has no words"},
		{strings.Repeat("a ", MaxQueryLen), "at most 4096"},
	} {
		_, err := Parse(tt.q)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Parse(%.40q) = %v, want an error containing %q", tt.q, err, tt.want)
		}
	}
}

func TestTextMatch(t *testing.T) {
	ev := access()
	ev.Action = "record.export"
	ev.DisplayName = "Ädu Müller"
	ev.Attributes = map[string]string{"reason": "Bulk download for the FOI request 42", "secret": "needle"}
	attrs := []string{"reason"}
	for _, tt := range []struct {
		clause string
		match  bool
	}{
		{"export", true},
		{"EXPORT", true},
		{"record export", true},
		{"export record", false},
		{"müller", true},
		{"ädu müll*", true},
		{"bulk download", true},
		{"download bulk", false},
		{"foi request 42", true},
		{"req*", true},
		{"needle", false}, // not an indexed attribute
		{"record download", false},
	} {
		f := Filter{Text: []string{tt.clause}, TextAttributes: attrs}
		if got := f.Match(&ev); got != tt.match {
			t.Errorf("text %q: match %v, want %v", tt.clause, got, tt.match)
		}
	}
}

func TestExclude(t *testing.T) {
	ev := access()
	for _, tt := range []struct {
		ex   Fields
		want string
	}{
		{Fields{ActorIDs: []string{"bob"}}, ""},
		{Fields{ActorIDs: []string{"bob", "alice"}}, `actor "alice" is excluded`},
		{Fields{Categories: Categories{trailv1.Category_CATEGORY_DATA_ACCESS}}, "category data_access is excluded"},
		{Fields{PIIFields: []string{"address"}}, `PII field "address" is excluded`},
		{Fields{Targets: []Target{{"record", "42"}}}, "target record/42 is excluded"},
	} {
		f := Filter{Exclude: tt.ex}
		if got := f.Mismatch(&ev); got != tt.want {
			t.Errorf("exclude %+v: %q, want %q", tt.ex, got, tt.want)
		}
	}
}

func TestEachWordLimits(t *testing.T) {
	long := strings.Repeat("x", 100)
	var got []string
	EachWord([][]byte{[]byte("Hello, WORLD! " + long), []byte("ÉTÉ été")}, nil, func(src int, w []byte) {
		got = append(got, string(w))
	})
	want := []string{"hello", "world", strings.Repeat("x", MaxWordLen), "été", "été"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("words %q, want %q", got, want)
	}
	n := 0
	EachWord([][]byte{[]byte(strings.Repeat("w ", MaxEventWords+10))}, nil, func(int, []byte) { n++ })
	if n != MaxEventWords {
		t.Fatalf("%d words indexed, want at most %d", n, MaxEventWords)
	}
}

// FuzzParse: whatever parses writes back, with String, to a query that
// parses to the same filter.
func FuzzParse(f *testing.F) {
	for _, q := range []string{
		`actor:alice,"bob smith" category:data_access -action:user.login "export" from:2026-01-01`,
		`target:"a/b"/c pii:iban text:"x y"* word*`, `-subject:s purpose:p,q to:2026-02-01T10:00:00.5Z`,
	} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, q string) {
		a, err := Parse(q)
		if err != nil {
			return
		}
		b, err := Parse(a.String())
		if err != nil {
			t.Fatalf("Parse(%q).String() = %q does not parse: %v", q, a.String(), err)
		}
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("Parse(%q) = %#v, its String %q reads back as %#v", q, a, a.String(), b)
		}
	})
}
