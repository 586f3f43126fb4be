package server

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/trailaudit/trail/engine"
	"github.com/trailaudit/trail/filter"
	"github.com/trailaudit/trail/merkle"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
	"github.com/trailaudit/trail/report"
)

// PII access reports and entity histories: the server's side of the
// report package. A report's rows, checkpoints and proofs are read from
// one engine (AcquireEngine), so they agree even across a snapshot
// restore; the report is built and attested with the log key, then
// rendered and streamed in chunks. The documents are built whole in
// memory, hence the bounds below.

const (
	// reportPageBytes bounds the entry bytes of one search page.
	reportPageBytes = 16 << 20
	// maxReportBytes bounds the entry bytes of one report: JSON and PDF
	// need every row in memory at once.
	maxReportBytes = 256 << 20
)

// reportRowLimit is report.MaxRows, as a variable so that a test can reach
// the limit without appending a hundred thousand events.
var reportRowLimit = report.MaxRows

// REST routes that answer with the rendered document itself rather than
// the gateway's stream of JSON-wrapped chunks.
const (
	piiReportPattern     = "/api/v1/audit/tenants/{tenant_id}/subjects/{subject_id}/pii-access"
	historyReportPattern = "/api/v1/audit/tenants/{tenant_id}/entities/{target_type}/{target_id}/history"
	piiReportPath        = "GET " + piiReportPattern
	historyReportPath    = "GET " + historyReportPattern
)

// PIIAccessReport streams the report of every data_access event on one data
// subject, with accesses lacking a valid purpose code flagged.
func (c *complianceService) PIIAccessReport(req *trailv1.PIIAccessReportRequest, stream grpc.ServerStreamingServer[trailv1.DownloadChunk]) (err error) {
	ctx := stream.Context()
	tenant := req.GetTenantId()
	if err := checkTenant(tenant); err != nil {
		return err
	}
	ac, err := c.s.authorize(ctx, permPIIReport, trailv1.Category_CATEGORY_DATA_ACCESS, tenant)
	if err != nil {
		return err
	}
	defer func() { ac.finish(err) }()
	ac.set("report", report.KindPIIAccess)
	ac.set("subject_id", req.GetSubjectId())
	if req.GetSubjectId() == "" {
		return badRequest("subject_id is required")
	}
	rr, err := newReportRequest(ac, req.GetFormat(), req.GetFrom(), req.GetTo(), req.GetMinIndex())
	if err != nil {
		return err
	}
	rr.query = engine.Query{Tenant: tenant, Filter: filter.Filter{SubjectIDs: []string{req.GetSubjectId()}, Categories: []trailv1.Category{trailv1.Category_CATEGORY_DATA_ACCESS}, From: rr.from, To: rr.to}}
	// The valid codes are the tenant's anomaly rules': a report flags
	// exactly the accesses the missing_purpose_code rule flags.
	valid, err := c.s.tenantPurposeCodes(ctx, tenant)
	if err != nil {
		return toStatus(err)
	}
	doc, err := c.s.buildReport(ctx, ac, rr, func(logName string, entries []report.LogEntry) (*report.Content, error) {
		q := report.PIIAccessQuery{Tenant: tenant, SubjectID: req.GetSubjectId(), From: rr.from, To: rr.to, ValidPurposeCodes: valid}
		return report.NewPIIAccess(logName, q, time.Now(), entries)
	})
	if err != nil {
		return err
	}
	ac.setUint("flagged", uint64(doc.Content.Summary.Flagged))
	return streamReport(doc, rr.format, stream)
}

// EntityHistory streams the history of one entity: every event whose
// target it is, oldest first, with its field changes.
func (c *complianceService) EntityHistory(req *trailv1.EntityHistoryRequest, stream grpc.ServerStreamingServer[trailv1.DownloadChunk]) (err error) {
	ctx := stream.Context()
	tenant := req.GetTenantId()
	if err := checkTenant(tenant); err != nil {
		return err
	}
	ac, err := c.s.authorize(ctx, permRead, trailv1.Category_CATEGORY_DATA_ACCESS, tenant)
	if err != nil {
		return err
	}
	defer func() { ac.finish(err) }()
	ac.set("report", report.KindEntityHistory)
	ac.set("target", req.GetTargetType()+"/"+req.GetTargetId())
	if req.GetTargetType() == "" || req.GetTargetId() == "" {
		return badRequest("target_type and target_id are required")
	}
	rr, err := newReportRequest(ac, req.GetFormat(), req.GetFrom(), req.GetTo(), req.GetMinIndex())
	if err != nil {
		return err
	}
	rr.query = engine.Query{Tenant: tenant, Filter: filter.Filter{Targets: []filter.Target{{Type: req.GetTargetType(), ID: req.GetTargetId()}}, From: rr.from, To: rr.to}}
	doc, err := c.s.buildReport(ctx, ac, rr, func(logName string, entries []report.LogEntry) (*report.Content, error) {
		q := report.EntityHistoryQuery{Tenant: tenant, TargetType: req.GetTargetType(), TargetID: req.GetTargetId(), From: rr.from, To: rr.to}
		return report.NewEntityHistory(logName, q, time.Now(), entries)
	})
	if err != nil {
		return err
	}
	return streamReport(doc, rr.format, stream)
}

// reportRequest holds the parameters both reports share.
type reportRequest struct {
	format   report.Format
	from, to time.Time
	minIndex uint64
	query    engine.Query // the rows' search
}

// newReportRequest validates the shared parameters and records them on the
// access audit record.
func newReportRequest(ac *access, f trailv1.ReportFormat, from, to *timestamppb.Timestamp, minIndex uint64) (reportRequest, error) {
	rr := reportRequest{minIndex: minIndex}
	var err error
	if rr.format, err = reportFormat(f); err != nil {
		return rr, err
	}
	ac.set("format", string(rr.format))
	if rr.from, err = optionalTime("from", from); err != nil {
		return rr, err
	}
	if rr.to, err = optionalTime("to", to); err != nil {
		return rr, err
	}
	if !rr.from.IsZero() {
		ac.set("from", rr.from.UTC().Format(time.RFC3339Nano))
	}
	if !rr.to.IsZero() {
		ac.set("to", rr.to.UTC().Format(time.RFC3339Nano))
	}
	return rr, nil
}

// reportFormat maps the API's format; unspecified is JSON. Every format
// verifies offline; a bundle holds the JSON, CSV and PDF of one run.
func reportFormat(f trailv1.ReportFormat) (report.Format, error) {
	switch f {
	case trailv1.ReportFormat_REPORT_FORMAT_UNSPECIFIED, trailv1.ReportFormat_REPORT_FORMAT_JSON:
		return report.FormatJSON, nil
	case trailv1.ReportFormat_REPORT_FORMAT_CSV:
		return report.FormatCSV, nil
	case trailv1.ReportFormat_REPORT_FORMAT_PDF:
		return report.FormatPDF, nil
	case trailv1.ReportFormat_REPORT_FORMAT_BUNDLE:
		return report.FormatBundle, nil
	}
	return "", badRequest("unknown report format %d", f)
}

// reportEntries runs q to the end, page by page, and returns every hit's
// position and bytes, and for a sealed payload what open made of it. It
// refuses reports beyond reportRowLimit rows or maxReportBytes of entries:
// they are built whole in memory.
func reportEntries(ctx context.Context, eng *engine.Engine, q engine.Query, open func(*trailv1.Entry) (trailv1.SealedState, []byte)) ([]report.LogEntry, error) {
	q.Limit, q.MaxBytes = engine.MaxSearchLimit, reportPageBytes
	var out []report.LogEntry
	total := 0
	for {
		res, err := eng.Search(ctx, q)
		if err != nil {
			return nil, err
		}
		for _, h := range res.Hits {
			total += len(h.Data)
			switch {
			case len(out) == reportRowLimit:
				return nil, fmt.Errorf("%w: more than %d events match; narrow the time range (from, to)", errResultTooLarge, reportRowLimit)
			case total > maxReportBytes:
				return nil, fmt.Errorf("%w: the matching events exceed %d MiB; narrow the time range (from, to)", errResultTooLarge, maxReportBytes>>20)
			}
			le := report.LogEntry{Partition: h.Partition.Month.String(), LeafIndex: h.LeafIndex, Data: h.Data}
			if h.Entry.GetEvent().GetSealed() != nil {
				le.Payload, le.OpeningKey = openedPayload(h.Entry, open)
			}
			out = append(out, le)
		}
		if res.NextCursor == "" {
			return out, nil
		}
		q.Cursor = res.NextCursor
	}
}

// openedPayload is the payload state of a sealed entry, and its opening
// key when opened, as open (sealedPayload) decides it for any reader. The
// report checks both against the entry bytes as it builds the row.
func openedPayload(en *trailv1.Entry, open func(*trailv1.Entry) (trailv1.SealedState, []byte)) (report.PayloadState, []byte) {
	state, key := open(en)
	switch state {
	case trailv1.SealedState_SEALED_STATE_OPENED:
		return report.PayloadOpened, key
	case trailv1.SealedState_SEALED_STATE_ERASED:
		return report.PayloadErased, nil
	}
	return report.PayloadUnavailable, nil
}

// buildReport reads the rows of rr's query, builds the report's content
// with build and attests it. The engine is held from the first read to the
// last proof, so that rows, checkpoints and proofs come from one store
// even across a snapshot restore, and released before the document is
// streamed to a client of unknown speed.
func (s *Server) buildReport(ctx context.Context, ac *access, rr reportRequest,
	build func(logName string, entries []report.LogEntry) (*report.Content, error)) (*report.Document, error) {
	if err := s.waitApplied(ctx, rr.minIndex); err != nil {
		return nil, err
	}
	eng, release := s.cluster.AcquireEngine()
	defer release()
	entries, err := reportEntries(ctx, eng, rr.query, func(en *trailv1.Entry) (trailv1.SealedState, []byte) { return s.sealedPayload(eng, en) })
	if err != nil {
		return nil, err
	}
	content, err := build(eng.LogName(), entries)
	if err != nil {
		return nil, fmt.Errorf("server: build report: %w", err)
	}
	ac.setUint("rows", uint64(content.Summary.Rows))
	if n := content.Summary.Erased; n > 0 {
		ac.setUint("erased", uint64(n))
	}
	ids := make([]string, 0, content.Summary.Rows)
	for _, r := range content.Accesses {
		ids = append(ids, r.EventID)
	}
	for _, r := range content.History {
		ids = append(ids, r.EventID)
	}
	ac.eventIDs = ids
	// A bundle holds a PDF.
	if (rr.format == report.FormatPDF || rr.format == report.FormatBundle) && content.Summary.Rows > report.MaxPDFRows {
		return nil, fmt.Errorf("%w: %d rows; a PDF report, and so a bundle, holds at most %d: use JSON or CSV, or narrow the time range (from, to)",
			errResultTooLarge, content.Summary.Rows, report.MaxPDFRows)
	}
	doc, err := report.Attest(ctx, content, reportProver{s: s, eng: eng, tenant: content.TenantID}, s.cfg.Signer)
	if err != nil {
		return nil, fmt.Errorf("server: attest report: %w", err)
	}
	ac.set("digest", doc.Attestation.Digest)
	return doc, nil
}

// streamReport renders doc in format f into the stream, in chunks.
func streamReport(doc *report.Document, f report.Format, stream grpc.ServerStreamingServer[trailv1.DownloadChunk]) error {
	w := &chunkWriter{stream: stream, contentType: f.ContentType(), filename: report.FileName(doc.Content, f)}
	if err := report.Render(w, doc, f); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("server: send report chunk: %w", err)
	}
	return nil
}

// reportProver serves a report's checkpoints and proofs from one engine,
// signing checkpoints with the log key as GetCheckpoint does.
type reportProver struct {
	s      *Server
	eng    *engine.Engine
	tenant string
}

func (p reportProver) SignedCheckpoint(ctx context.Context, partition string) ([]byte, error) {
	part, err := parsePartition(p.tenant, partition)
	if err != nil {
		return nil, err
	}
	cp, err := p.eng.Checkpoint(ctx, part, 0)
	if err != nil {
		return nil, err
	}
	signed, err := p.s.sign(cp)
	if err != nil {
		return nil, err
	}
	return []byte(signed.GetSignedNote()), nil
}

func (p reportProver) InclusionProof(ctx context.Context, partition string, leaf, size uint64) ([]merkle.Hash, error) {
	part, err := parsePartition(p.tenant, partition)
	if err != nil {
		return nil, err
	}
	proof, _, err := p.eng.InclusionProof(ctx, part, leaf, size)
	return proof, err
}

// servePIIAccessReport answers the PII access report route with the
// document itself (GET ...?from=&to=&format=json|csv|pdf|bundle&min_index=; the
// query parameters are the request's fields, read as the gateway reads
// them, restnames.go). Like serveCheckpointNote, it calls the gRPC method
// through the gateway's connection, so authentication, authorization and
// auditing are the gRPC call's.
func (s *Server) servePIIAccessReport(w http.ResponseWriter, r *http.Request) {
	req := &trailv1.PIIAccessReportRequest{TenantId: r.PathValue("tenant_id"), SubjectId: r.PathValue("subject_id")}
	s.serveReport(w, r, "/trail.v1.ComplianceService/PIIAccessReport", piiReportPattern, req,
		func(ctx context.Context, c trailv1.ComplianceServiceClient) (grpc.ServerStreamingClient[trailv1.DownloadChunk], error) {
			return c.PIIAccessReport(ctx, req)
		}, "tenant_id", "subject_id")
}

// serveEntityHistory answers the entity history route with the document.
func (s *Server) serveEntityHistory(w http.ResponseWriter, r *http.Request) {
	req := &trailv1.EntityHistoryRequest{TenantId: r.PathValue("tenant_id"), TargetType: r.PathValue("target_type"), TargetId: r.PathValue("target_id")}
	s.serveReport(w, r, "/trail.v1.ComplianceService/EntityHistory", historyReportPattern, req,
		func(ctx context.Context, c trailv1.ComplianceServiceClient) (grpc.ServerStreamingClient[trailv1.DownloadChunk], error) {
			return c.EntityHistory(ctx, req)
		}, "tenant_id", "target_type", "target_id")
}

// serveReport sets req's fields from the query string (pathParams are
// set from the path already), runs one report call through the gateway
// connection and relays the document: Content-Type and
// Content-Disposition from the first chunk, then the bytes. An error
// before the first chunk is an ordinary gateway error response; one after
// it aborts the response, so a client never mistakes a cut document for a
// whole one.
func (s *Server) serveReport(w http.ResponseWriter, r *http.Request, method, pattern string, req proto.Message,
	call func(context.Context, trailv1.ComplianceServiceClient) (grpc.ServerStreamingClient[trailv1.DownloadChunk], error),
	pathParams ...string) {
	g := s.gateway
	fail := func(ctx context.Context, err error) { runtime.HTTPError(ctx, g.mux, g.json, w, r, toStatus(err)) }
	ctx, err := runtime.AnnotateContext(r.Context(), g.mux, r, method, runtime.WithHTTPPathPattern(pattern))
	if err != nil {
		fail(r.Context(), err)
		return
	}
	if err := parseQuery(req, r, pathParams...); err != nil {
		fail(ctx, err)
		return
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := call(ctx, trailv1.NewComplianceServiceClient(g.conn))
	if err != nil {
		fail(ctx, err)
		return
	}
	s.relayDownload(ctx, w, stream, fail, method)
}
