package main

import (
	"strings"
	"testing"

	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// Enum values in event JSON and --format take the short names and the
// full ones alike, as the REST API does (issue 13, item 16).
func TestEnumSpellings(t *testing.T) {
	for _, c := range []string{`"data_access"`, `"CATEGORY_DATA_ACCESS"`, `3`} {
		ev, err := decodeEvent([]byte(`{"tenant_id":"x","event_id":"e","category":` + c + `,"outcome":"denied"}`))
		if err != nil || ev.GetCategory() != trailv1.Category_CATEGORY_DATA_ACCESS || ev.GetOutcome() != trailv1.Outcome_OUTCOME_DENIED {
			t.Errorf("category %s: %v, %v", c, ev, err)
		}
	}
	if _, err := decodeEvent([]byte(`{"category":"bogus"}`)); err == nil || !strings.Contains(err.Error(), `category: "bogus" is not a Category: want one of authentication`) {
		t.Errorf("bad category: %v", err)
	}
	for in, want := range map[string]trailv1.ReportFormat{
		"pdf": trailv1.ReportFormat_REPORT_FORMAT_PDF, "REPORT_FORMAT_PDF": trailv1.ReportFormat_REPORT_FORMAT_PDF,
		"CSV": trailv1.ReportFormat_REPORT_FORMAT_CSV, "report_format_json": trailv1.ReportFormat_REPORT_FORMAT_JSON,
	} {
		f := reportFlags{tenant: "acme", format: in}
		if got, _, _, err := f.common(); err != nil || got != want {
			t.Errorf("--format %s: %v, %v", in, got, err)
		}
	}
	for _, in := range []string{"xml", "REPORT_FORMAT_UNSPECIFIED", "0"} {
		f := reportFlags{tenant: "acme", format: in}
		if _, _, _, err := f.common(); err == nil {
			t.Errorf("--format %s accepted", in)
		}
	}
}
