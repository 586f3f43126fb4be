package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/protobuf/proto"

	"github.com/trailaudit/trail/ingest/eventcodec"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// CloudEvents on the REST API. A producer that already speaks CloudEvents
// (HTTP structured mode, JSON) POSTs its envelope to the same routes as a
// plain event: application/cloudevents+json to /api/v1/audit/events,
// application/cloudevents-batch+json (a JSON array of envelopes) to
// /api/v1/audit/events/batch. The gateway picks a request's body decoder
// by its content type, so these are two more decoders: they read the
// envelopes with the bus's codec and hand the gateway the events, and
// everything after (authorization, auditing, the answer, in JSON) is the
// route's own.
const (
	contentTypeCloudEvent      = eventcodec.ContentTypeCloudEvents
	contentTypeCloudEventBatch = "application/cloudevents-batch+json"
)

// cloudEvents is the marshaler of the two CloudEvents content types:
// strictJSON for everything but request bodies.
type cloudEvents struct {
	strictJSON
	batch bool
}

func (c cloudEvents) NewDecoder(r io.Reader) runtime.Decoder {
	return runtime.DecoderFunc(func(v any) error {
		body, err := io.ReadAll(r) // bounded by limitBody
		if err != nil {
			return fmt.Errorf("read body: %w", err)
		}
		switch t := v.(type) {
		case **trailv1.Event: // POST /api/v1/audit/events
			if c.batch {
				return fmt.Errorf("%s goes to /api/v1/audit/events/batch", contentTypeCloudEventBatch)
			}
			*t, err = cloudEvent(body)
			return err
		case *trailv1.AppendBatchRequest: // POST /api/v1/audit/events/batch
			if !c.batch {
				return fmt.Errorf("%s goes to /api/v1/audit/events", contentTypeCloudEvent)
			}
			t.Events, err = cloudEventBatch(body)
			return err
		}
		return errors.New("CloudEvents are accepted by /api/v1/audit/events and /api/v1/audit/events/batch only")
	})
}

// cloudEventBatch reads a JSON array of envelopes; one broken envelope
// refuses them all.
func cloudEventBatch(body []byte) ([]*trailv1.Event, error) {
	var envelopes []json.RawMessage
	if err := json.Unmarshal(body, &envelopes); err != nil {
		return nil, fmt.Errorf("%s: want a JSON array of CloudEvents: %w", contentTypeCloudEventBatch, err)
	}
	events := make([]*trailv1.Event, len(envelopes))
	for i, env := range envelopes {
		ev, err := cloudEvent(env)
		if err != nil {
			return nil, fmt.Errorf("CloudEvent %d: %w", i, err)
		}
		events[i] = ev
	}
	return events, nil
}

// cloudEvent reads one envelope's event, refusing what the codec refuses
// with its reason: a producer sending a broken envelope learns why at once.
func cloudEvent(env []byte) (*trailv1.Event, error) {
	c, err := eventcodec.Decode(contentTypeCloudEvent, env)
	if err != nil {
		return nil, err
	}
	var ev trailv1.Event
	if err := proto.Unmarshal(c.Bytes, &ev); err != nil {
		return nil, err
	}
	return &ev, nil
}
