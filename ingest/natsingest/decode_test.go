package natsingest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/nats-io/nats.go"

	"github.com/trailaudit/trail/engine/eventwire"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

func canonical(t testing.TB, ev *trailv1.Event) []byte {
	t.Helper()
	var scanned eventwire.Event
	b, err := eventwire.Marshal(ev, &scanned)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestDecodeEncodings decodes one event in every encoding a producer may
// use: each gives the event's canonical bytes.
func TestDecodeEncodings(t *testing.T) {
	ev := event("acme", "d-1")
	want := canonical(t, ev)
	for enc := range numEncodings {
		m := message(t, "s", ev, enc)
		c, err := Decode(m.Header, m.Data)
		if err != nil {
			t.Errorf("encoding %d: %v", enc, err)
			continue
		}
		if !bytes.Equal(c.Bytes, want) {
			t.Errorf("encoding %d: bytes differ from the canonical encoding", enc)
		}
		if string(c.Event.EventID) != "d-1" || string(c.Event.TenantID) != "acme" {
			t.Errorf("encoding %d: scanned %q/%q", enc, c.Event.TenantID, c.Event.EventID)
		}
	}
}

// TestDecodeShortEnumNames takes the REST form's short enum names and a
// JSON type with a +json suffix.
func TestDecodeShortEnumNames(t *testing.T) {
	data := `{"tenant_id":"acme","event_id":"d-2","category":"security","action":"key.rotate","outcome":"success",` +
		`"actor":{"id":"ops"},"occurred_at":"2026-11-03T10:00:00Z"}`
	body := `{"specversion":"1.0","id":"1","source":"/s","type":"t","datacontenttype":"application/vnd.acme+json","data":` + data + `}`
	c, err := Decode(nats.Header{"Content-Type": {ContentTypeCloudEvents}}, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if c.Event.Category != int32(trailv1.Category_CATEGORY_SECURITY) || c.Event.Outcome != int32(trailv1.Outcome_OUTCOME_SUCCESS) {
		t.Errorf("category %d outcome %d", c.Event.Category, c.Event.Outcome)
	}
}

// TestDecodeRefuses gives each bad input its own clear refusal.
func TestDecodeRefuses(t *testing.T) {
	valid := marshalJSON(t, event("acme", "r-1"))
	invalidEv := event("acme", "r-2")
	invalidEv.Actor = nil
	b64 := func(b []byte) string { s, _ := json.Marshal(base64.StdEncoding.EncodeToString(b)); return string(s) }
	env := func(members string) string {
		return `{"specversion":"1.0","id":"1","source":"/s","type":"t"` + members + `}`
	}
	cases := []struct {
		name    string
		ct      string
		body    string
		invalid bool // an invalid event rather than an undecodable message
		want    string
	}{
		{"empty body", "", "", false, "empty body"},
		{"empty protobuf", ContentTypeProtobuf, "", false, "empty body"},
		{"truncated protobuf", ContentTypeProtobuf, "\x0a\x05ac", false, "protobuf"},
		{"bad content type", "application/", "x", false, "content type"},
		{"unknown content type", "text/plain", "x", false, `"text/plain"`},
		{"JSON not an object", ContentTypeJSON, "[1]", false, "event JSON"},
		{"two JSON values", ContentTypeJSON, string(valid) + string(valid), false, "more than one JSON value"},
		{"unknown event field", ContentTypeJSON, `{"tenant_id":"acme","colour":"red"}`, false, "colour"},
		{"unknown enum name", ContentTypeJSON, `{"category":"gossip"}`, false, "gossip"},
		{"invalid event in JSON", ContentTypeJSON, string(marshalJSON(t, invalidEv)), true, "actor.id is required"},
		{"invalid event in protobuf", ContentTypeProtobuf, string(marshalProto(t, invalidEv)), true, "actor.id is required"},
		{"envelope not JSON", ContentTypeCloudEvents, "{", false, "CloudEvent"},
		{"envelope an array", ContentTypeCloudEvents, "[]", false, "JSON object"},
		{"no specversion", ContentTypeCloudEvents, `{"id":"1","source":"/s","type":"t","data":` + string(valid) + `}`, false, `"specversion" is required`},
		{"specversion 0.3", "", strings.Replace(env(`,"data":`+string(valid)), `"1.0"`, `"0.3"`, 1), false, `specversion "0.3"`},
		{"numeric id", ContentTypeCloudEvents, `{"specversion":"1.0","id":1,"source":"/s","type":"t"}`, false, `"id" must be a string`},
		{"empty source", ContentTypeCloudEvents, `{"specversion":"1.0","id":"1","source":"","type":"t"}`, false, `"source" is required`},
		{"no type", ContentTypeCloudEvents, `{"specversion":"1.0","id":"1","source":"/s"}`, false, `"type" is required`},
		{"member twice", ContentTypeCloudEvents, env(`,"data":` + string(valid) + `,"data":{}`), false, `"data" appears twice`},
		{"no data", ContentTypeCloudEvents, env(""), false, "no data"},
		{"null data", ContentTypeCloudEvents, env(`,"data":null`), false, "JSON object"},
		{"string data", ContentTypeCloudEvents, env(`,"data":"hello"`), false, "JSON object"},
		{"data and data_base64", ContentTypeCloudEvents, env(`,"data":` + string(valid) + `,"data_base64":"AA=="`), false, "exclude each other"},
		{"data with XML type", ContentTypeCloudEvents, env(`,"datacontenttype":"application/xml","data":` + string(valid)), false, "application/xml"},
		{"data_base64 not base64", ContentTypeCloudEvents, env(`,"data_base64":"!!"`), false, "data_base64"},
		{"data_base64 not a string", ContentTypeCloudEvents, env(`,"data_base64":5`), false, "must be a string"},
		{"data_base64 garbage", ContentTypeCloudEvents, env(`,"data_base64":` + b64([]byte{0xff, 0xff})), false, "protobuf"},
		{"envelope in an envelope", ContentTypeCloudEvents, env(`,"datacontenttype":"application/cloudevents+json","data_base64":` + b64([]byte(env(`,"data":`+string(valid))))), false, "content type"},
		{"invalid event in data", ContentTypeCloudEvents, env(`,"data":` + string(marshalJSON(t, invalidEv))), true, "actor.id is required"},
		{"trailing garbage", ContentTypeCloudEvents, env(`,"data":`+string(valid)) + "x", false, "CloudEvent"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var h nats.Header
			if c.ct != "" {
				h = nats.Header{"Content-Type": {c.ct}}
			}
			_, err := Decode(h, []byte(c.body))
			if err == nil {
				t.Fatal("decoded")
			}
			if got := errors.Is(err, eventwire.ErrInvalidEvent); got != c.invalid {
				t.Errorf("invalid event: %v, want %v (%v)", got, c.invalid, err)
			}
			if got := errors.Is(err, ErrUndecodable); got == c.invalid {
				t.Errorf("undecodable: %v, want %v (%v)", got, !c.invalid, err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not mention %q", err, c.want)
			}
		})
	}
}

// FuzzDecode feeds the decoder arbitrary bodies under each content type:
// it never panics, and what it accepts is canonical, valid, and decodes
// to the same bytes again as protobuf.
func FuzzDecode(f *testing.F) {
	ev := event("acme", "f-1")
	for enc := range numEncodings {
		m := message(f, "s", ev, enc)
		f.Add(m.Header.Get("Content-Type")+m.Header.Get("content-type"), m.Data)
	}
	f.Add("", []byte(`{"specversion":"1.0","id":"1","source":"/s","type":"t","data":{}}`))
	f.Add(ContentTypeCloudEvents, []byte(`{"specversion":"1.0","id":"1","source":"/s","type":"t","data_base64":"CgRhY21l"}`))
	f.Add(ContentTypeJSON, []byte(`{"category":"data_access"}`))
	f.Add(ContentTypeProtobuf, []byte{0x0a, 0x04, 'a', 'c', 'm', 'e'})
	f.Fuzz(func(t *testing.T, ct string, body []byte) {
		var h nats.Header
		if ct != "" {
			h = nats.Header{"Content-Type": {ct}}
		}
		c, err := Decode(h, body)
		if err != nil {
			if !errors.Is(err, ErrUndecodable) && !errors.Is(err, eventwire.ErrInvalidEvent) {
				t.Fatalf("error of no known kind: %v", err)
			}
			return
		}
		again, err := eventwire.Check(c.Bytes)
		if err != nil {
			t.Fatalf("accepted bytes do not check: %v", err)
		}
		if !bytes.Equal(again.Bytes, c.Bytes) {
			t.Fatal("accepted bytes are not canonical")
		}
		back, err := Decode(nats.Header{"Content-Type": {ContentTypeProtobuf}}, c.Bytes)
		if err != nil || !bytes.Equal(back.Bytes, c.Bytes) {
			t.Fatalf("accepted bytes do not decode to themselves: %v", err)
		}
	})
}

// TestSettingsCheck refuses each bad setting with the setting's name.
func TestSettingsCheck(t *testing.T) {
	ok := Settings{URL: "nats://127.0.0.1:4222", Tenants: []string{"acme"}}
	if err := ok.Check(); err != nil {
		t.Fatalf("defaults refused: %v", err)
	}
	cases := []struct {
		name string
		tune func(*Settings)
		want string
	}{
		{"no url", func(s *Settings) { s.URL = "" }, "nats.url"},
		{"no tenants", func(s *Settings) { s.Tenants = nil }, "nats.tenants is empty"},
		{"system tenant", func(s *Settings) { s.Tenants = []string{"_system"} }, "written by Trail only"},
		{"bad tenant", func(s *Settings) { s.Tenants = []string{"Acme"} }, "nats.tenants"},
		{"stream with a dot", func(s *Settings) { s.Stream = "a.b" }, "nats.stream"},
		{"consumer with a space", func(s *Settings) { s.Consumer = "a b" }, "nats.consumer"},
		{"empty token", func(s *Settings) { s.Subjects = []string{"a..b"} }, "empty token"},
		{"'>' not last", func(s *Settings) { s.Subjects = []string{"a.>.b"} }, "last token"},
		{"partial wildcard", func(s *Settings) { s.Subjects = []string{"a.b*"} }, "whole tokens"},
		{"wildcard dead letters", func(s *Settings) { s.DeadLetterSubject = "dead.*" }, "no wildcards"},
		{"dead letters consumed", func(s *Settings) { s.DeadLetterSubject = "trail.events.dead" }, "is matched by"},
		{"dead letters consumed by '*'", func(s *Settings) {
			s.Subjects = []string{"x.*"}
			s.DeadLetterSubject = "x.dead"
		}, "is matched by"},
		{"batch", func(s *Settings) { s.Batch = -1 }, "nats.batch"},
		{"ack wait", func(s *Settings) { s.AckWait = 10 }, "nats.ack_wait"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := ok
			c.tune(&s)
			err := s.Check()
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error mentioning %q", err, c.want)
			}
		})
	}
}

func TestSubjectMatches(t *testing.T) {
	for _, c := range []struct {
		filter, subject string
		want            bool
	}{
		{"a.b", "a.b", true},
		{"a.b", "a.b.c", false},
		{"a.*", "a.b", true},
		{"a.*", "a.b.c", false},
		{"a.>", "a.b.c", true},
		{"a.>", "a", false},
		{"*.b", "a.b", true},
		{">", "a", true},
	} {
		if got := subjectMatches(c.filter, c.subject); got != c.want {
			t.Errorf("subjectMatches(%q, %q) = %v", c.filter, c.subject, got)
		}
	}
}

func TestHeaderValue(t *testing.T) {
	if got := headerValue("a\r\nb\x00c"); got != "a  b c" {
		t.Errorf("got %q", got)
	}
	long := headerValue(strings.Repeat("é", maxReasonLen))
	if len(long) > maxReasonLen+3 || !strings.HasSuffix(long, "...") || !strings.HasPrefix(long, "é") {
		t.Errorf("long value cut badly: %d bytes", len(long))
	}
	if !utf8.ValidString(long) {
		t.Error("cut mid-rune")
	}
}
