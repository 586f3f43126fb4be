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
	fieldCommandAppend = 1
	fieldAppendTime    = 1
	fieldAppendEvents  = 2
)

// encodeAppend returns the encoding of
// RaftCommand{append: RaftAppend{time_unix_nano: t, events: events}}, where
// each element of events is an already-marshalled Event. It is exactly what
// proto.Marshal of that message produces (a test holds us to it), built
// without re-encoding the events the batcher marshalled to measure them.
func encodeAppend(t int64, events [][]byte) []byte {
	inner := 0
	if t != 0 {
		inner += protowire.SizeTag(fieldAppendTime) + protowire.SizeVarint(uint64(t))
	}
	for _, ev := range events {
		inner += protowire.SizeTag(fieldAppendEvents) + protowire.SizeBytes(len(ev))
	}
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
	return b
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
