package bundle

import (
	"errors"
	"fmt"
)

// Kinds of verification failure. Every error Verify returns is an *Error
// wrapping one of them (or the context's error), so callers can test with
// errors.Is.
var (
	// ErrMalformed: a line is not valid JSON of its type, or lines are out
	// of the order the format requires.
	ErrMalformed = errors.New("malformed bundle")
	// ErrTruncated: the bundle ends before its manifest, or in mid-line.
	ErrTruncated = errors.New("bundle truncated")
	// ErrUntrustedKey: the bundle names a log key other than the trusted
	// one, or a log name other than the expected one.
	ErrUntrustedKey = errors.New("not the trusted log key")
	// ErrSignature: a checkpoint or the manifest does not carry a valid
	// signature by the trusted key, or says something else than the
	// unsigned fields beside it.
	ErrSignature = errors.New("signature not verified")
	// ErrProof: an inclusion or consistency proof does not lead to the
	// signed root.
	ErrProof = errors.New("proof does not verify")
	// ErrEntry: an entry's bytes do not hash to its leaf hash, do not
	// decode, or do not record the tenant, partition, leaf index or time
	// they are filed under.
	ErrEntry = errors.New("entry does not match")
	// ErrChain: an entry does not record the leaf hash of the entry before
	// it, or a partition link contradicts the bundle.
	ErrChain = errors.New("chain broken")
	// ErrFilter: an entry is outside the filters the header declares.
	ErrFilter = errors.New("entry outside the export's filters")
	// ErrManifest: the manifest's digest or counts differ from the bundle.
	ErrManifest = errors.New("manifest does not match the bundle")
	// ErrRead: the bundle could not be read (an I/O error, not a verdict:
	// nothing was verified).
	ErrRead = errors.New("cannot read the bundle")
)

// Error is a verification failure at one line of a bundle (line 1 is the
// header; 0 when the failure is not about one line, such as a read error).
type Error struct {
	Line uint64
	Type string // the line's type, when known
	Err  error
}

func (e *Error) Error() string {
	switch {
	case e.Line == 0:
		return fmt.Sprintf("bundle: %v", e.Err)
	case e.Type == "":
		return fmt.Sprintf("bundle: line %d: %v", e.Line, e.Err)
	}
	return fmt.Sprintf("bundle: line %d (%s): %v", e.Line, e.Type, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// failf returns an error of kind for the caller to place at a line.
func failf(kind error, format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), kind)
}
