package report

import (
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"
)

func TestPurposeFlag(t *testing.T) {
	tests := []struct {
		code  string
		valid []string
		want  string
	}{
		{"", nil, FlagMissingPurpose},
		{"", []string{"A"}, FlagMissingPurpose},
		{"ANY", nil, ""},
		{"A", []string{"A", "B"}, ""},
		{"C", []string{"A", "B"}, FlagInvalidPurpose},
		{"a", []string{"A"}, FlagInvalidPurpose}, // codes are case-sensitive
	}
	for _, tt := range tests {
		if got := PurposeFlag(tt.code, tt.valid); got != tt.want {
			t.Errorf("PurposeFlag(%q, %q) = %q, want %q", tt.code, tt.valid, got, tt.want)
		}
	}
}

func TestNewPIIAccess(t *testing.T) {
	f := newFixture(t)
	reversed := slices.Clone(f.subject)
	slices.Reverse(reversed)
	tests := []struct {
		name      string
		valid     []string
		entries   []LogEntry
		wantFlags []string
		wantSum   Summary
	}{
		{
			name: "valid list", valid: []string{"AUDIT", "CASE_MGMT", "AUDIT", ""}, entries: f.subject,
			wantFlags: []string{"", FlagMissingPurpose, FlagInvalidPurpose, ""},
			wantSum:   Summary{Rows: 4, Flagged: 2, MissingPurpose: 1, InvalidPurpose: 1, Actors: 3},
		},
		{
			name: "no valid list", entries: f.subject,
			wantFlags: []string{"", FlagMissingPurpose, "", ""},
			wantSum:   Summary{Rows: 4, Flagged: 1, MissingPurpose: 1, Actors: 3},
		},
		{
			name: "entries out of order", entries: reversed,
			wantFlags: []string{"", FlagMissingPurpose, "", ""},
			wantSum:   Summary{Rows: 4, Flagged: 1, MissingPurpose: 1, Actors: 3},
		},
		{name: "empty", wantSum: Summary{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := PIIAccessQuery{Tenant: "acme", SubjectID: "citizen-1", ValidPurposeCodes: tt.valid}
			c, err := NewPIIAccess(testLogName, q, nov, tt.entries)
			if err != nil {
				t.Fatal(err)
			}
			var flags []string
			for i, r := range c.Accesses {
				flags = append(flags, r.Flag)
				if i > 0 && r.SequencerTime.Before(c.Accesses[i-1].SequencerTime) {
					t.Errorf("row %d is older than row %d", i, i-1)
				}
			}
			if !slices.Equal(flags, tt.wantFlags) {
				t.Errorf("flags %q, want %q", flags, tt.wantFlags)
			}
			got := c.Summary
			got.Partitions, got.First, got.Last = nil, time.Time{}, time.Time{}
			if !reflect.DeepEqual(got, tt.wantSum) {
				t.Errorf("summary %+v, want %+v", got, tt.wantSum)
			}
			if len(tt.valid) > 0 && !slices.Equal(c.Parameters.ValidPurposeCodes, []string{"AUDIT", "CASE_MGMT"}) {
				t.Errorf("valid codes not canonical: %q", c.Parameters.ValidPurposeCodes)
			}
		})
	}
}

func TestNewPIIAccessRow(t *testing.T) {
	f := newFixture(t)
	c, err := NewPIIAccess(testLogName, f.piiQuery(), nov, f.subject)
	if err != nil {
		t.Fatal(err)
	}
	r := c.Accesses[0]
	switch {
	case r.EventID != "a1" || r.ActorID != "alice" || r.ActorType != "user" || r.ActorName != "Name of alice" || r.ActorIP != "10.0.0.7":
		t.Errorf("actor fields: %+v", r)
	case !slices.Equal(r.ActorRoles, []string{"caseworker", "clerk"}) || !slices.Equal(r.FieldsAccessed, []string{"name", "address"}):
		t.Errorf("lists: %+v", r)
	case r.Action != "record.view" || r.Outcome != "success" || r.PurposeCode != "CASE_MGMT":
		t.Errorf("event fields: %+v", r)
	case !r.SequencerTime.Equal(oct) || !r.OccurredAt.Equal(nov.Add(-time.Minute)):
		t.Errorf("times: %v %v", r.SequencerTime, r.OccurredAt)
	case r.Partition != "2026-10" || r.LeafIndex != 0 || r.LeafHash.String() == "":
		t.Errorf("source: %s %d %s", r.Partition, r.LeafIndex, r.LeafHash)
	}
	if !slices.Equal(c.Summary.Partitions, []string{"2026-10", "2026-11"}) || !slices.Equal(c.Partitions(), c.Summary.Partitions) {
		t.Errorf("partitions %q / %q", c.Summary.Partitions, c.Partitions())
	}
}

func TestNewPIIAccessRejects(t *testing.T) {
	f := newFixture(t)
	other := f.log.add(access("x", "citizen-2", "alice", "AUDIT"), nov.Add(5*time.Hour))
	moved := f.subject[0]
	moved.LeafIndex = 7
	tests := []struct {
		name    string
		q       PIIAccessQuery
		entries []LogEntry
	}{
		{"other subject", f.piiQuery(), []LogEntry{other}},
		{"no subject", PIIAccessQuery{Tenant: "acme"}, nil},
		{"modification", f.piiQuery(), f.history[:1]},
		{"other tenant", PIIAccessQuery{Tenant: "globex", SubjectID: "citizen-1"}, f.subject},
		{"before range", PIIAccessQuery{Tenant: "acme", SubjectID: "citizen-1", From: nov}, f.subject},
		{"after range", PIIAccessQuery{Tenant: "acme", SubjectID: "citizen-1", To: nov}, f.subject},
		{"twice", f.piiQuery(), []LogEntry{f.subject[0], f.subject[0]}},
		{"wrong position", f.piiQuery(), []LogEntry{moved}},
		{"no bytes", f.piiQuery(), []LogEntry{{Partition: "2026-11", LeafIndex: 1}}},
		{"garbage", f.piiQuery(), []LogEntry{{Partition: "2026-11", LeafIndex: 1, Data: []byte{0xff, 0xff}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewPIIAccess(testLogName, tt.q, nov, tt.entries); !errors.Is(err, ErrInvalid) {
				t.Errorf("got %v, want ErrInvalid", err)
			}
		})
	}
}

func TestNewEntityHistory(t *testing.T) {
	f := newFixture(t)
	c, err := NewEntityHistory(testLogName, f.historyQuery(), nov, f.history)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.History) != 2 || c.Summary.Rows != 2 || c.Summary.Changes != 3 || c.Summary.Actors != 2 {
		t.Fatalf("history %+v summary %+v", c.History, c.Summary)
	}
	h := c.History[1]
	want := []Change{{"status", "open", "closed"}, {"note", "", "=SUM(A1) <b>&\"quoted\"\nline"}}
	if !slices.Equal(h.Changes, want) || h.Category != "data_modification" || h.ActorID != "carol" {
		t.Errorf("row %+v", h)
	}
	if _, err := NewEntityHistory(testLogName, f.historyQuery(), nov, f.subject[:1]); !errors.Is(err, ErrInvalid) {
		t.Errorf("access on another target: got %v, want ErrInvalid", err)
	}
	if _, err := NewEntityHistory(testLogName, EntityHistoryQuery{Tenant: "acme", TargetType: "case"}, nov, nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("no target id: got %v, want ErrInvalid", err)
	}
}

func TestFileName(t *testing.T) {
	c := &Content{Kind: KindPIIAccess, TenantID: "acme", GeneratedAt: nov, Parameters: Parameters{SubjectID: "citizen/../1 ä"}}
	if got, want := FileName(c, FormatPDF), "pii-access_acme_citizen-..-1--_20261102T090000Z.pdf"; got != want {
		t.Errorf("FileName = %q, want %q", got, want)
	}
	c = &Content{Kind: KindEntityHistory, TenantID: "acme", GeneratedAt: nov, Parameters: Parameters{TargetType: "case", TargetID: "4711"}}
	if got, want := FileName(c, FormatCSV), "entity-history_acme_case_4711_20261102T090000Z.csv"; got != want {
		t.Errorf("FileName = %q, want %q", got, want)
	}
	if got, want := FileName(c, FormatBundle), "entity-history_acme_case_4711_20261102T090000Z.zip"; got != want {
		t.Errorf("FileName = %q, want %q", got, want)
	}
}

func TestParseFormat(t *testing.T) {
	for in, want := range map[string]Format{"json": FormatJSON, "CSV": FormatCSV, "Pdf": FormatPDF, "bundle": FormatBundle} {
		if got, err := ParseFormat(in); err != nil || got != want {
			t.Errorf("ParseFormat(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := ParseFormat("xml"); err == nil {
		t.Error("ParseFormat(xml) succeeded")
	}
}
