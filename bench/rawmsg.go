package main

import (
	"errors"

	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	grpcproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
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

func (c rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	if r, ok := v.(*rawMessage); ok {
		r.b = data.Materialize()
		return nil
	}
	return c.proto.Unmarshal(data, v)
}

// tallyResults counts an AppendBatchResponse's outcomes from its encoding,
// without decoding receipts into messages: a load generator that decodes
// every receipt spends its CPU where the server's should be measured. It
// returns the receipts, how many were duplicates, the errors' count and
// the first error's message.
func tallyResults(b []byte) (receipts, dups, failed int, firstErr string, err error) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return 0, 0, 0, "", errors.New("append batch response: malformed")
		}
		b = b[n:]
		m := protowire.ConsumeFieldValue(num, typ, b)
		if m < 0 {
			return 0, 0, 0, "", errors.New("append batch response: malformed")
		}
		if num == 1 && typ == protowire.BytesType {
			res, _ := protowire.ConsumeBytes(b)
			r := new(trailv1.AppendResult)
			if len(res) > 0 && res[0] == 0x12 { // an Error (field 2): rare, decode it
				if err := proto.Unmarshal(res, r); err != nil {
					return 0, 0, 0, "", err
				}
				failed++
				if firstErr == "" {
					firstErr = r.GetError().GetMessage()
				}
			} else {
				receipts++
				if duplicateReceipt(res) {
					dups++
				}
			}
		}
		b = b[m:]
	}
	return receipts, dups, failed, firstErr, nil
}

// duplicateReceipt reads Receipt.duplicate (field 8) of an AppendResult
// holding a receipt (field 1).
func duplicateReceipt(res []byte) bool {
	_, _, n := protowire.ConsumeTag(res)
	if n < 0 {
		return false
	}
	rec, _ := protowire.ConsumeBytes(res[n:])
	for len(rec) > 0 {
		num, typ, n := protowire.ConsumeTag(rec)
		if n < 0 {
			return false
		}
		rec = rec[n:]
		if num == 8 && typ == protowire.VarintType {
			v, _ := protowire.ConsumeVarint(rec)
			return v != 0
		}
		m := protowire.ConsumeFieldValue(num, typ, rec)
		if m < 0 {
			return false
		}
		rec = rec[m:]
	}
	return false
}

// sendRaw is the call option of calls that send rawMessages.
func sendRaw() grpc.CallOption {
	return grpc.ForceCodecV2(rawCodec{proto: encoding.GetCodecV2(grpcproto.Name)})
}
