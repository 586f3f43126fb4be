package main

import (
	"testing"

	"google.golang.org/protobuf/proto"

	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// tallyResults must count what decoding the response would.
func TestTallyResults(t *testing.T) {
	resp := &trailv1.AppendBatchResponse{Results: []*trailv1.AppendResult{
		{Result: &trailv1.AppendResult_Receipt{Receipt: &trailv1.Receipt{TenantId: "a", LeafIndex: 3}}},
		{Result: &trailv1.AppendResult_Receipt{Receipt: &trailv1.Receipt{TenantId: "a", Duplicate: true, AppliedIndex: 9}}},
		{Result: &trailv1.AppendResult_Error{Error: &trailv1.Error{Code: 3, Message: "bad event"}}},
		{Result: &trailv1.AppendResult_Receipt{Receipt: &trailv1.Receipt{}}},
	}}
	b, err := proto.Marshal(resp)
	if err != nil {
		t.Fatal(err)
	}
	receipts, dups, failed, first, err := tallyResults(b)
	if err != nil || receipts != 3 || dups != 1 || failed != 1 || first != "bad event" {
		t.Fatalf("tally = %d receipts, %d dups, %d failed, %q, %v", receipts, dups, failed, first, err)
	}
	if _, _, _, _, err := tallyResults([]byte{0x0a, 0x05}); err == nil {
		t.Fatal("truncated response counted")
	}
}
