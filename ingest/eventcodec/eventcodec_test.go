package eventcodec

import (
	"bytes"
	"encoding/base64"
	"errors"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/trailaudit/trail/engine/eventwire"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

const eventJSON = `{"tenant_id":"acme","event_id":"e-1","category":"data_access","action":"record.view","outcome":"success",` +
	`"actor":{"id":"clerk-1"},"occurred_at":"2026-11-03T10:00:00Z"}`

// Every encoding of one event decodes to the same canonical bytes; what
// is not an event is ErrUndecodable, an invalid event ErrInvalidEvent.
func TestDecode(t *testing.T) {
	want, err := Decode(ContentTypeJSON, []byte(eventJSON))
	if err != nil {
		t.Fatal(err)
	}
	var ev eventwire.Event
	if err := eventwire.Scan(want.Bytes, &ev); err != nil {
		t.Fatalf("not canonical: %v", err)
	}
	b64 := base64.StdEncoding.EncodeToString(want.Bytes)
	ok := []struct{ name, ct, body string }{
		{"protobuf", ContentTypeProtobuf, string(want.Bytes)},
		{"legacy protobuf type", "application/x-protobuf", string(want.Bytes)},
		{"JSON with a charset", "application/json; charset=utf-8", eventJSON},
		{"CloudEvent, JSON data", ContentTypeCloudEvents, `{"specversion":"1.0","id":"1","source":"/s","type":"t","data":` + eventJSON + `}`},
		{"CloudEvent, protobuf data", ContentTypeCloudEvents, `{"specversion":"1.0","id":"1","source":"/s","type":"t","data_base64":"` + b64 + `"}`},
	}
	for _, tc := range ok {
		got, err := Decode(tc.ct, []byte(tc.body))
		if err != nil || !bytes.Equal(got.Bytes, want.Bytes) {
			t.Errorf("%s: %v (same bytes: %v)", tc.name, err, bytes.Equal(got.Bytes, want.Bytes))
		}
	}
	bad := []struct {
		name, ct, body string
		want           error
	}{
		{"unknown type", "text/plain", eventJSON, ErrUndecodable},
		{"empty protobuf", ContentTypeProtobuf, "", ErrUndecodable},
		{"JSON with trailing data", ContentTypeJSON, eventJSON + " {}", ErrUndecodable},
		{"CloudEvent without id", ContentTypeCloudEvents, `{"specversion":"1.0","source":"/s","type":"t","data":` + eventJSON + `}`, ErrUndecodable},
		{"CloudEvent 0.3", ContentTypeCloudEvents, `{"specversion":"0.3","id":"1","source":"/s","type":"t","data":` + eventJSON + `}`, ErrUndecodable},
		{"CloudEvent in a CloudEvent", ContentTypeCloudEvents, `{"specversion":"1.0","id":"1","source":"/s","type":"t","datacontenttype":"application/cloudevents+json","data_base64":"e30="}`, ErrUndecodable},
		{"event without actor", ContentTypeJSON, `{"tenant_id":"acme","event_id":"e","category":"security","action":"a","outcome":"success","occurred_at":"2026-11-03T10:00:00Z"}`, eventwire.ErrInvalidEvent},
	}
	for _, tc := range bad {
		if _, err := Decode(tc.ct, []byte(tc.body)); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if Sniff([]byte(`{"specversion"`)) != ContentTypeCloudEvents || Sniff(want.Bytes) != ContentTypeProtobuf {
		t.Error("Sniff")
	}
}

// FuzzDecode: no input panics, and whatever decodes is canonical and
// decodes again, as protobuf, to the same bytes.
func FuzzDecode(f *testing.F) {
	f.Add(ContentTypeJSON, []byte(eventJSON))
	f.Add(ContentTypeCloudEvents, []byte(`{"specversion":"1.0","id":"1","source":"/s","type":"t","data":`+eventJSON+`}`))
	f.Add(ContentTypeProtobuf, []byte{0x0a, 0x04, 'a', 'c', 'm', 'e'})
	f.Fuzz(func(t *testing.T, ct string, body []byte) {
		c, err := Decode(ct, body)
		if err != nil {
			return
		}
		again, err := Decode(ContentTypeProtobuf, c.Bytes)
		if err != nil || !bytes.Equal(again.Bytes, c.Bytes) {
			t.Fatalf("decoded bytes do not decode to themselves: %v", err)
		}
		if !proto.Equal(mustEvent(t, c.Bytes), mustEvent(t, again.Bytes)) {
			t.Fatal("events differ")
		}
	})
}

func mustEvent(t *testing.T, b []byte) proto.Message {
	t.Helper()
	var e trailv1.Event
	if err := proto.Unmarshal(b, &e); err != nil {
		t.Fatal(err)
	}
	return &e
}
