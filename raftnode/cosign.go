package raftnode

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/hashicorp/raft"
	"golang.org/x/mod/sumdb/note"

	"github.com/trailaudit/trail/engine"
	"github.com/trailaudit/trail/merkle"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// Quorum cosigning. One log key signs every checkpoint, so whoever holds
// it could sign a view of the log that no replica holds. Each node also
// has a key of its own and cosigns a checkpoint only after computing the
// same root from its own copy of the log; a checkpoint carrying a
// majority's cosignatures is a statement of a majority of independently
// kept replicas, which one compromised node or one stolen log key cannot
// make alone. A node whose root differs never cosigns: it answers
// ErrRootDiffers, which the asker records as an integrity violation.

var (
	// ErrRootDiffers is a node's refusal to cosign a checkpoint whose root
	// is not the one its own copy gives at that size.
	ErrRootDiffers = errors.New("raftnode: root differs from this node's copy")
	// ErrNoCosigner is the answer of a node that has no cosigning key.
	ErrNoCosigner = errors.New("raftnode: node has no cosigning key")
)

// Cosignature is one node's answer to a cosign request.
type Cosignature struct {
	NodeID string
	// Line is the node's note signature line ("— name base64sig"), set
	// when Err is nil.
	Line string
	Err  error
}

// Cosign asks every server of the Raft configuration, this node included,
// in parallel, to cosign the checkpoint body (merkle.Checkpoint.Marshal)
// of p. It returns one answer per server, sorted by node id.
func (n *Node) Cosign(ctx context.Context, p engine.Partition, body []byte) []Cosignature {
	peers, err := n.peers()
	if err != nil {
		return []Cosignature{{NodeID: "?", Err: err}}
	}
	self := raft.Server{ID: raft.ServerID(n.cfg.ID)}
	return askAll(ctx, append(peers, self), func(ctx context.Context, s raft.Server) Cosignature {
		cs := Cosignature{NodeID: string(s.ID)}
		if s.ID == self.ID {
			cs.Line, cs.Err = n.cosignLocal(ctx, p, body)
		} else {
			cs.Line, cs.Err = n.peerCosign(ctx, string(s.Address), p, body)
		}
		return cs
	}, func(cs Cosignature) string { return cs.NodeID })
}

func (n *Node) peerCosign(ctx context.Context, addr string, p engine.Partition, body []byte) (string, error) {
	cp, err := merkle.ParseCheckpoint(body)
	if err != nil {
		return "", fmt.Errorf("raftnode: cosign: %w: %v", errBadRequest, err)
	}
	req := &trailv1.RaftForwardRequest{Op: &trailv1.RaftForwardRequest_Root{Root: &trailv1.RaftRootRequest{
		Tenant: p.Tenant, Partition: p.Month.String(), Size: cp.Size, Cosign: body,
	}}}
	resp, err := n.forward(ctx, "cosign", addr, req)
	if err != nil {
		return "", err
	}
	return resp.GetCosignature(), nil
}

// answerCosign serves a peer's cosign request.
func (n *Node) answerCosign(ctx context.Context, r *trailv1.RaftRootRequest) *trailv1.RaftForwardResponse {
	resp := &trailv1.RaftForwardResponse{NodeId: n.cfg.ID}
	m, err := engine.ParseMonth(r.GetPartition())
	if err != nil {
		resp.Error = encodeError(fmt.Errorf("raftnode: cosign: %w: %v", errBadRequest, err))
		return resp
	}
	line, err := n.cosignLocal(ctx, engine.Partition{Tenant: r.GetTenant(), Month: m}, r.GetCosign())
	resp.Cosignature, resp.Error = line, encodeError(err)
	return resp
}

// cosignLocal signs body with this node's key if body is a checkpoint of
// p whose root is this node's own at that size.
func (n *Node) cosignLocal(ctx context.Context, p engine.Partition, body []byte) (string, error) {
	if n.cfg.Cosigner == nil {
		return "", fmt.Errorf("raftnode: %s: %w", n.cfg.ID, ErrNoCosigner)
	}
	cp, err := merkle.ParseCheckpoint(body)
	if err != nil {
		return "", fmt.Errorf("raftnode: cosign: %w: %v", errBadRequest, err)
	}
	if want := p.Origin(n.cfg.Engine.LogName); cp.Origin != want {
		return "", fmt.Errorf("raftnode: cosign: origin %q is not %s's (%q): %w", cp.Origin, p, want, errBadRequest)
	}
	mine, err := n.LocalRoot(ctx, p, cp.Size)
	if err != nil {
		return "", err
	}
	if mine != cp.Root {
		n.log.Error("refusing to cosign a checkpoint whose root is not this node's", "partition", p.String(), "size", cp.Size,
			"root", cp.Root.String(), "own_root", mine.String())
		return "", fmt.Errorf("raftnode: %s: %s at size %d is %s here, not %s: %w", n.cfg.ID, p, cp.Size, mine, cp.Root, ErrRootDiffers)
	}
	signed, err := note.Sign(&note.Note{Text: string(body)}, n.cfg.Cosigner)
	if err != nil {
		return "", fmt.Errorf("raftnode: cosign: %w", err)
	}
	return signatureLines(signed, len(body))
}

// signatureLines returns the signature block of a signed note whose text
// is bodyLen bytes: what follows the blank line after the text.
func signatureLines(signed []byte, bodyLen int) (string, error) {
	if len(signed) < bodyLen+1 || signed[bodyLen] != '\n' {
		return "", fmt.Errorf("raftnode: cosign: unexpected signed note")
	}
	return string(bytes.TrimSuffix(signed[bodyLen+1:], []byte("\n"))), nil
}
