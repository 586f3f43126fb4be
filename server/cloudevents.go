package server

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/trailaudit/trail/ingest/eventcodec"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// CloudEvents on the REST API. A producer that already speaks CloudEvents
// (HTTP structured mode, JSON) POSTs its envelope to the same routes as
// a plain event: application/cloudevents+json to /api/v1/audit/events,
// application/cloudevents-batch+json (a JSON array of envelopes) to
// /api/v1/audit/events/batch. The envelope's data is the event, read by
// the same codec as bus ingest; the call then goes through the gateway
// like any other, so authorization, auditing and answers are the REST
// API's own.
const (
	contentTypeCloudEvent      = eventcodec.ContentTypeCloudEvents
	contentTypeCloudEventBatch = "application/cloudevents-batch+json"
)

// cloudEventsOr serves CloudEvents requests and hands every other request
// to next.
func (s *Server) cloudEventsOr(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		switch {
		case r.Method == http.MethodPost && r.URL.Path == "/api/v1/audit/events" && mt == contentTypeCloudEvent:
			s.serveCloudEvents(w, r, false)
		case r.Method == http.MethodPost && r.URL.Path == "/api/v1/audit/events/batch" && mt == contentTypeCloudEventBatch:
			s.serveCloudEvents(w, r, true)
		default:
			next.ServeHTTP(w, r)
		}
	})
}

func (s *Server) serveCloudEvents(w http.ResponseWriter, r *http.Request, batch bool) {
	g := s.gateway
	method, pattern := "/trail.v1.IngestService/Append", "/api/v1/audit/events"
	if batch {
		method, pattern = "/trail.v1.IngestService/AppendBatch", "/api/v1/audit/events/batch"
	}
	ctx, err := runtime.AnnotateContext(r.Context(), g.mux, r, method, runtime.WithHTTPPathPattern(pattern))
	fail := func(err error) { runtime.HTTPError(ctx, g.mux, g.json, w, r, err) }
	if err != nil {
		fail(err)
		return
	}
	body, err := io.ReadAll(r.Body) // bounded by limitBody
	if err != nil {
		fail(status.Errorf(codes.InvalidArgument, "read body: %v", err))
		return
	}
	envelopes := []json.RawMessage{body}
	if batch {
		if err := json.Unmarshal(body, &envelopes); err != nil {
			fail(status.Errorf(codes.InvalidArgument, "%s: want a JSON array of CloudEvents: %v", contentTypeCloudEventBatch, err))
			return
		}
	}
	events := make([]*trailv1.Event, len(envelopes))
	for i, env := range envelopes {
		if events[i], err = cloudEvent(env); err != nil {
			if batch {
				err = fmt.Errorf("CloudEvent %d: %w", i, err)
			}
			fail(status.Error(codes.InvalidArgument, err.Error()))
			return
		}
	}
	client := trailv1.NewIngestServiceClient(g.conn)
	var resp proto.Message
	if batch {
		resp, err = client.AppendBatch(ctx, &trailv1.AppendBatchRequest{Events: events})
	} else {
		var one *trailv1.AppendResponse
		if one, err = client.Append(ctx, &trailv1.AppendRequest{Event: events[0]}); err == nil {
			resp = one.GetReceipt() // the plain route answers with the receipt too
		}
	}
	if err != nil {
		fail(err)
		return
	}
	b, err := g.json.Marshal(resp)
	if err != nil {
		fail(status.Errorf(codes.Internal, "encode answer: %v", err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
}

// cloudEvent reads one envelope's event. The whole envelope is refused
// for what the codec refuses, with its reason: a producer sending a
// broken envelope learns why at once.
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
