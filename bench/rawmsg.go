package main

import (
	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	grpcproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
)

// rawMessage is a request already encoded: the client codec sends its
// bytes as they are. A fresh one per call, since gRPC may still hold the
// bytes after SendMsg returns.
type rawMessage struct{ b []byte }

// rawCodec is the protobuf codec, except for rawMessages.
type rawCodec struct{ proto encoding.CodecV2 }

func (c rawCodec) Name() string { return grpcproto.Name }

func (c rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	if r, ok := v.(*rawMessage); ok {
		return mem.BufferSlice{mem.SliceBuffer(r.b)}, nil
	}
	return c.proto.Marshal(v)
}

func (c rawCodec) Unmarshal(data mem.BufferSlice, v any) error { return c.proto.Unmarshal(data, v) }

// sendRaw is the call option of calls that send rawMessages.
func sendRaw() grpc.CallOption {
	return grpc.ForceCodecV2(rawCodec{proto: encoding.GetCodecV2(grpcproto.Name)})
}
