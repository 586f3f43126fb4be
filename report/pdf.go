package report

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/go-pdf/fpdf"
)

// PDF layout, in millimetres on A4 landscape.
const (
	pdfMargin    = 12.0
	pdfRowHeight = 4.2
	pdfSubHeight = 3.4
	pdfBodyFont  = 7.0
	pdfSmallFont = 6.0
)

// pdfColumn is one table column: its title and width.
type pdfColumn struct {
	title string
	width float64
}

var accessColumns = []pdfColumn{
	{"Sequenced (UTC)", 28}, {"Occurred (UTC)", 28}, {"Actor", 34}, {"Actor type", 15}, {"Roles", 24},
	{"IP", 22}, {"Action", 26}, {"Outcome", 15}, {"Fields accessed", 33}, {"Purpose", 22}, {"Flag", 26},
}

var historyColumns = []pdfColumn{
	{"Sequenced (UTC)", 28}, {"Actor", 36}, {"Roles", 22}, {"Action", 26}, {"Outcome", 15},
	{"Field", 30}, {"Before", 58}, {"After", 58},
}

// pdfLayout is the version of the PDF layout, named in the document's
// Producer. Verification renders the embedded report again and compares
// pages, so a verifier checks the layouts it renders; change the number
// with the layout. Layout 1 (producer "Trail report/v1") embedded no
// report. Payload markers and counts did not change it: a report without
// rows of sealed events renders as before, and one with them cannot have
// been written before (its JSON has payload states, which earlier
// verifiers refuse as unknown fields).
const pdfLayout = 2

// pdfProducer is the Producer of every PDF report of this layout.
var pdfProducer = fmt.Sprintf("Trail report/%s pdf/%d", attestationVersion, pdfLayout)

// pdfWriter draws one report.
type pdfWriter struct {
	pdf *fpdf.Fpdf
	d   *Document
	tr  func(string) string
	// attached is the file name of the embedded JSON report.
	attached string
}

// WritePDF writes d as a PDF document, with d's JSON form embedded as a
// document attachment.
func WritePDF(w io.Writer, d *Document) error {
	var js bytes.Buffer
	if err := WriteJSON(&js, d); err != nil {
		return err
	}
	p := &pdfWriter{pdf: fpdf.New("L", "mm", "A4", ""), d: d, attached: FileName(d.Content, FormatJSON)}
	p.pdf.SetAttachments([]fpdf.Attachment{{Content: js.Bytes(), Filename: p.attached,
		Description: "The attested report this PDF renders: trailctl verify --report checks it and these pages"}})
	p.setup()
	p.title()
	p.parameters()
	p.summary()
	if d.Content.Kind == KindEntityHistory {
		p.historyTable()
	} else {
		p.accessTable()
	}
	p.attestation()
	if err := p.pdf.Output(w); err != nil {
		return fmt.Errorf("report: write PDF: %w", err)
	}
	return nil
}

func (p *pdfWriter) setup() {
	f, c := p.pdf, p.d.Content
	p.tr = f.UnicodeTranslatorFromDescriptor("")
	f.SetMargins(pdfMargin, pdfMargin, pdfMargin)
	f.SetAutoPageBreak(true, pdfMargin+4)
	f.AliasNbPages("")
	// Fixed dates and catalog order: the same report renders to the same
	// bytes, which keeps PDFs comparable.
	f.SetCreationDate(c.GeneratedAt)
	f.SetModificationDate(c.GeneratedAt)
	f.SetCatalogSort(true)
	f.SetTitle(p.text(reportTitle(c)), false)
	f.SetAuthor(p.text(c.LogName), false)
	f.SetSubject(p.d.Attestation.Digest, false)
	f.SetKeywords("trail report attestation "+p.d.Attestation.Digest, false)
	f.SetCreator("Trail", false)
	f.SetProducer(pdfProducer, false)
	f.SetFooterFunc(p.footer)
	f.AddPage()
}

func reportTitle(c *Content) string {
	if c.Kind == KindEntityHistory {
		return "Entity history (chain of custody)"
	}
	return "PII access report"
}

func (p *pdfWriter) footer() {
	f := p.pdf
	f.SetY(-pdfMargin)
	f.SetFont("Helvetica", "", pdfSmallFont)
	f.SetTextColor(90, 90, 90)
	c := p.d.Content
	left := fmt.Sprintf("Trail log %s, tenant %s, %s. Report digest %s", c.LogName, c.TenantID, reportTitle(c), p.d.Attestation.Digest)
	f.CellFormat(0, 4, p.text(left), "", 0, "L", false, 0, "")
	f.SetX(pdfMargin)
	f.CellFormat(0, 4, fmt.Sprintf("Page %d of {nb}", f.PageNo()), "", 0, "R", false, 0, "")
	f.SetTextColor(0, 0, 0)
}

// text makes s printable in the core fonts: control characters become
// spaces and characters outside Windows-1252 become "?".
func (p *pdfWriter) text(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r < 0x20 || r == 0x7f:
			b.WriteByte(' ')
		case r < 0x80:
			b.WriteRune(r)
		default:
			if t := p.tr(string(r)); t != "." {
				b.WriteString(t)
			} else {
				b.WriteByte('?')
			}
		}
	}
	return b.String()
}

// fit shortens s (already translated: one byte per character) to width w
// in the current font, by binary search: values can be kilobytes long.
func (p *pdfWriter) fit(s string, w float64) string {
	const (
		ellipsis = "\x85" // "…" in Windows-1252
		// No column holds more characters than this, even of the
		// narrowest glyph; longer text is cut before it is measured.
		maxChars = 400
	)
	w -= 1.2 // the cell's inner margins
	if len(s) <= maxChars && p.pdf.GetStringWidth(s) <= w {
		return s
	}
	s = s[:min(len(s), maxChars)]
	lo, hi := 0, len(s) // s[:lo]+ellipsis fits; s[:hi+1]+ellipsis does not
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if p.pdf.GetStringWidth(s[:mid]+ellipsis) <= w {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return s[:lo] + ellipsis
}

func (p *pdfWriter) heading(s string) {
	f := p.pdf
	f.Ln(3)
	f.SetFont("Helvetica", "B", 11)
	f.CellFormat(0, 6, p.text(s), "B", 1, "L", false, 0, "")
	f.Ln(1.5)
}

func (p *pdfWriter) title() {
	f, c := p.pdf, p.d.Content
	f.SetFont("Helvetica", "B", 16)
	f.CellFormat(0, 9, p.text(reportTitle(c)), "", 1, "L", false, 0, "")
	f.SetFont("Helvetica", "", 9)
	sub := fmt.Sprintf("Trail log %q, tenant %q. Generated %s.", c.LogName, c.TenantID, timeText(c.GeneratedAt))
	f.CellFormat(0, 5, p.text(sub), "", 1, "L", false, 0, "")
}

// keyValues draws a two-column list.
func (p *pdfWriter) keyValues(kv [][2]string) {
	f := p.pdf
	for _, e := range kv {
		f.SetFont("Helvetica", "B", 8.5)
		f.CellFormat(55, 4.6, p.text(e[0]), "", 0, "L", false, 0, "")
		f.SetFont("Helvetica", "", 8.5)
		f.MultiCell(0, 4.6, p.text(e[1]), "", "L", false)
	}
}

func rangeText(from, to time.Time) string {
	fs, ts := "the beginning of the log", "the time of the report"
	if !from.IsZero() {
		fs = timeText(from)
	}
	if !to.IsZero() {
		ts = timeText(to) + " (exclusive)"
	}
	return "from " + fs + " to " + ts + ", by sequencer time"
}

func (p *pdfWriter) parameters() {
	c := p.d.Content
	p.heading("Parameters")
	kv := [][2]string{{"Tenant", c.TenantID}}
	if c.Kind == KindEntityHistory {
		kv = append(kv, [2]string{"Entity", c.Parameters.TargetType + " / " + c.Parameters.TargetID})
	} else {
		codes := "any non-empty purpose code"
		if len(c.Parameters.ValidPurposeCodes) > 0 {
			codes = strings.Join(c.Parameters.ValidPurposeCodes, ", ")
		}
		kv = append(kv, [2]string{"Data subject", c.Parameters.SubjectID},
			[2]string{"Events", "every data_access event on the subject"},
			[2]string{"Valid purpose codes", codes})
	}
	kv = append(kv, [2]string{"Time range", rangeText(c.Parameters.From, c.Parameters.To)},
		[2]string{"Generated", timeText(c.GeneratedAt)})
	p.keyValues(kv)
}

func (p *pdfWriter) summary() {
	c := p.d.Content
	s := c.Summary
	p.heading("Summary")
	var kv [][2]string
	if c.Kind == KindEntityHistory {
		kv = [][2]string{{"Events", strconv.Itoa(s.Rows)}, {"Field changes", strconv.Itoa(s.Changes)}}
	} else {
		kv = [][2]string{
			{"Accesses", strconv.Itoa(s.Rows)},
			{"Flagged accesses", fmt.Sprintf("%d (%d without a purpose code, %d with a purpose code not in the valid list)", s.Flagged, s.MissingPurpose, s.InvalidPurpose)},
		}
	}
	if s.Sealed() > 0 {
		kv = append(kv, [2]string{"Sealed payloads", fmt.Sprintf("%d opened, %d erased (GDPR Art. 17), %d unavailable on this node", s.Opened, s.Erased, s.Unavailable)})
	}
	span := "none"
	if s.Rows > 0 {
		span = timeText(s.First) + " to " + timeText(s.Last)
	}
	kv = append(kv, [2]string{"Distinct actors", strconv.Itoa(s.Actors)},
		[2]string{"Partitions", strings.Join(s.Partitions, ", ")},
		[2]string{"First and last event", span},
		[2]string{"Report digest", p.d.Attestation.Digest})
	p.keyValues(kv)
}

// tableHeader draws the column titles.
func (p *pdfWriter) tableHeader(cols []pdfColumn) {
	f := p.pdf
	f.SetFont("Helvetica", "B", pdfBodyFont)
	f.SetFillColor(225, 225, 225)
	for _, col := range cols {
		f.CellFormat(col.width, pdfRowHeight+0.6, p.text(col.title), "1", 0, "L", true, 0, "")
	}
	f.Ln(-1)
}

// ensure starts a new page, with the table header, unless height fits.
func (p *pdfWriter) ensure(height float64, cols []pdfColumn) {
	f := p.pdf
	_, pageH := f.GetPageSize()
	if f.GetY()+height > pageH-pdfMargin-6 {
		f.AddPage()
		p.tableHeader(cols)
	}
}

// row draws one line of cells, shortened to fit; fill shades it.
func (p *pdfWriter) row(cols []pdfColumn, cells []string, fill bool) {
	f := p.pdf
	f.SetFont("Helvetica", "", pdfBodyFont)
	for i, col := range cols {
		f.CellFormat(col.width, pdfRowHeight, p.fit(p.text(cells[i]), col.width), "LR", 0, "L", fill, 0, "")
	}
	f.Ln(-1)
}

// hiddenRow draws a history row whose changes cannot be shown: the
// event's cells, then marker, shaded, across the change columns (the last
// three).
func (p *pdfWriter) hiddenRow(cols []pdfColumn, cells []string, marker string) {
	f := p.pdf
	f.SetFont("Helvetica", "", pdfBodyFont)
	n := len(cols) - 3
	for i, col := range cols[:n] {
		f.CellFormat(col.width, pdfRowHeight, p.fit(p.text(cells[i]), col.width), "LR", 0, "L", false, 0, "")
	}
	w := tableWidth(cols[n:])
	f.SetFont("Helvetica", "I", pdfBodyFont)
	f.SetFillColor(235, 235, 235)
	f.CellFormat(w, pdfRowHeight, p.fit(p.text(marker), w), "LR", 0, "L", true, 0, "")
	f.Ln(-1)
}

// detail draws the line under a row naming its leaf.
func (p *pdfWriter) detail(width float64, s string, fill bool) {
	f := p.pdf
	f.SetFont("Helvetica", "", pdfSmallFont)
	f.SetTextColor(70, 70, 70)
	f.CellFormat(width, pdfSubHeight, p.fit(p.text(s), width), "LRB", 1, "L", fill, 0, "")
	f.SetTextColor(0, 0, 0)
}

func tableWidth(cols []pdfColumn) float64 {
	w := 0.0
	for _, c := range cols {
		w += c.width
	}
	return w
}

func shortTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.DateTime)
}

func leafText(s Source) string {
	return fmt.Sprintf("partition %s, leaf %d, leaf hash %s", s.Partition, s.LeafIndex, s.LeafHash)
}

// payloadText is the marker of a row of a sealed event, "" for others.
func payloadText(p PayloadState) string {
	switch p {
	case PayloadOpened:
		return "sealed payload opened"
	case PayloadErased:
		return "payload erased (GDPR Art. 17)"
	case PayloadUnavailable:
		return "payload sealed, unavailable on this node"
	case PayloadClear:
		return ""
	}
	return "payload " + string(p)
}

// withPayload prefixes a row's detail line with its payload marker, where
// no shortening can cut it off.
func withPayload(p PayloadState, detail string) string {
	if m := payloadText(p); m != "" {
		return strings.ToUpper(m[:1]) + m[1:] + "; " + detail
	}
	return detail
}

func flagText(flag string) string {
	switch flag {
	case FlagMissingPurpose:
		return "NO PURPOSE"
	case FlagInvalidPurpose:
		return "INVALID PURPOSE"
	}
	return ""
}

func (p *pdfWriter) accessTable() {
	p.heading("Accesses, oldest first")
	if len(p.d.Content.Accesses) == 0 {
		p.keyValues([][2]string{{"", "No data_access events on this subject in the time range."}})
		return
	}
	cols := accessColumns
	p.tableHeader(cols)
	for _, r := range p.d.Content.Accesses {
		p.ensure(pdfRowHeight+pdfSubHeight, cols)
		flagged := r.Flag != ""
		// A flagged access is shaded red, an erased or unavailable
		// payload's access grey.
		shaded := flagged || r.Payload == PayloadErased || r.Payload == PayloadUnavailable
		if flagged {
			p.pdf.SetFillColor(253, 222, 222)
		} else if shaded {
			p.pdf.SetFillColor(235, 235, 235)
		}
		p.row(cols, []string{
			shortTime(r.SequencerTime), shortTime(r.OccurredAt), r.ActorID, r.ActorType, strings.Join(r.ActorRoles, ", "),
			r.ActorIP, r.Action, r.Outcome, strings.Join(r.FieldsAccessed, ", "), r.PurposeCode, flagText(r.Flag),
		}, shaded)
		detail := fmt.Sprintf("event %s", r.EventID)
		if r.ActorName != "" {
			detail = fmt.Sprintf("%s; actor %s", detail, r.ActorName)
		}
		p.detail(tableWidth(cols), withPayload(r.Payload, detail+"; "+leafText(r.Source)), shaded)
	}
}

func (p *pdfWriter) historyTable() {
	p.heading("Events and changes, oldest first")
	if len(p.d.Content.History) == 0 {
		p.keyValues([][2]string{{"", "No events on this entity in the time range."}})
		return
	}
	cols := historyColumns
	p.tableHeader(cols)
	for _, r := range p.d.Content.History {
		changes := r.Changes
		if len(changes) == 0 {
			changes = []Change{{}}
		}
		p.ensure(float64(len(changes))*pdfRowHeight+pdfSubHeight, cols)
		hidden := r.Payload == PayloadErased || r.Payload == PayloadUnavailable
		for i, ch := range changes {
			cells := []string{"", "", "", "", "", ch.Field, ch.Before, ch.After}
			if i == 0 {
				copy(cells, []string{shortTime(r.SequencerTime), r.ActorID, strings.Join(r.ActorRoles, ", "), r.Action, r.Outcome})
			}
			if hidden {
				p.hiddenRow(cols, cells, payloadText(r.Payload))
				continue
			}
			p.row(cols, cells, false)
		}
		detail := fmt.Sprintf("event %s (%s)", r.EventID, r.Category)
		if r.ActorName != "" {
			detail = fmt.Sprintf("%s; actor %s", detail, r.ActorName)
		}
		p.detail(tableWidth(cols), withPayload(r.Payload, detail+"; "+leafText(r.Source)), hidden)
	}
}

// attestation draws the digest, the signed attestation and every signed
// checkpoint, verbatim, with how to check them.
func (p *pdfWriter) attestation() {
	f, a := p.pdf, p.d.Attestation
	f.AddPage()
	p.heading("Integrity attestation")
	f.SetFont("Helvetica", "", 8.5)
	f.MultiCell(0, 4.4, p.text(attestationExplanation), "", "L", false)
	f.Ln(2)
	p.keyValues([][2]string{{"Report digest", a.Digest}, {"Attached report (JSON)", p.attached},
		{"Verify offline", "trailctl verify --vkey <log key file> --report <this PDF>"}})
	p.verbatim("Signed attestation (C2SP signed note, log key)", a.SignedNote)
	for _, sc := range a.Checkpoints {
		p.verbatim("Signed checkpoint of partition "+sc.Partition, sc.SignedNote)
	}
}

const attestationExplanation = "The report digest is the SHA-256 of the report's canonical content: the " +
	"\"content\" member of the JSON form of this report, without insignificant whitespace. The attestation below " +
	"is a C2SP signed note by the log's key binding that digest to the report's kind, tenant, time, row count and " +
	"the checkpoint of every partition its rows come from. Each checkpoint is a signed note committing to the Merkle " +
	"tree (RFC 9162) that contains the leaf of every row listed for that partition, identified in the table by " +
	"partition, leaf index and leaf hash. This PDF carries the JSON form of the same report as an attachment, with " +
	"every entry's bytes and inclusion proof. To verify offline, run trailctl verify with the log's public key and " +
	"this PDF: it verifies the attached report, then renders it again and requires these pages to be that " +
	"rendering. The CSV and JSON forms of the same run carry the same digest. " +
	"A report lists the events the log's indexes returned for its query; the proofs show that every listed event is " +
	"in the log unaltered."

// verbatim prints a signed note line by line in a fixed-width font.
func (p *pdfWriter) verbatim(title, text string) {
	f := p.pdf
	f.Ln(2)
	f.SetFont("Helvetica", "B", 8.5)
	f.CellFormat(0, 5, p.text(title), "", 1, "L", false, 0, "")
	f.SetFont("Courier", "", 7.5)
	f.SetFillColor(245, 245, 245)
	for _, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		f.MultiCell(0, 3.6, p.text(line), "", "L", true)
	}
}
