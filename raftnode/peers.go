package raftnode

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/trailaudit/trail/engine"
	"github.com/trailaudit/trail/merkle"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// Integrity comparison between replicas: the FSM is deterministic
// (invariant 6), so every node must hold the same root for a
// partition at a given size. A node asks each other server of the Raft
// configuration for its root over the forwarding connection; the receiver
// answers from its own engine and never routes the request.

// PeerRootWait bounds how long a peer waits to have applied a partition
// up to the requested size before it answers that it has not.
const PeerRootWait = 2 * time.Second

// peerRootTimeout bounds one peer's answer when the caller set no deadline.
const peerRootTimeout = 10 * time.Second

// PeerRoot is one peer's answer: its root of the partition at the size
// asked, or why it could not give one.
type PeerRoot struct {
	NodeID  string
	Address string
	Root    merkle.Hash
	Err     error
}

// PeerRoots asks every other server of the Raft configuration, in
// parallel, for its root of p at size. It returns one answer per peer,
// sorted by node id; a peer that cannot answer has Err set.
func (n *Node) PeerRoots(ctx context.Context, p engine.Partition, size uint64) []PeerRoot {
	peers, err := n.peers()
	if err != nil {
		return []PeerRoot{{NodeID: "?", Err: err}}
	}
	return askAll(ctx, peers, func(ctx context.Context, s raft.Server) PeerRoot {
		root, err := n.peerRoot(ctx, string(s.Address), p, size)
		return PeerRoot{NodeID: string(s.ID), Address: string(s.Address), Root: root, Err: err}
	}, func(pr PeerRoot) string { return pr.NodeID })
}

// askAll asks every server in parallel, within peerRootTimeout when ctx
// sets no deadline, and returns the answers sorted by node id.
func askAll[T any](ctx context.Context, servers []raft.Server, ask func(context.Context, raft.Server) T, id func(T) string) []T {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, peerRootTimeout)
		defer cancel()
	}
	out := make([]T, len(servers))
	var wg sync.WaitGroup
	for i, s := range servers {
		wg.Go(func() { out[i] = ask(ctx, s) })
	}
	wg.Wait()
	slices.SortFunc(out, func(a, b T) int { return strings.Compare(id(a), id(b)) })
	return out
}

// peers lists the servers of the configuration other than this node.
func (n *Node) peers() ([]raft.Server, error) {
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, fmt.Errorf("raftnode: configuration: %w", err)
	}
	var out []raft.Server
	for _, s := range f.Configuration().Servers {
		if string(s.ID) != n.cfg.ID {
			out = append(out, s)
		}
	}
	return out, nil
}

func (n *Node) peerRoot(ctx context.Context, addr string, p engine.Partition, size uint64) (merkle.Hash, error) {
	req := &trailv1.RaftForwardRequest{Op: &trailv1.RaftForwardRequest_Root{Root: &trailv1.RaftRootRequest{
		Tenant: p.Tenant, Partition: p.Month.String(), Size: size,
	}}}
	resp, err := n.forward(ctx, "root", addr, req)
	if err != nil {
		return merkle.Hash{}, err
	}
	if len(resp.GetRoot()) != merkle.HashSize {
		return merkle.Hash{}, fmt.Errorf("raftnode: root of %s from %s: %d bytes: %w", p, addr, len(resp.GetRoot()), errBadRequest)
	}
	return merkle.Hash(resp.GetRoot()), nil
}

// answerRoot serves a peer's root request from this node's own engine.
func (n *Node) answerRoot(ctx context.Context, r *trailv1.RaftRootRequest) *trailv1.RaftForwardResponse {
	resp := &trailv1.RaftForwardResponse{NodeId: n.cfg.ID}
	m, err := engine.ParseMonth(r.GetPartition())
	if err != nil {
		resp.Error = encodeError(fmt.Errorf("raftnode: root: %w: %v", errBadRequest, err))
		return resp
	}
	root, err := n.LocalRoot(ctx, engine.Partition{Tenant: r.GetTenant(), Month: m}, r.GetSize())
	if err != nil {
		resp.Error = encodeError(err)
		return resp
	}
	resp.Root = root[:]
	return resp
}

// LocalRoot is this node's root of p at size, computed from its tiles. A
// node that has not applied p that far waits up to PeerRootWait for it,
// then fails with an error wrapping engine.ErrBadSize that says how many
// entries it has.
func (n *Node) LocalRoot(ctx context.Context, p engine.Partition, size uint64) (merkle.Hash, error) {
	if size == 0 {
		return merkle.Hash{}, fmt.Errorf("raftnode: root of %s: size 0: %w", p, errBadRequest)
	}
	wctx, cancel := context.WithTimeout(ctx, PeerRootWait)
	defer cancel()
	var have uint64
	err := n.WaitFor(wctx, func(e *engine.Engine) (bool, error) {
		info, err := e.PartitionInfo(wctx, p)
		if errors.Is(err, engine.ErrNotFound) {
			return false, nil
		}
		have = info.Size
		return err == nil && have >= size, err
	})
	switch {
	case err != nil && ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded):
		return merkle.Hash{}, fmt.Errorf("raftnode: root of %s at %d: peer %s has only %d entries: %w", p, size, n.cfg.ID, have, engine.ErrBadSize)
	case err != nil:
		return merkle.Hash{}, fmt.Errorf("raftnode: root of %s at %d: %w", p, size, err)
	}
	var cp merkle.Checkpoint
	err = n.View(func(e *engine.Engine) (err error) {
		cp, err = e.Checkpoint(ctx, p, size)
		return err
	})
	if err != nil {
		return merkle.Hash{}, fmt.Errorf("raftnode: root of %s at %d: %w", p, size, err)
	}
	return cp.Root, nil
}
