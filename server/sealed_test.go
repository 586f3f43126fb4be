package server

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"github.com/trailaudit/trail/engine"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
	"github.com/trailaudit/trail/raftnode"
)

// settableClock is the sequencer's clock in this test.
type settableClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *settableClock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *settableClock) set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.t = t }

// A sealed partition is listed with its final checkpoint, which verifies,
// matches GetCheckpoint, and is byte-identical on every call; its entries
// are still served and proven from the segment file.
func TestSealedPartitionFinalCheckpoint(t *testing.T) {
	clock := &settableClock{t: time.Date(2026, 10, 31, 22, 0, 0, 0, time.UTC)}
	e := newEnv(t, envOptions{tuneNode: func(c *raftnode.Config) { c.Clock = clock.now }})
	producer := e.key(trailv1.Role_ROLE_PRODUCER, "acme")
	auditor := e.key(trailv1.Role_ROLE_AUDITOR, "acme")
	e.appendAll(producer, events("acme", "oct", 5))
	clock.set(time.Date(2026, 11, 1, 0, 0, 1, 0, time.UTC))
	oct := engine.Partition{Tenant: "acme", Month: engine.Month{Year: 2026, Month: time.October}}
	if err := e.node.Seal(context.Background(), oct); err != nil {
		t.Fatal(err)
	}

	var finals [][]byte
	for range 2 {
		resp, err := e.proofs.ListPartitions(e.ctx(auditor), &trailv1.ListPartitionsRequest{TenantId: "acme"})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.GetPartitions()) != 1 {
			t.Fatalf("partitions: %v", resp.GetPartitions())
		}
		p := resp.GetPartitions()[0]
		if !p.GetSealed() || p.GetSize() != 5 || p.GetFinalCheckpoint() == nil {
			t.Fatalf("sealed partition listed as %v", p)
		}
		note := []byte(p.GetFinalCheckpoint().GetSignedNote())
		if cp := e.openCheckpoint(note, "acme", "2026-10"); cp.Size != 5 || !bytes.Equal(cp.Hash, p.GetRootHash()) {
			t.Fatalf("final checkpoint %+v, partition root %x", cp, p.GetRootHash())
		}
		finals = append(finals, note)
	}
	cp, err := e.proofs.GetCheckpoint(e.ctx(auditor), &trailv1.GetCheckpointRequest{TenantId: "acme", Partition: "2026-10"})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(finals[0], finals[1]) || !bytes.Equal(finals[0], []byte(cp.GetCheckpoint().GetSignedNote())) {
		t.Fatalf("the final checkpoint changed between calls:\n%s\n%s\n%s", finals[0], finals[1], cp.GetCheckpoint().GetSignedNote())
	}
	proof, err := e.proofs.GetInclusionProof(e.ctx(auditor), &trailv1.GetInclusionProofRequest{TenantId: "acme", EventId: "oct-3"})
	if err != nil {
		t.Fatal(err)
	}
	e.verifyInclusion(proof, "acme")
}
