package bundle

import (
	"bufio"
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

// lineReader yields a bundle's lines one at a time in a reused buffer.
type lineReader struct {
	r   *bufio.Reader
	buf []byte
	max int
	n   uint64 // number of the line last returned
}

func newLineReader(r io.Reader, limit int) *lineReader {
	return &lineReader{r: bufio.NewReaderSize(r, 64<<10), max: limit}
}

// errNoNewline is a last line without its "\n": a cut-off file.
var errNoNewline = errors.New("the last line does not end in a newline")

// next returns the next line including its "\n", valid until the next
// call; io.EOF at a clean end.
func (lr *lineReader) next() ([]byte, error) {
	lr.buf = lr.buf[:0]
	for {
		chunk, err := lr.r.ReadSlice('\n')
		if len(lr.buf)+len(chunk) > lr.max {
			return nil, fmt.Errorf("line %d is longer than %d bytes: %w", lr.n+1, lr.max, ErrMalformed)
		}
		lr.buf = append(lr.buf, chunk...)
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(lr.buf) == 0:
			return nil, io.EOF
		case errors.Is(err, io.EOF):
			lr.n++
			return nil, fmt.Errorf("%w: %w", errNoNewline, ErrTruncated)
		case err != nil:
			return nil, fmt.Errorf("%w: %w", ErrRead, err)
		}
		lr.n++
		return lr.buf, nil
	}
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
	return string(rest[:end]), nil
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
