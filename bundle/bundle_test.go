package bundle

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/trailaudit/trail/filter"
	"github.com/trailaudit/trail/merkle"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

func TestRoundTrip(t *testing.T) {
	key := newTestKey(t, testLog)
	tests := []struct {
		name  string
		log   func() *fakeLog
		opts  exportOpts
		check func(t *testing.T, r *Report)
	}{
		{
			name: "two months, linked",
			log:  func() *fakeLog { return newFakeLog(t, key, 5, 4) },
			check: func(t *testing.T, r *Report) {
				want := Report{Entries: 9, ChainRuns: 1, ChainLinks: 8, PartitionLinks: 1, RunProofs: 2}
				checkCounts(t, r, want, 2)
			},
		},
		{
			name: "runs capped at two leaves",
			log:  func() *fakeLog { return newFakeLog(t, key, 5, 4) },
			opts: exportOpts{maxRun: 2},
			check: func(t *testing.T, r *Report) {
				want := Report{Entries: 9, ChainRuns: 1, ChainLinks: 8, PartitionLinks: 1, RunProofs: 5}
				checkCounts(t, r, want, 2)
			},
		},
		{
			name: "run ending before the checkpoint's size: consistency proof",
			log:  func() *fakeLog { return newFakeLog(t, key, 7) },
			opts: exportOpts{skip: func(_ string, leaf uint64) bool { return leaf == 6 }},
			check: func(t *testing.T, r *Report) {
				checkCounts(t, r, Report{Entries: 6, ChainRuns: 1, ChainLinks: 5, RunProofs: 1}, 1)
			},
		},
		{
			name: "checkpoint of the first month taken before it closed: consistency proof",
			log:  func() *fakeLog { return newFakeLog(t, key, 5, 4) },
			opts: exportOpts{cpSize: map[string]uint64{"2026-10": 3}},
			check: func(t *testing.T, r *Report) {
				want := Report{Entries: 7, ChainRuns: 2, ChainLinks: 5, PartitionLinks: 1, ConsistencyProofs: 1, RunProofs: 2}
				checkCounts(t, r, want, 2)
			},
		},
		{
			name: "pruned entry",
			log: func() *fakeLog {
				l := newFakeLog(t, key, 5, 4)
				l.prune(0, 2)
				return l
			},
			check: func(t *testing.T, r *Report) {
				want := Report{Entries: 9, Pruned: 1, ChainRuns: 1, ChainLinks: 7, PartitionLinks: 1, RunProofs: 2}
				checkCounts(t, r, want, 2)
				if !strings.Contains(strings.Join(r.Notes, "\n"), "1 entries are pruned") {
					t.Errorf("notes do not mention the pruned entry: %q", r.Notes)
				}
			},
		},
		{
			name: "pruned leaf 0 of the second month",
			log: func() *fakeLog {
				l := newFakeLog(t, key, 3, 3)
				l.prune(1, 0)
				return l
			},
			check: func(t *testing.T, r *Report) {
				// Leaf 0 of 2026-11 starts a run (its link is gone); leaf 1
				// must still record the pruned leaf's hash.
				want := Report{Entries: 6, Pruned: 1, ChainRuns: 2, ChainLinks: 4, RunProofs: 2}
				checkCounts(t, r, want, 2)
			},
		},
		{
			name: "gaps, as a filtered export has",
			log:  func() *fakeLog { return newFakeLog(t, key, 6) },
			opts: exportOpts{
				filters: filter.Filter{Actions: []string{"record.view"}},
				skip:    func(_ string, leaf uint64) bool { return leaf == 2 || leaf == 3 },
			},
			check: func(t *testing.T, r *Report) {
				checkCounts(t, r, Report{Entries: 4, ChainRuns: 2, ChainLinks: 2, RunProofs: 2}, 1)
			},
		},
		{
			name: "no entries",
			log:  func() *fakeLog { return newFakeLog(t, key) },
			check: func(t *testing.T, r *Report) {
				checkCounts(t, r, Report{}, 0)
			},
		},
		{
			name: "header carries the verifier key",
			log:  func() *fakeLog { return newFakeLog(t, key, 2) },
			opts: exportOpts{vkey: key.vkey},
			check: func(t *testing.T, r *Report) {
				checkCounts(t, r, Report{Entries: 2, ChainRuns: 1, ChainLinks: 1, RunProofs: 1}, 1)
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.log().export(tc.opts)
			r, err := verify(t, key.vkey, b)
			if err != nil {
				t.Fatalf("verify: %v\n%s", err, b)
			}
			tc.check(t, r)
			if r.Lines != uint64(len(lines(b))) {
				t.Errorf("report counts %d lines, bundle has %d", r.Lines, len(lines(b)))
			}
			if s := strings.Join(r.Summary(), "\n"); !strings.Contains(s, "OK manifest") {
				t.Errorf("summary:\n%s", s)
			}
		})
	}
}

func checkCounts(t *testing.T, got *Report, want Report, parts int) {
	t.Helper()
	if got.Entries != want.Entries || got.Pruned != want.Pruned || got.ChainRuns != want.ChainRuns ||
		got.ChainLinks != want.ChainLinks || got.PartitionLinks != want.PartitionLinks ||
		got.ConsistencyProofs != want.ConsistencyProofs || got.RunProofs != want.RunProofs || len(got.Partitions) != parts {
		t.Fatalf("report: entries %d pruned %d runs %d links %d partition links %d consistency %d run proofs %d partitions %d\nwant: %d %d %d %d %d %d %d %d",
			got.Entries, got.Pruned, got.ChainRuns, got.ChainLinks, got.PartitionLinks, got.ConsistencyProofs, got.RunProofs, len(got.Partitions),
			want.Entries, want.Pruned, want.ChainRuns, want.ChainLinks, want.PartitionLinks, want.ConsistencyProofs, want.RunProofs, parts)
	}
}

// tamper helpers: edit a bundle the way an attacker (or a broken disk)
// would, and expect the verifier to name the failure.

// nth returns the index of the n-th line (from 0) of type typ.
func nth(ls [][]byte, typ string, n int) int {
	for i, l := range ls {
		if t, _ := lineType(l); t == typ {
			if n == 0 {
				return i
			}
			n--
		}
	}
	panic("no such line")
}

// rewrite decodes line i into a value of type T, edits it and re-encodes it.
func rewrite[T any](t *testing.T, ls [][]byte, i int, edit func(*T)) {
	t.Helper()
	var v T
	if err := json.Unmarshal(ls[i], &v); err != nil {
		t.Fatal(err)
	}
	edit(&v)
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	ls[i] = append(b, '\n')
}

func TestTampering(t *testing.T) {
	key := newTestKey(t, testLog)
	other := newTestKey(t, testLog) // same name, different key
	good := newFakeLog(t, key, 5, 4).export(exportOpts{})
	bigger := lines(newFakeLog(t, key, 6, 4).export(exportOpts{}))
	otherKey := lines(newFakeLog(t, other, 5, 4).export(exportOpts{}))

	tests := []struct {
		name   string
		vkey   string
		edit   func(t *testing.T, ls [][]byte) [][]byte
		raw    func(b []byte) []byte
		want   error
		inText string
	}{
		{name: "entry bytes changed", want: ErrEntry, inText: "hash to", edit: func(t *testing.T, ls [][]byte) [][]byte {
			rewrite(t, ls, nth(ls, TypeEntry, 2), func(e *Entry) { e.Entry[len(e.Entry)-1] ^= 1 })
			return ls
		}},
		{name: "one character of the file changed", want: ErrEntry, raw: func(b []byte) []byte {
			i := bytes.Index(b, []byte(`"entry":"`)) + len(`"entry":"`) + 40
			b[i] = map[bool]byte{true: 'B', false: 'A'}[b[i] == 'A']
			return b
		}},
		{name: "entry line dropped", want: ErrMalformed, inText: "entries missing", edit: func(_ *testing.T, ls [][]byte) [][]byte {
			i := nth(ls, TypeEntry, 3)
			return append(ls[:i], ls[i+1:]...)
		}},
		{name: "entry lines reordered", want: ErrMalformed, inText: "out of order", edit: func(_ *testing.T, ls [][]byte) [][]byte {
			i := nth(ls, TypeEntry, 1)
			ls[i], ls[i+1] = ls[i+1], ls[i]
			return ls
		}},
		// The run proof would fail too; the entry's own record of its leaf
		// index is checked first.
		{name: "entry moved to another leaf index", want: ErrEntry, inText: "records leaf 4", edit: func(t *testing.T, ls [][]byte) [][]byte {
			rewrite(t, ls, nth(ls, TypeEntry, 4), func(e *Entry) { e.LeafIndex = 3 })
			i := nth(ls, TypeEntry, 3)
			return append(ls[:i], ls[i+1:]...)
		}},
		{name: "checkpoint swapped for one of another size", want: ErrProof, inText: "not in the signed tree", edit: func(_ *testing.T, ls [][]byte) [][]byte {
			ls[nth(ls, TypeCheckpoint, 0)] = bigger[nth(bigger, TypeCheckpoint, 0)]
			return ls
		}},
		{name: "checkpoint swapped for another partition's", want: ErrSignature, inText: "origin", edit: func(t *testing.T, ls [][]byte) [][]byte {
			nov := ls[nth(ls, TypeCheckpoint, 1)]
			rewrite(t, ls, nth(ls, TypeCheckpoint, 0), func(c *Checkpoint) {
				var n Checkpoint
				if err := json.Unmarshal(nov, &n); err != nil {
					t.Fatal(err)
				}
				c.Note, c.Size, c.Root = n.Note, n.Size, n.Root
			})
			return ls
		}},
		{name: "checkpoint signed by another key", want: ErrSignature, edit: func(_ *testing.T, ls [][]byte) [][]byte {
			ls[nth(ls, TypeCheckpoint, 0)] = otherKey[nth(otherKey, TypeCheckpoint, 0)]
			return ls
		}},
		{name: "checkpoint size field edited", want: ErrSignature, edit: func(t *testing.T, ls [][]byte) [][]byte {
			rewrite(t, ls, nth(ls, TypeCheckpoint, 0), func(c *Checkpoint) { c.Size = 6 })
			return ls
		}},
		{name: "truncated mid-line", want: ErrTruncated, raw: func(b []byte) []byte { return b[:len(b)/2] }},
		{name: "manifest cut off", want: ErrTruncated, inText: "without its manifest", edit: func(_ *testing.T, ls [][]byte) [][]byte {
			return ls[:len(ls)-1]
		}},
		{name: "wrong trusted key", vkey: other.vkey, want: ErrUntrustedKey},
		{name: "header claims another verifier key", want: ErrUntrustedKey, edit: func(t *testing.T, ls [][]byte) [][]byte {
			rewrite(t, ls, 0, func(h *Header) { h.VKey = other.vkey })
			return ls
		}},
		{name: "header filters edited", want: ErrManifest, edit: func(t *testing.T, ls [][]byte) [][]byte {
			// A filter every entry still matches: only the digest tells.
			rewrite(t, ls, 0, func(h *Header) { h.Filter.From = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) })
			return ls
		}},
		{name: "manifest digest recomputed after editing the header", want: ErrSignature, edit: func(t *testing.T, ls [][]byte) [][]byte {
			rewrite(t, ls, 0, func(h *Header) { h.Created = h.Created.Add(time.Hour) })
			return redigest(t, ls, func(*Manifest) {})
		}},
		{name: "manifest counts edited", want: ErrManifest, edit: func(t *testing.T, ls [][]byte) [][]byte {
			rewrite(t, ls, len(ls)-1, func(m *Manifest) { m.Entries++ })
			return ls
		}},
		{name: "data after the manifest", want: ErrMalformed, edit: func(_ *testing.T, ls [][]byte) [][]byte {
			return append(ls, ls[1])
		}},
		{name: "unknown field", want: ErrMalformed, inText: "unknown field", raw: func(b []byte) []byte {
			return bytes.Replace(b, []byte(`{"type":"entry",`), []byte(`{"type":"entry","note":"x",`), 1)
		}},
		{name: "consistency record without a link", want: ErrMalformed, edit: func(_ *testing.T, ls [][]byte) [][]byte {
			c := []byte(`{"type":"consistency","partition":"2026-10","linked_from":"2026-11","from_size":1,"to_size":2,"proof":[]}` + "\n")
			return append(ls[:3], append([][]byte{c}, ls[3:]...)...)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := bytes.Clone(good)
			if tc.edit != nil {
				b = bytes.Join(tc.edit(t, lines(b)), nil)
			}
			if tc.raw != nil {
				b = tc.raw(b)
			}
			vkey := key.vkey
			if tc.vkey != "" {
				vkey = tc.vkey
			}
			expectFailure(t, vkey, b, tc.want, tc.inText)
		})
	}
}

// redigest rewrites the manifest for the edited lines, without the key.
func redigest(t *testing.T, ls [][]byte, edit func(*Manifest)) [][]byte {
	t.Helper()
	sum := digestOf(t, ls[:len(ls)-1])
	rewrite(t, ls, len(ls)-1, func(m *Manifest) {
		m.SHA256 = hex.EncodeToString(sum)
		m.Lines = uint64(len(ls) - 1)
		edit(m)
	})
	return ls
}

func expectFailure(t *testing.T, vkey string, b []byte, want error, inText string) {
	t.Helper()
	r, err := verify(t, vkey, b)
	if err == nil {
		t.Fatalf("tampered bundle verified: %v", r.Summary())
	}
	var be *Error
	if !errors.As(err, &be) {
		t.Fatalf("error %v is not a *bundle.Error", err)
	}
	if !errors.Is(err, want) {
		t.Fatalf("error %q, want kind %q", err, want)
	}
	if !strings.Contains(err.Error(), inText) {
		t.Fatalf("error %q does not say %q", err, inText)
	}
	if want != ErrUntrustedKey && be.Line == 0 && want != ErrTruncated {
		t.Fatalf("error %q names no line", err)
	}
	t.Logf("rejected: %v", err)
}

// A log that misbehaves yet proves what it stored: the bundle's proofs
// hold, and the content checks catch it.
func TestMisbehavingLog(t *testing.T) {
	key := newTestKey(t, testLog)
	tests := []struct {
		name   string
		mutate func(*trailv1.Entry)
		opts   exportOpts
		want   error
		inText string
	}{
		{"broken chain", func(en *trailv1.Entry) {
			if en.GetLeafIndex() == 3 {
				en.PrevLeafHash[0] ^= 1
			}
		}, exportOpts{}, ErrChain, "does not record the leaf hash"},
		{"partition link records a smaller final size", func(en *trailv1.Entry) {
			if l := en.GetPrevPartition(); l != nil {
				l.Size--
			}
		}, exportOpts{}, ErrChain, "grew after it was closed"},
		{"partition link records another root", func(en *trailv1.Entry) {
			if l := en.GetPrevPartition(); l != nil {
				l.Root[0] ^= 1
			}
		}, exportOpts{}, ErrChain, "records root"},
		{"partition link that needs a proof, with another root", func(en *trailv1.Entry) {
			if l := en.GetPrevPartition(); l != nil {
				l.Root[0] ^= 1
			}
		}, exportOpts{cpSize: map[string]uint64{"2026-10": 2}}, ErrProof, "not a prefix"},
		{"entry filed under another leaf index", func(en *trailv1.Entry) {
			if en.GetLeafIndex() == 2 {
				en.LeafIndex = 7
			}
		}, exportOpts{}, ErrEntry, "records leaf 7"},
		{"entry of another tenant", func(en *trailv1.Entry) {
			if en.GetLeafIndex() == 1 {
				en.Event.TenantId = "globex"
			}
		}, exportOpts{}, ErrEntry, "tenant"},
		{"sequencer time in another month", func(en *trailv1.Entry) {
			if en.GetLeafIndex() == 1 {
				en.SequencerTime.Seconds -= 40 * 86400
			}
		}, exportOpts{}, ErrEntry, "not in partition"},
		{"entry outside the declared time range", nil,
			exportOpts{filters: filter.Filter{From: time.Date(2026, 10, 1, 9, 0, 2, 0, time.UTC)}}, ErrFilter, "outside [2026-10-01T09:00:02Z"},
		{"entry outside the declared actor", nil,
			exportOpts{filters: filter.Filter{ActorIDs: []string{"user-0"}}}, ErrFilter, `actor "user-1" is not "user-0"`},
		{"entry outside the declared actors", nil,
			exportOpts{filters: filter.Filter{ActorIDs: []string{"user-0", "user-2"}}}, ErrFilter, "is not one of user-0,user-2"},
		{"entry outside the declared categories", nil,
			exportOpts{filters: filter.Filter{Categories: []trailv1.Category{trailv1.Category_CATEGORY_SECURITY, trailv1.Category_CATEGORY_SYSTEM}}}, ErrFilter, "category data_access is not system,security"},
		{"entry outside the declared purpose", nil,
			exportOpts{filters: filter.Filter{PurposeCodes: []string{"case-handling"}}}, ErrFilter, `purpose code "" is not "case-handling"`},
		{"entry outside the declared PII fields", nil,
			exportOpts{filters: filter.Filter{PIIFields: []string{"field-0"}}}, ErrFilter, `include none of "field-0"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := newBadLog(t, key, tc.mutate, 5, 4).export(tc.opts)
			expectFailure(t, key.vkey, b, tc.want, tc.inText)
		})
	}
}

// A consistency record that is needed but missing, or whose proof is
// wrong, is a failure.
func TestConsistencyRecord(t *testing.T) {
	key := newTestKey(t, testLog)
	b := newFakeLog(t, key, 5, 4).export(exportOpts{cpSize: map[string]uint64{"2026-10": 3}})
	ls := lines(b)
	i := nth(ls, TypeConsistency, 0)

	dropped := append(append([][]byte{}, ls[:i]...), ls[i+1:]...)
	expectFailure(t, key.vkey, bytes.Join(dropped, nil), ErrChain, "no consistency proof follows")

	bad := append([][]byte{}, ls...)
	rewrite(t, bad, i, func(c *Consistency) { c.Proof[0][0] ^= 1 })
	expectFailure(t, key.vkey, bytes.Join(bad, nil), ErrProof, "not a prefix")
}

// The writer refuses bundles the verifier would reject for their shape.
func TestWriterOrder(t *testing.T) {
	key := newTestKey(t, testLog)
	var buf bytes.Buffer
	w, err := NewWriter(&buf, Header{LogName: testLog, Tenant: testTenant, KeyName: testLog, KeyHash: "00000000"})
	if err != nil {
		t.Fatal(err)
	}
	h := make([]byte, merkle.HashSize)
	steps := []struct {
		name string
		do   func() error
		ok   bool
	}{
		{"entry before any checkpoint", func() error { return w.Entry(Entry{Partition: "2026-10", LeafHash: h, Entry: []byte{1}}) }, false},
		{"checkpoint", func() error { return w.Checkpoint(Checkpoint{Partition: "2026-11", Size: 3}) }, true},
		{"earlier partition", func() error { return w.Checkpoint(Checkpoint{Partition: "2026-10", Size: 3}) }, false},
		{"bad partition name", func() error { return w.Checkpoint(Checkpoint{Partition: "2026-13", Size: 3}) }, false},
		{"leaf beyond the checkpoint", func() error {
			return w.Entry(Entry{Partition: "2026-11", LeafIndex: 3, LeafHash: h, Entry: []byte{1}})
		}, false},
		{"entry outside a run", func() error {
			return w.Entry(Entry{Partition: "2026-11", LeafIndex: 1, LeafHash: h, Entry: []byte{1}})
		}, false},
		{"run with a short prefix", func() error { return w.Run(Run{Partition: "2026-11", Begin: 1}) }, false},
		{"run beyond the checkpoint", func() error { return w.Run(Run{Partition: "2026-11", Begin: 3, Prefix: [][]byte{h, h}}) }, false},
		{"run", func() error { return w.Run(Run{Partition: "2026-11", Begin: 1, Prefix: [][]byte{h}}) }, true},
		{"second run while one is open", func() error { return w.Run(Run{Partition: "2026-11", Begin: 2, Prefix: [][]byte{h}}) }, false},
		{"empty run end", func() error { return w.EndRun(RunEnd{Partition: "2026-11", Begin: 1, End: 1}) }, false},
		{"leaf other than the run's next", func() error {
			return w.Entry(Entry{Partition: "2026-11", LeafIndex: 2, LeafHash: h, Entry: []byte{1}})
		}, false},
		{"entry", func() error { return w.Entry(Entry{Partition: "2026-11", LeafIndex: 1, LeafHash: h, Entry: []byte{1}}) }, true},
		{"repeated leaf", func() error { return w.Entry(Entry{Partition: "2026-11", LeafIndex: 1, LeafHash: h, Entry: []byte{1}}) }, false},
		{"pruned with bytes", func() error {
			return w.Entry(Entry{Partition: "2026-11", LeafIndex: 2, LeafHash: h, Entry: []byte{1}, Pruned: true})
		}, false},
		{"consistency not after leaf 0", func() error {
			return w.Consistency(Consistency{Partition: "2026-10", LinkedFrom: "2026-11"})
		}, false},
		{"close with a run open", func() error { _, err := w.Close(key.signer); return err }, false},
		{"run end claiming more leaves", func() error { return w.EndRun(RunEnd{Partition: "2026-11", Begin: 1, End: 3}) }, false},
		{"run end", func() error {
			return w.EndRun(RunEnd{Partition: "2026-11", Begin: 1, End: 2, Consistency: [][]byte{h}})
		}, true},
		{"overlapping run", func() error { return w.Run(Run{Partition: "2026-11", Begin: 1, Prefix: [][]byte{h}}) }, false},
	}
	for _, s := range steps {
		if err := s.do(); (err == nil) != s.ok {
			t.Errorf("%s: err %v, want ok=%v", s.name, err, s.ok)
		}
	}
	m, err := w.Close(key.signer)
	if err != nil || m.Entries != 1 {
		t.Fatalf("close: %+v, %v", m, err)
	}
	if err := w.Entry(Entry{Partition: "2026-11", LeafIndex: 2, LeafHash: h, Entry: []byte{1}}); err == nil {
		t.Error("entry after close accepted")
	}
}

// Lines longer than the verifier's bound are refused without reading them
// whole.
func TestMaxLine(t *testing.T) {
	key := newTestKey(t, testLog)
	b := newFakeLog(t, key, 3).export(exportOpts{})
	v, err := NewVerifier(key.vkey)
	if err != nil {
		t.Fatal(err)
	}
	v.MaxLine = 200
	_, err = v.Verify(t.Context(), bytes.NewReader(b))
	if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "longer than 200 bytes") {
		t.Fatalf("got %v", err)
	}
}

// TestFilteredExports: an export made with sets of values verifies when
// every entry matches one value of each field.
func TestFilteredExports(t *testing.T) {
	key := newTestKey(t, testLog)
	for _, tc := range []struct {
		name string
		f    filter.Filter
		keep func(i uint64) bool // which leaves of a partition match f
	}{
		{"two actors", filter.Filter{ActorIDs: []string{"user-0", "user-2"}}, func(i uint64) bool { return i%3 != 1 }},
		{"categories", filter.Filter{Categories: []trailv1.Category{trailv1.Category_CATEGORY_SECURITY, trailv1.Category_CATEGORY_DATA_ACCESS}}, func(uint64) bool { return true }},
		{"purpose and PII field", filter.Filter{PurposeCodes: []string{"case-handling"}, PIIFields: []string{"field-2", "nothing"}}, func(i uint64) bool { return i%4 == 2 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newFakeLog(t, key, 8, 6).export(exportOpts{filters: tc.f, skip: func(_ string, leaf uint64) bool { return !tc.keep(leaf) }})
			r, err := verify(t, key.vkey, b)
			if err != nil {
				t.Fatal(err)
			}
			want := tc.f.Clone()
			want.Normalize()
			if !reflect.DeepEqual(r.Filter, want) || !strings.Contains(strings.Join(r.Notes, "\n"), "the export is filtered ("+want.String()+")") {
				t.Fatalf("report filter %#v, want %#v, notes %q", r.Filter, want, r.Notes)
			}
		})
	}
}

// TestFormat2Header: a trail-bundle/2 header, with its one value per
// field, is still read; its filters become the report's Filter.
func TestFormat2Header(t *testing.T) {
	key := newTestKey(t, testLog)
	v3 := filter.Filter{ActorIDs: []string{"user-0"}, Categories: []trailv1.Category{trailv1.Category_CATEGORY_DATA_ACCESS}}
	export := func(header func(map[string]any)) []byte {
		b := newFakeLog(t, key, 6).export(exportOpts{filters: v3, skip: func(_ string, leaf uint64) bool { return leaf%3 != 0 }})
		ls := lines(b)
		var h map[string]any
		if err := json.Unmarshal(ls[0], &h); err != nil {
			t.Fatal(err)
		}
		header(h)
		delete(h, "type")
		hb, err := json.Marshal(h)
		if err != nil {
			t.Fatal(err)
		}
		ls[0] = append(append([]byte(`{"type":"header",`), hb[1:]...), '\n') // "type" leads every line
		ls = redigest(t, ls, func(*Manifest) {})
		resign(t, key, ls)
		return bytes.Join(ls, nil)
	}
	v2 := func(h map[string]any) {
		delete(h, "filter")
		h["format"] = "trail-bundle/2"
		h["filters"] = map[string]any{"actor_id": "user-0", "category": "CATEGORY_DATA_ACCESS"}
	}
	r, err := verify(t, key.vkey, export(v2))
	if err != nil {
		t.Fatalf("format 2 bundle: %v", err)
	}
	if !reflect.DeepEqual(r.Filter, v3) {
		t.Fatalf("format 2 filters read as %+v, want %+v", r.Filter, v3)
	}
	for _, tc := range []struct {
		name   string
		header func(map[string]any)
		inText string
	}{
		{"format 3 with format 2 filters", func(h map[string]any) { h["filters"] = map[string]any{"actor_id": "user-0"} }, "another format's filters"},
		{"format 2 without its filters", func(h map[string]any) { h["format"] = "trail-bundle/2"; delete(h, "filter") }, "another format's filters"},
		{"format 2 with an unknown category", func(h map[string]any) {
			v2(h)
			h["filters"] = map[string]any{"category": "CATEGORY_GOSSIP"}
		}, `"CATEGORY_GOSSIP" is not a category`},
		{"format 5", func(h map[string]any) { h["format"] = "trail-bundle/5" }, "this verifier reads"},
		{"format 3 still read", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.header == nil {
				if _, err := verify(t, key.vkey, export(func(h map[string]any) { h["format"] = formatV3 })); err != nil {
					t.Fatalf("format 3 bundle: %v", err)
				}
				return
			}
			expectFailure(t, key.vkey, export(tc.header), ErrMalformed, tc.inText)
		})
	}
}

// resign signs the manifest of ls again with key, as a log holding the key
// could.
func resign(t *testing.T, key testKey, ls [][]byte) {
	t.Helper()
	var h Header
	if err := json.Unmarshal(ls[0], &h); err != nil {
		t.Fatal(err)
	}
	rewrite(t, ls, len(ls)-1, func(m *Manifest) {
		signed, err := note.Sign(&note.Note{Text: noteText(h.Format, h.LogName, h.Tenant, m)}, key.signer)
		if err != nil {
			t.Fatal(err)
		}
		m.SignedNote = string(signed)
	})
}

// Run proofs: each forgery of a run line, its entries or its run_end is
// rejected with a specific kind.
func TestRunProofs(t *testing.T) {
	key := newTestKey(t, testLog)
	other := newPaddedLog(t, key, nil, "another log", 8, 3) // same shape, other leaves
	// Runs [0,2) and [3,8) of 2026-10, [0,3) of 2026-11.
	split := exportOpts{skip: func(part string, leaf uint64) bool { return part == "2026-10" && leaf == 2 }}
	good := newFakeLog(t, key, 8, 3).export(split)
	prunedLast := func() []byte {
		l := newFakeLog(t, key, 5)
		l.prune(0, 4)
		return l.export(exportOpts{})
	}()

	tests := []struct {
		name   string
		base   []byte
		edit   func(t *testing.T, ls [][]byte) [][]byte
		want   error
		inText string
	}{
		{name: "forged prefix hash", want: ErrProof, inText: "not in the signed tree", edit: func(t *testing.T, ls [][]byte) [][]byte {
			rewrite(t, ls, nth(ls, TypeRun, 1), func(r *Run) { r.Prefix[0][0] ^= 1 })
			return ls
		}},
		{name: "prefix of another tree", want: ErrProof, inText: "not in the signed tree", edit: func(t *testing.T, ls [][]byte) [][]byte {
			rewrite(t, ls, nth(ls, TypeRun, 1), func(r *Run) { r.Prefix = proofBytes(other.parts[0].prefix(3)) })
			return ls
		}},
		{name: "prefix with a hash too few", want: ErrMalformed, inText: "prefix", edit: func(t *testing.T, ls [][]byte) [][]byte {
			rewrite(t, ls, nth(ls, TypeRun, 1), func(r *Run) { r.Prefix = r.Prefix[1:] })
			return ls
		}},
		{name: "wrong consistency proof", want: ErrProof, inText: "not in the signed tree", edit: func(t *testing.T, ls [][]byte) [][]byte {
			rewrite(t, ls, nth(ls, TypeRunEnd, 0), func(r *RunEnd) { r.Consistency[0][0] ^= 1 })
			return ls
		}},
		{name: "consistency proof dropped", want: ErrProof, inText: "not in the signed tree", edit: func(t *testing.T, ls [][]byte) [][]byte {
			rewrite(t, ls, nth(ls, TypeRunEnd, 0), func(r *RunEnd) { r.Consistency = nil })
			return ls
		}},
		{name: "run end claims leaves its entries do not fill", want: ErrMalformed, inText: "entries missing or added", edit: func(t *testing.T, ls [][]byte) [][]byte {
			rewrite(t, ls, nth(ls, TypeRunEnd, 0), func(r *RunEnd) { r.End = 3 })
			return ls
		}},
		{name: "run end of another run", want: ErrMalformed, inText: "closes the run", edit: func(t *testing.T, ls [][]byte) [][]byte {
			rewrite(t, ls, nth(ls, TypeRunEnd, 1), func(r *RunEnd) { r.Begin = 0 })
			return ls
		}},
		{name: "run end missing", want: ErrMalformed, inText: "has no run_end", edit: func(_ *testing.T, ls [][]byte) [][]byte {
			i := nth(ls, TypeRunEnd, 0)
			return append(ls[:i], ls[i+1:]...)
		}},
		{name: "run line missing", want: ErrMalformed, inText: "outside a run", edit: func(_ *testing.T, ls [][]byte) [][]byte {
			i := nth(ls, TypeRun, 1)
			return append(ls[:i], ls[i+1:]...)
		}},
		{name: "overlapping runs", want: ErrMalformed, inText: "overlaps", edit: func(t *testing.T, ls [][]byte) [][]byte {
			// The second run restarts at leaf 1, with the right prefix.
			rewrite(t, ls, nth(ls, TypeRun, 1), func(r *Run) {
				r.Begin = 1
				r.Prefix = proofBytes(newFakeLog(t, key, 8, 3).parts[0].prefix(1))
			})
			return ls
		}},
		{name: "run repeated", want: ErrMalformed, inText: "overlaps", edit: func(_ *testing.T, ls [][]byte) [][]byte {
			a, b := nth(ls, TypeRun, 0), nth(ls, TypeRunEnd, 0)
			run := append([][]byte{}, ls[a:b+1]...)
			return append(ls[:b+1], append(run, ls[b+1:]...)...)
		}},
		{name: "run before its checkpoint", want: ErrMalformed, inText: "does not follow", edit: func(t *testing.T, ls [][]byte) [][]byte {
			rewrite(t, ls, nth(ls, TypeRun, 2), func(r *Run) { r.Partition = "2026-12" })
			return ls
		}},
		{name: "pruned leaf's stated hash changed", base: prunedLast, want: ErrProof, inText: "not in the signed tree", edit: func(t *testing.T, ls [][]byte) [][]byte {
			rewrite(t, ls, nth(ls, TypeEntry, 4), func(e *Entry) { e.LeafHash[0] ^= 1 })
			return ls
		}},
		{name: "format 1", want: ErrMalformed, inText: "no longer read", edit: func(t *testing.T, ls [][]byte) [][]byte {
			rewrite(t, ls, 0, func(h *Header) { h.Format = "trail-bundle/1" })
			return ls
		}},
		{name: "entry line in another layout", want: ErrMalformed, inText: "layout", edit: func(_ *testing.T, ls [][]byte) [][]byte {
			i := nth(ls, TypeEntry, 1)
			ls[i] = bytes.Replace(ls[i], []byte(`,"leaf_hash"`), []byte(`, "leaf_hash"`), 1)
			return ls
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := bytes.Clone(good)
			if tc.base != nil {
				b = bytes.Clone(tc.base)
			}
			expectFailure(t, key.vkey, bytes.Join(tc.edit(t, lines(b)), nil), tc.want, tc.inText)
		})
	}
	if _, err := verify(t, key.vkey, good); err != nil {
		t.Fatalf("the untouched bundle: %v", err)
	}
}

// The verifier reads any io.Reader: byte by byte, with the data and EOF
// together, and lines longer than its initial buffer, hashing every byte
// before the manifest exactly once.
func TestReaders(t *testing.T) {
	key := newTestKey(t, testLog)
	small := newFakeLog(t, key, 5, 4).export(exportOpts{maxRun: 3})
	big := newPaddedLog(t, key, nil, strings.Repeat("x", lineBuffer), 3).export(exportOpts{})
	v, err := NewVerifier(key.vkey)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		r    io.Reader
		want uint64
	}{
		{"one byte at a time", iotest.OneByteReader(bytes.NewReader(small)), 9},
		{"data with EOF", iotest.DataErrReader(bytes.NewReader(small)), 9},
		{"half at a time", iotest.HalfReader(bytes.NewReader(small)), 9},
		{"lines longer than the buffer", bytes.NewReader(big), 3},
		{"long lines, byte by byte", iotest.OneByteReader(bytes.NewReader(big)), 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := v.Verify(t.Context(), tc.r)
			if err != nil || r.Entries != tc.want {
				t.Fatalf("verify: %v", err)
			}
		})
	}
	_, err = v.Verify(t.Context(), iotest.ErrReader(errors.New("disk on fire")))
	if !errors.Is(err, ErrRead) {
		t.Fatalf("read error: %v", err)
	}
}

// digestOf computes the manifest digest of lines as digest.go defines it,
// independently of the writer: records of entry lines, bytes of others.
func digestOf(t *testing.T, lines [][]byte) []byte {
	t.Helper()
	h := sha256.New()
	var e entryLine
	var buf []byte
	for _, l := range lines {
		typ, err := lineType(l)
		if err != nil {
			t.Fatal(err)
		}
		if typ != TypeEntry {
			digestLineRecord(h, l)
			continue
		}
		if buf, err = parseEntryLine(l, &e, buf); err != nil {
			t.Fatal(err)
		}
		h.Write(appendEntryRecord(nil, e.partition, e.leafIndex, e.pruned, &e.leafHash))
	}
	return h.Sum(nil)
}

// The writer's digest is the one digest.go defines: entry lines by their
// records, every other line by its bytes.
func TestManifestDigestDefinition(t *testing.T) {
	key := newTestKey(t, testLog)
	log := newFakeLog(t, key, 5, 4)
	log.prune(0, 2)
	ls := lines(log.export(exportOpts{}))
	var m Manifest
	if err := json.Unmarshal(ls[len(ls)-1], &m); err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(digestOf(t, ls[:len(ls)-1])); got != m.SHA256 {
		t.Fatalf("digest %s, manifest says %s", got, m.SHA256)
	}
}
