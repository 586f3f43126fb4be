package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"

	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// proveConfig is the prove scenario: a log of logSize events in one
// tenant's partition, then random inclusion proofs from concurrent clients.
type proveConfig struct {
	run         runFlags
	target      targetFlags
	logSize     int
	clients     []int
	verifyEvery int
	tenant      string
	loaders     int
	eventBytes  int
}

func parseProve(args []string) (proveConfig, error) {
	var c proveConfig
	fs := flag.NewFlagSet("prove", flag.ContinueOnError)
	c.run.register(fs, 20*time.Second)
	c.target.register(fs)
	fs.IntVar(&c.logSize, "log-size", 1_000_000, "events loaded into the tenant first (0: use the tenant's existing log)")
	clients := fs.String("clients", "16", "comma-separated concurrent client counts, one row each")
	fs.IntVar(&c.verifyEvery, "verify-every", 100, "verify every Nth proof client-side (signature, leaf hash, path)")
	fs.StringVar(&c.tenant, "tenant", "bench-proofs", "tenant whose log is proven")
	fs.IntVar(&c.loaders, "loaders", 4, "concurrent AppendBatch calls while loading")
	fs.IntVar(&c.eventBytes, "event-bytes", 512, "approximate encoded event size")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	var err error
	if c.clients, err = parseCounts("clients", *clients); err != nil {
		return c, err
	}
	if c.logSize < 0 || c.verifyEvery < 1 || c.loaders < 1 {
		return c, errors.New("-log-size, -verify-every and -loaders must be positive")
	}
	return c, c.target.check()
}

type proveReport struct {
	header
	Load *loadResult `json:"load,omitempty"`
	Rows []proveRow  `json:"rows"`
}

type proveRow struct {
	Nodes         int         `json:"nodes"`
	Clients       int         `json:"clients"`
	Partition     string      `json:"partition"`
	TreeSize      uint64      `json:"tree_size"`
	Seconds       float64     `json:"seconds"`
	Proofs        int64       `json:"proofs"`
	Failed        int64       `json:"failed"`
	FirstError    string      `json:"first_error,omitempty"`
	Verified      int64       `json:"verified"`
	SignaturesChk bool        `json:"signatures_checked"`
	ProofsPerSec  float64     `json:"proofs_per_sec"`
	Latency       percentiles `json:"latency_us"`
	ProofHashes   int         `json:"proof_hashes"`
	CPUSecPerMOp  float64     `json:"cpu_sec_per_million_proofs"`
	resourceUse
}

func runProve(args []string) error {
	return runScenario(args, parseProve, func(c proveConfig) runFlags { return c.run }, benchProve, printProve)
}

func benchProve(ctx context.Context, c proveConfig) (_ *proveReport, err error) {
	rep := &proveReport{header: newHeader()}
	root, cleanup, err := prepare(c.run, &rep.header)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	tgt, err := openTarget(ctx, c.target, root, c.run.verbose)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, tgt.close(ctx)) }()
	rep.Target = tgt.describe()
	tr := newTreeTracker()
	if c.logSize > 0 {
		tmpl := newTemplates(4096, c.eventBytes, 8)
		load, err := loadLog(ctx, tgt, tmpl, runID(), c.tenant, c.logSize, c.loaders, tr)
		if err != nil {
			return nil, err
		}
		rep.Load = &load
	}
	head, err := currentHead(ctx, tgt, c.tenant, tr)
	if err != nil {
		return nil, err
	}
	prof := newProfiler(c.run, len(c.clients))
	for _, n := range c.clients {
		row, err := proveRowOnce(ctx, tgt, c, head, n, prof)
		if err != nil {
			return nil, fmt.Errorf("%d clients: %w", n, err)
		}
		rep.Rows = append(rep.Rows, row)
	}
	rep.Notes = append(rep.Notes, c.target.resourceNotes()...)
	rep.Notes = append(rep.Notes, rep.nodeRows().notes()...)
	if tgt.verifier == nil {
		rep.Notes = append(rep.Notes, "no -vkey: checkpoint signatures were not checked, only roots")
	}
	rep.Notes = append(rep.Notes, "every proof call is also audited by the server (an event appended to the system tenant through Raft)")
	return rep, nil
}

// currentHead is the tenant's newest partition and its size: from the
// load's receipts, or asked of the cluster when nothing was loaded.
func currentHead(ctx context.Context, tgt *target, tenant string, tr *treeTracker) (treeHead, error) {
	if h := tr.head(tenant); h.Size > 0 {
		return h, nil
	}
	resp, err := tgt.proofs(0).ListPartitions(ctx, &trailv1.ListPartitionsRequest{TenantId: tenant})
	if err != nil {
		return treeHead{}, fmt.Errorf("list partitions of %s: %w", tenant, err)
	}
	ps := resp.GetPartitions()
	if len(ps) == 0 || ps[len(ps)-1].GetSize() == 0 {
		return treeHead{}, fmt.Errorf("tenant %s has no entries; load some with -log-size", tenant)
	}
	last := ps[len(ps)-1]
	return treeHead{Partition: last.GetPartition(), Size: last.GetSize()}, nil
}

func proveRowOnce(ctx context.Context, tgt *target, c proveConfig, head treeHead, n int, prof *profiler) (proveRow, error) {
	row := proveRow{Nodes: tgt.nodes, Clients: n, Partition: head.Partition, TreeSize: head.Size, SignaturesChk: tgt.verifier != nil}
	ps := make([]*prover, n)
	for i := range ps {
		ps[i] = newProver(tgt.proofs(i), uint64(i)<<16|uint64(n), c.verifyEvery, tgt.verifier)
	}
	if err := prof.start(); err != nil {
		return row, err
	}
	m := tgt.startMeter(ctx)
	st, elapsed := runProvers(ctx, ps, c.tenant, head, c.run.duration)
	use := m.stop(ctx)
	if err := prof.stop(); err != nil {
		return row, err
	}
	row.Seconds, row.Proofs, row.Failed, row.FirstError = elapsed.Seconds(), st.ok, st.failed, st.firstErr
	row.Verified, row.Latency, row.ProofHashes = st.verified, st.lat.percentiles(), st.proofLen
	row.ProofsPerSec = float64(st.ok) / elapsed.Seconds()
	row.CPUSecPerMOp = perMillion(use.CPUSeconds, st.ok)
	for i := range use.PerNode {
		use.PerNode[i].CPUSecPerMProof = perMillion(use.PerNode[i].CPUSeconds, st.ok)
	}
	row.resourceUse = use
	return row, nil
}

// readStats are one reader's counts.
type readStats struct {
	ok, failed, verified int64
	proofLen             int
	firstErr             string
	lat                  *latencyHist
}

func newReadStats() *readStats { return &readStats{lat: newLatencyHist()} }

func (s *readStats) fail(err error) {
	s.failed++
	if s.firstErr == "" {
		s.firstErr = err.Error()
	}
}

func (s *readStats) add(o *readStats) {
	s.ok += o.ok
	s.failed += o.failed
	s.verified += o.verified
	s.proofLen = max(s.proofLen, o.proofLen)
	if s.firstErr == "" {
		s.firstErr = o.firstErr
	}
	s.lat.merge(o.lat)
}

// prover asks for inclusion proofs of uniformly random leaves against a
// fixed tree size, so that every proof leads to the same checkpoint.
type prover struct {
	client      trailv1.ProofServiceClient
	rng         *rand.Rand
	verifyEvery int
	verifier    note.Verifier
	calls       int
}

func newProver(client trailv1.ProofServiceClient, seed uint64, verifyEvery int, v note.Verifier) *prover {
	return &prover{client: client, rng: rand.New(rand.NewPCG(seed, 0x7072)), verifyEvery: verifyEvery, verifier: v}
}

// prove asks for one proof in tenant's tree head and verifies it when its
// turn comes.
func (p *prover) prove(ctx context.Context, st *readStats, tenant string, head treeHead) {
	leaf := p.rng.Uint64N(head.Size)
	start := time.Now()
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	resp, err := p.client.GetInclusionProof(cctx, &trailv1.GetInclusionProofRequest{
		TenantId: tenant, Partition: head.Partition, LeafIndex: leaf, TreeSize: head.Size, MinIndex: head.Applied,
	})
	cancel()
	st.lat.record(time.Since(start))
	if err != nil {
		st.fail(err)
		return
	}
	st.ok++
	st.proofLen = max(st.proofLen, len(resp.GetProof()))
	// The first proof of each client is among those verified, so that even
	// a short run checks some.
	verify := p.calls%p.verifyEvery == 0
	p.calls++
	if verify {
		if err := checkInclusion(resp, tenant, leaf, head.Size, p.verifier); err != nil {
			st.ok--
			st.fail(err)
			return
		}
		st.verified++
	}
}

func runProvers(ctx context.Context, ps []*prover, tenant string, head treeHead, d time.Duration) (*readStats, time.Duration) {
	stop, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	start := time.Now()
	out := make([]*readStats, len(ps))
	var wg sync.WaitGroup
	for i, p := range ps {
		wg.Go(func() {
			st := newReadStats()
			for stop.Err() == nil {
				p.prove(ctx, st, tenant, head)
			}
			out[i] = st
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	total := newReadStats()
	for _, s := range out {
		total.add(s)
	}
	return total, elapsed
}

func printProve(r *proveReport) {
	printHeader(r.header)
	if r.Load != nil {
		fmt.Printf("loaded %d events in %.1f s (%.0f events/s, AppendBatch of 1000)\n\n", r.Load.Events, r.Load.Seconds, r.Load.EventsPerSec)
	}
	fmt.Printf("%-5s %7s %10s %8s %10s %10s %6s %9s %26s %7s %9s %9s %8s\n",
		"nodes", "clients", "tree size", "hashes", "proofs", "proofs/s", "failed", "verified", "latency ms p50/p90/p99/p999",
		"sig chk", "RSS MiB", "CPU s/M", "load")
	for _, w := range r.Rows {
		fmt.Printf("%-5d %7d %10d %8d %10d %10.0f %6d %9d %26s %7v %9.0f %9.1f %3.1f-%.1f\n",
			w.Nodes, w.Clients, w.TreeSize, w.ProofHashes, w.Proofs, w.ProofsPerSec, w.Failed, w.Verified,
			fmtLatency(w.Latency), w.SignaturesChk, mib(w.PeakRSSBytes), w.CPUSecPerMOp, w.LoadAvg[0], w.LoadAvg[1])
		if w.FirstError != "" {
			fmt.Printf("      first error: %s\n", w.FirstError)
		}
	}
	r.nodeRows().print("proofs")
}

// nodeRows are the rows' per-node figures, each labelled by its clients.
func (r *proveReport) nodeRows() *nodeRows {
	var out nodeRows
	for _, w := range r.Rows {
		out.add(fmt.Sprintf("%d clients", w.Clients), w.PerNode)
	}
	return &out
}
