package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"google.golang.org/protobuf/encoding/protojson"

	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// The saved file formats are specified in doc.go. Decoders are strict
// (unknown fields are errors) because these files are evidence: a field the
// verifier does not understand is a field it cannot vouch for.

const (
	// maxProofFileBytes bounds a proof, consistency or checkpoint file:
	// proofs are O(log n) hashes plus one entry of at most a few MiB.
	maxProofFileBytes = 32 << 20
	// maxChainLineBytes bounds one chain line: a StoredEntry with its
	// entry bytes in base64 and their decoding.
	maxChainLineBytes = 16 << 20
)

// proofTenantField is the one key a proof file adds to the JSON of
// GetInclusionProofResponse, which does not name the tenant.
const proofTenantField = "tenant_id"

// proofFile is a saved inclusion proof: the server's response plus the
// tenant it was asked about.
type proofFile struct {
	TenantID string
	Proof    *trailv1.GetInclusionProofResponse
}

func encodeProofFile(pf proofFile) ([]byte, error) {
	b, err := marshalJSON(pf.Proof)
	if err != nil {
		return nil, err
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil {
		return nil, fmt.Errorf("encode proof file: %w", err)
	}
	tenant, err := json.Marshal(pf.TenantID)
	if err != nil {
		return nil, fmt.Errorf("encode proof file: %w", err)
	}
	fields[proofTenantField] = tenant
	out, err := json.MarshalIndent(fields, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode proof file: %w", err)
	}
	return append(out, '\n'), nil
}

func decodeProofFile(b []byte) (proofFile, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil {
		return proofFile{}, fmt.Errorf("proof file is not a JSON object: %w", err)
	}
	raw, ok := fields[proofTenantField]
	if !ok {
		return proofFile{}, fmt.Errorf("proof file has no %q", proofTenantField)
	}
	var pf proofFile
	if err := json.Unmarshal(raw, &pf.TenantID); err != nil {
		return proofFile{}, fmt.Errorf("proof file %q: %w", proofTenantField, err)
	}
	delete(fields, proofTenantField)
	rest, err := json.Marshal(fields)
	if err != nil {
		return proofFile{}, fmt.Errorf("proof file: %w", err)
	}
	pf.Proof = new(trailv1.GetInclusionProofResponse)
	if err := protojson.Unmarshal(rest, pf.Proof); err != nil {
		return proofFile{}, fmt.Errorf("proof file: %w", err)
	}
	return pf, nil
}

func encodeConsistencyFile(r *trailv1.GetConsistencyProofResponse) ([]byte, error) {
	b, err := protojson.MarshalOptions{UseProtoNames: true, Multiline: true, Indent: "  "}.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encode consistency file: %w", err)
	}
	return append(b, '\n'), nil
}

func decodeConsistencyFile(b []byte) (*trailv1.GetConsistencyProofResponse, error) {
	r := new(trailv1.GetConsistencyProofResponse)
	if err := protojson.Unmarshal(b, r); err != nil {
		return nil, fmt.Errorf("consistency file: %w", err)
	}
	return r, nil
}

// encodeChainLine is one line of a chain file, without the newline.
func encodeChainLine(se *trailv1.StoredEntry) ([]byte, error) {
	return marshalJSON(se)
}

func decodeChainLine(line []byte) (*trailv1.StoredEntry, error) {
	se := new(trailv1.StoredEntry)
	if err := protojson.Unmarshal(line, se); err != nil {
		return nil, err
	}
	return se, nil
}

// chainReader reads a chain file entry by entry, so a chain of any length
// is checked in constant memory.
type chainReader struct {
	lines *lineReader
	line  int // line number of the entry last returned
}

func newChainReader(r io.Reader) *chainReader {
	return &chainReader{lines: newLineReader(r, maxChainLineBytes)}
}

// next returns the next entry, io.EOF at the end, or an error naming the
// line. Read errors are I/O errors; undecodable lines are not.
func (c *chainReader) next() (*trailv1.StoredEntry, error) {
	line, err := c.lines.next()
	if err != nil {
		return nil, err
	}
	c.line = c.lines.line
	se, err := decodeChainLine(line)
	if err != nil {
		return nil, fmt.Errorf("line %d: not a StoredEntry: %w", c.line, err)
	}
	return se, nil
}

// lineReader returns the non-blank lines of a JSON Lines stream, each at
// most max bytes, counting lines and bytes for messages and progress.
type lineReader struct {
	r     *bufio.Reader
	max   int
	line  int   // number of the line last returned
	bytes int64 // bytes consumed so far
}

func newLineReader(r io.Reader, max int) *lineReader {
	return &lineReader{r: bufio.NewReaderSize(r, 64<<10), max: max}
}

func (l *lineReader) next() ([]byte, error) {
	for {
		line, err := l.readLine()
		if err != nil {
			return nil, err
		}
		l.line++
		l.bytes += int64(len(line))
		if len(bytes.TrimSpace(line)) != 0 {
			return line, nil
		}
	}
}

func (l *lineReader) readLine() ([]byte, error) {
	var line []byte
	for {
		frag, err := l.r.ReadSlice('\n')
		line = append(line, frag...)
		if len(line) > l.max {
			return nil, fmt.Errorf("line %d: longer than %d bytes", l.line+1, l.max)
		}
		switch {
		case err == nil:
			return line, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(line) > 0:
			return line, nil // a last line without a newline
		case errors.Is(err, io.EOF):
			return nil, io.EOF
		default:
			return nil, ioError(fmt.Errorf("line %d: %w", l.line+1, err))
		}
	}
}

// readLimit reads all of r, failing if it holds more than limit bytes.
func readLimit(r io.Reader, name string, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, ioError(fmt.Errorf("read %s: %w", name, err))
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s: larger than %d bytes", name, limit)
	}
	return b, nil
}

// readInput reads a named file, or stdin for "-".
func readInput(e *env, path string, limit int64) ([]byte, error) {
	if path == "-" {
		return readLimit(e.stdin, "stdin", limit)
	}
	return readFileLimit(path, limit)
}

// writeFileAtomic writes data to path through a temporary file in the same
// directory and a rename, so readers (and a crash) see the old file or the
// new one, never a torn write. The directory is synced so the rename
// survives a power loss.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return ioError(err)
	}
	defer os.Remove(tmp.Name()) // fails harmlessly after the rename
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return ioError(fmt.Errorf("write %s: %w", tmp.Name(), err))
	}
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return ioError(err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return ioError(fmt.Errorf("sync %s: %w", tmp.Name(), err))
	}
	if err := tmp.Close(); err != nil {
		return ioError(err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return ioError(err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return ioError(err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return ioError(fmt.Errorf("sync directory %s: %w", dir, err))
	}
	return nil
}
