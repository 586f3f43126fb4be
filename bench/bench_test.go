package main

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/trailaudit/trail/internal/eventgen"
	"github.com/trailaudit/trail/merkle"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// These smoke tests run every scenario with tiny parameters against a
// throwaway single node and check that the reports are consistent. They
// assert nothing about speed: the numbers belong in RESULTS.md.

// tiny are the flags that keep a scenario short.
var tiny = []string{"-local", "1", "-ceiling-time", "20ms", "-conns", "2"}

func args(extra ...string) []string { return append(append([]string{}, tiny...), extra...) }

func checkOrdered(t *testing.T, what string, p percentiles) {
	t.Helper()
	if p.P50 <= 0 || p.P50 > p.P90 || p.P90 > p.P99 || p.P99 > p.P999 {
		t.Errorf("%s: percentiles out of order: %+v", what, p)
	}
}

func TestAppendSmoke(t *testing.T) {
	for _, mode := range [][]string{
		{"-producers", "2", "-batch", "1"},
		{"-producers", "2", "-batch", "10", "-stream", "-window", "2"},
		{"-producers", "1", "-batch", "5", "-rate", "200"},
	} {
		c, err := parseAppend(args(append(mode, "-duration", "400ms", "-warmup", "100ms")...))
		if err != nil {
			t.Fatal(err)
		}
		c.target.fastElections = true // production timing costs a second or two per cluster
		rep, err := benchAppend(context.Background(), c)
		if err != nil {
			t.Fatalf("%v: %v", mode, err)
		}
		if len(rep.Rows) != 1 {
			t.Fatalf("%v: %d rows", mode, len(rep.Rows))
		}
		r := rep.Rows[0]
		if r.Failed != 0 || r.Acked != r.Sent || r.Acked == 0 {
			t.Errorf("%v: sent %d, acked %d, duplicates %d, failed %d (%s)", mode, r.Sent, r.Acked, r.Duplicates, r.Failed, r.FirstError)
		}
		if r.Calls*int64(r.Batch) != r.Sent {
			t.Errorf("%v: %d calls of %d events, but %d sent", mode, r.Calls, r.Batch, r.Sent)
		}
		checkOrdered(t, r.Mode, r.Latency)
		if r.EventBytes < 400 || r.EventBytes > 700 {
			t.Errorf("%v: mean event of %.0f bytes, asked for about 512", mode, r.EventBytes)
		}
		if r.DiskPerEvent < r.EventBytes/2 || r.RaftPerEvent <= 0 || r.CPUSeconds <= 0 || r.PeakRSSBytes <= 0 {
			t.Errorf("%v: disk %.0f B/event (raft %.0f), CPU %.2f s, RSS %d", mode, r.DiskPerEvent, r.RaftPerEvent, r.CPUSeconds, r.PeakRSSBytes)
		}
	}
}

// TestAppendTraildProcesses runs an append row against a node started as
// its own traild process, built here from ./cmd/traild, and checks that
// the node was measured on its own: RSS and CPU from /proc, disk from its
// data directory.
func TestAppendTraildProcesses(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build traild with")
	}
	bin := filepath.Join(t.TempDir(), "traild")
	if out, err := exec.Command(goTool, "build", "-o", bin, "github.com/trailaudit/trail/cmd/traild").CombinedOutput(); err != nil {
		t.Fatalf("go build traild: %v\n%s", err, out)
	}
	c, err := parseAppend(args("-traild", bin, "-producers", "2", "-batch", "10", "-duration", "1s", "-warmup", "200ms"))
	if err != nil {
		t.Fatal(err)
	}
	c.target.fastElections = true
	rep, err := benchAppend(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Rows) != 1 || !strings.Contains(rep.Target, "traild processes") {
		t.Fatalf("%d rows, target %q", len(rep.Rows), rep.Target)
	}
	r := rep.Rows[0]
	if r.Failed != 0 || r.Acked == 0 || r.Acked != r.Sent {
		t.Errorf("sent %d, acked %d, failed %d (%s)", r.Sent, r.Acked, r.Failed, r.FirstError)
	}
	if len(r.PerNode) != 1 {
		t.Fatalf("per node: %+v", r.PerNode)
	}
	n := r.PerNode[0]
	if n.Node != "n1" || n.Error != "" || n.Warning != "" {
		t.Errorf("node %q: error %q, warning %q", n.Node, n.Error, n.Warning)
	}
	if n.PeakRSSBytes <= 0 || n.CPUSeconds <= 0 || n.CPUSecPerMEvent <= 0 || n.DiskPerEvent <= 0 || r.DiskPerEvent <= 0 {
		t.Errorf("node %s: peak RSS %d B, CPU %.2f s (%.1f s/M), disk %.0f B/event (row: %.0f)",
			n.Node, n.PeakRSSBytes, n.CPUSeconds, n.CPUSecPerMEvent, n.DiskPerEvent, r.DiskPerEvent)
	}
}

func TestProveSmoke(t *testing.T) {
	c, err := parseProve(args("-log-size", "300", "-clients", "2", "-duration", "300ms", "-verify-every", "1"))
	if err != nil {
		t.Fatal(err)
	}
	c.target.fastElections = true // production timing costs a second or two per cluster
	rep, err := benchProve(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Load == nil || rep.Load.Events != 300 {
		t.Fatalf("load: %+v", rep.Load)
	}
	r := rep.Rows[0]
	if r.TreeSize != 300 || r.Proofs == 0 || r.Failed != 0 || r.Verified != r.Proofs || !r.SignaturesChk {
		t.Errorf("tree %d: %d proofs, %d verified (signatures %v), %d failed (%s)", r.TreeSize, r.Proofs, r.Verified, r.SignaturesChk, r.Failed, r.FirstError)
	}
	if r.ProofHashes < 8 || r.ProofHashes > 9 { // ceil(log2(300))
		t.Errorf("proofs of %d hashes in a tree of 300", r.ProofHashes)
	}
	checkOrdered(t, "prove", r.Latency)
}

func TestMixedSmoke(t *testing.T) {
	c, err := parseMixed(args("-log-size", "300", "-workers", "4", "-duration", "500ms", "-mix", "2,1,1", "-verify-every", "1"))
	if err != nil {
		t.Fatal(err)
	}
	c.target.fastElections = true // production timing costs a second or two per cluster
	rep, err := benchMixed(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range rep.Ops {
		if o.Calls == 0 || o.Failed != 0 {
			t.Errorf("%s: %d calls, %d failed (%s)", o.Op, o.Calls, o.Failed, o.FirstError)
		}
		checkOrdered(t, o.Op, o.Latency)
	}
	if ap := rep.Ops[0]; ap.Events != ap.Sent {
		t.Errorf("append: %d events sent, %d acknowledged", ap.Sent, ap.Events)
	}
	if pr := rep.Ops[1]; pr.Verified != pr.Calls {
		t.Errorf("prove: %d proofs, %d verified", pr.Calls, pr.Verified)
	}
	if rep.Ops[2].Hits == 0 {
		t.Error("search: no hits")
	}
}

func TestVerifySmoke(t *testing.T) {
	c, err := parseVerify(args("-log-size", "300", "-workers", "1,3", "-duration", "50ms", "-proof-sample", "20"))
	if err != nil {
		t.Fatal(err)
	}
	c.target.fastElections = true // production timing costs a second or two per cluster
	rep, err := benchVerify(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Entries != 300 || rep.SampleChecked != 20 {
		t.Errorf("%d entries, %d sampled proofs", rep.Entries, rep.SampleChecked)
	}
	// Each mode and the export bundle, at each worker count.
	if len(rep.Rows) != (len(verifyModes)+1)*2 || rep.Rows[len(rep.Rows)-1].Mode != bundleMode {
		t.Fatalf("%d rows, the last %q", len(rep.Rows), rep.Rows[len(rep.Rows)-1].Mode)
	}
	for _, r := range rep.Rows {
		if r.Passes == 0 || r.EntriesPerSec <= 0 {
			t.Errorf("%s/%d: %d passes, %.0f entries/s", r.Mode, r.Workers, r.Passes, r.EntriesPerSec)
		}
	}
}

// TestVerifyDetectsTampering checks that the offline verifier is not
// vacuous: a changed byte, a reordered pair or a wrong root must fail.
func TestVerifyDetectsTampering(t *testing.T) {
	ev := testEvidence(t, 37)
	leaves := make([]merkle.Hash, len(ev.entries))
	for _, m := range verifyModes {
		for _, w := range []int{1, 3} {
			if err := ev.verifyPass(m, w, leaves); err != nil {
				t.Fatalf("%s/%d on intact evidence: %v", m.name, w, err)
			}
		}
	}
	tamper := []struct {
		name string
		do   func(e *evidence)
	}{
		{"flipped byte", func(e *evidence) {
			e.entries[20] = append([]byte{}, e.entries[20]...)
			e.entries[20][len(e.entries[20])-1] ^= 1
		}},
		{"swapped entries", func(e *evidence) {
			e.entries[5], e.entries[6] = e.entries[6], e.entries[5]
			e.served[5], e.served[6] = e.served[6], e.served[5]
		}},
		{"wrong root", func(e *evidence) { e.root[0] ^= 1 }},
		{"forged entry with its own leaf hash", func(e *evidence) {
			e.entries[20] = append([]byte{}, e.entries[20]...)
			e.entries[20][len(e.entries[20])-1] ^= 1
			e.served[20] = merkle.LeafHash(e.entries[20])
		}},
	}
	for _, tc := range tamper {
		for _, m := range verifyModes {
			for _, w := range []int{1, 3} {
				e := testEvidence(t, 37)
				tc.do(e)
				if err := e.verifyPass(m, w, leaves); err == nil {
					t.Errorf("%s: %s/%d accepted it", tc.name, m.name, w)
				}
			}
		}
	}
}

// testEvidence builds a run of n entries encoded as the engine stores
// them, each linked to the one before, with its root and proofs.
func testEvidence(t *testing.T, n int) *evidence {
	t.Helper()
	g := eventgen.New(eventgen.Config{Seed: 1, Tenants: 1, TargetBytes: 200})
	ev := &evidence{}
	var prev merkle.Hash
	for i := range n {
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(&trailv1.Entry{
			Event: g.Next(), SequencerTime: timestamppb.New(time.Date(2026, 11, 1, 0, 0, i, 0, time.UTC)),
			Partition: "2026-11", LeafIndex: uint64(i), PrevLeafHash: prev[:],
		})
		if err != nil {
			t.Fatal(err)
		}
		prev = merkle.LeafHash(b)
		ev.entries = append(ev.entries, b)
		ev.served = append(ev.served, prev)
	}
	ev.root = merkle.NewMemoryNodes(ev.served).Root()
	if err := ev.buildProofs(context.Background()); err != nil {
		t.Fatal(err)
	}
	return ev
}
