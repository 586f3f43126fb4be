package main

import (
	"context"

	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

func cmdGet(ctx context.Context, e *env, args []string) error {
	var n netCommand
	var partition string
	var leaf uint64
	fs := newFlagSet("get")
	n.register(fs)
	fs.StringVar(&partition, "partition", "", "with --leaf: name the entry by position instead of EVENT_ID")
	fs.Uint64Var(&leaf, "leaf", 0, "leaf index within --partition")
	pos, err := parseCommand(e, "get", fs, args, 1, 2)
	if err != nil {
		return err
	}
	req := &trailv1.GetEventRequest{TenantId: pos[0], Partition: partition, LeafIndex: leaf}
	if len(pos) == 2 {
		req.EventId = pos[1]
	}
	if err := checkGet(req); err != nil {
		return err
	}
	conn, err := n.connect(e)
	if err != nil {
		return err
	}
	defer conn.Close()
	rctx, cancel := n.rpcContext(ctx)
	defer cancel()
	resp, err := trailv1.NewReadServiceClient(conn).GetEvent(rctx, req)
	if err != nil {
		return wrapRPC("GetEvent", err)
	}
	if n.json {
		return writeJSON(e.stdout, resp)
	}
	return printEntry(e.stdout, resp.GetEntry(), resp.GetReceipt())
}

func checkGet(req *trailv1.GetEventRequest) error {
	if err := validTenant(req.GetTenantId()); err != nil {
		return usageErrorf("%v", err)
	}
	switch {
	case req.GetEventId() != "" && req.GetPartition() != "":
		return usageErrorf("give EVENT_ID or --partition and --leaf, not both")
	case req.GetEventId() == "" && req.GetPartition() == "":
		return usageErrorf("give EVENT_ID, or --partition and --leaf")
	case req.GetPartition() != "":
		if err := validPartition(req.GetPartition()); err != nil {
			return usageErrorf("%v", err)
		}
	}
	return nil
}
