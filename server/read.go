package server

import (
	"context"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/trailaudit/trail/engine"
	"github.com/trailaudit/trail/filter"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

const (
	// maxReadWait bounds how long a read waits for min_index when the
	// caller set no shorter deadline: a node that far behind should send
	// the caller elsewhere rather than hold the call.
	maxReadWait = 30 * time.Second
	// defaultSearchBytes bounds the entry bytes of one search page, so
	// that a page of large entries stays a sane message; a page over it is
	// cut short with a cursor to continue.
	defaultSearchBytes = 16 << 20
)

// readService implements trail.v1.ReadService.
type readService struct {
	trailv1.UnimplementedReadServiceServer
	s *Server
}

func (rs *readService) GetEvent(ctx context.Context, req *trailv1.GetEventRequest) (_ *trailv1.GetEventResponse, err error) {
	tenant := req.GetTenantId()
	ac, err := rs.s.authorizeTenant(ctx, permRead, trailv1.Category_CATEGORY_DATA_ACCESS, tenant)
	if err != nil {
		return nil, err
	}
	defer func() { ac.finish(err) }()
	if err := rs.s.waitApplied(ctx, req.GetMinIndex()); err != nil {
		return nil, err
	}
	switch {
	case req.GetEventId() != "" && (req.GetPartition() != "" || req.GetLeafIndex() != 0):
		return nil, badRequest("give either event_id, or partition and leaf_index, not both")
	case req.GetEventId() != "":
		ac.eventIDs = []string{req.GetEventId()}
		return rs.eventByID(ctx, tenant, req.GetEventId())
	case req.GetPartition() != "":
		ac.set("partition", req.GetPartition())
		ac.setUint("leaf_index", req.GetLeafIndex())
		resp, err := rs.eventByLeaf(ctx, tenant, req.GetPartition(), req.GetLeafIndex())
		if id := resp.GetEntry().GetEntry().GetEvent().GetEventId(); id != "" {
			ac.eventIDs = []string{id}
		}
		return resp, err
	case req.GetLeafIndex() != 0:
		return nil, badRequest("leaf_index needs the partition it is a leaf of")
	}
	return nil, badRequest("event_id, or partition and leaf_index, is required")
}

func (rs *readService) eventByID(ctx context.Context, tenant, id string) (*trailv1.GetEventResponse, error) {
	se, rec, err := rs.s.cluster.Engine().EntryByEventID(ctx, tenant, id)
	if err != nil {
		return nil, err
	}
	entry, err := rs.s.storedEntryProto(se)
	if err != nil {
		return nil, err
	}
	return &trailv1.GetEventResponse{Entry: entry, Receipt: receiptProto(rec, 0)}, nil
}

// eventByLeaf reads a leaf and, when its payload is still there, the
// original receipt of the event it holds.
func (rs *readService) eventByLeaf(ctx context.Context, tenant, partition string, leaf uint64) (*trailv1.GetEventResponse, error) {
	p, err := parsePartition(tenant, partition)
	if err != nil {
		return nil, err
	}
	eng := rs.s.cluster.Engine()
	se, err := eng.Entry(ctx, p, leaf)
	if err != nil {
		return nil, err
	}
	entry, err := rs.s.storedEntryProto(se)
	if err != nil {
		return nil, err
	}
	resp := &trailv1.GetEventResponse{Entry: entry}
	if id := entry.GetEntry().GetEvent().GetEventId(); id != "" {
		_, rec, err := eng.EntryByEventID(ctx, tenant, id)
		if err == nil && rec.Partition == p.Month && rec.LeafIndex == leaf {
			resp.Receipt = receiptProto(rec, 0)
		}
	}
	return resp, nil
}

// Search runs one page of a query. Filtering by data subject or PII field
// is a report on a person's data and needs permPIIReport.
func (rs *readService) Search(ctx context.Context, req *trailv1.SearchRequest) (_ *trailv1.SearchResponse, err error) {
	tenant := req.GetTenantId()
	if err := checkTenant(tenant); err != nil {
		return nil, err
	}
	q, err := searchQuery(req)
	if err != nil {
		return nil, err
	}
	ac, err := rs.s.authorize(ctx, filterPerm(&q.Filter), trailv1.Category_CATEGORY_DATA_ACCESS, tenant)
	if err != nil {
		return nil, err
	}
	defer func() { ac.finish(err) }()
	if b, err := protojson.Marshal(req); err == nil {
		ac.set("query", string(b))
	}
	if err := rs.s.waitApplied(ctx, req.GetMinIndex()); err != nil {
		return nil, err
	}
	// One engine for the hits and their proofs: a snapshot restore in
	// between must not mix two.
	eng, release := rs.s.cluster.AcquireEngine()
	defer release()
	sctx, end := rs.s.span(ctx, "trail.search", attribute.String("trail.tenant", tenant))
	if rs.s.tracing() { // describing the filter is work only a trace reads
		trace.SpanFromContext(sctx).SetAttributes(attribute.String("trail.filter", q.Filter.Describe()))
	}
	res, err := rs.search(sctx, eng, q)
	end(err)
	if err != nil {
		return nil, err
	}
	resp := &trailv1.SearchResponse{Entries: make([]*trailv1.StoredEntry, len(res.Hits)), NextCursor: res.NextCursor}
	ids := make([]string, len(res.Hits))
	for i, h := range res.Hits {
		resp.Entries[i] = rs.s.hitProto(h)
		ids[i] = h.Entry.GetEvent().GetEventId()
	}
	if req.GetWithProofs() {
		if err := rs.proveHits(ctx, eng, tenant, res.Hits, resp); err != nil {
			return nil, err
		}
	}
	ac.eventIDs = ids
	ac.setUint("results", uint64(len(ids)))
	return resp, nil
}

// search runs q and, when the page's entries exceed the byte bound, runs it
// again with a limit that fits, so that the cursor resumes right after the
// last entry returned. The engine's cursors are opaque; asking it again is
// the only way to get one for a shorter page.
func (rs *readService) search(ctx context.Context, eng *engine.Engine, q engine.Query) (engine.SearchResult, error) {
	res, err := eng.Search(ctx, q)
	if err != nil {
		return engine.SearchResult{}, err
	}
	total, fit := 0, len(res.Hits)
	for i, h := range res.Hits {
		total += len(h.Data)
		if total > rs.s.cfg.searchBytes {
			fit = max(i, 1)
			break
		}
	}
	if fit == len(res.Hits) {
		return res, nil
	}
	q.Limit = fit
	return eng.Search(ctx, q)
}

func searchQuery(req *trailv1.SearchRequest) (engine.Query, error) {
	f, err := filter.Merge(filter.Legacy{
		ActorID: req.GetActorId(), SubjectID: req.GetSubjectId(), TargetType: req.GetTargetType(), TargetID: req.GetTargetId(),
		Category: req.GetCategory(), Action: req.GetAction(), PurposeCode: req.GetPurposeCode(), PIIField: req.GetPiiField(),
		From: req.GetFrom(), To: req.GetTo(),
	}, req.GetFilter())
	if err != nil {
		return engine.Query{}, badRequest("%v", err)
	}
	return engine.Query{Tenant: req.GetTenantId(), Filter: f, NewestFirst: req.GetNewestFirst(),
		Limit: int(req.GetLimit()), Cursor: req.GetCursor()}, nil
}

// filterPerm is the permission a selection needs: one by data subject or
// PII field is a report on people's data.
func filterPerm(f *filter.Filter) permission {
	if len(f.SubjectIDs) > 0 || len(f.PIIFields) > 0 {
		return permPIIReport
	}
	return permRead
}

// optionalTime converts an optional timestamp; nil is the zero time, which
// the engine reads as "no bound".
func optionalTime(name string, ts *timestamppb.Timestamp) (time.Time, error) {
	if ts == nil {
		return time.Time{}, nil
	}
	if err := ts.CheckValid(); err != nil {
		return time.Time{}, badRequest("%s: %v", name, err)
	}
	return ts.AsTime(), nil
}

// waitApplied waits until this node has applied index, for read-your-writes
// on followers. It gives up after maxReadWait with UNAVAILABLE (this node
// is behind; another may not be); the caller's own deadline gives
// DEADLINE_EXCEEDED.
func (s *Server) waitApplied(ctx context.Context, index uint64) error {
	if index == 0 || s.cluster.AppliedIndex() >= index {
		return nil
	}
	wctx, cancel := context.WithTimeout(ctx, maxReadWait)
	defer cancel()
	err := s.cluster.WaitApplied(wctx, index)
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return fmt.Errorf("wait for index %d: %w", index, ctx.Err())
	case wctx.Err() != nil:
		return fmt.Errorf("%w: this node has not applied index %d after %s", errUnavailable, index, maxReadWait)
	}
	return fmt.Errorf("wait for index %d: %w", index, err)
}
