// Package eventcodec reads one audit event from the encodings producers
// send outside gRPC: the protobuf Event, the REST API's JSON form, and a
// CloudEvents 1.0 JSON envelope carrying either. Bus ingest and the REST
// API both use it, so an event is read the same way whichever door it
// came in by. What it returns is canonical and validated, ready to append.
package eventcodec

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/trailaudit/trail/engine/eventwire"
	"github.com/trailaudit/trail/internal/enumname"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// ErrUndecodable is wrapped by every refusal of a message that does not
// carry an event at all: an unknown content type, malformed JSON or
// protobuf, a CloudEvents envelope that breaks the specification. A
// message that decodes but whose event is invalid gets an error wrapping
// eventwire.ErrInvalidEvent instead.
var ErrUndecodable = errors.New("undecodable message")

// Content types a message may declare in its Content-Type header.
const (
	// ContentTypeProtobuf: the body is a trail.v1.Event in protobuf, what
	// producers send over gRPC.
	ContentTypeProtobuf = "application/protobuf"
	// ContentTypeJSON: the body is the event in the REST API's JSON form
	// (proto field names; enum values full or short).
	ContentTypeJSON = "application/json"
	// ContentTypeCloudEvents: the body is a CloudEvents 1.0 JSON envelope
	// (structured content mode) whose data is the event.
	ContentTypeCloudEvents = "application/cloudevents+json"
)

// contentTypeProtobufLegacy is the older name some protobuf tooling sends.
const contentTypeProtobufLegacy = "application/x-protobuf"

// CloudEventsSpecVersion is the only CloudEvents version accepted.
const CloudEventsSpecVersion = "1.0"

func undecodable(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUndecodable, fmt.Sprintf(format, args...))
}

// Decode reads body as content type ct (one of the ContentType constants,
// parameters allowed).
func Decode(ct string, body []byte) (eventwire.Checked, error) {
	return decodeAs(ct, body, true)
}

// Sniff is the content type of a body that declares none: a body whose
// first byte is '{' is a CloudEvents envelope, any other is protobuf (a
// protobuf Event cannot start with '{': that would be field 15, the
// attributes map, with the group wire type, which no encoder writes).
func Sniff(body []byte) string {
	if len(body) > 0 && body[0] == '{' {
		return ContentTypeCloudEvents
	}
	return ContentTypeProtobuf
}

// decodeAs decodes body as content type ct. envelopeOK is false inside an
// envelope: a CloudEvent whose data is another CloudEvent is refused.
func decodeAs(ct string, body []byte, envelopeOK bool) (eventwire.Checked, error) {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return eventwire.Checked{}, undecodable("content type %q: %v", ct, err)
	}
	switch mt {
	case ContentTypeProtobuf, contentTypeProtobufLegacy:
		return decodeProtobuf(body)
	case ContentTypeJSON:
		return decodeJSONEvent(body)
	case ContentTypeCloudEvents:
		if envelopeOK {
			return decodeCloudEvent(body)
		}
	}
	return eventwire.Checked{}, undecodable("content type %q: want %s, %s or %s",
		mt, ContentTypeProtobuf, ContentTypeJSON, ContentTypeCloudEvents)
}

// decodeProtobuf canonicalizes and validates a protobuf Event, exactly as
// the gRPC API does with each event of a call.
func decodeProtobuf(b []byte) (eventwire.Checked, error) {
	if len(b) == 0 {
		return eventwire.Checked{}, undecodable("empty body")
	}
	var c eventwire.Checked
	canon, err := eventwire.Canonicalize(b, &c.Event)
	if err != nil {
		// Canonicalize fails only on bytes that are no Event at all.
		return eventwire.Checked{}, undecodable("protobuf: %v", err)
	}
	if err := eventwire.Validate(&c.Event); err != nil {
		return eventwire.Checked{}, err
	}
	c.Bytes = canon
	return c, nil
}

// decodeJSONEvent reads an event in the REST API's JSON form: protojson
// with proto field names, unknown fields refused, enum values full or
// short ("data_access").
func decodeJSONEvent(b []byte) (eventwire.Checked, error) {
	if err := oneJSONValue(b); err != nil {
		return eventwire.Checked{}, undecodable("event JSON: %v", err)
	}
	var ev trailv1.Event
	if err := enumname.Unmarshal(protojson.UnmarshalOptions{}, b, &ev); err != nil {
		return eventwire.Checked{}, undecodable("event JSON: %v", err)
	}
	var c eventwire.Checked
	canon, err := eventwire.Marshal(&ev, &c.Event)
	if err != nil {
		return eventwire.Checked{}, err
	}
	if err := eventwire.Validate(&c.Event); err != nil {
		return eventwire.Checked{}, err
	}
	c.Bytes = canon
	return c, nil
}

// oneJSONValue refuses b unless it holds exactly one JSON value, so that
// "{event}{event2}" is not half read.
func oneJSONValue(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	var raw json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("more than one JSON value")
	}
	return nil
}

// envelope is what Trail reads of a CloudEvents 1.0 event in the JSON
// format. Other attributes (subject, time, extensions) are carried by the
// message and not interpreted: the event's own fields are what is logged.
type envelope struct {
	attrs      map[string]string // the required and content-type attributes present
	data       json.RawMessage
	dataBase64 string
	hasData    bool
	hasBase64  bool
}

// The attributes an envelope must carry, as non-empty strings.
var requiredAttrs = []string{"specversion", "id", "source", "type"}

// decodeCloudEvent reads a CloudEvents 1.0 JSON envelope: specversion
// "1.0", non-empty id, source and type, and the event in exactly one of
// data (the REST JSON form; datacontenttype absent or JSON) or data_base64
// (decoded by datacontenttype, protobuf when absent).
func decodeCloudEvent(b []byte) (eventwire.Checked, error) {
	env, err := parseEnvelope(b)
	if err != nil {
		return eventwire.Checked{}, err
	}
	for _, name := range requiredAttrs {
		if env.attrs[name] == "" {
			return eventwire.Checked{}, undecodable("CloudEvent: attribute %q is required and must be a non-empty string", name)
		}
	}
	if v := env.attrs["specversion"]; v != CloudEventsSpecVersion {
		return eventwire.Checked{}, undecodable("CloudEvent: specversion %q: want %q", v, CloudEventsSpecVersion)
	}
	dct, hasDCT := env.attrs["datacontenttype"]
	switch {
	case env.hasData && env.hasBase64:
		return eventwire.Checked{}, undecodable("CloudEvent: data and data_base64 exclude each other")
	case env.hasData:
		if hasDCT && !isJSONType(dct) {
			return eventwire.Checked{}, undecodable("CloudEvent: datacontenttype %q with data: want JSON (the event's REST form), or data_base64 for other encodings", dct)
		}
		if len(env.data) == 0 || env.data[0] != '{' {
			return eventwire.Checked{}, undecodable("CloudEvent: data must be the event as a JSON object")
		}
		return decodeJSONEvent(env.data)
	case env.hasBase64:
		raw, err := base64.StdEncoding.DecodeString(env.dataBase64)
		if err != nil {
			return eventwire.Checked{}, undecodable("CloudEvent: data_base64: %v", err)
		}
		if !hasDCT {
			dct = ContentTypeProtobuf
		}
		return decodeAs(dct, raw, false)
	}
	return eventwire.Checked{}, undecodable("CloudEvent: no data: the event goes in data (JSON) or data_base64 (protobuf)")
}

// isJSONType reports whether a datacontenttype is JSON: application/json
// or a +json structured syntax suffix, parameters allowed.
func isJSONType(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && (mt == ContentTypeJSON || strings.HasSuffix(mt, "+json") && mt != ContentTypeCloudEvents)
}

// parseEnvelope reads the envelope's members. A member given twice is
// refused: encoding/json would keep the last, and an audit record must not
// depend on which of two "data" members a reader picks.
func parseEnvelope(b []byte) (*envelope, error) {
	if err := oneJSONValue(b); err != nil {
		return nil, undecodable("CloudEvent: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, undecodable("CloudEvent: want a JSON object")
	}
	env := &envelope{attrs: make(map[string]string)}
	seen := make(map[string]bool)
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, undecodable("CloudEvent: %v", err)
		}
		name, _ := t.(string)
		if seen[name] {
			return nil, undecodable("CloudEvent: member %q appears twice", name)
		}
		seen[name] = true
		var val json.RawMessage
		if err := dec.Decode(&val); err != nil {
			return nil, undecodable("CloudEvent: member %q: %v", name, err)
		}
		if err := env.set(name, val); err != nil {
			return nil, err
		}
	}
	return env, nil
}

func (env *envelope) set(name string, val json.RawMessage) error {
	switch name {
	case "data":
		env.data, env.hasData = val, true
	case "data_base64":
		if err := json.Unmarshal(val, &env.dataBase64); err != nil {
			return undecodable("CloudEvent: data_base64 must be a string")
		}
		env.hasBase64 = true
	case "specversion", "id", "source", "type", "datacontenttype":
		var s string
		if err := json.Unmarshal(val, &s); err != nil {
			return undecodable("CloudEvent: attribute %q must be a string", name)
		}
		env.attrs[name] = s
	}
	return nil
}
