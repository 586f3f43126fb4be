package natsingest

import (
	"strings"

	"github.com/nats-io/nats.go"

	"github.com/trailaudit/trail/engine/eventwire"
	"github.com/trailaudit/trail/ingest/eventcodec"
)

// ErrUndecodable is wrapped by every refusal of a message that does not
// carry an event at all (eventcodec.ErrUndecodable).
var ErrUndecodable = eventcodec.ErrUndecodable

// Content types a message may declare in its Content-Type header.
const (
	ContentTypeProtobuf    = eventcodec.ContentTypeProtobuf
	ContentTypeJSON        = eventcodec.ContentTypeJSON
	ContentTypeCloudEvents = eventcodec.ContentTypeCloudEvents
)

// Decode reads the one event a message carries and returns it canonical
// and validated, ready to append. header may be nil. The Content-Type
// header says how the body is encoded; without one it is sniffed
// (eventcodec.Sniff).
func Decode(header nats.Header, body []byte) (eventwire.Checked, error) {
	ct := contentType(header)
	if ct == "" {
		ct = eventcodec.Sniff(body)
	}
	return eventcodec.Decode(ct, body)
}

// contentType is the message's Content-Type, the header's name in any
// case: NATS headers are case-sensitive, and producers spell it variously.
func contentType(h nats.Header) string {
	if v := h.Get("Content-Type"); v != "" {
		return v
	}
	for k, vs := range h {
		if strings.EqualFold(k, "Content-Type") && len(vs) > 0 {
			return vs[0]
		}
	}
	return ""
}
