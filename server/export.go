package server

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/trailaudit/trail/bundle"
	"github.com/trailaudit/trail/engine"
	"github.com/trailaudit/trail/filter"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// Attested exports: ComplianceService.Export streams a bundle (package
// bundle) of a tenant's entries in a time range, optionally filtered, with
// a signed checkpoint per partition, a run proof per run of consecutive
// leaves and a signed manifest, so an auditor can verify it offline with
// the log's public key alone. Nothing is accumulated: entries are read
// from the engine a page at a time and the bundle is sent in chunks as it
// is written, so a multi-gigabyte export runs in constant memory.
//
// A run's proof is in two parts, around its entries: the run line carries
// the compact range [0, begin) of the tree, read once when the run opens,
// and the run_end line the consistency proof from the run's end to the
// checkpoint, read once when it closes. The end is known only then: a
// time range ends at the first entry past it, a filtered search finds the
// next match page by page, and pruned leaves wait for the next entry's
// time. Putting the end-dependent half after the entries lets a run be as
// long as a partition without buffering entries or looking ahead, and
// without a cap on run length.

const (
	// exportPage is how many entries one engine read returns: small, since
	// an entry may be as large as the engine's entry limit.
	exportPage = 64
	// exportSearchBytes bounds the entry bytes of one search page.
	exportSearchBytes = 8 << 20
	// exportPath is the REST route serving the bundle as a raw download;
	// it takes precedence over the gateway's JSON-wrapped stream.
	exportPath    = "GET /api/v1/audit/tenants/{tenant_id}/export"
	exportPattern = "/api/v1/audit/tenants/{tenant_id}/export"
)

// exportVKeyer is implemented by a log signer that also knows its public
// verifier key text; the bundle header then carries the key in full.
// Otherwise it carries the key's name and hash, which identify it as well.
type exportVKeyer interface{ VerifierKey() string }

// Export streams an attested export bundle. Filtering by data subject is a
// report on a person's data and needs permPIIReport, as Search does. The
// call's access-audit record says exactly what was exported: the filters,
// the entry counts and the manifest's digest.
func (c *complianceService) Export(req *trailv1.ExportRequest, stream grpc.ServerStreamingServer[trailv1.DownloadChunk]) (err error) {
	ctx := stream.Context()
	tenant := req.GetTenantId()
	if err := checkTenant(tenant); err != nil {
		return err
	}
	q, err := exportQuery(req)
	if err != nil {
		return err
	}
	ac, err := c.s.authorize(ctx, filterPerm(&q.Filter), trailv1.Category_CATEGORY_COMPLIANCE, tenant)
	if err != nil {
		return err
	}
	x := &exporter{s: c.s, tenant: tenant, q: q, sizes: make(map[engine.Month]uint64)}
	defer func() { x.record(ac, err); ac.finish(err) }()
	ac.set("filters", q.Filter.Describe())
	if err := c.s.waitApplied(ctx, req.GetMinIndex()); err != nil {
		return err
	}
	// Held for the whole export: a snapshot restore must not close the
	// engine under a long read.
	eng, release := c.s.cluster.AcquireEngine()
	defer release()
	x.eng = eng
	if len(x.q.Text) > 0 {
		// The bundle records what text was read, so that the verifier
		// reads the same.
		x.q.TextAttributes = eng.TextAttributes(tenant)
	}
	return x.run(ctx, stream)
}

// exportQuery validates the request and turns it into a search query.
func exportQuery(req *trailv1.ExportRequest) (engine.Query, error) {
	f, err := filter.Merge(filter.Legacy{
		ActorID: req.GetActorId(), SubjectID: req.GetSubjectId(), TargetType: req.GetTargetType(), TargetID: req.GetTargetId(),
		Category: req.GetCategory(), Action: req.GetAction(), From: req.GetFrom(), To: req.GetTo(),
	}, req.GetFilter())
	if err != nil {
		return engine.Query{}, badRequest("%v", err)
	}
	return engine.Query{Tenant: req.GetTenantId(), Filter: f, Limit: engine.MaxSearchLimit, MaxBytes: exportSearchBytes}, nil
}

// exporter is the state of one export.
type exporter struct {
	s      *Server
	eng    *engine.Engine
	tenant string
	q      engine.Query
	w      *bundle.Writer
	out    *chunkWriter
	cur    *exportPart
	// sizes holds the checkpoint size of every partition written so far,
	// to resolve the partition link of a later leaf 0.
	sizes    map[engine.Month]uint64
	manifest *bundle.Manifest
	// runPart and runSize are the partition of the open run, if any, and
	// its checkpoint size, which the run's consistency proof leads to.
	runPart engine.Partition
	runSize uint64
}

// exportPart is the partition being written and its checkpoint size.
type exportPart struct {
	p       engine.Partition
	size    uint64
	written bool // its checkpoint line is out
}

func (x *exporter) run(ctx context.Context, stream grpc.ServerStreamingServer[trailv1.DownloadChunk]) error {
	created := time.Now().UTC()
	x.out = &chunkWriter{stream: stream, contentType: bundle.ContentType, filename: exportFilename(x.tenant, created)}
	signer := x.s.cfg.Signer
	h := bundle.Header{
		LogName: x.eng.LogName(), Tenant: x.tenant, Filter: x.q.Filter, Created: created,
		KeyName: signer.Name(), KeyHash: fmt.Sprintf("%08x", signer.KeyHash()),
	}
	switch k, ok := signer.(exportVKeyer); {
	case x.s.cfg.VerifierKey != "":
		h.VKey = x.s.cfg.VerifierKey
	case ok:
		h.VKey = k.VerifierKey()
	}
	var err error
	if x.w, err = bundle.NewWriter(x.out, h); err != nil {
		return err
	}
	if x.q.Filter.Selective() {
		err = x.search(ctx)
	} else {
		err = x.walk(ctx)
	}
	if err != nil {
		return err
	}
	if err := x.endRun(ctx); err != nil {
		return err
	}
	if x.manifest, err = x.w.Close(signer); err != nil {
		return err
	}
	return x.out.Close()
}

// record puts what was exported into the call's access-audit record.
func (x *exporter) record(ac *access, err error) {
	if x.w == nil {
		return
	}
	ac.setUint("entries", x.w.Entries())
	if m := x.manifest; m != nil && err == nil {
		ac.setUint("pruned", m.Pruned)
		ac.setUint("partitions", uint64(len(m.Partitions)))
		ac.set("manifest_sha256", m.SHA256)
	}
}

func exportFilename(tenant string, created time.Time) string {
	return tenant + "-" + created.Format("20060102T150405Z") + bundle.FileExt
}

// search exports the entries matching a selective filter, page by page.
func (x *exporter) search(ctx context.Context) error {
	q := x.q
	for {
		res, err := x.eng.Search(ctx, q)
		if err != nil {
			return err
		}
		for _, h := range res.Hits {
			if err := x.emit(ctx, h.StoredEntry, h.Entry); err != nil {
				return err
			}
		}
		if res.NextCursor == "" {
			return nil
		}
		q.Cursor = res.NextCursor
	}
}

// walk exports every entry in the time range, partition by partition.
// The partitions are listed again after each one, so a month that starts
// while a long export runs is included, its leaf 0 linking to the month
// the export just finished.
func (x *exporter) walk(ctx context.Context) error {
	var after *engine.Month
	for {
		pi, ok, err := x.nextPartition(ctx, after)
		if err != nil || !ok {
			return err
		}
		after = &pi.Month
		// A dropped partition keeps only its size and root: no leaf of it
		// can be proven any more, so the bundle leaves it out (the next
		// partition's link to it is then reported as unchecked).
		if pi.Size == 0 || pi.Dropped || !x.monthInRange(pi.Month) {
			continue
		}
		done, err := x.walkPartition(ctx, pi.Partition)
		if err != nil || done {
			return err
		}
	}
}

// nextPartition returns the tenant's first partition after the month
// after (the first at all when after is nil).
func (x *exporter) nextPartition(ctx context.Context, after *engine.Month) (engine.PartitionInfo, bool, error) {
	parts, err := x.eng.Partitions(ctx, x.tenant)
	if err != nil {
		return engine.PartitionInfo{}, false, err
	}
	for _, pi := range parts {
		if after == nil || after.Before(pi.Month) {
			return pi, true, nil
		}
	}
	return engine.PartitionInfo{}, false, nil
}

func (x *exporter) monthInRange(m engine.Month) bool {
	if !x.q.From.IsZero() && m.Before(engine.MonthOf(x.q.From)) {
		return false
	}
	return x.q.To.IsZero() || !engine.MonthOf(x.q.To.Add(-time.Nanosecond)).Before(m)
}

// walkPartition exports p's entries in the time range; done reports that
// the range ended inside p. A pruned entry has no time of its own: it lies
// between its neighbours', so it is exported when both of those bounds
// (the month's start or end where it has no neighbour) are in the range.
func (x *exporter) walkPartition(ctx context.Context, p engine.Partition) (done bool, err error) {
	part, err := x.start(ctx, p)
	if err != nil {
		return false, err
	}
	pw := &exportPrunedRun{lower: p.Month.Start()}
	for leaf := uint64(0); leaf < part.size; leaf += exportPage {
		ses, err := x.eng.Entries(ctx, p, leaf, int(min(exportPage, part.size-leaf)))
		if err != nil {
			return false, err
		}
		for _, se := range ses {
			if done, err := x.walkEntry(ctx, pw, se); err != nil || done {
				return done, err
			}
		}
	}
	if x.q.Filter.InTime(pw.lower) && (x.q.To.IsZero() || !x.q.To.Before(p.Month.Next().Start())) {
		return false, x.emitPruned(ctx, pw)
	}
	return false, nil
}

// exportPrunedRun is a run of pruned leaves waiting for the next entry's time to
// decide whether they are in the range; lower is the time before them.
type exportPrunedRun struct {
	lower        time.Time
	start, count uint64
}

func (x *exporter) walkEntry(ctx context.Context, pw *exportPrunedRun, se engine.StoredEntry) (done bool, err error) {
	if se.Pruned {
		if pw.count == 0 {
			pw.start = se.LeafIndex
		}
		pw.count++
		return false, nil
	}
	en := new(trailv1.Entry)
	if err := proto.Unmarshal(se.Data, en); err != nil {
		return false, fmt.Errorf("%s leaf %d: decode entry: %w: %v", se.Partition, se.LeafIndex, engine.ErrCorrupt, err)
	}
	t := en.GetSequencerTime().AsTime()
	switch {
	case !x.q.To.IsZero() && !t.Before(x.q.To):
		return true, nil // sequencer time is monotonic: the range is over
	case !x.q.From.IsZero() && t.Before(x.q.From):
		pw.count, pw.lower = 0, t
		return false, nil
	}
	if x.q.Filter.InTime(pw.lower) {
		if err := x.emitPruned(ctx, pw); err != nil {
			return false, err
		}
	}
	pw.count, pw.lower = 0, t
	return false, x.emit(ctx, se, en)
}

// emitPruned exports a run of pruned leaves, reading their leaf hashes
// again rather than having held them.
func (x *exporter) emitPruned(ctx context.Context, pw *exportPrunedRun) error {
	for done := uint64(0); done < pw.count; {
		ses, err := x.eng.Entries(ctx, x.cur.p, pw.start+done, int(min(exportPage, pw.count-done)))
		if err != nil {
			return err
		}
		if len(ses) == 0 {
			return fmt.Errorf("%s: pruned leaves from %d vanished: %w", x.cur.p, pw.start+done, engine.ErrCorrupt)
		}
		for _, se := range ses {
			if err := x.emit(ctx, se, nil); err != nil {
				return err
			}
		}
		done += uint64(len(ses))
	}
	pw.count = 0
	return nil
}

// start makes p the current partition and fixes its checkpoint size: the
// partition's size now. Every entry of p is proven against that one
// checkpoint, so p's entries appended later are not part of the export.
// The checkpoint line is written with p's first entry.
func (x *exporter) start(ctx context.Context, p engine.Partition) (*exportPart, error) {
	if x.cur != nil && x.cur.p == p {
		return x.cur, nil
	}
	info, err := x.eng.PartitionInfo(ctx, p)
	if err != nil {
		return nil, err
	}
	x.cur = &exportPart{p: p, size: info.Size}
	return x.cur, nil
}

// emit writes one entry (en nil when pruned) after its partition's
// checkpoint, in a run: the open one when the entry is its next leaf, else
// a new one after closing it. It then resolves a partition link.
func (x *exporter) emit(ctx context.Context, se engine.StoredEntry, en *trailv1.Entry) error {
	part, err := x.start(ctx, se.Partition)
	if err != nil {
		return err
	}
	if se.LeafIndex >= part.size {
		return nil // appended after the export reached this partition
	}
	if !part.written {
		if err := x.endRun(ctx); err != nil {
			return err
		}
		if err := x.writeCheckpoint(ctx, part); err != nil {
			return err
		}
	}
	if err := x.runFor(ctx, part, se.LeafIndex); err != nil {
		return err
	}
	e := bundle.Entry{
		Partition: se.Partition.Month.String(), LeafIndex: se.LeafIndex, LeafHash: se.LeafHash[:],
		Entry: se.Data, Pruned: se.Pruned,
	}
	if err := x.w.Entry(e); err != nil {
		return err
	}
	if en.GetEvent().GetSealed() != nil {
		if err := x.opening(se, en); err != nil {
			return err
		}
	}
	if se.LeafIndex == 0 && en.GetPrevPartition() != nil {
		return x.link(ctx, se.Partition, en.GetPrevPartition())
	}
	return nil
}

// opening writes what this node can do with a sealed entry's payload:
// its event key when it opens, "erased" when the subject's key is gone,
// nothing when this node cannot tell (no sealing secret).
func (x *exporter) opening(se engine.StoredEntry, en *trailv1.Entry) error {
	state, key := x.s.sealedPayload(x.eng, en)
	o := bundle.Opening{Partition: se.Partition.Month.String(), LeafIndex: se.LeafIndex}
	switch state {
	case trailv1.SealedState_SEALED_STATE_OPENED:
		o.State, o.Key = bundle.OpeningOpened, key
	case trailv1.SealedState_SEALED_STATE_ERASED:
		o.State = bundle.OpeningErased
	default:
		return nil
	}
	return x.w.Opening(o)
}

// runFor makes leaf the next leaf of the open run: it continues the run
// that ends right before it, or closes that run and opens one at leaf with
// the compact range of the leaves before it.
func (x *exporter) runFor(ctx context.Context, part *exportPart, leaf uint64) error {
	month := part.p.Month.String()
	if p, _, next, ok := x.w.RunOpen(); ok && p == month && next == leaf {
		return nil
	}
	if err := x.endRun(ctx); err != nil {
		return err
	}
	prefix, err := x.eng.CompactRange(ctx, part.p, leaf)
	if err != nil {
		return err
	}
	if err := x.w.Run(bundle.Run{Partition: month, Begin: leaf, Prefix: hashesProto(prefix)}); err != nil {
		return err
	}
	x.runPart, x.runSize = part.p, part.size
	return nil
}

// endRun closes the open run, if any, with the consistency proof from its
// end to its partition's checkpoint.
func (x *exporter) endRun(ctx context.Context) error {
	p, begin, end, ok := x.w.RunOpen()
	if !ok {
		return nil
	}
	proof, err := x.eng.ConsistencyProof(ctx, x.runPart, end, x.runSize)
	if err != nil {
		return err
	}
	return x.w.EndRun(bundle.RunEnd{Partition: p, Begin: begin, End: end, Consistency: hashesProto(proof)})
}

func (x *exporter) writeCheckpoint(ctx context.Context, part *exportPart) error {
	cp, err := x.eng.Checkpoint(ctx, part.p, part.size)
	if err != nil {
		return err
	}
	signed, err := x.s.sign(cp)
	if err != nil {
		return err
	}
	c := bundle.Checkpoint{Partition: part.p.Month.String(), Size: cp.Size, Root: cp.Root[:], Note: signed.GetSignedNote()}
	if err := x.w.Checkpoint(c); err != nil {
		return err
	}
	part.written = true
	x.sizes[part.p.Month] = part.size
	return nil
}

// link adds the consistency proof that ties leaf 0's record of the
// previous partition (its final size and root) to that partition's
// checkpoint in the bundle, when the two sizes differ: the export reached
// the previous partition before it closed.
func (x *exporter) link(ctx context.Context, p engine.Partition, l *trailv1.PartitionLink) error {
	m, err := engine.ParseMonth(l.GetPartition())
	if err != nil {
		return fmt.Errorf("%s leaf 0: prev_partition: %w: %v", p, engine.ErrCorrupt, err)
	}
	have, ok := x.sizes[m]
	if !ok || have >= l.GetSize() {
		return nil // not in the bundle, the same tree, or a contradiction the verifier reports
	}
	prev := engine.Partition{Tenant: p.Tenant, Month: m}
	proof, err := x.eng.ConsistencyProof(ctx, prev, have, l.GetSize())
	if err != nil {
		return err
	}
	return x.w.Consistency(bundle.Consistency{
		Partition: l.GetPartition(), LinkedFrom: p.Month.String(),
		FromSize: have, ToSize: l.GetSize(), Proof: hashesProto(proof),
	})
}

// serveExport answers the export route with the bundle's bytes rather
// than the gateway's JSON-wrapped chunks. It calls Export through the
// gateway's connection with the metadata the gateway would send, so
// authentication, authorization and auditing are those of the gRPC call.
// Query parameters are the ExportRequest's fields, read as the gateway
// reads them (restnames.go): by proto name, times in RFC 3339, a category
// by its full or short name.
func (s *Server) serveExport(w http.ResponseWriter, r *http.Request) {
	g := s.gateway
	fail := func(ctx context.Context, err error) { runtime.HTTPError(ctx, g.mux, g.json, w, r, err) }
	ctx, err := runtime.AnnotateContext(r.Context(), g.mux, r, "/trail.v1.ComplianceService/Export",
		runtime.WithHTTPPathPattern(exportPattern))
	if err != nil {
		fail(r.Context(), err)
		return
	}
	req := &trailv1.ExportRequest{TenantId: r.PathValue("tenant_id")}
	if err := parseQuery(req, r, "tenant_id"); err != nil {
		fail(ctx, err)
		return
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := trailv1.NewComplianceServiceClient(g.conn).Export(ctx, req)
	if err != nil {
		fail(ctx, err)
		return
	}
	s.relayDownload(ctx, w, stream, fail, "export of "+req.GetTenantId())
}
