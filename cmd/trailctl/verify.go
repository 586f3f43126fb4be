package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/trailaudit/trail/merkle"
)

// verifyFlags configure "trailctl verify". The command has no connection
// flags and no code path that dials: it checks saved evidence against the
// log's public key alone.
type verifyFlags struct {
	trust       trustFlags
	proof       string
	consistency string
	checkpoint  string
	chain       string
	bundle      string
	report      string
	tlogProof   string
	erasure     string
	tenant      string
	partition   string
	event       string
	json        bool

	// With --tlog-proof: the witnesses whose cosignatures are required,
	// how many of them (-1: all), and the leaf hash of a pruned entry.
	witnessKeys  []string
	minWitnesses int
	leafHash     string
}

func (f *verifyFlags) register(fs *flag.FlagSet) {
	f.trust.register(fs)
	fs.StringVar(&f.proof, "proof", "", "verify the inclusion proof `FILE` (as written by prove --out; - for stdin)")
	fs.StringVar(&f.consistency, "consistency", "", "verify the consistency proof `FILE` (as written by consistency --out)")
	fs.StringVar(&f.checkpoint, "checkpoint", "", "verify the signed checkpoint `FILE`; with --chain, also rebuild its root from the chain")
	fs.StringVar(&f.chain, "chain", "", "verify the chain `FILE`: JSON Lines of StoredEntry (as printed by tail --json)")
	fs.StringVar(&f.bundle, "bundle", "", "verify the export bundle `FILE` (as written by export; - for stdin)")
	fs.StringVar(&f.erasure, "erasure", "", "verify the signed erasure receipt `FILE` (as written by erase -o)")
	fs.StringVar(&f.report, "report", "", "verify the report `FILE`: JSON, CSV, PDF or bundle, as written by report pii|history (- for stdin)")
	fs.StringVar(&f.tlogProof, "tlog-proof", "", "verify the C2SP tlog-proof `FILE` (as written by prove --tlog-proof; - for stdin)")
	fs.Func("witness-vkey", "with --tlog-proof or --checkpoint: require a cosignature by the witness whose verifier key is in `FILE` (repeatable)", func(s string) error {
		f.witnessKeys = append(f.witnessKeys, s)
		return nil
	})
	fs.IntVar(&f.minWitnesses, "min-witnesses", -1, "with --witness-vkey: how many of those witnesses must have cosigned (default: all)")
	fs.StringVar(&f.leafHash, "leaf-hash", "", "with --tlog-proof of a pruned entry (no extra line): the leaf hash it proves, in hex")
	fs.StringVar(&f.tenant, "tenant", "", "also require the evidence to be about this tenant")
	fs.StringVar(&f.partition, "partition", "", "also require the evidence to be about this partition (YYYY-MM)")
	fs.StringVar(&f.event, "event", "", "also require an inclusion proof to be of this event id")
	fs.BoolVar(&f.json, "json", false, "print the result as a JSON object")
}

// check validates the combination: one kind of evidence, or a chain with
// the checkpoint its root is rebuilt against.
func (f *verifyFlags) check() error {
	n := 0
	for _, s := range []string{f.proof, f.consistency, f.chain, f.bundle, f.report, f.tlogProof, f.erasure} {
		if s != "" {
			n++
		}
	}
	switch {
	case n > 1:
		return usageErrorf("give one of --proof, --consistency and --chain, or --bundle, or --report, or --tlog-proof, or --erasure")
	case n == 0 && f.checkpoint == "":
		return usageErrorf("give one of --proof, --consistency, --checkpoint and --chain, or --bundle, or --report, or --tlog-proof, or --erasure")
	case f.checkpoint != "" && (f.proof != "" || f.consistency != "" || f.bundle != "" || f.report != "" || f.tlogProof != "" || f.erasure != ""):
		return usageErrorf("--checkpoint goes alone or with --chain")
	case f.tlogProof == "" && f.leafHash != "":
		return usageErrorf("--leaf-hash applies to --tlog-proof")
	case (f.tlogProof == "" && (f.checkpoint == "" || f.chain != "")) && (len(f.witnessKeys) > 0 || f.minWitnesses >= 0):
		return usageErrorf("--witness-vkey and --min-witnesses apply to --tlog-proof and to --checkpoint alone")
	case f.minWitnesses >= 0 && len(f.witnessKeys) == 0:
		return usageErrorf("--min-witnesses needs --witness-vkey")
	case f.minWitnesses < -1:
		return usageErrorf("--min-witnesses must not be negative")
	case f.chain == "-" && f.checkpoint == "-":
		return usageErrorf("--chain and --checkpoint cannot both read stdin")
	case f.event != "" && f.proof == "" && f.tlogProof == "":
		return usageErrorf("--event applies to --proof and --tlog-proof")
	case f.tenant != "" && validTenant(f.tenant) != nil:
		return usageErrorf("--tenant: %v", validTenant(f.tenant))
	case f.partition != "" && validPartition(f.partition) != nil:
		return usageErrorf("--partition: %v", validPartition(f.partition))
	}
	return nil
}

// verifyResult is the outcome, also the --json output.
type verifyResult struct {
	OK       bool     `json:"ok"`
	Verified []string `json:"verified"`
	Notes    []string `json:"notes,omitempty"`
	Error    string   `json:"error,omitempty"`
}

func cmdVerify(_ context.Context, e *env, args []string) error {
	var f verifyFlags
	fs := newFlagSet("verify")
	f.register(fs)
	if _, err := parseCommand(e, "verify", fs, args, 0, 0); err != nil {
		return err
	}
	if err := f.check(); err != nil {
		return err
	}
	var t trust
	if f.chain == "" || f.checkpoint != "" || f.trust.vkeyFile != "" {
		var err error
		if t, err = f.trust.load(); err != nil {
			return err
		}
	}
	res, err := f.verify(e, t)
	return reportVerify(e, f.json, res, err)
}

func (f *verifyFlags) verify(e *env, t trust) (verifyResult, error) {
	switch {
	case f.proof != "":
		return f.verifyProof(e, t)
	case f.tlogProof != "":
		return f.verifyTLogProof(e, t) // tlogproof.go
	case f.consistency != "":
		return f.verifyConsistency(e, t)
	case f.chain != "":
		return f.verifyChain(e, t)
	case f.bundle != "":
		return f.verifyBundle(e, t) // export.go
	case f.report != "":
		return f.verifyReport(e, t) // reports.go
	case f.erasure != "":
		return f.verifyErasure(e, t) // erasure.go
	}
	return f.verifyCheckpoint(e, t)
}

func (f *verifyFlags) verifyProof(e *env, t trust) (verifyResult, error) {
	b, err := readInput(e, f.proof, maxProofFileBytes)
	if err != nil {
		return verifyResult{}, err
	}
	pf, err := decodeProofFile(b)
	if err != nil {
		return verifyResult{}, fmt.Errorf("%s: %w", f.proof, err)
	}
	in, err := f.checkProof(t, pf)
	if err != nil {
		return verifyResult{}, err
	}
	return verifyResult{Verified: []string{t.checkpointOK(in.checkpoint), inclusionOK(in)}}, nil
}

// checkProof checks an inclusion proof and that it is about what --tenant,
// --partition and --event ask for.
func (f *verifyFlags) checkProof(t trust, pf proofFile) (inclusion, error) {
	in, err := checkInclusion(t, pf)
	if err != nil {
		return inclusion{}, err
	}
	if err := f.expect(in.origin); err != nil {
		return inclusion{}, err
	}
	if f.event != "" && in.eventID != f.event {
		return inclusion{}, fmt.Errorf("the proof is of event %q, not %q", in.eventID, f.event)
	}
	return in, nil
}

func inclusionOK(in inclusion) string {
	if in.pruned {
		return fmt.Sprintf("OK inclusion of leaf %d (payload pruned: only its leaf hash %s is proven) in tree of size %d of %s",
			in.leafIndex, in.leafHash, in.checkpoint.Size, in.origin)
	}
	return fmt.Sprintf("OK inclusion of leaf %d (event %s) in tree of size %d of %s", in.leafIndex, in.eventID, in.checkpoint.Size, in.origin)
}

func (f *verifyFlags) verifyConsistency(e *env, t trust) (verifyResult, error) {
	b, err := readInput(e, f.consistency, maxProofFileBytes)
	if err != nil {
		return verifyResult{}, err
	}
	r, err := decodeConsistencyFile(b)
	if err != nil {
		return verifyResult{}, fmt.Errorf("%s: %w", f.consistency, err)
	}
	c, err := checkConsistency(t, r)
	if err != nil {
		return verifyResult{}, err
	}
	if err := f.expect(c.origin); err != nil {
		return verifyResult{}, err
	}
	return verifyResult{Verified: []string{t.checkpointOK(c.from), t.checkpointOK(c.to), consistencyOK(c)}}, nil
}

func consistencyOK(c consistency) string {
	return fmt.Sprintf("OK consistency of %s from size %d to size %d", c.origin, c.from.Size, c.to.Size)
}

func (f *verifyFlags) verifyCheckpoint(e *env, t trust) (verifyResult, error) {
	b, err := readInput(e, f.checkpoint, maxProofFileBytes)
	if err != nil {
		return verifyResult{}, err
	}
	cp, o, err := t.openNote(b)
	if err != nil {
		return verifyResult{}, fmt.Errorf("%s: %w", f.checkpoint, err)
	}
	if err := f.expect(o); err != nil {
		return verifyResult{}, err
	}
	res := verifyResult{Verified: []string{t.checkpointOK(cp)}}
	if len(f.witnessKeys) == 0 {
		return res, nil
	}
	policy, err := loadWitnessPolicy(f.witnessKeys, f.minWitnesses) // tlogproof.go
	if err != nil {
		return verifyResult{}, err
	}
	cosigned, err := policy.check(b)
	if err != nil {
		return verifyResult{}, err
	}
	res.Verified = append(res.Verified, cosigned...)
	return res, nil
}

func (f *verifyFlags) openCheckpointFile(e *env, t trust) (merkle.Checkpoint, origin, error) {
	b, err := readInput(e, f.checkpoint, maxProofFileBytes)
	if err != nil {
		return merkle.Checkpoint{}, origin{}, err
	}
	cp, o, err := t.openNote(b)
	if err != nil {
		return merkle.Checkpoint{}, origin{}, fmt.Errorf("%s: %w", f.checkpoint, err)
	}
	return cp, o, f.expect(o)
}

func (f *verifyFlags) verifyChain(e *env, t trust) (verifyResult, error) {
	var c chainCheck
	var res verifyResult
	if f.checkpoint != "" {
		cp, o, err := f.openCheckpointFile(e, t)
		if err != nil {
			return verifyResult{}, err
		}
		res.Verified = []string{t.checkpointOK(cp)}
		c.target = &chainTarget{cp: cp, origin: o}
	}
	if err := f.readChain(e, &c); err != nil {
		return res, err
	}
	ok, err := c.finish()
	if err != nil {
		return res, err
	}
	if f.tenant != "" && f.tenant != c.tenant {
		return res, fmt.Errorf("the chain is of tenant %q, not %q", c.tenant, f.tenant)
	}
	res.Verified = append(res.Verified, ok...)
	res.Notes = c.notes
	return res, nil
}

// readChain feeds the chain file to c line by line.
func (f *verifyFlags) readChain(e *env, c *chainCheck) error {
	in := e.stdin
	if f.chain != "-" {
		file, err := os.Open(f.chain)
		if err != nil {
			return ioError(err)
		}
		defer file.Close()
		in = file
	}
	r := newChainReader(in)
	for {
		se, err := r.next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", f.chain, err)
		}
		if err := c.add(se); err != nil {
			return fmt.Errorf("%s line %d: %w", f.chain, r.line, err)
		}
	}
}

// expect applies --tenant and --partition.
func (f *verifyFlags) expect(o origin) error {
	if f.tenant != "" && o.tenant != f.tenant {
		return fmt.Errorf("the evidence is about tenant %q, not %q", o.tenant, f.tenant)
	}
	if f.partition != "" && o.partition != f.partition {
		return fmt.Errorf("the evidence is about partition %s, not %s", o.partition, f.partition)
	}
	return nil
}

// reportVerify prints what was verified and returns the failure, if any,
// marked so that it reads as a verdict rather than a crash.
func reportVerify(e *env, asJSON bool, res verifyResult, err error) error {
	res.OK = err == nil
	if err != nil && exitCode(err) == exitFailed {
		err = fmt.Errorf("FAILED: %w", err)
	}
	if err != nil {
		res.Error = err.Error()
	}
	if asJSON {
		if res.Verified == nil {
			res.Verified = []string{}
		}
		b, jerr := json.MarshalIndent(res, "", "  ")
		if jerr != nil {
			return errors.Join(err, jerr)
		}
		fmt.Fprintf(e.stdout, "%s\n", b)
		return err
	}
	for _, s := range res.Verified {
		fmt.Fprintln(e.stdout, s)
	}
	for _, s := range res.Notes {
		fmt.Fprintln(e.stdout, "NOTE "+s)
	}
	return err
}
