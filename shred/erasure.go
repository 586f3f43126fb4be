package shred

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"

	"golang.org/x/mod/sumdb/note"
)

// erasureHeader is the first line of an erasure statement.
const erasureHeader = "trail erasure receipt v1"

// Erasure is what an erasure receipt states: which subject's data key was
// erased, when, by whom and why, and where the erasure's own record sits
// in the tenant's log. Its text form is signed by the log key as a C2SP
// signed note, so any note library verifies it.
type Erasure struct {
	Log       string
	Tenant    string
	Subject   string
	KeyID     []byte
	ErasedAt  time.Time
	ErasedBy  string
	Reason    string
	Reference string
	Record    Record
}

// Record locates the erasure's own event in the tenant's log.
type Record struct {
	Partition string
	LeafIndex uint64
	LeafHash  []byte
}

// erasureFields are the statement's lines after the header, in order.
var erasureFields = []string{"log", "tenant", "subject", "key", "erased_at", "erased_by", "reason", "reference", "record", "kept"}

// Kept is what every erasure leaves, said in every statement: the audit
// facts, which the GDPR's exemptions for legal obligations and legal
// claims cover, and the ciphertext, which no one can open any more.
const Kept = "the audit facts of every event (actor, action, outcome, times, subject id, target, PII field names, purpose) under Art. 17(3)(b) and (e), and the sealed payloads as ciphertext no key opens"

// Text is the statement's note text. Every value must be one line of
// printable text; reason and log, tenant and subject must be non-empty.
func (e *Erasure) Text() (string, error) {
	// A subject id is whatever producers chose, control characters
	// included: it is written quoted, so every subject has a statement.
	vals := []string{
		e.Log, e.Tenant, strconv.Quote(e.Subject), hex.EncodeToString(e.KeyID), e.ErasedAt.UTC().Format(time.RFC3339Nano),
		e.ErasedBy, e.Reason, e.Reference,
		fmt.Sprintf("%s %d %s", e.Record.Partition, e.Record.LeafIndex, base64.StdEncoding.EncodeToString(e.Record.LeafHash)),
		Kept,
	}
	var b strings.Builder
	b.WriteString(erasureHeader + "\n")
	for i, name := range erasureFields {
		if err := checkValue(name, vals[i]); err != nil {
			return "", err
		}
		b.WriteString(name)
		if vals[i] != "" {
			b.WriteString(" " + vals[i])
		}
		b.WriteString("\n")
	}
	if err := e.check(); err != nil {
		return "", err
	}
	return b.String(), nil
}

func (e *Erasure) check() error {
	switch {
	case e.Log == "" || e.Tenant == "" || e.Subject == "":
		return fmt.Errorf("%w: erasure: log, tenant and subject are required", ErrMalformed)
	case strings.TrimSpace(e.Reason) == "":
		return fmt.Errorf("%w: erasure: a reason is required", ErrMalformed)
	case len(e.KeyID) != KeyIDSize:
		return fmt.Errorf("%w: erasure: key id of %d bytes", ErrMalformed, len(e.KeyID))
	case len(e.Record.LeafHash) != 32:
		return fmt.Errorf("%w: erasure: record leaf hash of %d bytes", ErrMalformed, len(e.Record.LeafHash))
	}
	return nil
}

// CheckLine refuses what a one-line statement value cannot hold: control
// characters (C0, DEL, C1) and the Unicode line and paragraph separators.
func CheckLine(v string) error {
	for _, r := range v {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return fmt.Errorf("control character or line break %U", r)
		}
	}
	return nil
}

func checkValue(name, v string) error {
	if err := CheckLine(v); err != nil {
		return fmt.Errorf("%w: erasure %s: %v", ErrMalformed, name, err)
	}
	if strings.TrimSpace(v) != v {
		return fmt.Errorf("%w: erasure %s: leading or trailing space", ErrMalformed, name)
	}
	return nil
}

// ParseErasure reads a statement's text, as Text writes it and nothing else.
func ParseErasure(text string) (*Erasure, error) {
	lines := strings.Split(text, "\n")
	if len(lines) != len(erasureFields)+2 || lines[0] != erasureHeader || lines[len(lines)-1] != "" {
		return nil, fmt.Errorf("%w: not an erasure statement (%s)", ErrMalformed, erasureHeader)
	}
	vals := make([]string, len(erasureFields))
	for i, name := range erasureFields {
		line := lines[i+1]
		v, ok := strings.CutPrefix(line, name)
		if ok && v != "" {
			v, ok = strings.CutPrefix(v, " ")
			ok = ok && v != ""
		}
		if !ok {
			return nil, fmt.Errorf("%w: erasure statement line %d: want %q", ErrMalformed, i+2, name)
		}
		vals[i] = v
	}
	e := &Erasure{Log: vals[0], Tenant: vals[1], ErasedBy: vals[5], Reason: vals[6], Reference: vals[7]}
	var err error
	if e.Subject, err = strconv.Unquote(vals[2]); err != nil {
		return nil, fmt.Errorf("%w: erasure subject %s: %v", ErrMalformed, vals[2], err)
	}
	if e.KeyID, err = hex.DecodeString(vals[3]); err != nil {
		return nil, fmt.Errorf("%w: erasure key: %v", ErrMalformed, err)
	}
	if e.ErasedAt, err = time.Parse(time.RFC3339Nano, vals[4]); err != nil {
		return nil, fmt.Errorf("%w: erasure time: %v", ErrMalformed, err)
	}
	rec := strings.Split(vals[8], " ")
	if len(rec) != 3 {
		return nil, fmt.Errorf("%w: erasure record %q: want partition, leaf index and leaf hash", ErrMalformed, vals[8])
	}
	e.Record.Partition = rec[0]
	if e.Record.LeafIndex, err = strconv.ParseUint(rec[1], 10, 64); err != nil {
		return nil, fmt.Errorf("%w: erasure record leaf index: %v", ErrMalformed, err)
	}
	if e.Record.LeafHash, err = base64.StdEncoding.Strict().DecodeString(rec[2]); err != nil {
		return nil, fmt.Errorf("%w: erasure record leaf hash: %v", ErrMalformed, err)
	}
	// A statement must read back exactly: one text per erasure.
	if again, err := e.Text(); err != nil || again != text {
		return nil, fmt.Errorf("%w: erasure statement is not in its one canonical form", ErrMalformed)
	}
	return e, nil
}

// SignErasure returns e as a signed note.
func SignErasure(e *Erasure, signer note.Signer) ([]byte, error) {
	text, err := e.Text()
	if err != nil {
		return nil, err
	}
	msg, err := note.Sign(&note.Note{Text: text}, signer)
	if err != nil {
		return nil, fmt.Errorf("shred: sign erasure: %w", err)
	}
	return msg, nil
}

// VerifyErasure checks a signed erasure receipt against the log key and
// returns what it states.
func VerifyErasure(msg []byte, logKey note.Verifier) (*Erasure, error) {
	n, err := note.Open(msg, note.VerifierList(logKey))
	if err != nil {
		return nil, fmt.Errorf("shred: erasure receipt: %w", err)
	}
	return ParseErasure(n.Text)
}
