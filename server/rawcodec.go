package server

import (
	"context"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	grpcproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"

	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// The ingest methods never decode events into Go structs: decoding a
// realistic 512-byte event costs 3.5 µs and encoding it deterministically
// again 4 µs, several times everything else an append costs. Their
// requests arrive as raw bytes (rawRequest, through ingestCodec), the
// events are sliced out of them, and package eventwire reads and checks
// each in place; an event already in canonical form (what the Go client
// and the SDK send) goes to Raft as the very bytes that arrived.

// rawRequest is an ingest request's encoding, kept undecoded.
type rawRequest struct{ data []byte }

// ingestCodec is the server's codec: the standard protobuf codec, except
// that a rawRequest receives the message's bytes as they are. gRPC offers
// no other way to reach a request's bytes before they are decoded.
type ingestCodec struct{ proto encoding.CodecV2 }

func newIngestCodec() ingestCodec { return ingestCodec{proto: encoding.GetCodecV2(grpcproto.Name)} }

func (c ingestCodec) Name() string { return grpcproto.Name }

func (c ingestCodec) Marshal(v any) (mem.BufferSlice, error) {
	if r, ok := v.(*rawResponse); ok {
		return mem.BufferSlice{mem.SliceBuffer(r.data)}, nil
	}
	return c.proto.Marshal(v)
}

func (c ingestCodec) Unmarshal(data mem.BufferSlice, v any) error {
	if r, ok := v.(*rawRequest); ok {
		r.data = data.Materialize()
		return nil
	}
	return c.proto.Unmarshal(data, v)
}

// Field numbers of the ingest requests (proto/trail/v1/trail.proto).
const (
	fieldAppendEvent       = 1 // AppendRequest.event
	fieldAppendBatchEvents = 1 // AppendBatchRequest.events
)

// batchEvents slices the events out of an AppendBatchRequest's encoding.
func batchEvents(data []byte) ([][]byte, error) {
	var out [][]byte
	err := eachField(data, func(num protowire.Number, typ protowire.Type, v []byte) {
		if num == fieldAppendBatchEvents && typ == protowire.BytesType {
			out = append(out, v)
		}
	})
	return out, err
}

// singleEvent returns the event of an AppendRequest's encoding. A message
// field sent more than once merges, as protobuf defines: the occurrences'
// bytes concatenate. A request without one holds an empty event.
func singleEvent(data []byte) ([]byte, error) {
	var ev []byte
	n := 0
	err := eachField(data, func(num protowire.Number, typ protowire.Type, v []byte) {
		if num == fieldAppendEvent && typ == protowire.BytesType {
			if n == 0 {
				ev = v
			} else {
				ev = append(ev[:len(ev):len(ev)], v...)
			}
			n++
		}
	})
	if ev == nil {
		ev = []byte{}
	}
	return ev, err
}

// eachField calls fn for every field of a message's encoding, with the
// content of length-delimited ones.
func eachField(data []byte, fn func(num protowire.Number, typ protowire.Type, v []byte)) error {
	for b := data; len(b) > 0; {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("%w: malformed request: %v", errBadRequest, protowire.ParseError(n))
		}
		b = b[n:]
		m := protowire.ConsumeFieldValue(num, typ, b)
		if m < 0 {
			return fmt.Errorf("%w: malformed request: %v", errBadRequest, protowire.ParseError(m))
		}
		var v []byte
		if typ == protowire.BytesType {
			v, _ = protowire.ConsumeBytes(b)
		}
		fn(num, typ, v)
		b = b[m:]
	}
	return nil
}

// ingestServiceDesc is trail.v1.IngestService with handlers that receive
// rawRequests: the same methods, names and streams, for the same
// interceptors.
func ingestServiceDesc() *grpc.ServiceDesc {
	d := trailv1.IngestService_ServiceDesc
	d.Methods = []grpc.MethodDesc{
		{MethodName: "Append", Handler: rawUnary(trailv1.IngestService_Append_FullMethodName, (*ingestService).appendOne)},
		{MethodName: "AppendBatch", Handler: rawUnary(trailv1.IngestService_AppendBatch_FullMethodName, (*ingestService).appendBatchRaw)},
	}
	d.Streams = []grpc.StreamDesc{{
		StreamName:    "AppendStream",
		Handler:       func(srv any, stream grpc.ServerStream) error { return srv.(*ingestService).appendStream(stream) },
		ServerStreams: true,
		ClientStreams: true,
	}}
	return &d
}

// rawUnary is a unary method handler that decodes its request as a
// rawRequest and calls fn through the interceptors.
func rawUnary(method string, fn func(*ingestService, context.Context, *rawRequest) (any, error)) grpc.MethodHandler {
	return func(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
		req := new(rawRequest)
		if err := dec(req); err != nil {
			return nil, err
		}
		is := srv.(*ingestService)
		handler := func(ctx context.Context, req any) (any, error) { return fn(is, ctx, req.(*rawRequest)) }
		if interceptor == nil {
			return handler(ctx, req)
		}
		return interceptor(ctx, req, &grpc.UnaryServerInfo{Server: srv, FullMethod: method}, handler)
	}
}
