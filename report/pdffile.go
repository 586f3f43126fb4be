package report

import (
	"bytes"
	"compress/zlib"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

// Reading a PDF report back. A PDF cannot show every value in full, so it
// is verified through the JSON report it embeds: that report is verified
// as any JSON report, rendered again, and the file must be that rendering,
// object by object. The reader below knows only the layout the PDF library
// writes (objects back to back, one classic cross-reference table, no
// incremental updates) and refuses anything else: a PDF saved by another
// program is no longer the one the log attested.

// pdfObject is one indirect object of a PDF file.
type pdfObject struct {
	num    int
	offset int
	dict   string // everything between "N 0 obj\n" and "stream\n" or "endobj\n"
	stream []byte // raw, nil without a stream
}

// pdfFile is a parsed PDF report.
type pdfFile struct {
	header  string // the first line
	objects []pdfObject
	byNum   map[int]int // object number -> index in objects
	xref    int         // offset of the cross-reference table
	tail    []byte      // from "xref" to the end
	trailer string      // the trailer dictionary, "<<...>>\n"
}

var (
	pdfObjHeader = regexp.MustCompile(`^([1-9][0-9]{0,8}) 0 obj\n`)
	pdfLength    = regexp.MustCompile(`/Length ([0-9]{1,10})\b`)
	pdfRef       = func(key string) *regexp.Regexp { return regexp.MustCompile(`/` + key + ` ([1-9][0-9]{0,8}) 0 R\b`) }
	pdfInfoRef   = pdfRef("Info")
	pdfContents  = pdfRef("Contents")
)

// maxPDFObjects bounds the objects of a PDF report read: a page has two,
// and a PDF report at most some thousand pages.
const maxPDFObjects = 1 << 20

// parsePDF reads a PDF file in the layout fpdf writes.
func parsePDF(b []byte) (*pdfFile, error) {
	bad := func(at int, format string, args ...any) error {
		return fmt.Errorf("report: %w: not a PDF report as Trail writes it: byte %d: %s", ErrInvalid, at, fmt.Sprintf(format, args...))
	}
	nl := bytes.IndexByte(b, '\n')
	if !bytes.HasPrefix(b, []byte("%PDF-1.")) || nl < 0 {
		return nil, bad(0, "no PDF header")
	}
	p := &pdfFile{header: string(b[:nl+1]), byNum: make(map[int]int)}
	pos := nl + 1
	for !bytes.HasPrefix(b[pos:], []byte("xref\n")) {
		if len(p.objects) == maxPDFObjects {
			return nil, bad(pos, "more than %d objects", maxPDFObjects)
		}
		m := pdfObjHeader.FindSubmatch(b[pos:])
		if m == nil {
			return nil, bad(pos, "an object or the cross-reference table expected")
		}
		num, _ := strconv.Atoi(string(m[1]))
		if _, dup := p.byNum[num]; dup {
			return nil, bad(pos, "object %d appears twice", num)
		}
		obj := pdfObject{num: num, offset: pos}
		start := pos + len(m[0])
		// The dictionary runs to a line that is "stream" or "endobj".
		end, stream := -1, false
		for i := start; i < len(b); {
			j := bytes.IndexByte(b[i:], '\n')
			if j < 0 {
				break
			}
			switch line := b[i : i+j]; {
			case string(line) == "endobj":
				end = i
			case string(line) == "stream":
				end, stream = i, true
			}
			if end >= 0 {
				break
			}
			i += j + 1
		}
		if end < 0 {
			return nil, bad(start, "object %d does not end", num)
		}
		obj.dict = string(b[start:end])
		if stream {
			lm := pdfLength.FindStringSubmatch(obj.dict)
			if lm == nil {
				return nil, bad(start, "stream of object %d has no direct /Length", num)
			}
			n, _ := strconv.Atoi(lm[1])
			data := end + len("stream\n")
			if n > len(b)-data || !bytes.HasPrefix(b[data+n:], []byte("\nendstream\nendobj\n")) {
				return nil, bad(data, "stream of object %d is not %d bytes long", num, n)
			}
			obj.stream = b[data : data+n]
			pos = data + n + len("\nendstream\nendobj\n")
		} else {
			pos = end + len("endobj\n")
		}
		p.byNum[num] = len(p.objects)
		p.objects = append(p.objects, obj)
	}
	p.xref, p.tail = pos, b[pos:]
	i := bytes.Index(p.tail, []byte("\ntrailer\n"))
	j := bytes.Index(p.tail, []byte("\nstartxref\n"))
	if i < 0 || j < i {
		return nil, bad(pos, "no trailer")
	}
	p.trailer = string(p.tail[i+len("\ntrailer\n") : j+1])
	return p, nil
}

// wantTail is the cross-reference table, trailer and end of file that a
// PDF with p's objects, at their offsets, and trailer dictionary has.
func (p *pdfFile) wantTail(trailer string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", len(p.objects)+1)
	for num := 1; num <= len(p.objects); num++ {
		off := 0
		if i, ok := p.byNum[num]; ok {
			off = p.objects[i].offset
		}
		fmt.Fprintf(&b, "%010d 00000 n \n", off)
	}
	fmt.Fprintf(&b, "trailer\n%sstartxref\n%d\n%%%%EOF\n", trailer, p.xref)
	return b.Bytes()
}

// inflate decompresses a FlateDecode stream of at most limit bytes, which
// must end where the stream ends.
func inflate(raw []byte, limit int64) ([]byte, error) {
	r := bytes.NewReader(raw)
	zr, err := zlib.NewReader(r)
	if err != nil {
		return nil, err
	}
	out, err := io.ReadAll(io.LimitReader(zr, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(out)) > limit {
		return nil, fmt.Errorf("inflates to more than %d bytes", limit)
	}
	if err := zr.Close(); err != nil {
		return nil, err
	}
	if r.Len() != 0 {
		return nil, fmt.Errorf("%d bytes after the compressed data", r.Len())
	}
	return out, nil
}

// embeddedReport returns the one embedded file of the PDF, inflated.
func (p *pdfFile) embeddedReport() ([]byte, error) {
	var found *pdfObject
	for i, o := range p.objects {
		if strings.Contains(o.dict, "/Type /EmbeddedFile") {
			if found != nil {
				return nil, fmt.Errorf("report: %w: the PDF embeds more than one file", ErrInvalid)
			}
			found = &p.objects[i]
		}
	}
	if found == nil || found.stream == nil {
		return nil, fmt.Errorf("report: %w: the PDF embeds no report (a PDF written before PDF reports embedded their JSON report cannot be verified on its own)", ErrInvalid)
	}
	if !strings.Contains(found.dict, "/Filter /FlateDecode") {
		return nil, fmt.Errorf("report: %w: the embedded report is not compressed as Trail writes it", ErrInvalid)
	}
	js, err := inflate(found.stream, MaxDocumentBytes)
	if err != nil {
		return nil, fmt.Errorf("report: %w: the embedded report: %v", ErrInvalid, err)
	}
	return js, nil
}

// info returns a string entry of the document information dictionary,
// and whether it is there.
func (p *pdfFile) info(key string) (string, bool) {
	m := pdfInfoRef.FindStringSubmatch(p.trailer)
	if m == nil {
		return "", false
	}
	num, _ := strconv.Atoi(m[1])
	i, ok := p.byNum[num]
	if !ok {
		return "", false
	}
	dict := p.objects[i].dict
	k := strings.Index(dict, "/"+key+" (")
	if k < 0 {
		return "", false
	}
	// A literal string as fpdf writes it: "\" escapes the next character.
	var s strings.Builder
	for rest := dict[k+len(key)+3:]; len(rest) > 0; rest = rest[1:] {
		switch rest[0] {
		case ')':
			return s.String(), true
		case '\\':
			if len(rest) < 2 {
				return "", false
			}
			rest = rest[1:]
			if rest[0] == 'r' {
				s.WriteByte('\r')
				continue
			}
		}
		s.WriteByte(rest[0])
	}
	return "", false
}

// VerifyPDF checks a PDF report offline with the log's public key alone:
// the JSON report it embeds must pass [Verify], the PDF must state that
// report's digest, and the file must be exactly that report's PDF
// rendering, every page and object of it (compression aside). A PDF saved
// by another program, or of another PDF layout than this package renders,
// fails.
func VerifyPDF(b []byte, key note.Verifier, logName string) (*Verified, error) {
	logName, err := checkVerifyArgs(b, key, logName)
	if err != nil {
		return nil, err
	}
	got, err := parsePDF(b)
	if err != nil {
		return nil, err
	}
	switch prod, _ := got.info("Producer"); prod {
	case pdfProducer:
	case "Trail report/" + attestationVersion: // layout 1
		return nil, fmt.Errorf("report: %w: this PDF report predates PDF reports carrying their JSON report: it cannot be verified on its own", ErrInvalid)
	default:
		return nil, fmt.Errorf("report: verify: %w: the PDF's producer is %q, not %q: it was not written in the PDF layout this verifier renders (layout %d)",
			ErrInvalid, prod, pdfProducer, pdfLayout)
	}
	js, err := got.embeddedReport()
	if err != nil {
		return nil, err
	}
	d, v, err := verifyJSON(js, key, logName)
	if err != nil {
		return nil, fmt.Errorf("the PDF's embedded report: %w", err)
	}
	if subj, _ := got.info("Subject"); subj != d.Attestation.Digest {
		return nil, fmt.Errorf("report: verify: %w: the PDF states report digest %q, its embedded report is %s: the PDF does not render its embedded report",
			ErrInvalid, subj, d.Attestation.Digest)
	}
	var again bytes.Buffer
	if err := WritePDF(&again, d); err != nil {
		return nil, err
	}
	want, err := parsePDF(again.Bytes())
	if err != nil {
		return nil, fmt.Errorf("report: verify: the rendering: %w", err)
	}
	if err := comparePDF(got, want); err != nil {
		return nil, fmt.Errorf("report: verify: %w", err)
	}
	v.Format, v.Pages = FormatPDF, len(want.pages())
	return v, nil
}

// pages maps each page's content stream object to its page number.
func (p *pdfFile) pages() map[int]int {
	out := make(map[int]int)
	for _, o := range p.objects {
		if strings.HasPrefix(o.dict, "<</Type /Page\n") {
			if m := pdfContents.FindStringSubmatch(o.dict); m != nil {
				num, _ := strconv.Atoi(m[1])
				out[num] = len(out) + 1
			}
		}
	}
	return out
}

// comparePDF requires got to be want, object by object; a stream may be
// compressed differently if it inflates to the same bytes.
func comparePDF(got, want *pdfFile) error {
	altered := func(what string) error {
		return fmt.Errorf("%w: %s is not the rendering of the attested report it embeds: the PDF was altered", ErrInvalid, what)
	}
	if got.header != want.header {
		return altered("the PDF header")
	}
	if len(got.objects) != len(want.objects) {
		return fmt.Errorf("%w: the PDF has %d objects, the rendering of its attested report %d: pages or objects were added or removed",
			ErrInvalid, len(got.objects), len(want.objects))
	}
	pages := want.pages()
	for i, w := range want.objects {
		g := got.objects[i]
		if g.num == w.num && sameObject(g, w) {
			continue
		}
		switch num := w.num; {
		case pages[num] > 0:
			return altered(fmt.Sprintf("page %d", pages[num]))
		case strings.Contains(w.dict, "/Type /EmbeddedFile"):
			return altered("the embedded report file")
		case pdfInfoRef.FindString(want.trailer) == fmt.Sprintf("/Info %d 0 R", num):
			return altered("the document information (title, subject, digest)")
		default:
			return altered(fmt.Sprintf("PDF object %d", num))
		}
	}
	if !bytes.Equal(got.tail, got.wantTail(want.trailer)) {
		return altered("the cross-reference table or trailer")
	}
	return nil
}

// sameObject reports whether two objects are the same, a compressed
// stream's bytes aside.
func sameObject(a, b pdfObject) bool {
	if a.dict == b.dict && bytes.Equal(a.stream, b.stream) {
		return true
	}
	flate := func(o pdfObject) bool { return o.stream != nil && strings.Contains(o.dict, "/Filter /FlateDecode") }
	if !flate(a) || !flate(b) {
		return false
	}
	noLength := func(d string) string { return pdfLength.ReplaceAllString(d, "/Length") }
	if noLength(a.dict) != noLength(b.dict) {
		return false
	}
	wb, err := inflate(b.stream, MaxDocumentBytes)
	if err != nil {
		return false
	}
	wa, err := inflate(a.stream, int64(len(wb)))
	return err == nil && bytes.Equal(wa, wb)
}
