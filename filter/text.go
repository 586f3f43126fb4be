package filter

import (
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Full text. The engine indexes an event's words and a Text clause is
// matched against the same words, so both take them from here: the
// action, the actor's display name, the target's type, and the
// values of the tenant's text attributes, each split into words at every
// rune that is neither a letter nor a digit, and case-folded.

// Text limits: they bound what one event adds to the index and what one
// clause costs.
const (
	MaxWordLen     = 64  // bytes; longer words are indexed by their first 64 bytes
	MaxEventWords  = 256 // words indexed per event; the rest are not
	MaxClauses     = 16
	MaxClauseWords = 8
	MinPrefixLen   = 2 // bytes before the "*" of a prefix clause
)

// DefaultTextAttributes are the attribute keys indexed for a tenant that
// has not chosen its own: the free-text keys producers commonly use.
var DefaultTextAttributes = []string{"comment", "description", "justification", "message", "reason", "summary"}

// EachWord calls fn with the words of each source in turn (src is the
// source's index), case-folded, cut to MaxWordLen bytes, at most
// MaxEventWords in all. The engine indexes exactly these words (through
// NextWord, which does not need a closure), and Text clauses match
// against exactly these. buf is scratch space, returned grown for reuse;
// word is only valid during the call.
func EachWord(sources [][]byte, buf []byte, fn func(src int, word []byte)) []byte {
	n := 0
	for src, s := range sources {
		for i := 0; n < MaxEventWords; n++ {
			var word []byte
			if word, i, buf = NextWord(s, i, buf); word == nil {
				break
			}
			fn(src, word)
		}
	}
	return buf
}

// NextWord returns the first word of s at or after byte i, case-folded
// into buf, and the byte after it; word is nil when s has no more words.
// Callers stop after MaxEventWords words of an event, as EachWord does.
func NextWord(s []byte, i int, buf []byte) (word []byte, next int, grown []byte) {
	for i < len(s) {
		r, size := decodeRune(s[i:])
		if isWordRune(r) {
			break
		}
		i += size
	}
	if i == len(s) {
		return nil, i, buf
	}
	buf = buf[:0]
	for i < len(s) {
		r, size := decodeRune(s[i:])
		if !isWordRune(r) {
			break
		}
		buf = appendLower(buf, r)
		i += size
	}
	return buf, i, buf
}

func decodeRune(b []byte) (rune, int) {
	if b[0] < utf8.RuneSelf {
		return rune(b[0]), 1
	}
	return utf8.DecodeRune(b)
}

// appendLower appends r case-folded, unless the word would exceed
// MaxWordLen.
func appendLower(buf []byte, r rune) []byte {
	if r < utf8.RuneSelf {
		if len(buf) == MaxWordLen {
			return buf
		}
		if 'A' <= r && r <= 'Z' {
			r += 'a' - 'A'
		}
		return append(buf, byte(r))
	}
	r = unicode.ToLower(r)
	if len(buf)+utf8.RuneLen(r) > MaxWordLen {
		return buf
	}
	return utf8.AppendRune(buf, r)
}

func isWordRune(r rune) bool {
	if r < utf8.RuneSelf {
		return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9'
	}
	return unicode.IsLetter(r) || unicode.IsDigit(r)
}

// words returns the words of s.
func words(s string) []string {
	var out []string
	EachWord([][]byte{[]byte(s)}, nil, func(_ int, w []byte) { out = append(out, string(w)) })
	return out
}

// clause is a parsed Text clause: its words, the last one a prefix when
// prefix is set.
type clause struct {
	words  []string
	prefix bool
}

func parseClause(c string) (clause, error) {
	var cl clause
	body := strings.TrimSpace(c)
	if strings.HasSuffix(body, "*") {
		cl.prefix = true
		body = strings.TrimSuffix(body, "*")
		if r, _ := utf8.DecodeLastRuneInString(body); !isWordRune(r) {
			return cl, fmt.Errorf("%w: text %q: the * must follow a word", ErrInvalid, c)
		}
	}
	cl.words = words(body)
	switch {
	case len(cl.words) == 0:
		return cl, fmt.Errorf("%w: text %q has no words", ErrInvalid, c)
	case len(cl.words) > MaxClauseWords:
		return cl, fmt.Errorf("%w: text %q: %d words, at most %d", ErrInvalid, c, len(cl.words), MaxClauseWords)
	case cl.prefix && len(cl.words[len(cl.words)-1]) < MinPrefixLen:
		return cl, fmt.Errorf("%w: text %q: a prefix needs at least %d bytes before the *", ErrInvalid, c, MinPrefixLen)
	}
	return cl, nil
}

// normalizeClause spells a clause as its words joined by spaces, with its
// "*" if it is a prefix; a clause that does not parse is left as it is
// (Check refuses it).
func normalizeClause(c string) string {
	cl, err := parseClause(c)
	if err != nil {
		return c
	}
	out := strings.Join(cl.words, " ")
	if cl.prefix {
		out += "*"
	}
	return out
}

func checkText(text []string) error {
	if len(text) > MaxClauses {
		return fmt.Errorf("%w: text: %d clauses, at most %d", ErrInvalid, len(text), MaxClauses)
	}
	for _, c := range text {
		if _, err := parseClause(c); err != nil {
			return err
		}
	}
	return nil
}

// ClauseWords returns a clause's words and whether its last word is a
// prefix, for the engine's index lookups.
func ClauseWords(c string) (words []string, prefix bool, err error) {
	cl, err := parseClause(c)
	return cl.words, cl.prefix, err
}

// TextSources returns the texts an event's words are read from, in the
// order EachWord numbers them: the action, the actor's display name, the
// target's type, then the attributes named in attrs. Target ids are
// not text: they are unique per event, each a term of its own that costs
// the write path and helps no phrase; target:TYPE/ID finds them exactly.
func TextSources(ev *Event, attrs []string) [][]byte {
	out := [][]byte{[]byte(ev.Action), []byte(ev.DisplayName), []byte(ev.TargetType)}
	for _, k := range attrs {
		out = append(out, []byte(ev.Attributes[k]))
	}
	return out
}

// textMatch reports whether one of ev's texts holds the clause's words in
// order, the last as a prefix if the clause is one.
func textMatch(c string, ev *Event, attrs []string) bool {
	cl, err := parseClause(c)
	if err != nil {
		return false
	}
	sources := TextSources(ev, attrs)
	bySource := make([][]string, len(sources))
	EachWord(sources, nil, func(src int, w []byte) {
		bySource[src] = append(bySource[src], string(w))
	})
	return slices.ContainsFunc(bySource, cl.in)
}

// in reports whether words holds the clause.
func (cl clause) in(words []string) bool {
	n := len(cl.words)
	for i := 0; i+n <= len(words); i++ {
		if !slices.Equal(words[i:i+n-1], cl.words[:n-1]) {
			continue
		}
		last := words[i+n-1]
		if last == cl.words[n-1] || cl.prefix && strings.HasPrefix(last, cl.words[n-1]) {
			return true
		}
	}
	return false
}
