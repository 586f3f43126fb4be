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
	fieldCommandLast     = 5 // drop_segment, the oneof's last field
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

// appendOf reads an append command from a Raft entry's payload without
// decoding its events: the sequencer time and each event's bytes as they
// stand in the entry. ok is false for any other command and for a payload
// it cannot read, which decodeCommand then handles.
func appendOf(data []byte) (t int64, events [][]byte, ok bool) {
	var inner []byte
	oneof := protowire.Number(0)
	for b := data; len(b) > 0; {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return 0, nil, false
		}
		b = b[n:]
		m := protowire.ConsumeFieldValue(num, typ, b)
		if m < 0 {
			return 0, nil, false
		}
		if num >= fieldCommandAppend && num <= fieldCommandLast {
			// Of a oneof's fields the last on the wire wins, and repeated
			// occurrences of a message field merge: their bytes concatenate.
			if num != oneof {
				inner = nil
			}
			oneof = num
			if num == fieldCommandAppend && typ == protowire.BytesType {
				v, _ := protowire.ConsumeBytes(b)
				if inner == nil {
					inner = v // the usual single occurrence: no copy
				} else {
					inner = append(inner[:len(inner):len(inner)], v...)
				}
			}
		}
		b = b[m:]
	}
	if oneof != fieldCommandAppend {
		return 0, nil, false
	}
	for len(inner) > 0 {
		num, typ, n := protowire.ConsumeTag(inner)
		if n < 0 {
			return 0, nil, false
		}
		inner = inner[n:]
		switch {
		case num == fieldAppendEvents && typ == protowire.BytesType:
			v, m := protowire.ConsumeBytes(inner)
			if m < 0 {
				return 0, nil, false
			}
			events = append(events, v)
			inner = inner[m:]
			continue
		case num == fieldAppendTime && typ == protowire.VarintType:
			v, m := protowire.ConsumeVarint(inner)
			if m < 0 {
				return 0, nil, false
			}
			t = int64(v)
			inner = inner[m:]
			continue
		}
		m := protowire.ConsumeFieldValue(num, typ, inner)
		if m < 0 {
			return 0, nil, false
		}
		inner = inner[m:]
	}
	return t, events, true
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
