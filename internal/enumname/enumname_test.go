package enumname

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/reflect/protoreflect"

	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

func TestPrefixAndShort(t *testing.T) {
	for _, c := range []struct {
		ed     protoreflect.EnumDescriptor
		prefix string
	}{
		{trailv1.Category(0).Descriptor(), "CATEGORY_"},
		{trailv1.ReportFormat(0).Descriptor(), "REPORT_FORMAT_"},
		{trailv1.Role(0).Descriptor(), "ROLE_"},
		{trailv1.Outcome(0).Descriptor(), "OUTCOME_"},
		{trailv1.RaftErrorCode(0).Descriptor(), "RAFT_ERROR_"},
	} {
		if got := Prefix(c.ed); got != c.prefix {
			t.Errorf("Prefix(%s) = %q, want %q", c.ed.FullName(), got, c.prefix)
		}
	}
	if got := Short(trailv1.Category_CATEGORY_DATA_ACCESS.Descriptor().Values().ByNumber(3)); got != "data_access" {
		t.Errorf("Short = %q", got)
	}
}

func TestLookup(t *testing.T) {
	ed := trailv1.Category(0).Descriptor()
	for _, s := range []string{"CATEGORY_DATA_ACCESS", "data_access", "DATA_ACCESS", "Data_Access", "category_data_access", "3"} {
		v, ok := Lookup(ed, s)
		if !ok || v.Number() != 3 {
			t.Errorf("Lookup(%q) = %v, %v", s, v, ok)
		}
	}
	for _, s := range []string{"", "data-access", "access", "99", "CATEGORY_", "REPORT_FORMAT_PDF"} {
		if v, ok := Lookup(ed, s); ok {
			t.Errorf("Lookup(%q) = %s", s, v.Name())
		}
	}
	err := Error(ed, "category", "bogus")
	want := `category: "bogus" is not a Category: want one of authentication, authorization, data_access, data_modification, workflow, financial, compliance, system, security (or the full name, as CATEGORY_AUTHENTICATION)`
	if err.Error() != want {
		t.Errorf("Error:\n%s\nwant\n%s", err, want)
	}
}

func TestUnmarshal(t *testing.T) {
	var opts protojson.UnmarshalOptions
	var req trailv1.AppendBatchRequest
	in := `{"events":[{"event_id":"a","category":"data_access","outcome":"denied","actor":{"id":"x"},"attributes":{"k":"v"}},
		{"eventId":"b","category":"CATEGORY_SECURITY","outcome":2}]}`
	if err := Unmarshal(opts, []byte(in), &req); err != nil {
		t.Fatal(err)
	}
	evs := req.GetEvents()
	if evs[0].GetCategory() != trailv1.Category_CATEGORY_DATA_ACCESS || evs[0].GetOutcome() != trailv1.Outcome_OUTCOME_DENIED ||
		evs[0].GetAttributes()["k"] != "v" || evs[0].GetActor().GetId() != "x" ||
		evs[1].GetCategory() != trailv1.Category_CATEGORY_SECURITY || evs[1].GetOutcome() != trailv1.Outcome_OUTCOME_FAILURE {
		t.Fatalf("decoded %v", &req)
	}

	for _, c := range []struct{ in, msg string }{
		// A name no value has names the field, with its path.
		{`{"events":[{"category":"security"},{"category":"bogus"}]}`, `events[1].category: "bogus" is not a Category`},
		// What protojson refuses for other reasons stays refused: the
		// rewrite keeps unknown fields and repeated keys.
		{`{"events":[{"category":"security","nope":1}]}`, `unknown field "nope"`},
		{`{"events":[{"category":"security","category":"system"}]}`, `duplicate field "category"`},
		{`{"events":[{"category":"security"}]} x`, `invalid value x`},
	} {
		err := Unmarshal(opts, []byte(c.in), &req)
		if err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("Unmarshal(%s) = %v, want an error containing %q", c.in, err, c.msg)
		}
	}
}

func TestRewriteLeavesFullNamesAlone(t *testing.T) {
	in := []byte(`{"category":"CATEGORY_SYSTEM","outcome":1,"actor":{"id":"x"}}`)
	out, changed, err := Rewrite(in, (&trailv1.Event{}).ProtoReflect().Descriptor())
	if err != nil || changed || string(out) != string(in) {
		t.Fatalf("Rewrite = %s, %v, %v", out, changed, err)
	}
}
