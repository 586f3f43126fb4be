package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/trailaudit/trail/internal/enumname"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
	"github.com/trailaudit/trail/report"
)

// "trailctl report pii" and "trailctl report history" download a PII access
// report or an entity history; "trailctl verify --report" checks a report
// file offline, JSON, CSV, PDF or a bundle of all three (package report
// holds the formats and the verifiers).

// errReportIdle ends a download whose server sent nothing for --timeout.
var errReportIdle = errors.New("no data from the server within --timeout")

// reportFlags are the flags both report commands share.
type reportFlags struct {
	conn     connFlags
	trust    trustFlags
	tenant   string
	from, to string
	format   string
	minIndex uint64
	out      string
}

func (f *reportFlags) register(fs *flag.FlagSet) {
	f.conn.register(fs)
	f.trust.register(fs)
	fs.StringVar(&f.tenant, "tenant", "", "the tenant (required)")
	fs.StringVar(&f.from, "from", "", "events sequenced at or after `TIME` (RFC 3339 or YYYY-MM-DD)")
	fs.StringVar(&f.to, "to", "", "events sequenced before `TIME` (RFC 3339 or YYYY-MM-DD)")
	fs.StringVar(&f.format, "format", "json", "`FORMAT` of the report: json, csv, pdf, or bundle (a zip of all three from one run); each verifies offline")
	fs.Uint64Var(&f.minIndex, "min-index", 0, "wait until the node has applied this Raft index")
	fs.StringVar(&f.out, "o", "", "write the report to `FILE` (- for stdout; default: the server's file name, in the current directory)")
	fs.StringVar(&f.out, "out", "", "same as -o")
}

// common validates the shared flags.
func (f *reportFlags) common() (format trailv1.ReportFormat, from, to *timestamppb.Timestamp, err error) {
	if err := validTenant(f.tenant); err != nil {
		return 0, nil, nil, usageErrorf("--tenant: %v", err)
	}
	name := f.format
	if v, ok := enumname.Lookup(trailv1.ReportFormat(0).Descriptor(), name); ok && v.Number() != 0 {
		name = enumname.Short(v) // the API's name, REPORT_FORMAT_PDF
	}
	rf, err := report.ParseFormat(name)
	if err != nil {
		return 0, nil, nil, usageErrorf("--format: %v", err)
	}
	if f.trust.vkeyFile != "" && f.out == "-" {
		return 0, nil, nil, usageErrorf("--vkey verifies the downloaded file: it does not go with -o -")
	}
	if from, err = optionalTime(f.from); err != nil {
		return 0, nil, nil, usageErrorf("--from: %v", err)
	}
	if to, err = optionalTime(f.to); err != nil {
		return 0, nil, nil, usageErrorf("--to: %v", err)
	}
	return apiReportFormat(rf), from, to, nil
}

// apiReportFormat maps the report package's format to the API's.
func apiReportFormat(f report.Format) trailv1.ReportFormat {
	switch f {
	case report.FormatCSV:
		return trailv1.ReportFormat_REPORT_FORMAT_CSV
	case report.FormatPDF:
		return trailv1.ReportFormat_REPORT_FORMAT_PDF
	case report.FormatBundle:
		return trailv1.ReportFormat_REPORT_FORMAT_BUNDLE
	}
	return trailv1.ReportFormat_REPORT_FORMAT_JSON
}

func cmdReportPII(ctx context.Context, e *env, args []string) error {
	var f reportFlags
	var subject string
	fs := newFlagSet("report pii")
	f.register(fs)
	fs.StringVar(&subject, "subject", "", "the data subject (citizen) id (required)")
	if _, err := parseCommand(e, "report pii", fs, args, 0, 0); err != nil {
		return err
	}
	format, from, to, err := f.common()
	if err != nil {
		return err
	}
	if subject == "" {
		return usageErrorf("--subject is required")
	}
	req := &trailv1.PIIAccessReportRequest{TenantId: f.tenant, SubjectId: subject, From: from, To: to,
		Format: format, MinIndex: f.minIndex}
	return f.run(ctx, e, "PIIAccessReport", func(ctx context.Context, c trailv1.ComplianceServiceClient) (grpc.ServerStreamingClient[trailv1.DownloadChunk], error) {
		return c.PIIAccessReport(ctx, req)
	})
}

func cmdReportHistory(ctx context.Context, e *env, args []string) error {
	var f reportFlags
	var targetType, targetID string
	fs := newFlagSet("report history")
	f.register(fs)
	fs.StringVar(&targetType, "target-type", "", "the entity's type, e.g. case (required)")
	fs.StringVar(&targetID, "target-id", "", "the entity's id (required)")
	if _, err := parseCommand(e, "report history", fs, args, 0, 0); err != nil {
		return err
	}
	format, from, to, err := f.common()
	if err != nil {
		return err
	}
	if targetType == "" || targetID == "" {
		return usageErrorf("--target-type and --target-id are required")
	}
	req := &trailv1.EntityHistoryRequest{TenantId: f.tenant, TargetType: targetType, TargetId: targetID,
		From: from, To: to, Format: format, MinIndex: f.minIndex}
	return f.run(ctx, e, "EntityHistory", func(ctx context.Context, c trailv1.ComplianceServiceClient) (grpc.ServerStreamingClient[trailv1.DownloadChunk], error) {
		return c.EntityHistory(ctx, req)
	})
}

// run downloads the report and, with --vkey, verifies it.
func (f *reportFlags) run(ctx context.Context, e *env, method string,
	call func(context.Context, trailv1.ComplianceServiceClient) (grpc.ServerStreamingClient[trailv1.DownloadChunk], error)) error {
	var t *trust
	if f.trust.vkeyFile != "" {
		tr, err := f.trust.load()
		if err != nil {
			return err
		}
		t = &tr
	}
	if err := f.conn.resolve(e.getenv); err != nil {
		return err
	}
	conn, err := f.conn.dial(e.stderr)
	if err != nil {
		return err
	}
	defer conn.Close()
	// The deadline is per chunk, not per download: the first chunk comes
	// once the server has built the whole report, the rest follow at once.
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	idle := time.AfterFunc(f.conn.timeout, func() { cancel(errReportIdle) })
	defer idle.Stop()
	stream, err := call(ctx, trailv1.NewComplianceServiceClient(conn))
	if err != nil {
		return reportRPCError(ctx, method, err)
	}
	rs := &reportStream{stream: stream, idle: idle, timeout: f.conn.timeout, ctx: ctx, method: method}
	path, size, err := download(e, rs, f.out)
	if err != nil {
		return err
	}
	if path != "-" {
		fmt.Fprintf(e.stderr, "wrote %d bytes to %s\n", size, path)
	}
	if t == nil {
		return nil
	}
	res, err := verifyReportFile(e, *t, path, f.tenant)
	return reportVerify(e, false, res, err)
}

// reportStream receives chunks, restarting the idle timer on each.
type reportStream struct {
	stream  grpc.ServerStreamingClient[trailv1.DownloadChunk]
	idle    *time.Timer
	timeout time.Duration
	ctx     context.Context
	method  string
}

func (r *reportStream) Recv() (*trailv1.DownloadChunk, error) {
	c, err := r.stream.Recv()
	r.idle.Reset(r.timeout)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, reportRPCError(r.ctx, r.method, err)
	}
	return c, err
}

// reportRPCError names the idle timeout when it is what ended the call.
func reportRPCError(ctx context.Context, method string, err error) error {
	if errors.Is(context.Cause(ctx), errReportIdle) {
		return ioError(fmt.Errorf("%s: %w", method, errReportIdle))
	}
	return wrapRPC(method, err)
}

// verifyReport is "trailctl verify --report".
func (f *verifyFlags) verifyReport(e *env, t trust) (verifyResult, error) {
	if f.partition != "" || f.event != "" {
		return verifyResult{}, usageErrorf("--partition and --event do not apply to --report")
	}
	return verifyReportFile(e, t, f.report, f.tenant)
}

// verifyReportFile checks a report file in any format with
// report.VerifyFile and states what it established.
func verifyReportFile(e *env, t trust, path, tenant string) (verifyResult, error) {
	b, err := readInput(e, path, report.MaxDocumentBytes)
	if err != nil {
		return verifyResult{}, err
	}
	v, err := report.VerifyFile(b, t.verifier, t.logName)
	if err != nil {
		return verifyResult{}, fmt.Errorf("%s: %w", path, err)
	}
	if tenant != "" && v.Tenant != tenant {
		return verifyResult{}, fmt.Errorf("the report is of tenant %q, not %q", v.Tenant, tenant)
	}
	var res verifyResult
	for _, cp := range v.Checkpoints {
		res.Verified = append(res.Verified, t.checkpointOK(cp))
	}
	res.Verified = append(res.Verified,
		fmt.Sprintf("OK %d rows: leaf hashes recomputed from the entry bytes, inclusion proven against the checkpoints above, rows rebuilt from the entries", v.Rows),
		fmt.Sprintf("OK attestation of %s report of tenant %s generated %s: digest %s, %d rows, %d flagged, signed by key %s",
			v.Kind, v.Tenant, v.Generated.Format(time.RFC3339), v.Digest, v.Rows, v.Flagged, t.keyLabel()))
	res.Verified = append(res.Verified, renderingOK(v)...)
	if v.Kind == report.KindPIIAccess && v.Flagged > 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("%d accesses are flagged: no purpose code, or one not in the tenant's valid list", v.Flagged))
	}
	if v.Erased > 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("%d rows are of events whose sealed payload was erased (GDPR Art. 17) and show no changes: their entry bytes prove the payload is sealed, not that its key is gone", v.Erased))
	}
	if v.Unavailable > 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("%d rows are of events whose sealed payload the server could not open, and show no changes", v.Unavailable))
	}
	res.Notes = append(res.Notes, "a report proves every row it lists is in the log; it cannot prove no other event matches")
	return res, nil
}

// renderingOK states what was checked of a CSV, PDF or bundle beyond the
// report it carries.
func renderingOK(v *report.Verified) []string {
	csvOK := func(name string) string {
		return fmt.Sprintf("OK CSV %s: its entry bytes and proofs are the report above, and each of its %d records is that report's, as rendered", name, v.Records)
	}
	pdfOK := func(name string) string {
		return fmt.Sprintf("OK PDF %s: its attached JSON is the report above, and its %d pages are exactly that report's rendering", name, v.Pages)
	}
	switch v.Format {
	case report.FormatCSV:
		return []string{csvOK("file")}
	case report.FormatPDF:
		return []string{pdfOK("file")}
	case report.FormatBundle:
		return []string{
			fmt.Sprintf("OK JSON %s: the report above", v.Members[0]), csvOK(v.Members[1]), pdfOK(v.Members[2]),
			fmt.Sprintf("OK bundle: its JSON, CSV and PDF are renderings of one run, digest %s", v.Digest),
		}
	}
	return nil
}
