package main

import (
	"context"
	"fmt"

	"google.golang.org/grpc"

	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// withClient connects and runs fn with the client newClient makes, under
// the command's --timeout.
func withClient[C any](ctx context.Context, e *env, n *netCommand, newClient func(grpc.ClientConnInterface) C, fn func(context.Context, C) error) error {
	conn, err := n.connect(e)
	if err != nil {
		return err
	}
	defer conn.Close()
	rctx, cancel := n.rpcContext(ctx)
	defer cancel()
	return fn(rctx, newClient(conn))
}

// withAdmin runs fn with an AdminService client.
func withAdmin(ctx context.Context, e *env, n *netCommand, fn func(context.Context, trailv1.AdminServiceClient) error) error {
	return withClient(ctx, e, n, trailv1.NewAdminServiceClient, fn)
}

func cmdClusterStatus(ctx context.Context, e *env, args []string) error {
	var n netCommand
	fs := newFlagSet("cluster status")
	n.register(fs)
	if _, err := parseCommand(e, "cluster status", fs, args, 0, 0); err != nil {
		return err
	}
	return withAdmin(ctx, e, &n, func(ctx context.Context, c trailv1.AdminServiceClient) error {
		resp, err := c.ClusterStatus(ctx, &trailv1.ClusterStatusRequest{})
		if err != nil {
			return wrapRPC("ClusterStatus", err)
		}
		if n.json {
			return writeJSON(e.stdout, resp)
		}
		return printClusterStatus(e, resp)
	})
}

func printClusterStatus(e *env, s *trailv1.ClusterStatusResponse) error {
	err := keyValues(e.stdout, [][2]string{
		{"node", s.GetNodeId()},
		{"state", s.GetState()},
		{"leader", s.GetLeaderId()},
		{"applied index", formatUint(s.GetAppliedIndex())},
		{"commit index", formatUint(s.GetCommitIndex())},
		{"last log index", formatUint(s.GetLastLogIndex())},
	})
	if err != nil {
		return err
	}
	fmt.Fprintln(e.stdout)
	tw := newTable(e.stdout)
	fmt.Fprintln(tw, "ID\tRAFT ADDRESS\tAPI ADDRESS\tVOTER\tLEADER")
	var cosigner string
	for _, nd := range s.GetNodes() {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%t\t%t\n", nd.GetId(), nd.GetRaftAddress(), nd.GetApiAddress(), nd.GetVoter(), nd.GetLeader())
		if k := nd.GetCosignerKey(); k != "" {
			cosigner = k
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if cosigner != "" {
		// Only the answering node knows its own key: ask each node for
		// the list auditors pass to verify --cosigners.
		_, err := fmt.Fprintf(e.stdout, "\ncosigning key of %s: %s\n", s.GetNodeId(), cosigner)
		return err
	}
	return nil
}

func cmdClusterJoin(ctx context.Context, e *env, args []string) error {
	var n netCommand
	fs := newFlagSet("cluster join")
	n.register(fs)
	pos, err := parseCommand(e, "cluster join", fs, args, 2, 2)
	if err != nil {
		return err
	}
	return withAdmin(ctx, e, &n, func(ctx context.Context, c trailv1.AdminServiceClient) error {
		resp, err := c.AddNode(ctx, &trailv1.AddNodeRequest{Id: pos[0], RaftAddress: pos[1]})
		if err != nil {
			return wrapRPC("AddNode", err)
		}
		return done(e, n.json, resp, "node %s (%s) joined the cluster as a voter", pos[0], pos[1])
	})
}

func cmdClusterRemove(ctx context.Context, e *env, args []string) error {
	var n netCommand
	fs := newFlagSet("cluster remove")
	n.register(fs)
	pos, err := parseCommand(e, "cluster remove", fs, args, 1, 1)
	if err != nil {
		return err
	}
	return withAdmin(ctx, e, &n, func(ctx context.Context, c trailv1.AdminServiceClient) error {
		resp, err := c.RemoveNode(ctx, &trailv1.RemoveNodeRequest{Id: pos[0]})
		if err != nil {
			return wrapRPC("RemoveNode", err)
		}
		return done(e, n.json, resp, "node %s removed from the cluster", pos[0])
	})
}

func cmdClusterTransfer(ctx context.Context, e *env, args []string) error {
	var n netCommand
	fs := newFlagSet("cluster transfer-leader")
	n.register(fs)
	pos, err := parseCommand(e, "cluster transfer-leader", fs, args, 0, 1)
	if err != nil {
		return err
	}
	req := &trailv1.TransferLeadershipRequest{}
	target := "a node Raft picks"
	if len(pos) == 1 {
		req.Id, target = pos[0], "node "+pos[0]
	}
	return withAdmin(ctx, e, &n, func(ctx context.Context, c trailv1.AdminServiceClient) error {
		resp, err := c.TransferLeadership(ctx, req)
		if err != nil {
			return wrapRPC("TransferLeadership", err)
		}
		return done(e, n.json, resp, "leadership transferred to %s", target)
	})
}
