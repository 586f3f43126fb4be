package raftnode

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// Field numbers of RaftCommand and RaftAppend (proto/trail/v1/raft.proto),
// for encoding an append without marshalling its events a second time.
const (
	fieldCommandAppend   = 1
	fieldAppendTime      = 1
	fieldAppendEvents    = 2
	fieldAppendCanonical = 3
)

// encodeAppend returns the encoding of
// RaftCommand{append: RaftAppend{time_unix_nano: t, events: events,
// canonical: true}}, where each element of events is an event already
// marshalled deterministically. It is exactly what proto.Marshal of that
// message produces (a test holds us to it), built without re-encoding the
// events the batcher marshalled to measure them.
func encodeAppend(t int64, events [][]byte) []byte {
	inner := 0
	if t != 0 {
		inner += protowire.SizeTag(fieldAppendTime) + protowire.SizeVarint(uint64(t))
	}
	for _, ev := range events {
		inner += protowire.SizeTag(fieldAppendEvents) + protowire.SizeBytes(len(ev))
	}
	inner += protowire.SizeTag(fieldAppendCanonical) + protowire.SizeVarint(1)
	b := make([]byte, 0, protowire.SizeTag(fieldCommandAppend)+protowire.SizeBytes(inner))
	b = protowire.AppendTag(b, fieldCommandAppend, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(inner))
	if t != 0 {
		b = protowire.AppendTag(b, fieldAppendTime, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(t))
	}
	for _, ev := range events {
		b = protowire.AppendTag(b, fieldAppendEvents, protowire.BytesType)
		b = protowire.AppendBytes(b, ev)
	}
	b = protowire.AppendTag(b, fieldAppendCanonical, protowire.VarintType)
	return protowire.AppendVarint(b, 1)
}

// appendEventBytes returns the encoded events of an append command's
// payload, as they stand in it, or nil if data is not an append.
func appendEventBytes(data []byte) [][]byte {
	inner := field(data, fieldCommandAppend)
	if inner == nil {
		return nil
	}
	var out [][]byte
	for len(inner) > 0 {
		num, typ, n := protowire.ConsumeTag(inner)
		if n < 0 {
			return nil
		}
		inner = inner[n:]
		if num == fieldAppendEvents && typ == protowire.BytesType {
			v, m := protowire.ConsumeBytes(inner)
			if m < 0 {
				return nil
			}
			out = append(out, v)
			inner = inner[m:]
			continue
		}
		m := protowire.ConsumeFieldValue(num, typ, inner)
		if m < 0 {
			return nil
		}
		inner = inner[m:]
	}
	return out
}

// field returns the last length-delimited field num of a message's
// encoding (proto merges repeated occurrences of a message field; an
// append command has one), or nil.
func field(data []byte, num protowire.Number) []byte {
	var found []byte
	for len(data) > 0 {
		n, typ, k := protowire.ConsumeTag(data)
		if k < 0 {
			return nil
		}
		data = data[k:]
		m := protowire.ConsumeFieldValue(n, typ, data)
		if m < 0 {
			return nil
		}
		if n == num && typ == protowire.BytesType {
			v, _ := protowire.ConsumeBytes(data)
			found = v
		}
		data = data[m:]
	}
	return found
}

// marshalEvent encodes an event deterministically, as append commands
// carry it (canonical) and the engine stores it: a retried event must
// encode to the same bytes, or the log would take it for a conflict.
func marshalEvent(ev *trailv1.Event) ([]byte, error) {
	return proto.MarshalOptions{Deterministic: true}.Marshal(ev)
}

// encodeCommand marshals a command other than an append.
func encodeCommand(c *trailv1.RaftCommand) ([]byte, error) {
	b, err := proto.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("raftnode: encode command: %w", err)
	}
	return b, nil
}

var errBadCommand = errors.New("raftnode: malformed command")

// decodeCommand parses a Raft entry's payload. Every replica decodes the
// same bytes, so a failure is the same everywhere.
func decodeCommand(data []byte) (*trailv1.RaftCommand, error) {
	c := new(trailv1.RaftCommand)
	if err := proto.Unmarshal(data, c); err != nil {
		return nil, fmt.Errorf("%w: %v", errBadCommand, err)
	}
	if c.Command == nil {
		return nil, fmt.Errorf("%w: empty", errBadCommand)
	}
	return c, nil
}
