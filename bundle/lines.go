package bundle

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// DefaultMaxLine bounds one line: the engine's largest entry (1 MiB by
// default, configurable) in base64 with its proof fits many times over,
// and a verifier's memory stays bounded whatever the file holds.
const DefaultMaxLine = 16 << 20

// lineReader yields a bundle's lines one at a time, in place in its
// buffer.
type lineReader struct {
	r     io.Reader
	buf   []byte // buf[start:end] is read but not yet returned
	start int
	end   int
	line  int // offset of the line last returned
	seen  int // buf[start:start+seen] holds no newline
	eof   bool
	max   int
	n     uint64 // number of the line last returned
}

// lineBuffer is the reader's initial buffer; it grows for longer lines,
// up to the line limit.
const lineBuffer = 256 << 10

func newLineReader(r io.Reader, limit int) *lineReader {
	return &lineReader{r: r, buf: make([]byte, min(lineBuffer, limit+1)), max: limit}
}

// errNoNewline is a last line without its "\n": a cut-off file.
var errNoNewline = errors.New("the last line does not end in a newline")

// next returns the next line including its "\n", valid until the next
// call; io.EOF at a clean end.
func (lr *lineReader) next() ([]byte, error) {
	for {
		// Search only the bytes not searched before: a long line arriving
		// in small reads is scanned once, not once per read.
		if i := bytes.IndexByte(lr.buf[lr.start+lr.seen:lr.end], '\n'); i >= 0 {
			i += lr.seen
			lr.seen = 0
			if i+1 > lr.max {
				return nil, fmt.Errorf("line %d is longer than %d bytes: %w", lr.n+1, lr.max, ErrMalformed)
			}
			lr.line = lr.start
			lr.start += i + 1
			lr.n++
			return lr.buf[lr.line:lr.start], nil
		}
		lr.seen = lr.end - lr.start
		if lr.seen > lr.max {
			return nil, fmt.Errorf("line %d is longer than %d bytes: %w", lr.n+1, lr.max, ErrMalformed)
		}
		if lr.eof {
			if lr.start == lr.end {
				return nil, io.EOF
			}
			lr.n++
			return nil, fmt.Errorf("%w: %w", errNoNewline, ErrTruncated)
		}
		if err := lr.fill(); err != nil {
			return nil, err
		}
	}
}

// fill moves the unread bytes to the front (growing the buffer when they
// fill it) and reads more.
func (lr *lineReader) fill() error {
	if lr.start > 0 { // else the partial line is at the front already
		n := copy(lr.buf, lr.buf[lr.start:lr.end])
		lr.start, lr.end, lr.line = 0, n, 0
	}
	if lr.end == len(lr.buf) {
		grown := make([]byte, min(2*len(lr.buf), lr.max+1))
		copy(grown, lr.buf[:lr.end])
		lr.buf = grown
	}
	// As bufio does, a reader that keeps returning nothing is an error
	// rather than a loop forever.
	for range 100 {
		k, err := lr.r.Read(lr.buf[lr.end:])
		lr.end += k
		switch {
		case errors.Is(err, io.EOF):
			lr.eof = true
			return nil
		case err != nil:
			return fmt.Errorf("%w: %w", ErrRead, err)
		case k > 0:
			return nil
		}
	}
	return fmt.Errorf("%w: %w", ErrRead, io.ErrNoProgress)
}

// lineType reads the type of a line, which must open the object:
// {"type":"<name>", ... The writer always puts it first, and requiring it
// lets a line be decoded once, strictly, into the struct of its type.
func lineType(line []byte) (string, error) {
	const prefix = `{"type":"`
	if !bytes.HasPrefix(line, []byte(prefix)) {
		return "", fmt.Errorf(`line does not start with {"type":"...": %w`, ErrMalformed)
	}
	rest := line[len(prefix):]
	end := bytes.IndexByte(rest, '"')
	if end <= 0 || end > 32 {
		return "", fmt.Errorf("line has no readable type: %w", ErrMalformed)
	}
	// Known types return the constant: no allocation per line.
	switch t := rest[:end]; string(t) {
	case TypeEntry:
		return TypeEntry, nil
	case TypeRun:
		return TypeRun, nil
	case TypeRunEnd:
		return TypeRunEnd, nil
	case TypeHeader, TypeCheckpoint, TypeConsistency, TypeManifest:
		return string(t), nil
	default:
		return string(t), nil
	}
}

// decodeLine decodes one JSON object strictly: unknown keys and trailing
// data are errors, since a verifier cannot vouch for what it ignores.
func decodeLine(line []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("decode: %v: %w", err, ErrMalformed)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("data after the JSON object: %w", ErrMalformed)
	}
	return nil
}
