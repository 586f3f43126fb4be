package raftnode

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	"github.com/trailaudit/trail/engine"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

func TestEncodeAppendMatchesProto(t *testing.T) {
	for _, tc := range []struct {
		name string
		t    int64
		n    int
	}{
		{"empty", 0, 0},
		{"zero time", 0, 2},
		{"one", 1_700_000_000_000_000_000, 1},
		{"many", 1_800_000_000_123_456_789, 300},
		{"negative time", -5, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var evs []*trailv1.Event
			var raw [][]byte
			for i := range tc.n {
				ev := event("acme", fmt.Sprintf("e%d", i))
				evs = append(evs, ev)
				b, err := proto.MarshalOptions{Deterministic: true}.Marshal(ev)
				if err != nil {
					t.Fatal(err)
				}
				raw = append(raw, b)
			}
			got := encodeAppend(tc.t, raw)
			want, err := proto.MarshalOptions{Deterministic: true}.Marshal(&trailv1.RaftCommand{
				Command: &trailv1.RaftCommand_Append{Append: &trailv1.RaftAppend{TimeUnixNano: tc.t, Events: evs, Canonical: true}},
			})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("encodeAppend differs from proto.Marshal:\n got %x\nwant %x", got, want)
			}
			cmd, err := decodeCommand(got)
			if err != nil {
				t.Fatal(err)
			}
			if a := cmd.GetAppend(); a.GetTimeUnixNano() != tc.t || len(a.GetEvents()) != tc.n {
				t.Fatalf("decoded %v", cmd)
			}
		})
	}
}

// TestAppendOf checks that an append command read without decoding gives
// exactly the time and event bytes it was built from, and that any other
// command or unreadable bytes are not taken for an append.
func TestAppendOf(t *testing.T) {
	var raw [][]byte
	for i := range 5 {
		ev := event("acme", fmt.Sprintf("e%d", i))
		ev.Attributes = map[string]string{"a": "1", "b": "2", "c": "3"}
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		raw = append(raw, b)
	}
	tm, got, ok := appendOf(encodeAppend(7, raw))
	if !ok || tm != 7 || len(got) != len(raw) {
		t.Fatalf("appendOf = %d, %d events, %v; want 7, %d, true", tm, len(got), ok, len(raw))
	}
	for i := range raw {
		if !bytes.Equal(got[i], raw[i]) {
			t.Fatalf("event %d: bytes differ", i)
		}
	}
	seal, _ := proto.Marshal(&trailv1.RaftCommand{Command: &trailv1.RaftCommand_Seal{Seal: &trailv1.RaftSeal{Tenant: "a"}}})
	full := encodeAppend(7, raw)
	// An append followed by a seal on the wire is a seal: the oneof's last field wins.
	appendThenSeal := append(append([]byte(nil), full...), seal...)
	for name, data := range map[string][]byte{"seal": seal, "append then seal": appendThenSeal,
		"truncated": full[:len(full)-3], "garbage": {0xff, 0xff}, "empty": nil} {
		if _, got, ok := appendOf(data); ok {
			t.Errorf("%s: taken for an append of %d events", name, len(got))
		}
	}
}

func TestDecodeCommand(t *testing.T) {
	seal, _ := proto.Marshal(&trailv1.RaftCommand{Command: &trailv1.RaftCommand_Seal{Seal: &trailv1.RaftSeal{Tenant: "a", Partition: "2026-11"}}})
	for _, tc := range []struct {
		name string
		data []byte
		ok   bool
	}{
		{"seal", seal, true},
		{"append", encodeAppend(1, nil), true},
		{"empty", nil, false},
		{"no command", []byte{0x28, 0x01}, false}, // unknown field 5 only
		{"truncated", seal[:len(seal)-1], false},
		{"garbage", []byte{0xff, 0xff, 0xff}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decodeCommand(tc.data)
			if (err == nil) != tc.ok {
				t.Fatalf("decodeCommand: %v, want ok=%v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, errBadCommand) {
				t.Fatalf("error %v does not wrap errBadCommand", err)
			}
		})
	}
}

func FuzzDecodeCommand(f *testing.F) {
	ev, _ := proto.Marshal(event("acme", "e1"))
	f.Add(encodeAppend(42, [][]byte{ev, ev}))
	seal, _ := proto.Marshal(&trailv1.RaftCommand{Command: &trailv1.RaftCommand_Seal{Seal: &trailv1.RaftSeal{Tenant: "a", Partition: "2026-11", TimeUnixNano: 9}}})
	f.Add(seal)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		cmd, err := decodeCommand(data)
		if err != nil {
			return
		}
		// An append's events as found in the bytes are its events, and
		// anything appendOf reads is what proto decodes.
		if tm, raw, ok := appendOf(data); ok {
			a := cmd.GetAppend()
			if a == nil || tm != a.GetTimeUnixNano() || len(raw) != len(a.GetEvents()) {
				t.Fatalf("appendOf read %d events at %d, proto decodes %v", len(raw), tm, cmd)
			}
			for i, r := range raw {
				ev := new(trailv1.Event)
				if err := proto.Unmarshal(r, ev); err != nil || !proto.Equal(ev, a.GetEvents()[i]) {
					t.Fatalf("event %d found in the bytes is not the decoded event: %v", i, err)
				}
			}
		}
		// What decodes re-encodes to something that decodes the same.
		b, err := proto.Marshal(cmd)
		if err != nil {
			t.Fatal(err)
		}
		again, err := decodeCommand(b)
		if err != nil || !proto.Equal(cmd, again) {
			t.Fatalf("round trip: %v, %v vs %v", err, cmd, again)
		}
	})
}

func TestFrames(t *testing.T) {
	req := &trailv1.RaftForwardRequest{TimeoutNanos: 5, Op: &trailv1.RaftForwardRequest_Append{
		Append: &trailv1.RaftForwardAppend{Events: []*trailv1.Event{event("a", "1")}},
	}}
	var buf bytes.Buffer
	if err := writeFrame(&buf, req); err != nil {
		t.Fatal(err)
	}
	frame := buf.Bytes()
	for _, tc := range []struct {
		name string
		data []byte
		ok   bool
	}{
		{"whole", frame, true},
		{"empty message", []byte{0, 0, 0, 0}, true},
		{"short header", frame[:3], false},
		{"short body", frame[:len(frame)-1], false},
		{"too large", []byte{0xff, 0xff, 0xff, 0xff}, false},
		{"garbage body", []byte{0, 0, 0, 2, 0xff, 0xff}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := new(trailv1.RaftForwardRequest)
			err := readFrame(bytes.NewReader(tc.data), got)
			if (err == nil) != tc.ok {
				t.Fatalf("readFrame: %v, want ok=%v", err, tc.ok)
			}
			if tc.name == "whole" && !proto.Equal(got, req) {
				t.Fatalf("read %v, wrote %v", got, req)
			}
		})
	}
}

func FuzzReadFrame(f *testing.F) {
	var buf bytes.Buffer
	writeFrame(&buf, &trailv1.RaftForwardRequest{Route: true, Op: &trailv1.RaftForwardRequest_Join{Join: &trailv1.RaftJoin{Id: "n1", Address: "x:1"}}})
	f.Add(buf.Bytes())
	buf.Reset()
	writeFrame(&buf, &trailv1.RaftForwardResponse{Results: encodeResults([]engine.Result{{Err: engine.ErrEntryTooLarge}})})
	f.Add(buf.Bytes())
	f.Add([]byte{0, 0, 0, 1, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, m := range []proto.Message{new(trailv1.RaftForwardRequest), new(trailv1.RaftForwardResponse)} {
			if err := readFrame(bytes.NewReader(data), m); err != nil {
				continue
			}
			var out bytes.Buffer
			if err := writeFrame(&out, m); err != nil {
				t.Fatal(err)
			}
			again := m.ProtoReflect().New().Interface()
			if err := readFrame(&out, again); err != nil || !proto.Equal(m, again) {
				t.Fatalf("round trip: %v", err)
			}
			if resp, ok := m.(*trailv1.RaftForwardResponse); ok {
				decodeResults(resp.GetResults()) // must not panic
				decodeError("op", resp.GetError())
			}
		}
	})
}

// TestErrorsRoundTrip checks that an error crossing the forwarding
// protocol still matches its sentinel, and keeps its ambiguity.
func TestErrorsRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		err       error
		sentinel  error
		ambiguous bool
		retry     bool
	}{
		{fmt.Errorf("x: %w", raft.ErrNotLeader), raft.ErrNotLeader, false, true},
		{ambiguous("append", raft.ErrLeadershipLost), raft.ErrLeadershipLost, true, false},
		{fmt.Errorf("bad: %w", engine.ErrInvalidEvent), engine.ErrInvalidEvent, false, false},
		{fmt.Errorf("big: %w", engine.ErrEntryTooLarge), engine.ErrEntryTooLarge, false, false},
		{fmt.Errorf("c: %w", engine.ErrEventIDConflict), engine.ErrEventIDConflict, false, false},
		{fmt.Errorf("seal: %w", engine.ErrMonthNotEnded), engine.ErrMonthNotEnded, false, false},
		{fmt.Errorf("s: %w", engine.ErrBadSetting), engine.ErrBadSetting, false, false},
		{fmt.Errorf("down: %w", raft.ErrRaftShutdown), raft.ErrRaftShutdown, false, true},
		{ErrClosed, ErrClosed, false, true},
		{context.DeadlineExceeded, context.DeadlineExceeded, false, false},
		{fmt.Errorf("full: %w", engine.ErrDiskFull), engine.ErrDiskFull, false, false},
		{fmt.Errorf("drop: %w", engine.ErrNotDroppable), engine.ErrNotDroppable, false, false},
	} {
		got := decodeError("append", encodeError(tc.err))
		if !errors.Is(got, tc.sentinel) {
			t.Errorf("%v: decoded %v does not match %v", tc.err, got, tc.sentinel)
		}
		if errors.Is(got, ErrAmbiguous) != tc.ambiguous {
			t.Errorf("%v: ambiguous=%v, want %v", tc.err, errors.Is(got, ErrAmbiguous), tc.ambiguous)
		}
		if retryable(got) != tc.retry {
			t.Errorf("%v: retryable=%v, want %v", tc.err, retryable(got), tc.retry)
		}
	}
	if encodeError(nil) != nil || decodeError("x", nil) != nil {
		t.Fatal("nil errors must stay nil")
	}
}

func TestResultsRoundTrip(t *testing.T) {
	c := newCluster(t, 1, nil)
	c.boot()
	rs := appendOK(t, c.nodes[0], event("acme", "r1"), event("acme", "r2"))
	in := []engine.Result{{Receipt: rs[0]}, {Err: fmt.Errorf("no: %w", engine.ErrInvalidEvent)}, {Receipt: rs[1]}}
	out, err := decodeResults(encodeResults(in))
	if err != nil {
		t.Fatal(err)
	}
	if out[0].Receipt != in[0].Receipt || out[2].Receipt != in[2].Receipt || !errors.Is(out[1].Err, engine.ErrInvalidEvent) {
		t.Fatalf("round trip: %+v -> %+v", in, out)
	}
}
