package report

import (
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

// bundleFormats are the renderings a bundle holds, in order.
var bundleFormats = []Format{FormatJSON, FormatCSV, FormatPDF}

// bundleComment is the zip comment of every bundle.
const bundleComment = "Trail report bundle: the JSON, CSV and PDF renderings of one attested report. " +
	"Verify each file, or this archive, with: trailctl verify --vkey <log key file> --report <file>"

// WriteBundle writes d as a zip archive of its JSON, CSV and PDF
// renderings, named as [FileName] names them. Each file carries the same
// attestation and verifies on its own; the archive keeps them together.
// Its bytes depend on d alone: every file is dated d's generation time.
func WriteBundle(w io.Writer, d *Document) error {
	zw := zip.NewWriter(w)
	for _, f := range bundleFormats {
		method := zip.Deflate
		if f == FormatPDF {
			method = zip.Store // compressed already
		}
		fw, err := zw.CreateHeader(&zip.FileHeader{Name: FileName(d.Content, f), Method: method, Modified: d.Content.GeneratedAt})
		if err != nil {
			return fmt.Errorf("report: write bundle: %w", err)
		}
		if err := Render(fw, d, f); err != nil {
			return err
		}
	}
	if err := zw.SetComment(bundleComment); err != nil {
		return fmt.Errorf("report: write bundle: %w", err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("report: write bundle: %w", err)
	}
	return nil
}

// BundleMember is one file of a bundle.
type BundleMember struct {
	Name   string
	Format Format
	Data   []byte
}

// ReadBundle returns the files of a bundle, JSON, CSV and PDF in that
// order. A bundle holds exactly these three files, each at most
// [MaxDocumentBytes] and named without a directory.
func ReadBundle(b []byte) ([]BundleMember, error) {
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return nil, fmt.Errorf("report: %w: not a report bundle: %v", ErrInvalid, err)
	}
	if len(zr.File) != len(bundleFormats) {
		return nil, fmt.Errorf("report: %w: a report bundle holds %d files (JSON, CSV and PDF), this one %d", ErrInvalid, len(bundleFormats), len(zr.File))
	}
	out := make([]BundleMember, len(bundleFormats))
	for _, zf := range zr.File {
		name := zf.Name
		if name == "" || strings.ContainsAny(name, "/\\\x00") || strings.HasPrefix(name, ".") {
			return nil, fmt.Errorf("report: %w: bundle file name %q", ErrInvalid, name)
		}
		i := -1
		for j, f := range bundleFormats {
			if path.Ext(name) == "."+f.Ext() {
				i = j
			}
		}
		switch {
		case i < 0:
			return nil, fmt.Errorf("report: %w: bundle file %q is not .json, .csv or .pdf", ErrInvalid, name)
		case out[i].Name != "":
			return nil, fmt.Errorf("report: %w: the bundle holds two %s files", ErrInvalid, bundleFormats[i])
		case zf.UncompressedSize64 > MaxDocumentBytes:
			return nil, fmt.Errorf("report: %w: bundle file %q exceeds %d bytes", ErrInvalid, name, MaxDocumentBytes)
		}
		data, err := readZipFile(zf)
		if err != nil {
			return nil, fmt.Errorf("report: %w: bundle file %q: %v", ErrInvalid, name, err)
		}
		out[i] = BundleMember{Name: name, Format: bundleFormats[i], Data: data}
	}
	return out, nil
}

func readZipFile(zf *zip.File) ([]byte, error) {
	rc, err := zf.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, int64(zf.UncompressedSize64)+1))
	if err != nil {
		return nil, err
	}
	if uint64(len(data)) != zf.UncompressedSize64 {
		return nil, errors.New("size differs from its directory entry")
	}
	return data, nil
}

// VerifyBundle checks a report bundle offline with the log's public key
// alone: each of its files must pass [Verify], [VerifyCSV] or [VerifyPDF],
// and all three must carry the one digest: they are renderings of one run.
func VerifyBundle(b []byte, key note.Verifier, logName string) (*Verified, error) {
	logName, err := checkVerifyArgs(b, key, logName)
	if err != nil {
		return nil, err
	}
	members, err := ReadBundle(b)
	if err != nil {
		return nil, err
	}
	var first *Verified
	for _, m := range members {
		var v *Verified
		switch m.Format {
		case FormatJSON:
			v, err = Verify(m.Data, key, logName)
		case FormatCSV:
			v, err = VerifyCSV(m.Data, key, logName)
		default:
			v, err = VerifyPDF(m.Data, key, logName)
		}
		if err != nil {
			return nil, fmt.Errorf("bundle file %s: %w", m.Name, err)
		}
		if first == nil {
			first = v
		} else if v.Digest != first.Digest {
			return nil, fmt.Errorf("report: verify: %w: bundle file %s is of report %s, %s of report %s: the files are not renderings of one run",
				ErrInvalid, m.Name, v.Digest, members[0].Name, first.Digest)
		}
		first.Members = append(first.Members, m.Name)
		switch m.Format {
		case FormatCSV:
			first.Records = v.Records
		case FormatPDF:
			first.Pages = v.Pages
		}
	}
	first.Format = FormatBundle
	return first, nil
}
