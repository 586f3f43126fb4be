package merkle

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// TLogProofHeader is the first line of a C2SP tlog-proof file.
const TLogProofHeader = "c2sp.org/tlog-proof@v1"

// MaxTLogProofHashes bounds the inclusion proof lines of a tlog-proof: a
// path in a tree of at most 2^64 leaves has at most 64 hashes.
const MaxTLogProofHashes = 64

// ErrInvalidTLogProof means a tlog-proof file does not follow the format.
var ErrInvalidTLogProof = errors.New("invalid tlog-proof")

// TLogProof is a C2SP tlog-proof (c2sp.org/tlog-proof): an offline
// verifiable proof that the entry at Index is in the tree a signed
// checkpoint commits to. Trail puts the entry's bytes in Extra, so a
// verifier recomputes the leaf hash from them (invariant 1) and needs
// nothing else but the trusted keys. Extra is not authenticated by the
// format itself: only the inclusion proof of its hash makes it so.
type TLogProof struct {
	Extra []byte // nil: no extra line
	Index uint64
	Proof []Hash
	// Checkpoint is the signed checkpoint note, log signature and any
	// cosignatures included, verbatim.
	Checkpoint []byte
}

// Marshal encodes the proof:
//
//	c2sp.org/tlog-proof@v1
//	extra <base64>         (only when Extra is non-nil)
//	index <index>
//	<base64 hash>          (one per proof hash, leaf's sibling first)
//	<empty line>
//	<signed checkpoint note>
func (p TLogProof) Marshal() []byte {
	b := make([]byte, 0, 64+base64.StdEncoding.EncodedLen(len(p.Extra))+45*len(p.Proof)+len(p.Checkpoint))
	b = append(b, TLogProofHeader+"\n"...)
	if p.Extra != nil {
		b = append(b, "extra "...)
		b = base64.StdEncoding.AppendEncode(b, p.Extra)
		b = append(b, '\n')
	}
	b = append(b, "index "...)
	b = strconv.AppendUint(b, p.Index, 10)
	b = append(b, '\n')
	for _, h := range p.Proof {
		b = base64.StdEncoding.AppendEncode(b, h[:])
		b = append(b, '\n')
	}
	b = append(b, '\n')
	return append(b, p.Checkpoint...)
}

// ParseTLogProof parses a tlog-proof strictly, so that a file has one
// meaning and one spelling: the exact header, an optional extra line in
// canonical base64 (which may be empty), the index without leading zeros,
// at most MaxTLogProofHashes canonical base64 hashes, an empty line, and a
// non-empty checkpoint note that is valid UTF-8 and ends in a newline. The
// note's signatures and body are checked by whoever opens it
// (OpenCheckpoint). Errors wrap ErrInvalidTLogProof.
func ParseTLogProof(b []byte) (TLogProof, error) {
	p, err := parseTLogProof(b)
	if err != nil {
		return TLogProof{}, fmt.Errorf("merkle: parse tlog-proof: %w: %w", ErrInvalidTLogProof, err)
	}
	return p, nil
}

func parseTLogProof(b []byte) (TLogProof, error) {
	var p TLogProof
	next := func() ([]byte, bool) {
		line, rest, ok := bytes.Cut(b, []byte("\n"))
		b = rest
		return line, ok
	}
	line, ok := next()
	if !ok || string(line) != TLogProofHeader {
		return p, fmt.Errorf("first line %q is not %q", clip(line), TLogProofHeader)
	}
	if line, ok = next(); !ok {
		return p, errors.New("no index line")
	}
	if enc, isExtra := bytes.CutPrefix(line, []byte("extra ")); isExtra {
		extra, err := base64.StdEncoding.Strict().DecodeString(string(enc))
		if err != nil || base64.StdEncoding.EncodeToString(extra) != string(enc) {
			return p, errors.New("extra data is not canonical base64")
		}
		p.Extra = extra
		if line, ok = next(); !ok {
			return p, errors.New("no index line")
		}
	}
	num, isIndex := bytes.CutPrefix(line, []byte("index "))
	if !isIndex {
		return p, fmt.Errorf("line %q is not \"index <n>\"", clip(line))
	}
	index, err := ParseDecimal(string(num))
	if err != nil {
		return p, fmt.Errorf("index: %w", err)
	}
	p.Index = index
	for {
		if line, ok = next(); !ok {
			return p, errors.New("no empty line before the checkpoint")
		}
		if len(line) == 0 {
			break
		}
		if len(p.Proof) == MaxTLogProofHashes {
			return p, fmt.Errorf("more than %d proof hashes", MaxTLogProofHashes)
		}
		h, err := ParseBase64Hash(string(line))
		if err != nil {
			return p, fmt.Errorf("proof hash %d: %w", len(p.Proof)+1, err)
		}
		p.Proof = append(p.Proof, h)
	}
	switch {
	case len(b) == 0:
		return p, errors.New("no checkpoint after the empty line")
	case b[len(b)-1] != '\n':
		return p, errors.New("checkpoint does not end in a newline")
	case !utf8.Valid(b):
		return p, errors.New("checkpoint is not valid UTF-8")
	}
	p.Checkpoint = b
	return p, nil
}
