package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"time"

	"github.com/trailaudit/trail/merkle"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// verifyConfig is the verify scenario: fetch a run of a partition's
// entries, a signed checkpoint and a sample of proofs from a cluster, then
// measure offline verification, no network, in entries per second.
type verifyConfig struct {
	run         runFlags
	target      targetFlags
	logSize     int
	workers     []int
	tenant      string
	proofSample int
	loaders     int
	eventBytes  int
}

func parseVerify(args []string) (verifyConfig, error) {
	var c verifyConfig
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	c.run.register(fs, 3*time.Second)
	c.target.register(fs)
	fs.IntVar(&c.logSize, "log-size", 200_000, "events loaded into the tenant first (0: verify the tenant's existing newest partition)")
	workers := fs.String("workers", "1,"+strconv.Itoa(runtime.GOMAXPROCS(0)), "comma-separated verifier goroutine counts, one row each")
	fs.StringVar(&c.tenant, "tenant", "bench-verify", "tenant whose partition is verified")
	fs.IntVar(&c.proofSample, "proof-sample", 1000, "inclusion proofs fetched from the server and checked against the offline ones")
	fs.IntVar(&c.loaders, "loaders", 4, "concurrent AppendBatch calls while loading")
	fs.IntVar(&c.eventBytes, "event-bytes", 512, "approximate encoded event size")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	var err error
	if c.workers, err = parseCounts("workers", *workers); err != nil {
		return c, err
	}
	if c.logSize < 0 || c.proofSample < 0 || c.loaders < 1 {
		return c, errors.New("-log-size, -proof-sample and -loaders must not be negative")
	}
	return c, c.target.check()
}

type verifyReport struct {
	header
	Load          *loadResult `json:"load,omitempty"`
	Partition     string      `json:"partition"`
	Entries       int         `json:"entries"`
	EntryBytes    float64     `json:"entry_bytes"`
	FetchSeconds  float64     `json:"fetch_seconds"`
	SampleChecked int         `json:"proofs_fetched_and_checked"`
	Rows          []verifyRow `json:"rows"`
}

type verifyRow struct {
	Mode          string  `json:"mode"`
	Workers       int     `json:"workers"`
	Passes        int     `json:"passes"`
	Seconds       float64 `json:"seconds"`
	EntriesPerSec float64 `json:"entries_per_sec"`
	// OfSHA256Ceiling compares with hashing one 512-byte message per entry
	// on each worker's core: no verifier can do less than hash each entry.
	OfSHA256Ceiling float64 `json:"of_sha256_ceiling"`
	LoadAvg         float64 `json:"load_avg"`
}

var verifyModes = []verifyMode{
	{name: "chain+root"},
	{name: "chain+proofs", proofs: true},
	{name: "chain+root+decode", decode: true},
}

func runVerify(args []string) error {
	return runScenario(args, parseVerify, func(c verifyConfig) runFlags { return c.run }, benchVerify, printVerify)
}

func benchVerify(ctx context.Context, c verifyConfig) (_ *verifyReport, err error) {
	rep := &verifyReport{header: newHeader()}
	root, cleanup, err := prepare(c.run, &rep.header)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	ev, err := gatherEvidence(ctx, c, root, rep)
	if err != nil {
		return nil, err
	}
	// Not timed: the per-entry proofs are computed from the served leaf
	// hashes and checked against the proofs the server gave.
	if err := ev.buildProofs(ctx); err != nil {
		return nil, err
	}
	if err := ev.compareSample(ctx); err != nil {
		return nil, err
	}
	var bytes int
	for _, e := range ev.entries {
		bytes += len(e)
	}
	rep.Entries, rep.EntryBytes = len(ev.entries), float64(bytes)/float64(len(ev.entries))
	prof := newProfiler(c.run, len(verifyModes)*len(c.workers))
	leaves := make([]merkle.Hash, len(ev.entries))
	for _, m := range verifyModes {
		for _, w := range c.workers {
			row, err := measureVerify(ev, m, w, c.run.duration, leaves, prof)
			if err != nil {
				return nil, fmt.Errorf("%s, %d workers: %w", m.name, w, err)
			}
			row.OfSHA256Ceiling = row.EntriesPerSec / (rep.Ceilings.SHA256PerSec * float64(w))
			rep.Rows = append(rep.Rows, row)
		}
	}
	if ev.bundlePath != "" {
		for _, w := range c.workers {
			row, err := measureBundleVerify(ev.bundlePath, ev.key, w, c.run.duration, prof)
			if err != nil {
				return nil, fmt.Errorf("%s, %d workers: %w", bundleMode, w, err)
			}
			row.OfSHA256Ceiling = row.EntriesPerSec / (rep.Ceilings.SHA256PerSec * float64(w))
			rep.Rows = append(rep.Rows, row)
		}
		rep.Notes = append(rep.Notes, fmt.Sprintf("export bundle: the tenant's attested export (%d bytes, %.0f B/entry), verified as trailctl verify --bundle does: "+
			"signatures, every leaf hash from the entry bytes, run proofs, the chain, the manifest digest; workers verify the file concurrently, each front to back",
			ev.bundleBytes, float64(ev.bundleBytes)/float64(len(ev.entries))))
	} else {
		rep.Notes = append(rep.Notes, "no -vkey: the export bundle row needs the log's key and was skipped")
	}
	rep.Notes = append(rep.Notes, "offline: the cluster was stopped before measuring; the entries, leaf hashes and checkpoint are as served",
		"chain+root rebuilds the partition's root from every leaf; chain+proofs verifies one inclusion proof per entry; +decode decodes every entry fully instead of reading only its links")
	return rep, nil
}

// gatherEvidence loads the log, fetches the run, its signed checkpoint and
// a sample of proofs, and stops the cluster so that the offline phase has
// the machine to itself.
func gatherEvidence(ctx context.Context, c verifyConfig, root string, rep *verifyReport) (_ *evidence, err error) {
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
	rep.Partition = head.Partition
	start := time.Now()
	ev, err := fetchRun(ctx, tgt.reads(0), c.tenant, head.Partition, head.Size)
	if err != nil {
		return nil, err
	}
	if ev.root, err = fetchRoot(ctx, tgt, c.tenant, head); err != nil {
		return nil, err
	}
	if ev.sample, err = fetchSample(ctx, tgt, c.tenant, head, c.proofSample); err != nil {
		return nil, err
	}
	if tgt.verifier != nil && c.logSize > 0 {
		// Only a tenant the scenario loaded itself: its export is exactly
		// the partition fetched above.
		ev.bundlePath, ev.key = filepath.Join(root, "bench.bundle"), tgt.verifier
		if ev.bundleBytes, err = exportBundle(ctx, tgt, c.tenant, ev.bundlePath); err != nil {
			return nil, err
		}
	}
	rep.FetchSeconds = time.Since(start).Seconds()
	rep.SampleChecked = len(ev.sample)
	if tgt.verifier == nil {
		rep.Notes = append(rep.Notes, "no -vkey: the checkpoint's signature was not checked, only its root")
	}
	return ev, nil
}

// fetchRoot gets the signed checkpoint at the run's size and opens it.
func fetchRoot(ctx context.Context, tgt *target, tenant string, head treeHead) (merkle.Hash, error) {
	resp, err := tgt.proofs(0).GetCheckpoint(ctx, &trailv1.GetCheckpointRequest{
		TenantId: tenant, Partition: head.Partition, TreeSize: head.Size, MinIndex: head.Applied,
	})
	if err != nil {
		return merkle.Hash{}, fmt.Errorf("checkpoint: %w", err)
	}
	cp := resp.GetCheckpoint()
	if tgt.verifier == nil {
		var root merkle.Hash
		copy(root[:], cp.GetRootHash())
		return root, nil
	}
	c, err := merkle.OpenCheckpoint([]byte(cp.GetSignedNote()), tgt.verifier)
	if err != nil {
		return merkle.Hash{}, err
	}
	if c.Size != head.Size {
		return merkle.Hash{}, fmt.Errorf("checkpoint of size %d, asked for %d", c.Size, head.Size)
	}
	return c.Root, nil
}

// sampledProof is a proof as the server served it, already verified.
type sampledProof struct {
	leaf  uint64
	proof []merkle.Hash
}

func fetchSample(ctx context.Context, tgt *target, tenant string, head treeHead, n int) ([]sampledProof, error) {
	rng := rand.New(rand.NewPCG(1, 2))
	pc := tgt.proofs(0)
	out := make([]sampledProof, 0, n)
	for range n {
		leaf := rng.Uint64N(head.Size)
		resp, err := pc.GetInclusionProof(ctx, &trailv1.GetInclusionProofRequest{
			TenantId: tenant, Partition: head.Partition, LeafIndex: leaf, TreeSize: head.Size, MinIndex: head.Applied,
		})
		if err != nil {
			return nil, fmt.Errorf("inclusion proof of leaf %d: %w", leaf, err)
		}
		if err := checkInclusion(resp, tenant, leaf, head.Size, tgt.verifier); err != nil {
			return nil, err
		}
		p, _ := hashesOf(resp.GetProof()) // checked by checkInclusion
		out = append(out, sampledProof{leaf, p})
	}
	return out, nil
}

// compareSample checks that the offline proofs are the server's.
func (ev *evidence) compareSample(ctx context.Context) error {
	for _, s := range ev.sample {
		if !slices.Equal(ev.proofs[s.leaf], s.proof) {
			return fmt.Errorf("offline proof of leaf %d differs from the server's", s.leaf)
		}
	}
	return ctx.Err()
}

// measureVerify runs whole passes for at least d.
func measureVerify(ev *evidence, m verifyMode, workers int, d time.Duration, leaves []merkle.Hash, prof *profiler) (verifyRow, error) {
	row := verifyRow{Mode: m.name, Workers: workers, LoadAvg: loadAvg()}
	if err := prof.start(); err != nil {
		return row, err
	}
	defer prof.stop()
	start := time.Now()
	for row.Passes == 0 || time.Since(start) < d {
		if err := ev.verifyPass(m, workers, leaves); err != nil {
			return row, err
		}
		row.Passes++
	}
	row.Seconds = time.Since(start).Seconds()
	row.EntriesPerSec = float64(row.Passes*len(ev.entries)) / row.Seconds
	return row, nil
}

func printVerify(r *verifyReport) {
	printHeader(r.header)
	if r.Load != nil {
		fmt.Printf("loaded %d events in %.1f s (%.0f events/s, AppendBatch of 1000)\n", r.Load.Events, r.Load.Seconds, r.Load.EventsPerSec)
	}
	fmt.Printf("fetched %d entries of %s (mean %.0f B) with their checkpoint and %d sampled proofs in %.1f s\n\n",
		r.Entries, r.Partition, r.EntryBytes, r.SampleChecked, r.FetchSeconds)
	fmt.Printf("%-18s %7s %7s %8s %12s %10s %6s\n", "mode", "workers", "passes", "seconds", "entries/s", "of sha256", "load")
	for _, w := range r.Rows {
		fmt.Printf("%-18s %7d %7d %8.1f %12.0f %9.0f%% %6.1f\n", w.Mode, w.Workers, w.Passes, w.Seconds, w.EntriesPerSec,
			100*w.OfSHA256Ceiling, w.LoadAvg)
	}
}
