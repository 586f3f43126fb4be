package server

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/trailaudit/trail/internal/storagefault"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
	"github.com/trailaudit/trail/raftnode"
)

// TestCosignedCheckpoints: a cosigned checkpoint carries the log's
// signature and every node's, each verifiable by a third party with
// x/mod/sumdb/note alone; a node whose copy was tampered with withholds
// its cosignature and the refusal is recorded as an integrity violation;
// without a majority the server refuses to serve a cosigned checkpoint.
func TestCosignedCheckpoints(t *testing.T) {
	var mu sync.Mutex
	dirs := map[string]string{}
	var verifiers []note.Verifier
	e := newClusterEnv(t, func(c *raftnode.Config) {
		skey, vkey, err := note.GenerateKey(nil, testLogName+"/node/"+c.ID)
		if err != nil {
			t.Fatal(err)
		}
		s, _ := note.NewSigner(skey)
		v, _ := note.NewVerifier(vkey)
		c.Cosigner, c.CosignerKey = s, vkey
		mu.Lock()
		dirs[c.ID], verifiers = c.Dir, append(verifiers, v)
		mu.Unlock()
	})
	var evs []*trailv1.Event
	for i := range 20 {
		evs = append(evs, event("acme", fmt.Sprintf("c-%d", i)))
	}
	rs := e.appendAll(e.admin, evs)
	part := rs[0].GetPartition()
	scenarioFollower(t, e)
	waitFor(t, 20*time.Second, "n3 to catch up", func() bool { return e.peers[1].node.AppliedIndex() >= e.node.AppliedIndex() })
	ctx := e.ctx(e.admin)
	get := func(size uint64) (*trailv1.Checkpoint, error) {
		resp, err := e.proofs.GetCheckpoint(ctx, &trailv1.GetCheckpointRequest{TenantId: "acme", Partition: part, TreeSize: size, Cosigned: true})
		return resp.GetCheckpoint(), err
	}
	cosigners := func(signed string) []string {
		t.Helper()
		n, err := note.Open([]byte(signed), note.VerifierList(verifiers...))
		if err != nil {
			t.Fatalf("cosignatures do not verify: %v\n%s", err, signed)
		}
		var names []string
		for _, s := range n.Sigs {
			names = append(names, s.Name[strings.LastIndexByte(s.Name, '/')+1:])
		}
		return names
	}

	cp, err := get(0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := note.Open([]byte(cp.GetSignedNote()), note.VerifierList(e.verifier)); err != nil {
		t.Fatalf("the log's signature: %v", err)
	}
	if got := cosigners(cp.GetSignedNote()); len(got) != 3 {
		t.Fatalf("cosigned by %v, want n1, n2, n3", got)
	}
	// REST serves the same note as text.
	code, body, _ := e.rest("GET", "/api/v1/audit/tenants/acme/partitions/"+part+"/checkpoint?cosigned=true", e.admin, nil)
	if code != 200 || len(cosigners(string(body))) != 3 {
		t.Fatalf("REST: %d %s", code, body)
	}

	// n3's copy is tampered with under the first leaves.
	if _, err := storagefault.FlipHashes(dirs["n3"], "acme", part); err != nil {
		t.Fatal(err)
	}
	cp, err = get(5)
	if err != nil {
		t.Fatal(err)
	}
	if got := cosigners(cp.GetSignedNote()); len(got) != 2 || strings.Contains(strings.Join(got, ","), "n3") {
		t.Fatalf("after tampering with n3: cosigned by %v", got)
	}
	waitFor(t, 20*time.Second, "the refusal recorded as an integrity violation", func() bool {
		res, err := e.read.Search(ctx, &trailv1.SearchRequest{TenantId: "acme", Filter: &trailv1.Filter{Actions: []string{actionIntegrityViolation}}})
		if err != nil {
			return false
		}
		for _, se := range res.GetEntries() {
			a := se.GetEntry().GetEvent().GetAttributes()
			if a["kind"] == "cosign" && a["where"] == "n3" {
				return true
			}
		}
		return false
	})

	// With n2 down too, one cosignature is no majority.
	e.peers[0].node.Close()
	_, err = get(6)
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "cosigned by 1 of 3 voters") {
		t.Fatalf("one of three: %v", err)
	}
}
