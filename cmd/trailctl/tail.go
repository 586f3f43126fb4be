package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// tailFlags configure "trailctl tail".
type tailFlags struct {
	partition string
	fromLeaf  uint64
}

// maxTailRetries bounds reconnections that make no progress.
const maxTailRetries = 5

func cmdTail(ctx context.Context, e *env, args []string) error {
	var n netCommand
	var f tailFlags
	fs := newFlagSet("tail")
	n.register(fs)
	fs.StringVar(&f.partition, "partition", "", "start in this partition (default: at the current end of the log)")
	fs.Uint64Var(&f.fromLeaf, "from-leaf", 0, "start at this leaf of --partition")
	pos, err := parseCommand(e, "tail", fs, args, 1, 1)
	if err != nil {
		return err
	}
	req := &trailv1.TailRequest{TenantId: pos[0], Partition: f.partition, FromLeaf: f.fromLeaf}
	if err := checkTail(req, fs); err != nil {
		return err
	}
	conn, err := n.connect(e)
	if err != nil {
		return err
	}
	defer conn.Close()
	return tailLoop(ctx, e, trailv1.NewReadServiceClient(conn), req, n.json)
}

func checkTail(req *trailv1.TailRequest, fs *flag.FlagSet) error {
	if err := validTenant(req.GetTenantId()); err != nil {
		return usageErrorf("%v", err)
	}
	fromLeafSet := false
	fs.Visit(func(f *flag.Flag) { fromLeafSet = fromLeafSet || f.Name == "from-leaf" })
	if fromLeafSet && req.GetPartition() == "" {
		return usageErrorf("--from-leaf needs --partition")
	}
	if req.GetPartition() != "" {
		if err := validPartition(req.GetPartition()); err != nil {
			return usageErrorf("%v", err)
		}
	}
	return nil
}

// tailLoop streams entries until interrupted. The stream has no deadline
// (a tail runs for as long as the operator wants); a stream the server cut
// because this consumer fell behind, or that broke, is resumed right after
// the last entry printed, so nothing is skipped or repeated.
func tailLoop(ctx context.Context, e *env, client trailv1.ReadServiceClient, req *trailv1.TailRequest, asJSON bool) error {
	failures := 0
	for {
		got, err := tailOnce(ctx, e, client, req, asJSON)
		if got {
			failures = 0
		}
		if ctx.Err() != nil {
			return nil // interrupted: a normal way to end a tail
		}
		code := status.Code(err)
		if code != codes.ResourceExhausted && code != codes.Unavailable {
			return wrapRPC("Tail", err)
		}
		if failures++; failures > maxTailRetries {
			return wrapRPC("Tail", err)
		}
		fmt.Fprintf(e.stderr, "trailctl tail: %v; resuming at %s leaf %d\n", err, req.GetPartition(), req.GetFromLeaf())
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Duration(failures) * 500 * time.Millisecond):
		}
	}
}

// tailOnce runs one stream, advancing req past every entry printed. It
// reports whether any entry arrived.
func tailOnce(ctx context.Context, e *env, client trailv1.ReadServiceClient, req *trailv1.TailRequest, asJSON bool) (bool, error) {
	stream, err := client.Tail(ctx, req)
	if err != nil {
		return false, err
	}
	got := false
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return got, status.Error(codes.Unavailable, "server ended the stream")
		}
		if err != nil {
			return got, err
		}
		se := resp.GetEntry()
		if err := printTailEntry(e.stdout, se, asJSON); err != nil {
			return got, ioError(err)
		}
		got = true
		req.Partition, req.FromLeaf = se.GetPartition(), se.GetLeafIndex()+1
	}
}

// printTailEntry prints one line per entry. In JSON this is a chain file
// line, so "tail --json > chain.jsonl" records evidence for verify --chain.
func printTailEntry(w io.Writer, se *trailv1.StoredEntry, asJSON bool) error {
	if asJSON {
		return writeJSON(w, se)
	}
	_, err := fmt.Fprintln(w, strings.ReplaceAll(entryRow(se), "\t", "  "))
	return err
}
