package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"google.golang.org/protobuf/types/known/timestamppb"

	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// searchFlags are the flags of "trailctl search".
type searchFlags struct {
	req    trailv1.SearchRequest
	filter filterFlags
	limit  uint
	all    bool
}

func (s *searchFlags) register(fs *flag.FlagSet) {
	s.filter.register(fs, "entries")
	fs.BoolVar(&s.req.NewestFirst, "newest", false, "newest entries first")
	fs.UintVar(&s.limit, "limit", 0, "entries per page (default: the server's, 100; at most 1000)")
	fs.StringVar(&s.req.Cursor, "cursor", "", "continue from the cursor a previous page printed")
	fs.BoolVar(&s.all, "all", false, "fetch every page, not just the first")
}

// request builds the SearchRequest from the flags.
func (s *searchFlags) request(tenant string) (*trailv1.SearchRequest, error) {
	if err := validTenant(tenant); err != nil {
		return nil, usageErrorf("%v", err)
	}
	req := &s.req
	req.TenantId = tenant
	if s.limit > 1000 {
		return nil, usageErrorf("--limit is at most 1000")
	}
	req.Limit = uint32(s.limit)
	var err error
	if req.Filter, err = s.filter.filter(); err != nil {
		return nil, err
	}
	return req, nil
}

func optionalTime(s string) (*timestamppb.Timestamp, error) {
	if s == "" {
		return nil, nil
	}
	t, err := parseTime(s)
	if err != nil {
		return nil, err
	}
	return timestamppb.New(t), nil
}

func cmdSearch(ctx context.Context, e *env, args []string) error {
	var n netCommand
	var s searchFlags
	fs := newFlagSet("search")
	n.register(fs)
	s.register(fs)
	pos, err := parseCommand(e, "search", fs, args, 1, 1)
	if err != nil {
		return err
	}
	req, err := s.request(pos[0])
	if err != nil {
		return err
	}
	conn, err := n.connect(e)
	if err != nil {
		return err
	}
	defer conn.Close()
	client := trailv1.NewReadServiceClient(conn)
	for first := true; ; first = false {
		next, err := searchPage(ctx, &n, client, req, e.stdout, first)
		if err != nil {
			return err
		}
		switch {
		case next == "":
			return nil
		case !s.all:
			fmt.Fprintf(e.stderr, "more results: add --cursor %s (or --all)\n", next)
			return nil
		}
		req.Cursor = next
	}
}

// searchPage fetches and prints one page, each under its own deadline, and
// returns the next cursor. Tables are aligned per page so output streams.
func searchPage(ctx context.Context, n *netCommand, client trailv1.ReadServiceClient, req *trailv1.SearchRequest, w io.Writer, header bool) (string, error) {
	rctx, cancel := n.rpcContext(ctx)
	defer cancel()
	resp, err := client.Search(rctx, req)
	if err != nil {
		return "", wrapRPC("Search", err)
	}
	if n.json {
		for _, se := range resp.GetEntries() {
			if err := writeJSON(w, se); err != nil {
				return "", err
			}
		}
		return resp.GetNextCursor(), nil
	}
	tw := newTable(w)
	if header {
		fmt.Fprintln(tw, entryRowHeader)
	}
	for _, se := range resp.GetEntries() {
		fmt.Fprintln(tw, entryRow(se))
	}
	return resp.GetNextCursor(), tw.Flush()
}
