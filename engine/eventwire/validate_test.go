package eventwire

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"google.golang.org/protobuf/types/known/timestamppb"

	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// validEvent is full() scanned: every field set, valid.
func validEvent(t *testing.T) Event {
	t.Helper()
	var ev Event
	if _, err := Marshal(full(), &ev); err != nil {
		t.Fatal(err)
	}
	if err := Validate(&ev); err != nil {
		t.Fatalf("full() does not validate: %v", err)
	}
	return ev
}

func repeat(s string, n int) []byte { return []byte(strings.Repeat(s, n)) }

func manyPII(n int, item string) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = []byte(item)
	}
	return out
}

func TestValidate(t *testing.T) {
	const grammar = "[a-z0-9][a-z0-9_-]{0,62}"
	tests := []struct {
		name   string
		mutate func(*Event)
		want   string // "" means valid; else a substring of the error
	}{
		{"valid", func(*Event) {}, ""},
		{"system tenant", func(e *Event) { e.TenantID = []byte(SystemTenant) }, ""},
		{"tenant of one char", func(e *Event) { e.TenantID = []byte("0") }, ""},
		{"tenant of 63 bytes", func(e *Event) { e.TenantID = repeat("a", 63) }, ""},
		{"tenant missing", func(e *Event) { e.TenantID = nil }, "tenant_id is required"},
		{"tenant of 64 bytes", func(e *Event) { e.TenantID = repeat("a", 64) }, "tenant_id"},
		{"tenant dot", func(e *Event) { e.TenantID = []byte(".") }, grammar},
		{"tenant dot dot", func(e *Event) { e.TenantID = []byte("..") }, grammar},
		{"tenant leading dash", func(e *Event) { e.TenantID = []byte("-x") }, grammar},
		{"tenant leading underscore", func(e *Event) { e.TenantID = []byte("_x") }, grammar},
		{"tenant uppercase", func(e *Event) { e.TenantID = []byte("Tenant") }, grammar},
		{"tenant segment name", func(e *Event) { e.TenantID = []byte("2026-10.seg") }, grammar},
		{"tenant slash", func(e *Event) { e.TenantID = []byte("a/b") }, grammar},
		{"event_id missing", func(e *Event) { e.EventID = nil }, "event_id is required"},
		{"event_id of 128 bytes", func(e *Event) { e.EventID = repeat("e", 128) }, ""},
		{"event_id of 129 bytes", func(e *Event) { e.EventID = repeat("e", 129) }, "event_id longer than 128 bytes"},
		{"event_id NUL", func(e *Event) { e.EventID = []byte("a\x00b") }, "event_id contains a NUL byte"},
		{"event_id bad UTF-8", func(e *Event) { e.EventID = []byte("a\xffb") }, "event_id is not valid UTF-8"},
		{"action missing", func(e *Event) { e.Action = nil }, "action is required"},
		{"action of 256 bytes", func(e *Event) { e.Action = repeat("a", 256) }, ""},
		{"action of 257 bytes", func(e *Event) { e.Action = repeat("a", 257) }, "action longer than 256 bytes"},
		{"action NUL", func(e *Event) { e.Action = []byte{0} }, "action contains a NUL byte"},
		{"actor missing", func(e *Event) { e.HasActor, e.ActorID = false, nil }, "actor.id is required"},
		{"actor.id missing", func(e *Event) { e.ActorID = nil }, "actor.id is required"},
		{"actor.id too long", func(e *Event) { e.ActorID = repeat("u", 257) }, "actor.id longer than 256 bytes"},
		{"actor.id bad UTF-8", func(e *Event) { e.ActorID = []byte{0xc3} }, "actor.id is not valid UTF-8"},
		{"subject_id absent", func(e *Event) { e.SubjectID = nil }, ""},
		{"subject_id too long", func(e *Event) { e.SubjectID = repeat("s", 257) }, "subject_id longer than 256 bytes"},
		{"subject_id NUL", func(e *Event) { e.SubjectID = []byte("s\x00") }, "subject_id contains a NUL byte"},
		{"target absent", func(e *Event) { e.HasTarget, e.TargetType, e.TargetID = false, nil, nil }, ""},
		{"sealed", func(e *Event) { e.HasSealed, e.SealedKeyID, e.Changes, e.Attributes = true, repeat("k", 16), 0, 0 }, ""},
		{"sealed without subject", func(e *Event) {
			e.HasSealed, e.SealedKeyID, e.Changes, e.Attributes, e.SubjectID = true, repeat("k", 16), 0, 0, nil
		}, "needs a subject_id"},
		{"sealed key id short", func(e *Event) { e.HasSealed, e.SealedKeyID, e.Changes, e.Attributes = true, repeat("k", 15), 0, 0 }, "sealed.key_id: 15 bytes"},
		{"sealed beside changes", func(e *Event) { e.HasSealed, e.SealedKeyID, e.Changes, e.Attributes = true, repeat("k", 16), 1, 0 }, "not beside it"},
		{"sealed beside attributes", func(e *Event) { e.HasSealed, e.SealedKeyID, e.Changes, e.Attributes = true, repeat("k", 16), 0, 1 }, "not beside it"},
		{"target.type too long", func(e *Event) { e.TargetType = repeat("t", 257) }, "target.type longer than 256 bytes"},
		{"target.type bad UTF-8", func(e *Event) { e.TargetType = []byte{0xff} }, "target.type is not valid UTF-8"},
		{"target.id too long", func(e *Event) { e.TargetID = repeat("t", 257) }, "target.id longer than 256 bytes"},
		{"target.id NUL", func(e *Event) { e.TargetID = []byte{0} }, "target.id contains a NUL byte"},
		{"purpose_code too long", func(e *Event) { e.PurposeCode = repeat("p", 257) }, "purpose_code longer than 256 bytes"},
		{"purpose_code NUL", func(e *Event) { e.PurposeCode = []byte{0} }, "purpose_code contains a NUL byte"},
		{"purpose_code absent for data access with PII", func(e *Event) { e.PurposeCode = nil }, ""},
		{"category missing", func(e *Event) { e.Category = 0 }, "category is required"},
		{"category unknown", func(e *Event) { e.Category = 10 }, "unknown category 10"},
		{"category negative", func(e *Event) { e.Category = -1 }, "unknown category -1"},
		{"category last", func(e *Event) { e.Category = int32(trailv1.Category_CATEGORY_SECURITY) }, ""},
		{"outcome missing", func(e *Event) { e.Outcome = 0 }, "outcome is required"},
		{"outcome unknown", func(e *Event) { e.Outcome = 5 }, "unknown outcome 5"},
		{"outcome last", func(e *Event) { e.Outcome = int32(trailv1.Outcome_OUTCOME_ERROR) }, ""},
		{"occurred_at missing", func(e *Event) { e.HasOccurredAt, e.OccurredSeconds, e.OccurredNanos = false, 0, 0 }, "occurred_at is required"},
		{"occurred_at zero", func(e *Event) { e.OccurredSeconds, e.OccurredNanos = 0, 0 }, ""},
		{"occurred_at first second", func(e *Event) { e.OccurredSeconds = minTimestampSeconds }, ""},
		{"occurred_at last nanosecond", func(e *Event) { e.OccurredSeconds, e.OccurredNanos = maxTimestampSeconds, 999_999_999 }, ""},
		{"occurred_at before year 1", func(e *Event) { e.OccurredSeconds = minTimestampSeconds - 1 }, "occurred_at: seconds"},
		{"occurred_at after year 9999", func(e *Event) { e.OccurredSeconds = maxTimestampSeconds + 1 }, "occurred_at: seconds"},
		{"occurred_at negative nanos", func(e *Event) { e.OccurredNanos = -1 }, "occurred_at: nanos -1"},
		{"occurred_at nanos 1e9", func(e *Event) { e.OccurredNanos = 1e9 }, "occurred_at: nanos 1000000000"},
		{"256 pii fields", func(e *Event) { e.PIIFields = manyPII(256, "name") }, ""},
		{"257 pii fields", func(e *Event) { e.PIIFields = manyPII(257, "name") }, "more than 256 pii_fields_accessed"},
		{"empty pii field", func(e *Event) { e.PIIFields = [][]byte{[]byte("a"), nil} }, "pii_fields_accessed[1] is required"},
		{"pii field too long", func(e *Event) { e.PIIFields = [][]byte{repeat("p", 257)} }, "pii_fields_accessed[0] longer than 256 bytes"},
		{"pii field NUL", func(e *Event) { e.PIIFields = [][]byte{[]byte("a"), []byte("b"), {0}} }, "pii_fields_accessed[2] contains a NUL byte"},
		{"pii field bad UTF-8", func(e *Event) { e.PIIFields = [][]byte{{0xff}} }, "pii_fields_accessed[0] is not valid UTF-8"},
		{"1024 changes", func(e *Event) { e.Changes = 1024 }, ""},
		{"1025 changes", func(e *Event) { e.Changes = 1025 }, "more than 1024 changes"},
		{"change without field", func(e *Event) { e.ChangesWithoutField = 1 }, "changes.field is required"},
		{"256 attributes", func(e *Event) { e.Attributes = 256 }, ""},
		{"257 attributes", func(e *Event) { e.Attributes = 257 }, "more than 256 attributes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := validEvent(t)
			tt.mutate(&ev)
			err := Validate(&ev)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Validate = %v, want nil", err)
			case tt.want == "":
			case err == nil:
				t.Fatalf("Validate = nil, want an error containing %q", tt.want)
			case !errors.Is(err, ErrInvalidEvent):
				t.Fatalf("Validate = %v, does not wrap ErrInvalidEvent", err)
			case !strings.Contains(err.Error(), tt.want):
				t.Fatalf("Validate = %q, want it to contain %q", err, tt.want)
			}
		})
	}
	if err := Validate(nil); !errors.Is(err, ErrInvalidEvent) {
		t.Errorf("Validate(nil) = %v", err)
	}
}

// TestValidateScanned runs Validate on events that went through Scan, so the
// fields come from the wire.
func TestValidateScanned(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*trailv1.Event)
		want   string
	}{
		{"valid", func(*trailv1.Event) {}, ""},
		{"no actor", func(e *trailv1.Event) { e.Actor = nil }, "actor.id is required"},
		{"empty actor", func(e *trailv1.Event) { e.Actor = &trailv1.Actor{} }, "actor.id is required"},
		{"no occurred_at", func(e *trailv1.Event) { e.OccurredAt = nil }, "occurred_at is required"},
		{"empty occurred_at", func(e *trailv1.Event) { e.OccurredAt = &timestamppb.Timestamp{} }, ""},
		{"negative nanos", func(e *trailv1.Event) { e.OccurredAt.Nanos = -1 }, "occurred_at: nanos"},
		{"change without field", func(e *trailv1.Event) { e.Changes = append(e.Changes, &trailv1.Change{Before: "x"}) }, "changes.field is required (1 of 3 changes lack it)"},
		{"empty pii field", func(e *trailv1.Event) { e.PiiFieldsAccessed = append(e.PiiFieldsAccessed, "") }, "pii_fields_accessed[3] is required"},
		{"unknown category", func(e *trailv1.Event) { e.Category = 42 }, "unknown category 42"},
		{"bad tenant", func(e *trailv1.Event) { e.TenantId = "../etc" }, `tenant_id "../etc" must match`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := full()
			tt.mutate(e)
			var ev Event
			if _, err := Marshal(e, &ev); err != nil {
				t.Fatal(err)
			}
			err := Validate(&ev)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate = %v", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidEvent) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate = %v, want ErrInvalidEvent containing %q", err, tt.want)
			}
		})
	}
}

// TestOccurredAtMatchesTimestamppb checks the bounds against timestamppb's
// own CheckValid, which the rule is defined by.
func TestOccurredAtMatchesTimestamppb(t *testing.T) {
	ev := validEvent(t)
	for _, secs := range []int64{minTimestampSeconds - 1, minTimestampSeconds, 0, maxTimestampSeconds, maxTimestampSeconds + 1} {
		for _, nanos := range []int32{-1, 0, 999_999_999, 1e9} {
			ev.OccurredSeconds, ev.OccurredNanos = secs, nanos
			want := (&timestamppb.Timestamp{Seconds: secs, Nanos: nanos}).CheckValid()
			if got := Validate(&ev); (got == nil) != (want == nil) {
				t.Errorf("seconds %d nanos %d: Validate = %v, CheckValid = %v", secs, nanos, got, want)
			}
		}
	}
}

func TestValidateTenantID(t *testing.T) {
	valid := []string{"a", "0", "tenant-00", "a_b", "a-", "z9_-", SystemTenant, strings.Repeat("x", 63)}
	invalid := []string{
		"", ".", "..", "-x", "_x", "_", "x.y", "2026-10.seg", "Tenant", "tenanT", "a/b", "a\\b", "a b",
		"ä", "a\x00", "_system2", "_SYSTEM", " _system", strings.Repeat("x", 64), strings.Repeat("x", 1000),
	}
	for _, id := range valid {
		if err := ValidateTenantID(id); err != nil {
			t.Errorf("ValidateTenantID(%q) = %v", id, err)
		}
	}
	for _, id := range invalid {
		err := ValidateTenantID(id)
		if !errors.Is(err, ErrInvalidEvent) || !strings.Contains(err.Error(), "tenant_id") ||
			!strings.Contains(err.Error(), "[a-z0-9][a-z0-9_-]{0,62}") {
			t.Errorf("ValidateTenantID(%q) = %v, want an error stating the grammar", id, err)
		}
		if len(err.Error()) > 300 {
			t.Errorf("ValidateTenantID(%d bytes): error of %d bytes", len(id), len(err.Error()))
		}
		// The []byte form Validate uses must agree.
		if err2 := validateTenantID([]byte(id)); err2 == nil || err2.Error() != err.Error() {
			t.Errorf("validateTenantID([]byte(%q)) = %v, want %v", id, err2, err)
		}
	}
}

func TestScanValidateDoNotAllocate(t *testing.T) {
	var bufs [][]byte
	for _, e := range generated(64) {
		bufs = append(bufs, deterministic(t, e))
	}
	ev := Event{PIIFields: make([][]byte, 0, 8)}
	i := 0
	allocs := testing.AllocsPerRun(1000, func() {
		b := bufs[i%len(bufs)]
		i++
		if err := Scan(b, &ev); err != nil {
			t.Fatal(err)
		}
		if err := Validate(&ev); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("Scan+Validate: %v allocations per event, want 0", allocs)
	}
	if !bytes.Equal(ev.TenantID[:len("tenant-")], []byte("tenant-")) {
		t.Fatalf("unexpected tenant %q", ev.TenantID)
	}
}
