package witness

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"

	"github.com/trailaudit/trail/merkle"
)

// Protocol constants (c2sp.org/tlog-witness).
const (
	// AddCheckpointPath is appended to a witness's submission prefix.
	AddCheckpointPath = "/add-checkpoint"
	// SizeContentType is the type of a 409 Conflict body: the witness's
	// latest cosigned size in decimal and a newline.
	SizeContentType = "text/x.tlog.size"
	// MaxProofHashes is the most consistency proof lines a request may
	// carry: a proof between two trees of at most 2^64 leaves is shorter.
	MaxProofHashes = 63
	// MaxRequestBytes bounds an add-checkpoint body: 63 proof lines, a
	// checkpoint and a generous number of signatures fit easily.
	MaxRequestBytes = 64 << 10
)

// ErrMalformed means an add-checkpoint request body does not follow the
// protocol's format (HTTP 400).
var ErrMalformed = errors.New("malformed add-checkpoint request")

// AddCheckpointRequest is the body of an add-checkpoint call: the size of
// the checkpoint the witness last cosigned for the log (as the log
// believes), a consistency proof from that size to the new checkpoint, and
// the new checkpoint as a signed note.
type AddCheckpointRequest struct {
	OldSize    uint64
	Proof      []merkle.Hash
	Checkpoint []byte
}

// Marshal encodes the request body: "old N\n", one base64 hash per line,
// an empty line, then the signed checkpoint note verbatim.
func (r AddCheckpointRequest) Marshal() []byte {
	b := make([]byte, 0, 16+len(r.Proof)*45+len(r.Checkpoint))
	b = append(b, "old "...)
	b = strconv.AppendUint(b, r.OldSize, 10)
	b = append(b, '\n')
	for _, h := range r.Proof {
		b = base64.StdEncoding.AppendEncode(b, h[:])
		b = append(b, '\n')
	}
	b = append(b, '\n')
	return append(b, r.Checkpoint...)
}

// ParseAddCheckpoint parses a request body strictly: one spelling of every
// number and hash, at most MaxProofHashes proof lines, and a non-empty
// checkpoint after the empty line. The checkpoint note itself is not
// checked here. Errors wrap ErrMalformed.
func ParseAddCheckpoint(body []byte) (AddCheckpointRequest, error) {
	r, err := parseAddCheckpoint(body)
	if err != nil {
		return AddCheckpointRequest{}, fmt.Errorf("witness: %w: %w", ErrMalformed, err)
	}
	return r, nil
}

func parseAddCheckpoint(body []byte) (AddCheckpointRequest, error) {
	var r AddCheckpointRequest
	line, rest, ok := bytes.Cut(body, []byte("\n"))
	if !ok {
		return r, errors.New("no old size line")
	}
	num, ok := bytes.CutPrefix(line, []byte("old "))
	if !ok {
		return r, fmt.Errorf("first line %q is not \"old <size>\"", clip(line))
	}
	size, err := merkle.ParseDecimal(string(num))
	if err != nil {
		return r, fmt.Errorf("old size: %w", err)
	}
	r.OldSize = size
	for {
		line, rest, ok = bytes.Cut(rest, []byte("\n"))
		if !ok {
			return r, errors.New("no empty line before the checkpoint")
		}
		if len(line) == 0 {
			break
		}
		if len(r.Proof) == MaxProofHashes {
			return r, fmt.Errorf("more than %d proof lines", MaxProofHashes)
		}
		h, err := merkle.ParseBase64Hash(string(line))
		if err != nil {
			return r, fmt.Errorf("proof line %d: %w", len(r.Proof)+1, err)
		}
		r.Proof = append(r.Proof, h)
	}
	if len(rest) == 0 {
		return r, errors.New("no checkpoint after the empty line")
	}
	r.Checkpoint = rest
	return r, nil
}
