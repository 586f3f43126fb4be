package filter

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

var t0 = time.Date(2026, 11, 17, 9, 0, 0, 0, time.UTC)

func access() Event {
	return Event{
		SequencerTime: t0, ActorID: "alice", SubjectID: "citizen-7", TargetType: "record", TargetID: "42",
		Category: trailv1.Category_CATEGORY_DATA_ACCESS, Action: "record.view", PurposeCode: "case-handling",
		PIIFields: []string{"name", "address"},
	}
}

func TestMatch(t *testing.T) {
	dataAccess, auth := trailv1.Category_CATEGORY_DATA_ACCESS, trailv1.Category_CATEGORY_AUTHENTICATION
	tests := []struct {
		name     string
		f        Filter
		mismatch string // "" when it matches
	}{
		{"empty selects all", Filter{}, ""},
		{"one of two categories", Filter{Categories: []trailv1.Category{auth, dataAccess}}, ""},
		{"neither category", Filter{Categories: []trailv1.Category{auth}}, "category data_access is not authentication"},
		{"actor set", Filter{ActorIDs: []string{"bob", "alice"}}, ""},
		{"actor outside set", Filter{ActorIDs: []string{"bob", "carol"}}, `actor "alice" is not one of bob,carol`},
		{"subject", Filter{SubjectIDs: []string{"citizen-8"}}, `subject "citizen-7" is not "citizen-8"`},
		{"target", Filter{Targets: []Target{{"record", "42"}}}, ""},
		{"target type differs", Filter{Targets: []Target{{"case", "42"}}}, "target record/42 is not case/42"},
		{"action", Filter{Actions: []string{"record.edit"}}, `action "record.view" is not "record.edit"`},
		{"purpose", Filter{PurposeCodes: []string{"case-handling", "fraud"}}, ""},
		{"purpose outside", Filter{PurposeCodes: []string{"fraud"}}, `purpose code "case-handling" is not "fraud"`},
		{"any PII field", Filter{PIIFields: []string{"health", "address"}}, ""},
		{"no PII field", Filter{PIIFields: []string{"health"}}, `PII fields one of name,address include none of "health"`},
		{"in time", Filter{From: t0, To: t0.Add(time.Second)}, ""},
		{"at to", Filter{To: t0}, "sequencer time 2026-11-17T09:00:00Z outside [-inf, 2026-11-17T09:00:00Z)"},
		{"all fields at once", Filter{ActorIDs: []string{"alice"}, Categories: []trailv1.Category{dataAccess},
			PurposeCodes: []string{"case-handling"}, PIIFields: []string{"name"}, From: t0.Add(-time.Hour)}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := access()
			if got := tt.f.Mismatch(&ev); got != tt.mismatch {
				t.Fatalf("Mismatch = %q, want %q", got, tt.mismatch)
			}
			if tt.f.Match(&ev) != (tt.mismatch == "") {
				t.Fatal("Match disagrees with Mismatch")
			}
		})
	}
}

func TestCheck(t *testing.T) {
	many := make([]string, MaxValues+1)
	for i := range many {
		many[i] = "v"
	}
	tests := []struct {
		name string
		f    Filter
		want string
	}{
		{"empty range", Filter{From: t0, To: t0}, "is empty"},
		{"empty value", Filter{ActorIDs: []string{""}}, "actor_ids: an empty value matches nothing"},
		{"long value", Filter{PIIFields: []string{strings.Repeat("x", MaxValueLen+1)}}, "pii_fields: a value of 257 bytes"},
		{"too many values", Filter{Actions: many}, "actions: 65 values, at most 64"},
		{"half a target", Filter{Targets: []Target{{Type: "case"}}}, "needs both type and id"},
		{"unspecified category", Filter{Categories: []trailv1.Category{0}}, "0 is not a category"},
		{"unknown category", Filter{Categories: []trailv1.Category{99}}, "99 is not a category"},
	}
	for _, tt := range tests {
		err := tt.f.Check()
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Check = %v, want %q", tt.name, err, tt.want)
		}
	}
	ok := Filter{ActorIDs: []string{"a"}, Categories: []trailv1.Category{1}, Targets: []Target{{"a", "b"}}, From: t0}
	if err := ok.Check(); err != nil {
		t.Fatalf("valid filter refused: %v", err)
	}
}

func TestMerge(t *testing.T) {
	ts := timestamppb.New(t0)
	tests := []struct {
		name    string
		legacy  Legacy
		filter  *trailv1.Filter
		want    Filter
		wantErr string
	}{
		{"nothing", Legacy{}, nil, Filter{}, ""},
		{"legacy fields become one-value sets", Legacy{ActorID: "a", TargetType: "case", TargetID: "1",
			Category: trailv1.Category_CATEGORY_DATA_ACCESS, PurposeCode: "p", PIIField: "name", From: ts},
			nil, Filter{ActorIDs: []string{"a"}, Targets: []Target{{"case", "1"}},
				Categories: []trailv1.Category{trailv1.Category_CATEGORY_DATA_ACCESS}, PurposeCodes: []string{"p"},
				PIIFields: []string{"name"}, From: t0}, ""},
		{"filter and legacy on different fields", Legacy{SubjectID: "s"},
			&trailv1.Filter{Categories: []trailv1.Category{3, 2, 3}},
			Filter{SubjectIDs: []string{"s"}, Categories: []trailv1.Category{2, 3}}, ""},
		{"same field both ways", Legacy{Category: 2}, &trailv1.Filter{Categories: []trailv1.Category{3}}, Filter{}, "category and filter.categories both given"},
		{"time both ways", Legacy{To: ts}, &trailv1.Filter{To: ts}, Filter{}, "to and filter.to both given"},
		{"half a legacy target", Legacy{TargetID: "1"}, nil, Filter{}, "target_type and target_id go together"},
		{"invalid filter", Legacy{}, &trailv1.Filter{Categories: []trailv1.Category{42}}, Filter{}, "42 is not a category"},
		{"invalid time", Legacy{}, &trailv1.Filter{From: &timestamppb.Timestamp{Nanos: -1}}, Filter{}, "from:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Merge(tt.legacy, tt.filter)
			if tt.wantErr != "" {
				if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Merge error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Merge = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestProtoRoundTrip(t *testing.T) {
	f := Filter{ActorIDs: []string{"a", "b"}, SubjectIDs: []string{"s"}, Targets: []Target{{"case", "1"}},
		Categories: []trailv1.Category{2, 5}, Actions: []string{"x"}, PurposeCodes: []string{"p"},
		PIIFields: []string{"name"}, From: t0, To: t0.Add(time.Hour)}
	got, err := FromProto(f.Proto())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, f) {
		t.Fatalf("round trip %+v, want %+v", got, f)
	}
}

func TestJSON(t *testing.T) {
	f := Filter{ActorIDs: []string{"a"}, Categories: []trailv1.Category{trailv1.Category_CATEGORY_DATA_ACCESS}, From: t0}
	b, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"from":"2026-11-17T09:00:00Z","actor_ids":["a"],"categories":["CATEGORY_DATA_ACCESS"]}`
	if string(b) != want {
		t.Fatalf("JSON %s, want %s", b, want)
	}
	var back Filter
	if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(back, f) {
		t.Fatalf("decoded %+v, %v; want %+v", back, err, f)
	}
	if err := json.Unmarshal([]byte(`{"categories":["data_access","Authentication"]}`), &back); err != nil ||
		!reflect.DeepEqual(back.Categories, Categories{trailv1.Category_CATEGORY_DATA_ACCESS, trailv1.Category_CATEGORY_AUTHENTICATION}) {
		t.Fatalf("short names decoded to %v, %v", back.Categories, err)
	}
	if err := json.Unmarshal([]byte(`{"categories":["gossip"]}`), &back); err == nil || !strings.Contains(err.Error(), `"gossip" is not a category`) {
		t.Fatalf("unknown category: %v", err)
	}
}

func TestString(t *testing.T) {
	f := Filter{ActorIDs: []string{"alice", "bob smith"}, Categories: []trailv1.Category{2, 3}, Targets: []Target{{"case", "4/2"}}}
	const want = `actor:alice,"bob smith" target:case/"4/2" category:authorization,data_access`
	if got := f.String(); got != want {
		t.Fatalf("String = %s, want %s", got, want)
	}
	back, err := Parse(want)
	if err != nil || back.String() != want {
		t.Fatalf("Parse(String()) = %s, %v", back.String(), err)
	}
	if got := (&Filter{}).Describe(); got != "all entries" {
		t.Fatalf("empty filter reads %q", got)
	}
}

func TestParseCategory(t *testing.T) {
	for _, s := range []string{"data_access", "DATA_ACCESS", "CATEGORY_DATA_ACCESS", " Data_Access "} {
		if c, err := ParseCategory(s); err != nil || c != trailv1.Category_CATEGORY_DATA_ACCESS {
			t.Errorf("ParseCategory(%q) = %v, %v", s, c, err)
		}
	}
	for _, s := range []string{"", "unspecified", "CATEGORY_UNSPECIFIED", "data access"} {
		if _, err := ParseCategory(s); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseCategory(%q) accepted", s)
		}
	}
}

// FuzzFilterJSON: any input either fails to decode or decodes to a filter
// that survives a JSON round trip unchanged.
func FuzzFilterJSON(f *testing.F) {
	f.Add([]byte(`{"actor_ids":["a"],"categories":["data_access"],"from":"2026-01-01T00:00:00Z"}`))
	f.Add([]byte(`{"targets":[{"type":"case","id":"1"}],"pii_fields":["name"]}`))
	f.Add([]byte(`{"categories":[1]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var a Filter
		if json.Unmarshal(b, &a) != nil {
			return
		}
		out, err := json.Marshal(a)
		if err != nil {
			t.Fatalf("decoded filter does not encode: %v", err)
		}
		var back Filter
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatalf("re-decode %s: %v", out, err)
		}
		again, _ := json.Marshal(back)
		if string(again) != string(out) {
			t.Fatalf("round trip changed %s to %s", out, again)
		}
	})
}

func TestFromProtoQuery(t *testing.T) {
	tests := []struct {
		name    string
		p       *trailv1.Filter
		want    string // String of the result
		wantErr string
	}{
		{"query alone", &trailv1.Filter{Query: `actor:alice -category:system "bulk export"`},
			`actor:alice -category:system text:"bulk export"`, ""},
		{"query and other fields", &trailv1.Filter{Query: "actor:alice", Categories: []trailv1.Category{3}, Text: []string{"Export"}},
			"actor:alice category:data_access export", ""},
		{"exclusions add up", &trailv1.Filter{Query: "-actor:bob", Exclude: &trailv1.FilterFields{ActorIds: []string{"carol"}}},
			"-actor:bob,carol", ""},
		{"a field both ways", &trailv1.Filter{Query: "actor:alice", ActorIds: []string{"bob"}}, "", "actor given both in the query"},
		{"time both ways", &trailv1.Filter{Query: "from:2026-01-01", From: timestamppb.New(t0)}, "", "from given both"},
		{"bad query", &trailv1.Filter{Query: "actr:x"}, "", `unknown field "actr"`},
		{"bad text", &trailv1.Filter{Text: []string{"*"}}, "", "the * must follow a word"},
	}
	for _, tt := range tests {
		f, err := FromProto(tt.p)
		if tt.wantErr != "" {
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%s: error %v, want %q", tt.name, err, tt.wantErr)
			}
			continue
		}
		if err != nil || f.String() != tt.want {
			t.Errorf("%s: %q, %v; want %q", tt.name, f.String(), err, tt.want)
		}
		back, err := FromProto(f.Proto())
		if err != nil || !reflect.DeepEqual(back, f) {
			t.Errorf("%s: proto round trip %#v, %v", tt.name, back, err)
		}
	}
}
