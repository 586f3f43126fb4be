package client_test

import (
	"errors"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/trailaudit/trail/client"
	"github.com/trailaudit/trail/merkle"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// TestVerify proves receipts from a real node and checks that Verify
// accepts the genuine proof and rejects every kind of tampering with the
// proof, the entry, the checkpoint or the receipt.
func TestVerify(t *testing.T) {
	n := startNode(t)
	c := newClient(t, client.Config{
		Addrs: []string{n.Addr}, Token: key(t, n, trailv1.Role_ROLE_PRODUCER),
		ReadToken: key(t, n, trailv1.Role_ROLE_AUDITOR),
	})
	var rs []*trailv1.Receipt
	for i := range 5 { // a tree of several leaves, so proofs have a path
		r, err := c.AppendWait(ctxFor(t), event("verify", i))
		if err != nil {
			t.Fatal(err)
		}
		rs = append(rs, r)
	}
	v, err := client.NewVerifier(n.VKey)
	if err != nil {
		t.Fatal(err)
	}
	r := rs[2]
	proof, err := c.Prove(ctxFor(t), r)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Verify(r, proof); err != nil {
		t.Fatalf("genuine proof: %v", err)
	}
	other, err := c.Prove(ctxFor(t), rs[3])
	if err != nil {
		t.Fatal(err)
	}
	_, otherKey, err := merkle.GenerateKey("test.trail", nil)
	if err != nil {
		t.Fatal(err)
	}
	stranger, err := client.NewVerifier(otherKey)
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name   string
		v      *client.Verifier
		tamper func(r *trailv1.Receipt, p *trailv1.GetInclusionProofResponse)
	}{
		{"path hash flipped", v, func(_ *trailv1.Receipt, p *trailv1.GetInclusionProofResponse) { p.Proof[0][0] ^= 1 }},
		{"path hash dropped", v, func(_ *trailv1.Receipt, p *trailv1.GetInclusionProofResponse) { p.Proof = p.Proof[1:] }},
		{"path hash short", v, func(_ *trailv1.Receipt, p *trailv1.GetInclusionProofResponse) { p.Proof[0] = p.Proof[0][:31] }},
		{"entry byte flipped", v, func(_ *trailv1.Receipt, p *trailv1.GetInclusionProofResponse) { p.EntryBytes[10] ^= 1 }},
		{"another entry", v, func(_ *trailv1.Receipt, p *trailv1.GetInclusionProofResponse) { p.EntryBytes = other.GetEntryBytes() }},
		{"pruned entry, wrong leaf hash", v, func(r *trailv1.Receipt, p *trailv1.GetInclusionProofResponse) {
			p.EntryBytes = nil
			r.LeafHash = other.GetLeafHash()
		}},
		{"receipt names another leaf", v, func(r *trailv1.Receipt, _ *trailv1.GetInclusionProofResponse) { r.LeafIndex++ }},
		{"receipt names another event", v, func(r *trailv1.Receipt, _ *trailv1.GetInclusionProofResponse) { r.EventId = "verify-3" }},
		{"receipt names another tenant", v, func(r *trailv1.Receipt, _ *trailv1.GetInclusionProofResponse) { r.TenantId = "other" }},
		{"proof of another leaf", v, func(_ *trailv1.Receipt, p *trailv1.GetInclusionProofResponse) {
			p.LeafIndex, p.Proof, p.EntryBytes = other.GetLeafIndex(), other.GetProof(), other.GetEntryBytes()
		}},
		{"checkpoint note edited", v, func(_ *trailv1.Receipt, p *trailv1.GetInclusionProofResponse) {
			b := []byte(p.Checkpoint.SignedNote)
			b[0] ^= 1 // the origin's first letter
			p.Checkpoint.SignedNote = string(b)
		}},
		{"checkpoint missing", v, func(_ *trailv1.Receipt, p *trailv1.GetInclusionProofResponse) { p.Checkpoint = nil }},
		{"tree size mismatch", v, func(_ *trailv1.Receipt, p *trailv1.GetInclusionProofResponse) { p.TreeSize++ }},
		{"another log's key", stranger, func(*trailv1.Receipt, *trailv1.GetInclusionProofResponse) {}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r2 := proto.CloneOf(r)
			p2 := proto.CloneOf(proof)
			tc.tamper(r2, p2)
			if err := tc.v.Verify(r2, p2); !errors.Is(err, client.ErrUnproven) {
				t.Fatalf("Verify: %v, want ErrUnproven", err)
			}
		})
	}

	// A pruned entry (no payload) is still proven by the receipt's leaf hash.
	p2 := proto.CloneOf(proof)
	p2.EntryBytes = nil
	if err := v.Verify(r, p2); err != nil {
		t.Fatalf("proof without entry bytes: %v", err)
	}
	if _, err := client.NewVerifier("not a key"); err == nil {
		t.Fatal("NewVerifier accepted garbage")
	}
}

// TestProveNeedsReadKey: a producer key may not read proofs; Prove says so
// rather than trying every node.
func TestProveNeedsReadKey(t *testing.T) {
	n := startNode(t)
	c := newClient(t, client.Config{Addrs: []string{n.Addr}, Token: key(t, n, trailv1.Role_ROLE_PRODUCER)})
	r, err := c.AppendWait(ctxFor(t), event("prove", 0))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Prove(ctxFor(t), r); err == nil {
		t.Fatal("Prove with a producer key succeeded")
	}
}
