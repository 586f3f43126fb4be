package bundle

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/trailaudit/trail/filter"
	"github.com/trailaudit/trail/merkle"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

const (
	testLog    = "test.trail"
	testTenant = "acme"
)

// testKey is a log key pair.
type testKey struct {
	signer note.Signer
	vkey   string
}

func newTestKey(t testing.TB, name string) testKey {
	t.Helper()
	skey, vkey, err := merkle.GenerateKey(name, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := merkle.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	return testKey{signer: s, vkey: vkey}
}

// fakeLog is a tenant's log built the way the engine builds it (entry
// bytes, chain, partition links, RFC 9162 trees), in memory, for tests.
type fakeLog struct {
	t   testing.TB
	key testKey
	// mutate, when set, edits each entry before it is encoded: a log that
	// misbehaves, yet hashes and proves what it stored.
	mutate func(en *trailv1.Entry)
	parts  []*fakePart
	prev   merkle.Hash
	clock  time.Time
	pad    string // the "pad" attribute of every entry
}

type fakePart struct {
	month   string
	tree    *merkle.MemoryNodes
	entries [][]byte // nil once pruned
	hashes  []merkle.Hash
}

// newFakeLog returns a log with one partition per size, from October 2026.
func newFakeLog(t testing.TB, key testKey, sizes ...int) *fakeLog {
	return newBadLog(t, key, nil, sizes...)
}

// newBadLog is newFakeLog with every entry passed through mutate.
func newBadLog(t testing.TB, key testKey, mutate func(*trailv1.Entry), sizes ...int) *fakeLog {
	return newPaddedLog(t, key, mutate, "some realistic padding text", sizes...)
}

// newPaddedLog is newBadLog with pad as every entry's "pad" attribute, to
// size the entries.
func newPaddedLog(t testing.TB, key testKey, mutate func(*trailv1.Entry), pad string, sizes ...int) *fakeLog {
	l := &fakeLog{t: t, key: key, mutate: mutate, pad: pad, clock: time.Date(2026, 10, 1, 9, 0, 0, 0, time.UTC)}
	for i, n := range sizes {
		l.clock = time.Date(2026, time.October+time.Month(i), 1, 9, 0, 0, 0, time.UTC)
		l.addPartition(n)
	}
	return l
}

func (l *fakeLog) addPartition(n int) {
	p := &fakePart{month: l.clock.Format("2006-01"), tree: merkle.NewMemoryNodes(nil)}
	var link *trailv1.PartitionLink
	if len(l.parts) > 0 {
		last := l.parts[len(l.parts)-1]
		root := last.tree.Root()
		link = &trailv1.PartitionLink{Partition: last.month, Size: last.tree.Size(), Root: root[:]}
	}
	l.parts = append(l.parts, p)
	for i := range n {
		en := &trailv1.Entry{
			Event: &trailv1.Event{
				TenantId: testTenant, EventId: fmt.Sprintf("%s-%d", p.month, i),
				Category: trailv1.Category_CATEGORY_DATA_ACCESS, Action: "record.view",
				Outcome:   trailv1.Outcome_OUTCOME_SUCCESS,
				Actor:     &trailv1.Actor{Id: fmt.Sprintf("user-%d", i%3), Type: "user"},
				SubjectId: fmt.Sprintf("citizen-%d", i%5),
				// Every other access lists PII fields and a purpose.
				PiiFieldsAccessed: piiOf(i),
				PurposeCode:       purposeOf(i),
				Target:            &trailv1.Target{Type: "record", Id: fmt.Sprint(i)},
				OccurredAt:        timestamppb.New(l.clock),
				Attributes:        map[string]string{"i": fmt.Sprint(i), "pad": l.pad},
			},
			SequencerTime: timestamppb.New(l.clock),
			Partition:     p.month,
			LeafIndex:     uint64(i),
			PrevLeafHash:  bytes.Clone(l.prev[:]),
		}
		if i == 0 {
			en.PrevPartition = link
		}
		if l.mutate != nil {
			l.mutate(en)
		}
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(en)
		if err != nil {
			l.t.Fatal(err)
		}
		h := merkle.LeafHash(b)
		p.entries = append(p.entries, b)
		p.hashes = append(p.hashes, h)
		p.tree.Append(h)
		l.prev = h
		l.clock = l.clock.Add(time.Second)
	}
}

func piiOf(i int) []string {
	if i%2 == 1 {
		return nil
	}
	return []string{"name", fmt.Sprintf("field-%d", i%4)}
}

func purposeOf(i int) string {
	if i%2 == 1 {
		return ""
	}
	return "case-handling"
}

func (l *fakeLog) prune(part, leaf int) { l.parts[part].entries[leaf] = nil }

// exportOpts shape fakeLog.export.
type exportOpts struct {
	filters filter.Filter
	// cpSize is each partition's checkpoint size (default: its size).
	cpSize map[string]uint64
	// skip leaves out entries (by partition and leaf).
	skip func(part string, leaf uint64) bool
	// maxRun, when set, cuts runs at multiples of it, as a writer capping
	// run length would.
	maxRun uint64
	vkey   string
	// opening, when set, gives the opening line written after an entry
	// (nil: none).
	opening func(part string, leaf uint64, entry []byte) *Opening
}

// export writes the log as a bundle the way the server does.
func (l *fakeLog) export(o exportOpts) []byte {
	l.t.Helper()
	var buf bytes.Buffer
	w, err := NewWriter(&buf, Header{
		LogName: testLog, Tenant: testTenant, Filter: o.filters,
		Created: time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC),
		KeyName: l.key.signer.Name(), KeyHash: fmt.Sprintf("%08x", l.key.signer.KeyHash()), VKey: o.vkey,
	})
	if err != nil {
		l.t.Fatal(err)
	}
	sizes := map[string]uint64{}
	for _, p := range l.parts {
		size := p.tree.Size()
		if s, ok := o.cpSize[p.month]; ok {
			size = s
		}
		sizes[p.month] = size
		l.writePartition(w, p, size, sizes, o)
	}
	if _, err := w.Close(l.key.signer); err != nil {
		l.t.Fatal(err)
	}
	return buf.Bytes()
}

func (l *fakeLog) writePartition(w *Writer, p *fakePart, size uint64, sizes map[string]uint64, o exportOpts) {
	ctx := context.Background()
	cp := merkle.Checkpoint{Origin: testLog + "/" + testTenant + "/" + p.month, Size: size}
	var err error
	if cp.Root, err = merkle.RootAt(ctx, size, p.tree); err != nil {
		l.t.Fatal(err)
	}
	signed, err := merkle.SignCheckpoint(cp, l.key.signer)
	if err != nil {
		l.t.Fatal(err)
	}
	if err := w.Checkpoint(Checkpoint{Partition: p.month, Size: size, Root: cp.Root[:], Note: string(signed)}); err != nil {
		l.t.Fatal(err)
	}
	for i := range size {
		if o.skip != nil && o.skip(p.month, i) {
			l.endRun(w, p, size)
			continue
		}
		if _, _, _, open := w.RunOpen(); !open || (o.maxRun > 0 && i%o.maxRun == 0) {
			l.endRun(w, p, size)
			if err := w.Run(Run{Partition: p.month, Begin: i, Prefix: proofBytes(p.prefix(i))}); err != nil {
				l.t.Fatal(err)
			}
		}
		e := Entry{Partition: p.month, LeafIndex: i, LeafHash: p.hashes[i][:], Entry: p.entries[i], Pruned: p.entries[i] == nil}
		if err := w.Entry(e); err != nil {
			l.t.Fatal(err)
		}
		if o.opening != nil {
			if op := o.opening(p.month, i, p.entries[i]); op != nil {
				if err := w.Opening(*op); err != nil {
					l.t.Fatal(err)
				}
			}
		}
		if i == 0 {
			l.writeLink(w, p, sizes)
		}
	}
	l.endRun(w, p, size)
}

// endRun closes the open run, if any, with its consistency proof.
func (l *fakeLog) endRun(w *Writer, p *fakePart, size uint64) {
	_, begin, end, open := w.RunOpen()
	if !open {
		return
	}
	proof, err := merkle.ConsistencyProof(context.Background(), end, size, p.tree)
	if err != nil {
		l.t.Fatal(err)
	}
	if err := w.EndRun(RunEnd{Partition: p.month, Begin: begin, End: end, Consistency: proofBytes(proof)}); err != nil {
		l.t.Fatal(err)
	}
}

// prefix returns the compact range [0, begin) of p's tree: the perfect
// subtrees, one per set bit of begin, largest first.
func (p *fakePart) prefix(begin uint64) []merkle.Hash {
	var ids []merkle.NodeID
	for l := 63; l >= 0; l-- {
		if begin&(1<<l) != 0 {
			ids = append(ids, merkle.NodeID{Level: uint8(l), Index: begin>>l - 1})
		}
	}
	hs, err := p.tree.ReadNodes(context.Background(), ids)
	if err != nil {
		panic(err)
	}
	return hs
}

// writeLink adds the consistency record leaf 0 of p needs, if any.
func (l *fakeLog) writeLink(w *Writer, p *fakePart, sizes map[string]uint64) {
	en := new(trailv1.Entry)
	if p.entries[0] == nil {
		return
	}
	if err := proto.Unmarshal(p.entries[0], en); err != nil {
		l.t.Fatal(err)
	}
	link := en.GetPrevPartition()
	if link == nil {
		return
	}
	have, ok := sizes[link.GetPartition()]
	if !ok || have >= link.GetSize() {
		return
	}
	var prev *fakePart
	for _, q := range l.parts {
		if q.month == link.GetPartition() {
			prev = q
		}
	}
	proof, err := merkle.ConsistencyProof(context.Background(), have, link.GetSize(), prev.tree)
	if err != nil {
		l.t.Fatal(err)
	}
	c := Consistency{Partition: link.GetPartition(), LinkedFrom: p.month, FromSize: have, ToSize: link.GetSize(), Proof: proofBytes(proof)}
	if err := w.Consistency(c); err != nil {
		l.t.Fatal(err)
	}
}

func proofBytes(hs []merkle.Hash) [][]byte {
	out := make([][]byte, len(hs))
	for i := range hs {
		out[i] = bytes.Clone(hs[i][:])
	}
	return out
}

// verify runs a Verifier trusting vkey over b.
func verify(t testing.TB, vkey string, b []byte) (*Report, error) {
	t.Helper()
	v, err := NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return v.Verify(context.Background(), bytes.NewReader(b))
}

// lines splits a bundle into its lines, each with its "\n".
func lines(b []byte) [][]byte {
	out := bytes.SplitAfter(b, []byte("\n"))
	if len(out[len(out)-1]) == 0 {
		out = out[:len(out)-1]
	}
	return out
}
