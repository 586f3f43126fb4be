package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
	"google.golang.org/protobuf/proto"

	"github.com/trailaudit/trail/merkle"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
	tlogwitness "github.com/trailaudit/trail/witness"
)

// A C2SP tlog-proof file (c2sp.org/tlog-proof) carries what an inclusion
// proof file does, in the ecosystem's own format: the leaf index, the
// Merkle path, and the signed checkpoint note with any witness
// cosignatures. Trail puts the entry's bytes in the "extra" line, so the
// file proves the event itself, not only a leaf hash; the entry places
// itself (tenant, partition, leaf) and the checkpoint's origin must agree.

// encodeTLogProof converts a fetched inclusion proof into a tlog-proof.
func encodeTLogProof(p *trailv1.GetInclusionProofResponse) []byte {
	tp := merkle.TLogProof{
		Index:      p.GetLeafIndex(),
		Checkpoint: []byte(p.GetCheckpoint().GetSignedNote()),
	}
	if len(p.GetEntryBytes()) > 0 {
		tp.Extra = p.GetEntryBytes()
	}
	for _, h := range p.GetProof() {
		var x merkle.Hash
		copy(x[:], h)
		tp.Proof = append(tp.Proof, x)
	}
	return tp.Marshal()
}

// tlogProofFile turns a parsed tlog-proof into the proof file that
// checkInclusion verifies, so both formats pass the same checks. The
// tenant and partition come from the checkpoint's signed origin; without
// entry bytes (a pruned payload) the leaf hash must come from the caller.
func tlogProofFile(t trust, tp merkle.TLogProof, leafHash []byte) (proofFile, error) {
	cp, o, err := t.openNote(tp.Checkpoint)
	if err != nil {
		return proofFile{}, err
	}
	if tp.Extra == nil && leafHash == nil {
		return proofFile{}, fmt.Errorf("the proof has no extra data (entry bytes): give the leaf hash it proves with --leaf-hash")
	}
	proof := make([][]byte, len(tp.Proof))
	for i, h := range tp.Proof {
		proof[i] = h[:]
	}
	return proofFile{TenantID: o.tenant, Proof: &trailv1.GetInclusionProofResponse{
		Partition:  o.partition,
		LeafIndex:  tp.Index,
		TreeSize:   cp.Size,
		LeafHash:   leafHash,
		Proof:      proof,
		Checkpoint: &trailv1.Checkpoint{SignedNote: string(tp.Checkpoint)},
		EntryBytes: tp.Extra,
	}}, nil
}

// witnessPolicy is the cosignatures an auditor requires on a checkpoint:
// at least min of the given witnesses.
type witnessPolicy struct {
	verifiers []note.Verifier
	min       int
}

// loadWitnessPolicy reads witness verifier key files. required < 0 means
// "all of them".
func loadWitnessPolicy(files []string, required int) (witnessPolicy, error) {
	var p witnessPolicy
	for _, f := range files {
		b, err := readFileLimit(f, maxKeyBytes)
		if err != nil {
			return p, err
		}
		v, err := tlogwitness.NewCosignatureVerifier(strings.TrimSpace(string(b)))
		if err != nil {
			return p, usageErrorf("--witness-vkey %s: %v", f, err)
		}
		p.verifiers = append(p.verifiers, v)
	}
	p.min = required
	if required < 0 {
		p.min = len(p.verifiers)
	}
	if p.min > len(p.verifiers) {
		return p, usageErrorf("--min-witnesses %d is more than the %d witness keys given", p.min, len(p.verifiers))
	}
	return p, nil
}

// check verifies each witness's cosignature on the signed note and
// returns a statement per valid one; fewer than min is a failure.
func (p witnessPolicy) check(signed []byte) ([]string, error) {
	var ok []string
	for _, v := range p.verifiers {
		n, err := note.Open(signed, note.VerifierList(v))
		if err != nil {
			continue
		}
		at := ""
		if ts, err := fnote.CoSigV1Timestamp(n.Sigs[0]); err == nil {
			at = " at " + ts.UTC().Format(time.RFC3339)
		}
		ok = append(ok, fmt.Sprintf("OK cosignature by witness %s+%08x%s", v.Name(), v.KeyHash(), at))
	}
	if len(ok) < p.min {
		return ok, fmt.Errorf("the checkpoint is cosigned by %d of the %d witnesses given, %d required", len(ok), len(p.verifiers), p.min)
	}
	return ok, nil
}

// verifyTLogProof verifies a tlog-proof file offline: the log signature,
// the witness policy, the entry against the origin, and the Merkle path.
func (f *verifyFlags) verifyTLogProof(e *env, t trust) (verifyResult, error) {
	b, err := readInput(e, f.tlogProof, maxProofFileBytes)
	if err != nil {
		return verifyResult{}, err
	}
	tp, err := merkle.ParseTLogProof(b)
	if err != nil {
		return verifyResult{}, fmt.Errorf("%s: %w", f.tlogProof, err)
	}
	policy, err := loadWitnessPolicy(f.witnessKeys, f.minWitnesses)
	if err != nil {
		return verifyResult{}, err
	}
	var leafHash []byte
	if f.leafHash != "" {
		h, err := merkle.ParseHash(f.leafHash)
		if err != nil {
			return verifyResult{}, usageErrorf("--leaf-hash: %v", err)
		}
		leafHash = h[:]
	}
	pf, err := tlogProofFile(t, tp, leafHash)
	if err != nil {
		return verifyResult{}, err
	}
	in, err := f.checkProof(t, pf)
	if err != nil {
		return verifyResult{}, err
	}
	cosigned, err := policy.check(tp.Checkpoint)
	if err != nil {
		return verifyResult{}, err
	}
	res := verifyResult{Verified: append([]string{t.checkpointOK(in.checkpoint)}, cosigned...)}
	res.Verified = append(res.Verified, inclusionOK(in))
	return res, nil
}

// witnessedProof re-proves an event against the checkpoint a witness last
// cosigned for its partition, so that the proof carries the cosignature.
// The witness is asked through its monitoring endpoint
// (c2sp.org/tlog-witness): auditors need no access to the log's
// configuration to learn which checkpoint was witnessed.
type witnessedProof struct {
	net    netCommand
	client trailv1.ProofServiceClient
	trust  trust
	url    string
}

func (w witnessedProof) prove(ctx context.Context, tenant, eventID string, resp *trailv1.GetInclusionProofResponse) (*trailv1.GetInclusionProofResponse, error) {
	cp, _, err := w.trust.openCheckpoint(resp.GetCheckpoint())
	if err != nil {
		return nil, err
	}
	wctx, cancel := w.net.rpcContext(ctx)
	defer cancel()
	signed, err := tlogwitness.FetchCheckpoint(wctx, nil, w.url, cp.Origin)
	if errors.Is(err, tlogwitness.ErrNotCosigned) {
		return nil, err
	} else if err != nil {
		return nil, ioError(err)
	}
	wcp, _, err := w.trust.openNote(signed)
	switch {
	case err != nil:
		return nil, fmt.Errorf("the witness serves a checkpoint of %s that does not verify: %w", cp.Origin, err)
	case wcp.Origin != cp.Origin:
		return nil, fmt.Errorf("asked the witness for %s, it served %s", cp.Origin, wcp.Origin)
	case wcp.Size <= resp.GetLeafIndex():
		return nil, fmt.Errorf("the witness last cosigned %s at size %d, which does not contain leaf %d yet", cp.Origin, wcp.Size, resp.GetLeafIndex())
	case wcp.Size > cp.Size:
		return nil, fmt.Errorf("the witness cosigned %s at size %d, above the %d this node serves: a lagging node, or a fork", cp.Origin, wcp.Size, cp.Size)
	}
	if wcp.Size != cp.Size {
		rctx, cancel := w.net.rpcContext(ctx)
		defer cancel()
		resp, err = w.client.GetInclusionProof(rctx, &trailv1.GetInclusionProofRequest{TenantId: tenant, EventId: eventID, TreeSize: wcp.Size})
		if err != nil {
			return nil, wrapRPC("GetInclusionProof", err)
		}
	}
	logNote := resp.GetCheckpoint().GetSignedNote()
	if noteText(logNote) != noteText(string(signed)) {
		return nil, fmt.Errorf("the log's checkpoint of %s at size %d is not the one the witness cosigned: a fork\n--- log ---\n%s--- witness ---\n%s",
			cp.Origin, wcp.Size, logNote, signed)
	}
	out := proto.Clone(resp).(*trailv1.GetInclusionProofResponse)
	out.Checkpoint.SignedNote = mergeSignatures(logNote, string(signed))
	return out, nil
}

// noteText is a signed note's text: everything up to the blank line
// before the signatures.
func noteText(signed string) string {
	i := strings.LastIndex(signed, "\n\n")
	if i < 0 {
		return ""
	}
	return signed[:i+1]
}

// mergeSignatures returns the note a (text and signatures) with the
// signature lines of b, a note of the same text, that a lacks.
func mergeSignatures(a, b string) string {
	text := noteText(a)
	have := make(map[string]bool)
	var sb strings.Builder
	sb.WriteString(text)
	sb.WriteByte('\n')
	for _, n := range []string{a, b} {
		for line := range strings.SplitSeq(strings.TrimSuffix(n[len(noteText(n))+1:], "\n"), "\n") {
			if !have[line] {
				have[line] = true
				sb.WriteString(line + "\n")
			}
		}
	}
	return sb.String()
}
