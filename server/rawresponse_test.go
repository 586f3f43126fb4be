package server

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/trailaudit/trail/engine"
	"github.com/trailaudit/trail/merkle"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// The hand-encoded responses must be byte for byte what deterministic
// marshalling of the messages writes, so that clients decode the same.
func TestRawResponsesMatchProto(t *testing.T) {
	full := engine.Receipt{Tenant: "acme", EventID: "e-1", Partition: engine.Month{Year: 2026, Month: 11}, LeafIndex: 300,
		LeafHash: merkle.Hash{1, 2, 3}, TreeSize: 1 << 20, SequencerTime: time.Date(2026, 11, 3, 4, 5, 6, 7, time.UTC), Duplicate: true}
	long := full
	long.EventID = string(bytes.Repeat([]byte("x"), 300)) // a receipt of more than 127 bytes
	zero := engine.Receipt{Partition: engine.Month{Year: 1970, Month: 1}, SequencerTime: time.Unix(0, 0)}
	whole := full
	whole.SequencerTime = time.Unix(1_800_000_000, 0)
	cases := map[string][]appendOutcome{
		"receipts":        {{result: full}, {result: zero}, {result: whole}, {result: long}},
		"errors":          {{err: errors.New("boom")}, {err: engine.ErrEventIDConflict}},
		"mixed":           {{result: full}, {err: engine.ErrInvalidEvent}},
		"empty":           {},
		"far future year": {{result: engine.Receipt{Partition: engine.Month{Year: 12000, Month: 2}}}},
	}
	for name, out := range cases {
		for _, applied := range []uint64{0, 7, 1 << 40} {
			want := &trailv1.AppendBatchResponse{}
			for _, o := range out {
				if o.err != nil {
					want.Failed++
					want.Results = append(want.Results, &trailv1.AppendResult{Result: &trailv1.AppendResult_Error{Error: errorMessage(o.err)}})
				} else {
					want.Results = append(want.Results, &trailv1.AppendResult{Result: &trailv1.AppendResult_Receipt{Receipt: receiptProto(o.result, applied)}})
				}
			}
			wantBytes, err := proto.MarshalOptions{Deterministic: true}.Marshal(want)
			if err != nil {
				t.Fatal(err)
			}
			if got := appendBatchResponse(out, applied); !bytes.Equal(got, wantBytes) {
				t.Fatalf("%s applied %d:\n got %x\nwant %x", name, applied, got, wantBytes)
			}
		}
	}
}
