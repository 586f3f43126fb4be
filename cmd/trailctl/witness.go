package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/trailaudit/trail/merkle"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// logSource is what a witness asks of a log. grpcSource implements it over
// ProofService; tests implement it over an engine.
type logSource interface {
	Partitions(ctx context.Context, tenant string) ([]string, error)
	Checkpoint(ctx context.Context, tenant, partition string) (*trailv1.Checkpoint, error)
	Consistency(ctx context.Context, tenant, partition string, from, to uint64) (*trailv1.GetConsistencyProofResponse, error)
}

// witness checks that a log only ever grows: every checkpoint it accepts
// is signed by the log key and provably extends the last one it accepted
// for that partition (invariant 5: the log never signs two inconsistent
// checkpoints for one origin). A log that forks, rewrites or rolls back a
// partition cannot show it the same history it showed before.
type witness struct {
	src       logSource
	trust     trust
	state     stateDir
	tenant    string
	partition string // only this partition; "" for every listed partition
	now       func() time.Time
}

// observation is the result of one partition's check, printed per poll.
type observation struct {
	Time    time.Time `json:"time"`
	Origin  string    `json:"origin"`
	Status  string    `json:"status"` // "new", "unchanged" or "consistent"
	OldSize uint64    `json:"old_size,omitempty"`
	Size    uint64    `json:"size"`
	Root    string    `json:"root"`
}

// inconsistency is what a witness exists to catch. Its evidence (signed
// notes, proofs) shows the log contradicted itself.
type inconsistency struct {
	origin    string
	partition string
	reason    string
	evidence  []evidence
}

type evidence struct {
	label string
	text  string
}

func (i *inconsistency) Error() string {
	return fmt.Sprintf("INCONSISTENCY in %s: %s", i.origin, i.reason)
}

// report renders the loud form for stderr and the evidence file.
func (i *inconsistency) report() string {
	var b strings.Builder
	bar := strings.Repeat("!", 72)
	fmt.Fprintf(&b, "%s\nINCONSISTENCY DETECTED in %s\n%s\n%s\n", bar, i.origin, i.reason, bar)
	for _, ev := range i.evidence {
		fmt.Fprintf(&b, "\n--- %s ---\n%s", ev.label, ev.text)
		if !strings.HasSuffix(ev.text, "\n") {
			b.WriteByte('\n')
		}
	}
	b.WriteString("\nThe witness state was NOT updated. Keep this report: signed checkpoints that contradict\n" +
		"each other prove the log was forked, rewritten or rolled back.\n")
	return b.String()
}

// verified is a checkpoint that passed signature and origin checks, with
// the exact note it came from.
type verified struct {
	cp   merkle.Checkpoint
	note string
}

// poll checks every partition once, stopping at the first error.
func (w *witness) poll(ctx context.Context) ([]observation, error) {
	parts, err := w.partitions(ctx)
	if err != nil {
		return nil, err
	}
	var out []observation
	for _, p := range parts {
		obs, err := w.checkPartition(ctx, p)
		if err != nil {
			return out, err
		}
		out = append(out, obs)
	}
	return out, nil
}

// partitions returns the partitions to check. A partition the witness has
// verified before must still be listed: partitions are never deleted.
func (w *witness) partitions(ctx context.Context) ([]string, error) {
	if w.partition != "" {
		return []string{w.partition}, nil
	}
	listed, err := w.src.Partitions(ctx, w.tenant)
	if err != nil {
		return nil, err
	}
	for _, p := range listed {
		// The name becomes a file name in the state directory.
		if err := validPartition(p); err != nil {
			return nil, fmt.Errorf("the log listed a bad partition name: %w", err)
		}
	}
	saved, err := w.state.saved(w.tenant)
	if err != nil {
		return nil, err
	}
	for _, p := range saved {
		if !slices.Contains(listed, p) {
			note, _ := w.state.load(w.tenant, p)
			return nil, &inconsistency{
				origin: w.origin(p), partition: p,
				reason:   fmt.Sprintf("the log no longer lists partition %s, whose checkpoint the witness verified before", p),
				evidence: []evidence{{"saved checkpoint", string(note)}},
			}
		}
	}
	return listed, nil
}

func (w *witness) origin(partition string) string {
	return origin{log: w.trust.logName, tenant: w.tenant, partition: partition}.String()
}

// checkPartition fetches the partition's checkpoint and accepts it only
// if it is consistent with the saved one.
func (w *witness) checkPartition(ctx context.Context, partition string) (observation, error) {
	saved, err := w.loadSaved(partition)
	if err != nil {
		return observation{}, err
	}
	pb, err := w.src.Checkpoint(ctx, w.tenant, partition)
	if err != nil {
		return observation{}, err
	}
	latest, err := w.open(pb, partition)
	if err != nil {
		return observation{}, fmt.Errorf("the log served a checkpoint for %s that does not verify: %w", w.origin(partition), err)
	}
	obs := observation{Time: w.now().UTC(), Origin: latest.cp.Origin, Size: latest.cp.Size, Root: latest.cp.Root.String()}
	if saved == nil {
		obs.Status = "new"
		return obs, w.state.save(w.tenant, partition, []byte(latest.note))
	}
	obs.OldSize = saved.cp.Size
	needProof, reason := compareCheckpoints(saved.cp, latest.cp)
	if reason != "" {
		return observation{}, w.inconsistent(partition, reason, evidence{"saved checkpoint", saved.note}, evidence{"new checkpoint", latest.note})
	}
	if !needProof {
		obs.Status = "unchanged"
		return obs, nil
	}
	resp, err := w.src.Consistency(ctx, w.tenant, partition, saved.cp.Size, latest.cp.Size)
	if err != nil {
		return observation{}, err
	}
	if err := w.checkProof(partition, resp, *saved, latest); err != nil {
		return observation{}, err
	}
	obs.Status = "consistent"
	return obs, w.state.save(w.tenant, partition, []byte(latest.note))
}

// loadSaved returns the saved checkpoint, re-verified: the state directory
// is not trusted more than the log is.
func (w *witness) loadSaved(partition string) (*verified, error) {
	note, err := w.state.load(w.tenant, partition)
	if err != nil || note == nil {
		return nil, err
	}
	v, err := w.open(&trailv1.Checkpoint{SignedNote: string(note)}, partition)
	if err != nil {
		return nil, fmt.Errorf("saved state %s does not verify (wrong --vkey, or the file was altered): %w",
			w.state.file(w.tenant, partition), err)
	}
	return &v, nil
}

func (w *witness) open(pb *trailv1.Checkpoint, partition string) (verified, error) {
	cp, o, err := w.trust.openCheckpoint(pb)
	if err != nil {
		return verified{}, err
	}
	if err := expectOrigin(o, w.tenant, partition); err != nil {
		return verified{}, err
	}
	return verified{cp: cp, note: pb.GetSignedNote()}, nil
}

// compareCheckpoints decides, from two verified checkpoints of one origin,
// whether the new one needs a consistency proof, or is already a
// contradiction (reason non-empty).
func compareCheckpoints(saved, latest merkle.Checkpoint) (needProof bool, reason string) {
	switch {
	case latest.Size < saved.Size:
		return false, fmt.Sprintf("the tree size went backwards from %d to %d", saved.Size, latest.Size)
	case latest.Size == saved.Size && latest.Root != saved.Root:
		return false, fmt.Sprintf("the log signed two different roots for size %d: %s and %s", saved.Size, saved.Root, latest.Root)
	case latest.Size == saved.Size:
		return false, ""
	}
	return true, ""
}

// checkProof verifies the consistency proof from saved to latest. Any
// failure is an inconsistency: a log that grew honestly can always prove it.
func (w *witness) checkProof(partition string, resp *trailv1.GetConsistencyProofResponse, saved, latest verified) error {
	proofText := "(unprintable)\n"
	if b, err := encodeConsistencyFile(resp); err == nil {
		proofText = string(b)
	}
	fail := func(format string, args ...any) error {
		return w.inconsistent(partition, fmt.Sprintf(format, args...),
			evidence{"saved checkpoint", saved.note}, evidence{"new checkpoint", latest.note},
			evidence{"consistency proof served", proofText})
	}
	c, err := checkConsistency(w.trust, resp)
	switch {
	case err != nil:
		return fail("the consistency proof from size %d to %d does not verify: %v", saved.cp.Size, latest.cp.Size, err)
	case c.from.Origin != saved.cp.Origin:
		return fail("the consistency proof is for %s", c.from.Origin)
	case c.from.Size != saved.cp.Size || c.to.Size != latest.cp.Size:
		return fail("asked for a proof from size %d to %d, got one from %d to %d", saved.cp.Size, latest.cp.Size, c.from.Size, c.to.Size)
	case c.from.Root != saved.cp.Root:
		return fail("the log signed two different roots for size %d: %s (saved) and %s (in the proof)", saved.cp.Size, saved.cp.Root, c.from.Root)
	case c.to.Root != latest.cp.Root:
		return fail("the log signed two different roots for size %d: %s and %s (in the proof)", latest.cp.Size, latest.cp.Root, c.to.Root)
	}
	return nil
}

func (w *witness) inconsistent(partition, reason string, ev ...evidence) error {
	return &inconsistency{origin: w.origin(partition), partition: partition, reason: reason, evidence: ev}
}
