package raftnode

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/trailaudit/trail/engine"
	"github.com/trailaudit/trail/internal/storagefault"
	"github.com/trailaudit/trail/merkle"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// cosigners gives each node of a test cluster its own key and returns
// the verifiers, by node id.
func cosigners(t *testing.T, ids []string) (func(*Config), map[string]note.Verifier) {
	t.Helper()
	signers := map[string]note.Signer{}
	vkeys := map[string]string{}
	verifiers := map[string]note.Verifier{}
	for _, id := range ids {
		skey, vkey, err := note.GenerateKey(nil, "test.trail/node/"+id)
		if err != nil {
			t.Fatal(err)
		}
		s, err := note.NewSigner(skey)
		if err != nil {
			t.Fatal(err)
		}
		v, err := note.NewVerifier(vkey)
		if err != nil {
			t.Fatal(err)
		}
		signers[id], vkeys[id], verifiers[id] = s, vkey, v
	}
	return func(c *Config) { c.Cosigner, c.CosignerKey = signers[c.ID], vkeys[c.ID] }, verifiers
}

// TestCosign: every node cosigns the checkpoint it recomputes from its own
// copy, the cosignatures verify with x/mod/sumdb/note as any third party
// would check them, a checkpoint with a root no replica holds (what a
// stolen log key could sign) is cosigned by none, and a node whose copy
// was tampered with withholds its cosignature while the others give
// theirs.
func TestCosign(t *testing.T) {
	c := newCluster(t, 3, nil)
	tune, verifiers := cosigners(t, c.ids)
	c.tune = tune
	c.boot()
	var evs []*trailv1.Event
	for i := range 20 {
		evs = append(evs, event("acme", fmt.Sprintf("e-%d", i)))
	}
	r := appendOK(t, c.nodes[c.leader(10*time.Second)], evs...)
	p := engine.Partition{Tenant: "acme", Month: r[0].Partition}
	c.converge([]string{"acme"})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	var vlist []note.Verifier
	for _, v := range verifiers {
		vlist = append(vlist, v)
	}
	checkpoint := func(size uint64) merkle.Checkpoint {
		t.Helper()
		var cp merkle.Checkpoint
		if err := c.nodes[0].View(func(e *engine.Engine) (err error) { cp, err = e.Checkpoint(ctx, p, size); return err }); err != nil {
			t.Fatal(err)
		}
		return cp
	}
	// sign returns the body with every cosignature that came back, and the
	// nodes that refused.
	sign := func(via *Node, cp merkle.Checkpoint) (*note.Note, map[string]error) {
		t.Helper()
		body := cp.Marshal()
		msg := string(body) + "\n"
		refused := map[string]error{}
		for _, cs := range via.Cosign(ctx, p, body) {
			if cs.Err != nil {
				refused[cs.NodeID] = cs.Err
				continue
			}
			msg += cs.Line + "\n"
		}
		if len(refused) == 3 {
			return nil, refused
		}
		n, err := note.Open([]byte(msg), note.VerifierList(vlist...))
		if err != nil {
			t.Fatalf("cosigned note does not verify: %v\n%s", err, msg)
		}
		return n, refused
	}

	n, refused := sign(c.nodes[1], checkpoint(20))
	if len(refused) != 0 || len(n.Sigs) != 3 {
		t.Fatalf("cosignatures %d, refused %v", len(n.Sigs), refused)
	}

	// A root no replica holds, signed by whoever has the log key.
	forged := checkpoint(20)
	forged.Root[0] ^= 1
	if _, refused := sign(c.nodes[0], forged); len(refused) != 3 {
		t.Fatalf("a forged root was cosigned: refused only by %v", refused)
	} else {
		for id, err := range refused {
			if !errors.Is(err, ErrRootDiffers) {
				t.Errorf("%s refused the forged root with %v, want ErrRootDiffers", id, err)
			}
		}
	}
	wrongOrigin := checkpoint(20)
	wrongOrigin.Origin = "other.log/acme/" + p.Month.String()
	if _, refused := sign(c.nodes[0], wrongOrigin); len(refused) != 3 {
		t.Fatalf("another log's checkpoint was cosigned")
	}

	// Tamper with n2's stored tree under the first leaves: its root at
	// size 5 (read from the file, not from the in-memory right edge) is no
	// longer the others'.
	if _, err := storagefault.FlipHashes(c.dirs[2], p.Tenant, p.Month.String()); err != nil {
		t.Fatal(err)
	}
	n, refused = sign(c.nodes[0], checkpoint(5))
	if len(refused) != 1 || !errors.Is(refused["n2"], ErrRootDiffers) || len(n.Sigs) != 2 {
		t.Fatalf("after tampering with n2: %d cosignatures, refused %v", len(n.Sigs), refused)
	}
	for _, s := range n.Sigs {
		if strings.HasSuffix(s.Name, "/n2") {
			t.Errorf("the tampered node cosigned")
		}
	}
}

func TestCosignWithoutKey(t *testing.T) {
	c := newCluster(t, 1, nil)
	c.boot()
	r := appendOK(t, c.nodes[0], event("acme", "e-1"))
	p := engine.Partition{Tenant: "acme", Month: r[0].Partition}
	cp := merkle.Checkpoint{Origin: p.Origin("test.trail"), Size: 1}
	got := c.nodes[0].Cosign(context.Background(), p, cp.Marshal())
	if len(got) != 1 || !errors.Is(got[0].Err, ErrNoCosigner) {
		t.Fatalf("%+v", got)
	}
}
