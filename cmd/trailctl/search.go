package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"

	"google.golang.org/protobuf/types/known/timestamppb"

	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// searchFlags are the flags of "trailctl search".
type searchFlags struct {
	req    trailv1.SearchRequest
	filter filterFlags
	limit  uint
	all    bool
	trust  trustFlags
}

func (s *searchFlags) register(fs *flag.FlagSet) {
	s.filter.register(fs, "entries")
	fs.BoolVar(&s.req.NewestFirst, "newest", false, "newest entries first")
	fs.UintVar(&s.limit, "limit", 0, "entries per page (default: the server's, 100; at most 1000)")
	fs.StringVar(&s.req.Cursor, "cursor", "", "continue from the cursor a previous page printed")
	fs.BoolVar(&s.all, "all", false, "fetch every page, not just the first")
	s.trust.register(fs)
}

// request builds the SearchRequest from the flags.
func (s *searchFlags) request(tenant, query string) (*trailv1.SearchRequest, error) {
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
	req.Filter.Query = query
	// With --vkey every hit comes with its proof and is checked here.
	req.WithProofs = s.trust.vkeyFile != ""
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
	pos, err := parseCommand(e, "search", fs, args, 1, 2)
	if err != nil {
		return err
	}
	req, err := s.request(pos[0], strings.Join(pos[1:], ""))
	if err != nil {
		return err
	}
	var t *trust
	if req.WithProofs {
		tr, err := s.trust.load()
		if err != nil {
			return err
		}
		t = &tr
	}
	conn, err := n.connect(e)
	if err != nil {
		return err
	}
	defer conn.Close()
	client := trailv1.NewReadServiceClient(conn)
	proven := 0
	for first := true; ; first = false {
		next, n2, err := searchPage(ctx, &n, client, req, e.stdout, first, t)
		if err != nil {
			return err
		}
		proven += n2
		switch {
		case next == "":
		case !s.all:
			fmt.Fprintf(e.stderr, "more results: add --cursor %s (or --all)\n", next)
		default:
			req.Cursor = next
			continue
		}
		if t != nil {
			fmt.Fprintf(e.stderr, "OK %d hits: each entry's leaf hash recomputed and proven in its partition's checkpoint, signed by key %s\n", proven, t.keyLabel())
		}
		return nil
	}
}

// searchPage fetches and prints one page, each under its own deadline, and
// returns the next cursor and the number of hits proven (with t). Tables
// are aligned per page so output streams.
func searchPage(ctx context.Context, n *netCommand, client trailv1.ReadServiceClient, req *trailv1.SearchRequest, w io.Writer, header bool, t *trust) (string, int, error) {
	rctx, cancel := n.rpcContext(ctx)
	defer cancel()
	resp, err := client.Search(rctx, req)
	if err != nil {
		return "", 0, wrapRPC("Search", err)
	}
	if t != nil {
		if err := proveHits(*t, req.GetTenantId(), resp); err != nil {
			return "", 0, err
		}
	}
	if n.json {
		for _, se := range resp.GetEntries() {
			if err := writeJSON(w, se); err != nil {
				return "", 0, err
			}
		}
		return resp.GetNextCursor(), len(resp.GetEntries()), nil
	}
	tw := newTable(w)
	if header {
		fmt.Fprintln(tw, entryRowHeader)
	}
	for _, se := range resp.GetEntries() {
		fmt.Fprintln(tw, entryRow(se))
	}
	return resp.GetNextCursor(), len(resp.GetEntries()), tw.Flush()
}

// proveHits checks every hit of a page against its partition's signed
// checkpoint, as "trailctl prove" checks one: a hit that does not verify
// fails the command.
func proveHits(t trust, tenant string, resp *trailv1.SearchResponse) error {
	cps := map[string]*trailv1.Checkpoint{}
	for _, c := range resp.GetCheckpoints() {
		cps[c.GetPartition()] = c.GetCheckpoint()
	}
	if len(resp.GetProofs()) != len(resp.GetEntries()) {
		return fmt.Errorf("%d proofs for %d hits: the server did not prove every hit", len(resp.GetProofs()), len(resp.GetEntries()))
	}
	for i, se := range resp.GetEntries() {
		p := resp.GetProofs()[i]
		if p.GetPartition() != se.GetPartition() || p.GetLeafIndex() != se.GetLeafIndex() {
			return fmt.Errorf("hit %d is %s leaf %d but its proof is for %s leaf %d", i, se.GetPartition(), se.GetLeafIndex(), p.GetPartition(), p.GetLeafIndex())
		}
		pf := proofFile{TenantID: tenant, Proof: &trailv1.GetInclusionProofResponse{
			Partition: p.GetPartition(), LeafIndex: p.GetLeafIndex(), TreeSize: p.GetTreeSize(), LeafHash: se.GetLeafHash(),
			Proof: p.GetProof(), Checkpoint: cps[p.GetPartition()], EntryBytes: se.GetEntryBytes(),
		}}
		if _, err := checkInclusion(t, pf); err != nil {
			return fmt.Errorf("hit %d (%s leaf %d): %w", i, se.GetPartition(), se.GetLeafIndex(), err)
		}
	}
	return nil
}
