package client

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/trailaudit/trail/merkle"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// ErrUnproven marks a proof that does not establish the receipt: a bad
// signature, a checkpoint of another log or partition, an entry that is
// not the receipt's, or a Merkle path that does not lead to the signed root.
var ErrUnproven = errors.New("client: receipt not proven")

// Prove fetches the inclusion proof of a receipt's entry in the current
// tree of its partition, from the nodes in turn until one answers. The
// receipt's applied_index is passed as min_index, so a follower that has
// not applied the entry yet waits rather than answering "not found". The
// call uses Config.ReadToken: producer keys may not read. Check the answer
// with a Verifier: Prove itself trusts nothing it received.
func (c *Client) Prove(ctx context.Context, r *trailv1.Receipt) (*trailv1.GetInclusionProofResponse, error) {
	if r.GetTenantId() == "" || r.GetPartition() == "" {
		return nil, errors.New("client: prove: receipt lacks tenant or partition")
	}
	req := &trailv1.GetInclusionProofRequest{
		TenantId: r.GetTenantId(), Partition: r.GetPartition(), LeafIndex: r.GetLeafIndex(),
		MinIndex: r.GetAppliedIndex(),
	}
	var lastErr error
	for range len(c.conns.cc) {
		node, cc := c.conns.pick()
		cctx, cancel := context.WithTimeout(ctx, c.cfg.CallTimeout)
		resp, err := trailv1.NewProofServiceClient(cc).GetInclusionProof(cctx, req, callOpts(c.cfg.ReadToken)...)
		cancel()
		if err == nil {
			return resp, nil
		}
		lastErr = err
		if ctx.Err() != nil || permanent(status.Code(err)) || status.Code(err) == codes.Unauthenticated {
			break
		}
		c.conns.failed(node)
	}
	return nil, fmt.Errorf("client: prove %s/%s: %w", r.GetTenantId(), r.GetEventId(), lastErr)
}

// Verifier checks receipts and proofs against the one thing an auditor
// trusts: the log's public key.
type Verifier struct {
	key     note.Verifier
	logName string
}

// NewVerifier returns a Verifier for the log's verifier key in signed-note
// form ("name+hash+base64key", the file traild writes as log.vkey). The
// key's name is the log name every checkpoint origin starts with.
func NewVerifier(vkey string) (*Verifier, error) {
	v, err := merkle.NewVerifier(strings.TrimSpace(vkey))
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	return &Verifier{key: v, logName: v.Name()}, nil
}

// Verify checks that p proves the receipt's event in the log:
//
//   - the checkpoint is signed by the log key, for the receipt's tenant
//     and partition, at the proof's tree size;
//   - the entry bytes hash to the receipt's leaf hash and record the
//     receipt's tenant, event id, partition and leaf index (an entry whose
//     payload retention removed is proven by the receipt's leaf hash);
//   - the Merkle path leads from that leaf to the signed root.
//
// Nothing in p is trusted beyond what the signature covers. Failures wrap
// ErrUnproven.
func (v *Verifier) Verify(r *trailv1.Receipt, p *trailv1.GetInclusionProofResponse) error {
	if err := v.verify(r, p); err != nil {
		return fmt.Errorf("%w: %s/%s: %w", ErrUnproven, r.GetTenantId(), r.GetEventId(), err)
	}
	return nil
}

func (v *Verifier) verify(r *trailv1.Receipt, p *trailv1.GetInclusionProofResponse) error {
	cp, err := merkle.OpenCheckpoint([]byte(p.GetCheckpoint().GetSignedNote()), v.key)
	if err != nil {
		return err
	}
	origin := v.logName + "/" + r.GetTenantId() + "/" + r.GetPartition()
	switch {
	case cp.Origin != origin:
		return fmt.Errorf("checkpoint origin %q, want %q", cp.Origin, origin)
	case cp.Size != p.GetTreeSize():
		return fmt.Errorf("proof is for tree size %d, its checkpoint for %d", p.GetTreeSize(), cp.Size)
	case p.GetPartition() != r.GetPartition() || p.GetLeafIndex() != r.GetLeafIndex():
		return fmt.Errorf("proof is for leaf %s/%d, the receipt names %s/%d",
			p.GetPartition(), p.GetLeafIndex(), r.GetPartition(), r.GetLeafIndex())
	case cp.Size < r.GetTreeSize():
		return fmt.Errorf("checkpoint size %d is below the receipt's tree size %d", cp.Size, r.GetTreeSize())
	}
	leaf, err := v.receiptLeaf(r, p.GetEntryBytes())
	if err != nil {
		return err
	}
	path := make([]merkle.Hash, len(p.GetProof()))
	for i, h := range p.GetProof() {
		if len(h) != merkle.HashSize {
			return fmt.Errorf("proof hash %d is %d bytes, want %d", i, len(h), merkle.HashSize)
		}
		path[i] = merkle.Hash(h)
	}
	return merkle.VerifyInclusion(r.GetLeafIndex(), cp.Size, leaf, path, cp.Root)
}

// receiptLeaf returns the leaf hash to prove: the receipt's, after
// checking that the entry bytes (when present) hash to it and are the
// receipt's event at the receipt's place.
func (v *Verifier) receiptLeaf(r *trailv1.Receipt, entry []byte) (merkle.Hash, error) {
	if len(r.GetLeafHash()) != merkle.HashSize {
		return merkle.Hash{}, fmt.Errorf("receipt leaf hash is %d bytes, want %d", len(r.GetLeafHash()), merkle.HashSize)
	}
	want := merkle.Hash(r.GetLeafHash())
	if len(entry) == 0 {
		return want, nil // payload pruned by retention: the leaf hash is what remains
	}
	if got := merkle.LeafHash(entry); got != want {
		return merkle.Hash{}, fmt.Errorf("entry bytes hash to leaf %s, the receipt names %s", got, want)
	}
	var en trailv1.Entry
	if err := proto.Unmarshal(entry, &en); err != nil {
		return merkle.Hash{}, fmt.Errorf("entry bytes are not an entry: %w", err)
	}
	ev := en.GetEvent()
	if ev.GetTenantId() != r.GetTenantId() || ev.GetEventId() != r.GetEventId() ||
		en.GetPartition() != r.GetPartition() || en.GetLeafIndex() != r.GetLeafIndex() {
		return merkle.Hash{}, fmt.Errorf("entry is %s/%s at %s/%d, not the receipt's",
			ev.GetTenantId(), ev.GetEventId(), en.GetPartition(), en.GetLeafIndex())
	}
	return want, nil
}
