package main

import (
	"strings"
	"testing"

	"github.com/trailaudit/trail/ingest/natsingest"
)

// TestEnvelopeIsWhatTraildReads: what natspub publishes decodes, with
// traild's own decoder, to the event of the line.
func TestEnvelopeIsWhatTraildReads(t *testing.T) {
	line := `{"tenant_id":"acme","event_id":"np-1","category":"system","action":"demo.bus","outcome":"success",` +
		`"actor":{"id":"me"},"occurred_at":"2026-11-03T10:00:00Z"}`
	m, id, err := envelope("trail.events.acme", []byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if id != "np-1" || m.Subject != "trail.events.acme" {
		t.Errorf("id %q subject %q", id, m.Subject)
	}
	c, err := natsingest.Decode(m.Header, m.Data)
	if err != nil {
		t.Fatalf("traild refuses it: %v", err)
	}
	if string(c.Event.EventID) != "np-1" || string(c.Event.Action) != "demo.bus" {
		t.Errorf("decoded %q %q", c.Event.EventID, c.Event.Action)
	}
}

func TestEnvelopeRefuses(t *testing.T) {
	for line, want := range map[string]string{
		`not json`:                 "not a JSON event",
		`[1]`:                      "not a JSON event",
		`{"tenant_id":"acme"}`:     "no event_id",
		`{"event_id":5}`:           "not a JSON event",
		`{"event_id":"x"} trailer`: "not a JSON event",
	} {
		if _, _, err := envelope("s", []byte(line)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want %q", line, err, want)
		}
	}
}
