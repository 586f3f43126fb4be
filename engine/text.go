package engine

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/sstable"

	"github.com/trailaudit/trail/engine/eventwire"
	"github.com/trailaudit/trail/filter"
)

// Full-text index. Every event's words (filter.NextWord: the action, the
// actor's display name, the target, and the values of the tenant's text
// attributes, case-folded) are IndexText terms of the chunk's posting
// lists, like any other field. Prefix queries need the words in order,
// which posting keys are not (they sort by hash), so a checkpoint also
// writes each chunk's words of each tenant in order under 'y' (keys.go):
// a prefix becomes the words of a chunk that start with it, then their
// lists.

// textAttributesKey is the setting holding a tenant's text attributes.
func textAttributesKey(tenant string) string { return "search/" + tenant + "/text_attributes" }

// MaxTextAttributes bounds the attributes indexed per tenant.
const MaxTextAttributes = 32

// TextAttributesSetting returns the setting op that makes keys the
// tenant's text attributes (nil: back to filter.DefaultTextAttributes).
// It applies to events appended after it commits.
func TextAttributesSetting(tenant string, keys []string) (SettingOp, error) {
	if err := ValidateTenantID(tenant); err != nil {
		return SettingOp{}, fmt.Errorf("%w: %v", ErrBadSetting, err)
	}
	if keys == nil {
		return SettingOp{Key: textAttributesKey(tenant), Delete: true}, nil
	}
	if len(keys) > MaxTextAttributes {
		return SettingOp{}, fmt.Errorf("%w: %d text attributes, at most %d", ErrBadSetting, len(keys), MaxTextAttributes)
	}
	for _, k := range keys {
		if k == "" || len(k) > MaxIndexedLen || strings.ContainsAny(k, "\n\x00") {
			return SettingOp{}, fmt.Errorf("%w: text attribute %q: empty, longer than %d bytes, or holding a newline or NUL", ErrBadSetting, k, MaxIndexedLen)
		}
	}
	sorted := slices.Clone(keys)
	slices.Sort(sorted)
	sorted = slices.Compact(sorted)
	// An explicitly empty list is a choice (index no attribute), kept
	// apart from "not set" by a lone newline.
	return SettingOp{Key: textAttributesKey(tenant), Value: []byte(strings.Join(sorted, "\n") + "\n")}, nil
}

// textAttrCache holds the tenants' text attributes as of one settings
// version.
type textAttrCache struct {
	mu      sync.Mutex
	version uint64
	byTen   map[string][]string
}

// TextAttributes returns the attribute keys the tenant's events are
// indexed by, sorted: its setting, or filter.DefaultTextAttributes.
func (e *Engine) TextAttributes(tenant string) []string {
	c := &e.textAttrs
	version := e.SettingsVersion()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byTen == nil || c.version != version {
		c.byTen, c.version = map[string][]string{}, version
	}
	if keys, ok := c.byTen[tenant]; ok {
		return keys
	}
	keys := filter.DefaultTextAttributes
	if v, err := e.Setting(textAttributesKey(tenant)); err == nil {
		keys = []string{}
		for _, k := range strings.Split(strings.TrimSuffix(string(v), "\n"), "\n") {
			if k != "" {
				keys = append(keys, k)
			}
		}
	}
	c.byTen[tenant] = keys
	return keys
}

// TextAttributesChosen reports whether the tenant chose its text
// attributes (else they are the defaults).
func (e *Engine) TextAttributesChosen(tenant string) bool {
	_, err := e.Setting(textAttributesKey(tenant))
	return err == nil
}

// addText indexes ev's words under IndexText, each once per event.
func (a *applier) addText(c *chunk, ev *eventwire.Event, op *openPartition, leaf uint64) {
	t, m := op.p.Tenant, op.p.Month
	if a.textTenant != t || a.textVersion != a.e.SettingsVersion() {
		a.textTenant, a.textVersion, a.textKeys = t, a.e.SettingsVersion(), a.e.TextAttributes(t)
	}
	a.sources = append(a.sources[:0], ev.Action, ev.DisplayName, ev.TargetType)
	for _, k := range a.textKeys {
		v, _ := ev.Attr(k)
		a.sources = append(a.sources, v)
	}
	n := 0
	for _, s := range a.sources {
		for i := 0; n < filter.MaxEventWords; n++ {
			var w []byte
			if w, i, a.word = filter.NextWord(s, i, a.word); w == nil {
				break
			}
			// chunkPostings.add drops a repeat of the same leaf.
			a.addTerm(c, t, IndexText, w, m, leaf)
		}
	}
}

// textTerms lists the words pruning must take ev's leaf out of: those of
// every attribute, not only today's text attributes, since the event
// was indexed with the attributes of its day (a list without the leaf is
// left as it is).
func textTerms(ev *eventwire.Event, terms []indexTerm) []indexTerm {
	sources := append([][]byte{ev.Action, ev.DisplayName, ev.TargetType}, ev.AttrValues...)
	filter.EachWord(sources, nil, func(_ int, w []byte) {
		t := indexTerm{IndexText, string(w)}
		if !slices.Contains(terms, t) {
			terms = append(terms, t)
		}
	})
	return terms
}

// writeWords writes the chunk's words per tenant in order ('y' keys).
func (c *chunk) writeWords(w *sstable.Writer) error {
	for _, k := range c.postings.wordKeys(c.seq) {
		if err := w.Set(k, nil); err != nil {
			return err
		}
	}
	return nil
}

// wordKeys returns the 'y' keys of the chunk's text terms, sorted and
// without repeats (a word has a list per month).
func (cp *chunkPostings) wordKeys(seq uint64) [][]byte {
	var keys [][]byte
	for _, dt := range cp.terms {
		prefix := cp.prefixKeys[dt.pid]
		if IndexKind(prefix[len(prefix)-1]) != IndexText {
			continue
		}
		tenant := prefix[:len(prefix)-2]
		word := cp.arena[dt.start+uint32(len(prefix))+8 : dt.end-1-postingMonthSize]
		keys = append(keys, wordKey(seq, tenant, word))
	}
	slices.SortFunc(keys, bytes.Compare)
	return slices.CompactFunc(keys, bytes.Equal)
}

// wordKey is 'y' chunk tenant 0 word.
func wordKey[T string | []byte](seq uint64, tenant string, word T) []byte {
	b := binary.BigEndian.AppendUint64([]byte{prefixWords}, seq)
	b = append(b, tenant...)
	b = append(b, 0)
	return append(b, word...)
}

// MaxPrefixWords bounds the words one prefix may stand for in a chunk.
const MaxPrefixWords = 2000

// ErrTooCostly is wrapped by queries refused for what they would cost;
// it wraps ErrBadQuery, since the caller must change the query.
var ErrTooCostly = fmt.Errorf("%w: too costly", ErrBadQuery)

// prefixWords returns the chunk's words of tenant that start with prefix.
func (e *Engine) prefixWords(ctx context.Context, c searchable, tenant, prefix string) ([]string, error) {
	if c.mem != nil {
		words, retired := c.mem.prefixWords(tenant, prefix)
		if !retired {
			return words, checkPrefixWords(prefix, words)
		}
	}
	lo := wordKey(c.seq, tenant, prefix)
	it, err := e.db.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: lo, UpperBound: prefixEnd(lo)})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	n := len(wordKey(c.seq, tenant, ""))
	var words []string
	for valid := it.First(); valid && len(words) <= MaxPrefixWords; valid = it.Next() {
		words = append(words, string(it.Key()[n:]))
	}
	if err := it.Error(); err != nil {
		return nil, err
	}
	return words, checkPrefixWords(prefix, words)
}

func checkPrefixWords(prefix string, words []string) error {
	if len(words) > MaxPrefixWords {
		return fmt.Errorf("%w: the prefix %q* stands for more than %d words: make it longer", ErrTooCostly, prefix, MaxPrefixWords)
	}
	return nil
}

// prefixWords returns the words of tenant in the chunk in memory that
// start with prefix (at most MaxPrefixWords+1), or retired.
func (c *chunk) prefixWords(tenant, prefix string) (words []string, retired bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.retired {
		return nil, true
	}
	cp := &c.postings
	want := tenant + "\x00" + string(rune(IndexText))
	pid, ok := cp.prefixes[want]
	if !ok {
		return nil, false
	}
	seen := map[string]bool{}
	for _, dt := range cp.terms {
		if dt.pid != pid {
			continue
		}
		word := cp.arena[dt.start+uint32(len(want))+8 : dt.end-1-postingMonthSize]
		if bytes.HasPrefix(word, []byte(prefix)) && !seen[string(word)] {
			seen[string(word)] = true
			words = append(words, string(word))
			if len(words) > MaxPrefixWords {
				break
			}
		}
	}
	slices.Sort(words)
	return words, false
}

// IndexBytes estimates the disk the secondary indexes take: the posting
// lists and the words of every checkpointed chunk.
func (e *Engine) IndexBytes() (uint64, error) {
	if err := e.checkOpen(); err != nil {
		return 0, err
	}
	n, err := e.db.EstimateDiskUsage([]byte{prefixWords}, []byte{prefixPostings + 1})
	if err != nil {
		return 0, fmt.Errorf("engine: index size: %w", err)
	}
	return n, nil
}
