package report

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
)

// Format is an output format of a report.
type Format string

// The formats. A bundle is a zip archive of the JSON, CSV and PDF
// renderings of one attested report.
const (
	FormatJSON   Format = "json"
	FormatCSV    Format = "csv"
	FormatPDF    Format = "pdf"
	FormatBundle Format = "bundle"
)

// ParseFormat accepts "json", "csv", "pdf" or "bundle" in any case.
func ParseFormat(s string) (Format, error) {
	f := Format(strings.ToLower(s))
	switch f {
	case FormatJSON, FormatCSV, FormatPDF, FormatBundle:
		return f, nil
	}
	return "", fmt.Errorf("unknown report format %q (want json, csv, pdf or bundle)", s)
}

// ContentType is the media type of documents in f.
func (f Format) ContentType() string {
	switch f {
	case FormatCSV:
		return "text/csv; charset=utf-8; header=present"
	case FormatPDF:
		return "application/pdf"
	case FormatBundle:
		return "application/zip"
	}
	return "application/json"
}

// Ext is the file name extension of documents in f, without the dot.
func (f Format) Ext() string {
	if f == FormatBundle {
		return "zip"
	}
	return string(f)
}

// Render writes d in format f to w. Every format is a function of d
// alone: the same document renders to the same bytes.
func Render(w io.Writer, d *Document, f Format) error {
	switch f {
	case FormatJSON:
		return WriteJSON(w, d)
	case FormatCSV:
		return WriteCSV(w, d)
	case FormatPDF:
		return WritePDF(w, d)
	case FormatBundle:
		return WriteBundle(w, d)
	}
	return fmt.Errorf("report: unknown format %q", f)
}

// FileName is a file name for d in format f, made of the report kind, the
// tenant, the subject or entity and the generation time, with every
// character outside [A-Za-z0-9._-] replaced, so that it is safe in a path
// and a Content-Disposition header.
func FileName(c *Content, f Format) string {
	parts := []string{c.Kind, c.TenantID}
	if c.Parameters.SubjectID != "" {
		parts = append(parts, c.Parameters.SubjectID)
	} else {
		parts = append(parts, c.Parameters.TargetType, c.Parameters.TargetID)
	}
	parts = append(parts, c.GeneratedAt.UTC().Format("20060102T150405Z"))
	for i, p := range parts {
		parts[i] = safeName(p)
	}
	return strings.Join(parts, "_") + "." + f.Ext()
}

func safeName(s string) string {
	const maxLen = 64
	var b strings.Builder
	for _, r := range s {
		if b.Len() >= maxLen {
			break
		}
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_' {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	return strings.Trim(b.String(), ".")
}

// jsonDocument is the JSON layout of a Document. Content is kept as raw
// bytes so that the verifier hashes what it received.
type jsonDocument struct {
	Content     json.RawMessage `json:"content"`
	Attestation *Attestation    `json:"attestation"`
}

// WriteJSON writes d as indented JSON with the inclusion proofs.
func WriteJSON(w io.Writer, d *Document) error {
	if d.canonical == nil {
		return fmt.Errorf("report: write JSON: %w: document was not attested", ErrInvalid)
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false) // as the canonical content: escaping would change it
	enc.SetIndent("", "  ")
	if err := enc.Encode(jsonDocument{Content: d.canonical, Attestation: d.Attestation}); err != nil {
		return fmt.Errorf("report: write JSON: %w", err)
	}
	return nil
}

// timeText formats a time for CSV and PDF; zero is "".
func timeText(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}
