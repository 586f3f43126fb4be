package filter

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// The query syntax is a filter as people type it:
//
//	actor:alice category:data_access,authentication -action:user.login "export" from:2026-01-01
//
// Terms are separated by spaces. field:v1,v2 selects events whose field is
// one of the values (repeating a field adds values); -field:v leaves out
// events whose field has one of them; a bare word, a "quoted phrase" or a
// prefix* is a text clause (text: does the same). Values with spaces,
// commas, colons, slashes or quotes are written quoted, as Go quotes
// strings. Fields: actor, subject, target (TYPE/ID), category, action,
// purpose, pii (a PII field accessed), from or after, to or before (RFC
// 3339, or YYYY-MM-DD for that day's start, UTC). Parse and String are
// inverses: String writes this syntax.

// queryFields are the fields of the syntax, for errors.
const queryFields = "actor, subject, target, category, action, purpose, pii, from, to, text"

// MaxQueryLen bounds a query string.
const MaxQueryLen = 4096

// Parse reads a query. The filter is checked and normalized.
func Parse(q string) (Filter, error) {
	var f Filter
	if len(q) > MaxQueryLen {
		return f, fmt.Errorf("%w: query of %d bytes, at most %d", ErrInvalid, len(q), MaxQueryLen)
	}
	terms, err := splitTerms(q)
	if err != nil {
		return f, err
	}
	for _, t := range terms {
		if err := f.addTerm(t); err != nil {
			return Filter{}, err
		}
	}
	if err := f.Check(); err != nil {
		return Filter{}, err
	}
	f.Normalize()
	return f, nil
}

// splitTerms cuts q at spaces outside quotes.
func splitTerms(q string) ([]string, error) {
	var terms []string
	var cur strings.Builder
	inQuote, escaped := false, false
	for _, r := range q {
		switch {
		case inQuote && escaped:
			escaped = false
		case inQuote && r == '\\':
			escaped = true
		case r == '"':
			inQuote = !inQuote
		case !inQuote && unicode.IsSpace(r):
			if cur.Len() > 0 {
				terms = append(terms, cur.String())
				cur.Reset()
			}
			continue
		}
		cur.WriteRune(r)
	}
	if inQuote {
		return nil, fmt.Errorf("%w: query: a quote is not closed", ErrInvalid)
	}
	if cur.Len() > 0 {
		terms = append(terms, cur.String())
	}
	return terms, nil
}

// addTerm adds one term to f.
func (f *Filter) addTerm(t string) error {
	negate := false
	body := t
	if strings.HasPrefix(body, "-") {
		negate, body = true, body[1:]
	}
	name, rest, isField := cutField(body)
	if !isField {
		if negate {
			return fmt.Errorf("%w: query term %q: only a field can be negated (-field:value), not text", ErrInvalid, t)
		}
		return f.addText(t, body)
	}
	values, err := splitValues(rest)
	if err != nil {
		return fmt.Errorf("query term %q: %w", t, err)
	}
	if len(values) == 0 {
		return fmt.Errorf("%w: query term %q has no value", ErrInvalid, t)
	}
	sets := f.fields()
	if negate {
		sets = f.Exclude
	}
	switch name {
	case "from", "after", "to", "before", "text":
		if negate {
			return fmt.Errorf("%w: query term %q: %s cannot be negated", ErrInvalid, t, name)
		}
		return f.addSpecial(t, name, values)
	case "actor":
		sets.ActorIDs = append(sets.ActorIDs, joinAll(values)...)
	case "subject":
		sets.SubjectIDs = append(sets.SubjectIDs, joinAll(values)...)
	case "action":
		sets.Actions = append(sets.Actions, joinAll(values)...)
	case "purpose":
		sets.PurposeCodes = append(sets.PurposeCodes, joinAll(values)...)
	case "pii", "pii_field":
		sets.PIIFields = append(sets.PIIFields, joinAll(values)...)
	case "category":
		for _, v := range joinAll(values) {
			c, err := ParseCategory(v)
			if err != nil {
				return fmt.Errorf("query term %q: %w", t, err)
			}
			sets.Categories = append(sets.Categories, c)
		}
	case "target":
		for _, v := range values {
			if len(v) != 2 {
				return fmt.Errorf("%w: query term %q: a target is TYPE/ID", ErrInvalid, t)
			}
			sets.Targets = append(sets.Targets, Target{Type: v[0], ID: v[1]})
		}
	default:
		return fmt.Errorf("%w: query term %q: unknown field %q (fields: %s; quote text that holds a colon)", ErrInvalid, t, name, queryFields)
	}
	if negate {
		f.Exclude = sets
	} else {
		f.ActorIDs, f.SubjectIDs, f.Targets, f.Categories = sets.ActorIDs, sets.SubjectIDs, sets.Targets, sets.Categories
		f.Actions, f.PurposeCodes, f.PIIFields = sets.Actions, sets.PurposeCodes, sets.PIIFields
	}
	return nil
}

func (f *Filter) addSpecial(t, name string, values [][]string) error {
	if name == "text" {
		for _, v := range joinAll(values) {
			f.Text = append(f.Text, v)
		}
		return nil
	}
	if len(values) != 1 {
		return fmt.Errorf("%w: query term %q: one time, not several", ErrInvalid, t)
	}
	at, err := parseQueryTime(strings.Join(values[0], "/"))
	if err != nil {
		return fmt.Errorf("query term %q: %w", t, err)
	}
	dst := &f.From
	if name == "to" || name == "before" {
		dst = &f.To
	}
	if !dst.IsZero() {
		return fmt.Errorf("%w: query term %q: %s given twice", ErrInvalid, t, name)
	}
	*dst = at
	return nil
}

// addText adds a text clause: a bare word, a prefix*, or a quoted phrase.
func (f *Filter) addText(t, body string) error {
	v, err := unquoteAll(body)
	if err != nil {
		return fmt.Errorf("query term %q: %w", t, err)
	}
	f.Text = append(f.Text, v)
	return nil
}

// cutField splits "name:rest" when name is a bare word of letters and
// underscores.
func cutField(s string) (name, rest string, ok bool) {
	i := strings.IndexByte(s, ':')
	if i <= 0 {
		return "", "", false
	}
	for _, r := range s[:i] {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '_') {
			return "", "", false
		}
	}
	return strings.ToLower(s[:i]), s[i+1:], true
}

// splitValues cuts a field's values at unquoted commas, and each value at
// its first unquoted slash (targets use it; other fields join it back).
func splitValues(s string) ([][]string, error) {
	var out [][]string
	var parts []string
	var cur strings.Builder
	inQuote, escaped := false, false
	flushPart := func() error {
		v, err := unquoteAll(cur.String())
		cur.Reset()
		parts = append(parts, v)
		return err
	}
	for _, r := range s {
		switch {
		case inQuote && escaped:
			escaped = false
		case inQuote && r == '\\':
			escaped = true
		case r == '"':
			inQuote = !inQuote
		case !inQuote && r == ',':
			if err := flushPart(); err != nil {
				return nil, err
			}
			out = append(out, parts)
			parts = nil
			continue
		case !inQuote && r == '/' && len(parts) == 0:
			if err := flushPart(); err != nil {
				return nil, err
			}
			continue
		}
		cur.WriteRune(r)
	}
	if err := flushPart(); err != nil {
		return nil, err
	}
	out = append(out, parts)
	for _, v := range out {
		if slices.Contains(v, "") {
			return nil, fmt.Errorf("%w: an empty value", ErrInvalid)
		}
	}
	return out, nil
}

// unquoteAll reads a value made of bare and quoted pieces.
func unquoteAll(s string) (string, error) {
	var b strings.Builder
	for s != "" {
		i := strings.IndexByte(s, '"')
		if i < 0 {
			b.WriteString(s)
			break
		}
		b.WriteString(s[:i])
		j := i + 1
		for j < len(s) && s[j] != '"' {
			if s[j] == '\\' {
				j++
			}
			j++
		}
		if j >= len(s) {
			return "", fmt.Errorf("%w: a quote is not closed", ErrInvalid)
		}
		v, err := strconv.Unquote(s[i : j+1])
		if err != nil {
			return "", fmt.Errorf("%w: bad quoted string %s", ErrInvalid, s[i:j+1])
		}
		b.WriteString(v)
		s = s[j+1:]
	}
	return b.String(), nil
}

func joinAll(values [][]string) []string {
	out := make([]string, len(values))
	for i, v := range values {
		out[i] = strings.Join(v, "/")
	}
	return out
}

func parseQueryTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%w: time %q: want RFC 3339 or YYYY-MM-DD", ErrInvalid, s)
}
