package main

import (
	"context"
	"fmt"
	"strconv"

	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// partitionArgs parses and checks TENANT PARTITION.
func partitionArgs(pos []string) (tenant, partition string, err error) {
	if err := validTenant(pos[0]); err != nil {
		return "", "", usageErrorf("%v", err)
	}
	if err := validPartition(pos[1]); err != nil {
		return "", "", usageErrorf("%v", err)
	}
	return pos[0], pos[1], nil
}

// expectOrigin checks that verified evidence is about what was asked for:
// a server answering with a genuine proof about another partition must not
// pass.
func expectOrigin(o origin, tenant, partition string) error {
	if o.tenant != tenant || o.partition != partition {
		return fmt.Errorf("asked about %s/%s but the server's checkpoint is for %s", tenant, partition, o)
	}
	return nil
}

func cmdCheckpoint(ctx context.Context, e *env, args []string) error {
	var n netCommand
	var tf trustFlags
	var size uint64
	var out string
	fs := newFlagSet("checkpoint")
	n.register(fs)
	tf.register(fs)
	fs.Uint64Var(&size, "size", 0, "checkpoint at this tree size (default: the current size)")
	fs.StringVar(&out, "out", "", "write the signed note to `FILE` (for verify --checkpoint and watch)")
	cosigned := fs.Bool("cosigned", false, "ask for the nodes' cosignatures too: each node recomputes the root from its own copy (fails unless a majority cosigns)")
	pos, err := parseCommand(e, "checkpoint", fs, args, 2, 2)
	if err != nil {
		return err
	}
	tenant, partition, err := partitionArgs(pos)
	if err != nil {
		return err
	}
	var t *trust
	if tf.vkeyFile != "" {
		loaded, err := tf.load()
		if err != nil {
			return err
		}
		t = &loaded
	}
	conn, err := n.connect(e)
	if err != nil {
		return err
	}
	defer conn.Close()
	rctx, cancel := n.rpcContext(ctx)
	defer cancel()
	resp, err := trailv1.NewProofServiceClient(conn).GetCheckpoint(rctx, &trailv1.GetCheckpointRequest{
		TenantId: tenant, Partition: partition, TreeSize: size, Cosigned: *cosigned,
	})
	if err != nil {
		return wrapRPC("GetCheckpoint", err)
	}
	cp := resp.GetCheckpoint()
	if out != "" {
		if err := writeFileAtomic(out, []byte(cp.GetSignedNote()), 0o644); err != nil {
			return err
		}
	}
	if err := printCheckpoint(e, n.json, out, cp); err != nil {
		return err
	}
	if t == nil {
		return nil
	}
	// The verdict goes to stderr so stdout stays the note itself, ready to
	// be piped into "verify --checkpoint -".
	return verifyFetchedCheckpoint(e, *t, cp, tenant, partition, size)
}

func printCheckpoint(e *env, asJSON bool, out string, cp *trailv1.Checkpoint) error {
	switch {
	case asJSON:
		return writeJSON(e.stdout, cp)
	case out != "":
		_, err := fmt.Fprintf(e.stdout, "wrote checkpoint %s size %d to %s\n", cp.GetOrigin(), cp.GetTreeSize(), out)
		return err
	}
	_, err := fmt.Fprint(e.stdout, cp.GetSignedNote())
	return err
}

func verifyFetchedCheckpoint(e *env, t trust, pb *trailv1.Checkpoint, tenant, partition string, size uint64) error {
	cp, o, err := t.openCheckpoint(pb)
	if err == nil {
		err = expectOrigin(o, tenant, partition)
	}
	if err == nil && size != 0 && cp.Size != size {
		err = fmt.Errorf("asked for size %d, got a checkpoint of size %d", size, cp.Size)
	}
	if err != nil {
		return fmt.Errorf("FAILED: %w", err)
	}
	fmt.Fprintln(e.stderr, t.checkpointOK(cp))
	return nil
}

func cmdProve(ctx context.Context, e *env, args []string) error {
	var n netCommand
	var tf trustFlags
	var size uint64
	var out, tlogOut, witnessURL string
	fs := newFlagSet("prove")
	n.register(fs)
	tf.register(fs)
	fs.Uint64Var(&size, "size", 0, "prove against the tree of this size (default: the current size)")
	fs.StringVar(&out, "out", "", "save the proof to `FILE` for verify --proof (written even if it fails to verify: it is evidence)")
	fs.StringVar(&tlogOut, "tlog-proof", "", "also save the proof as a C2SP tlog-proof `FILE` (the entry in its extra line, the checkpoint with any witness cosignatures) for verify --tlog-proof")
	fs.StringVar(&witnessURL, "witness-url", "", "prove against the latest checkpoint the C2SP witness with monitoring prefix `URL` cosigned for the event's partition, and keep its cosignature with the proof")
	pos, err := parseCommand(e, "prove", fs, args, 2, 2)
	if err != nil {
		return err
	}
	tenant, eventID := pos[0], pos[1]
	if err := validTenant(tenant); err != nil {
		return usageErrorf("%v", err)
	}
	if witnessURL != "" && size != 0 {
		return usageErrorf("--witness-url chooses the size: give it or --size, not both")
	}
	t, err := tf.load()
	if err != nil {
		return err
	}
	conn, err := n.connect(e)
	if err != nil {
		return err
	}
	defer conn.Close()
	rctx, cancel := n.rpcContext(ctx)
	defer cancel()
	client := trailv1.NewProofServiceClient(conn)
	resp, err := client.GetInclusionProof(rctx, &trailv1.GetInclusionProofRequest{
		TenantId: tenant, EventId: eventID, TreeSize: size,
	})
	if err != nil {
		return wrapRPC("GetInclusionProof", err)
	}
	if witnessURL != "" {
		w := witnessedProof{net: n, client: client, trust: t, url: witnessURL}
		if resp, err = w.prove(ctx, tenant, eventID, resp); err != nil {
			return reportVerify(e, n.json, verifyResult{}, err)
		}
	}
	pf := proofFile{TenantID: tenant, Proof: resp}
	if out != "" {
		if err := saveProofFile(out, pf); err != nil {
			return err
		}
	}
	if tlogOut != "" {
		if err := writeFileAtomic(tlogOut, encodeTLogProof(resp), 0o644); err != nil {
			return err
		}
	}
	res, err := checkProved(t, pf, eventID, size)
	return reportVerify(e, n.json, res, err)
}

func saveProofFile(path string, pf proofFile) error {
	b, err := encodeProofFile(pf)
	if err != nil {
		return err
	}
	return writeFileAtomic(path, b, 0o644)
}

// checkProved verifies a fetched inclusion proof and that it answers the
// question asked: this event, at this size.
func checkProved(t trust, pf proofFile, eventID string, size uint64) (verifyResult, error) {
	in, err := checkInclusion(t, pf)
	if err != nil {
		return verifyResult{}, err
	}
	res := verifyResult{Verified: []string{t.checkpointOK(in.checkpoint), inclusionOK(in)}}
	switch {
	case size != 0 && in.checkpoint.Size != size:
		return verifyResult{}, fmt.Errorf("asked for a proof at size %d, got one at size %d", size, in.checkpoint.Size)
	case in.pruned:
		res.Notes = []string{fmt.Sprintf("the payload of leaf %d was pruned by retention: nothing ties the proven leaf hash to event id %q", in.leafIndex, eventID)}
	case in.eventID != eventID:
		return verifyResult{}, fmt.Errorf("asked for event %q, the server proved event %q", eventID, in.eventID)
	}
	return res, nil
}

func cmdConsistency(ctx context.Context, e *env, args []string) error {
	var n netCommand
	var tf trustFlags
	var out string
	fs := newFlagSet("consistency")
	n.register(fs)
	tf.register(fs)
	fs.StringVar(&out, "out", "", "save the proof to `FILE` for verify --consistency (written even if it fails to verify)")
	pos, err := parseCommand(e, "consistency", fs, args, 4, 4)
	if err != nil {
		return err
	}
	tenant, partition, err := partitionArgs(pos)
	if err != nil {
		return err
	}
	from, err1 := strconv.ParseUint(pos[2], 10, 64)
	to, err2 := strconv.ParseUint(pos[3], 10, 64)
	if err1 != nil || err2 != nil || from == 0 || (to != 0 && to < from) {
		return usageErrorf("FROM and TO are tree sizes, 1 <= FROM <= TO (TO 0: the current size)")
	}
	t, err := tf.load()
	if err != nil {
		return err
	}
	conn, err := n.connect(e)
	if err != nil {
		return err
	}
	defer conn.Close()
	rctx, cancel := n.rpcContext(ctx)
	defer cancel()
	resp, err := trailv1.NewProofServiceClient(conn).GetConsistencyProof(rctx, &trailv1.GetConsistencyProofRequest{
		TenantId: tenant, Partition: partition, FromSize: from, ToSize: to,
	})
	if err != nil {
		return wrapRPC("GetConsistencyProof", err)
	}
	if out != "" {
		b, err := encodeConsistencyFile(resp)
		if err != nil {
			return err
		}
		if err := writeFileAtomic(out, b, 0o644); err != nil {
			return err
		}
	}
	res, err := checkFetchedConsistency(t, resp, tenant, partition, from, to)
	return reportVerify(e, n.json, res, err)
}

func checkFetchedConsistency(t trust, resp *trailv1.GetConsistencyProofResponse, tenant, partition string, from, to uint64) (verifyResult, error) {
	c, err := checkConsistency(t, resp)
	if err != nil {
		return verifyResult{}, err
	}
	if err := expectOrigin(c.origin, tenant, partition); err != nil {
		return verifyResult{}, err
	}
	if c.from.Size != from || (to != 0 && c.to.Size != to) {
		return verifyResult{}, fmt.Errorf("asked for sizes %d..%d, got a proof for %d..%d", from, to, c.from.Size, c.to.Size)
	}
	return verifyResult{Verified: []string{t.checkpointOK(c.from), t.checkpointOK(c.to), consistencyOK(c)}}, nil
}

func cmdPartitions(ctx context.Context, e *env, args []string) error {
	var n netCommand
	fs := newFlagSet("partitions")
	n.register(fs)
	pos, err := parseCommand(e, "partitions", fs, args, 1, 1)
	if err != nil {
		return err
	}
	if err := validTenant(pos[0]); err != nil {
		return usageErrorf("%v", err)
	}
	conn, err := n.connect(e)
	if err != nil {
		return err
	}
	defer conn.Close()
	rctx, cancel := n.rpcContext(ctx)
	defer cancel()
	resp, err := trailv1.NewProofServiceClient(conn).ListPartitions(rctx, &trailv1.ListPartitionsRequest{TenantId: pos[0]})
	if err != nil {
		return wrapRPC("ListPartitions", err)
	}
	if n.json {
		return writeJSON(e.stdout, resp)
	}
	tw := newTable(e.stdout)
	fmt.Fprintln(tw, "PARTITION\tSIZE\tROOT\tSEALED\tPRUNED\tFIRST\tLAST")
	for _, p := range resp.GetPartitions() {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%t\t%d\t%s\t%s\n", p.GetPartition(), p.GetSize(), hexOf(p.GetRootHash()),
			p.GetSealed(), p.GetPruned(), formatTime(p.GetFirstTime()), formatTime(p.GetLastTime()))
	}
	return tw.Flush()
}
