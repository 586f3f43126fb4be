package segment

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/trailaudit/trail/internal/eventgen"
)

// realisticEntries returns n entries shaped like the engine's: a generated
// audit event (padded to about 450 bytes) followed by a 32-byte
// prev_leaf_hash and a sequencer timestamp, about 512 bytes in all. The
// hash is random, as in a real chain, so it does not compress.
func realisticEntries(tb testing.TB, n int) (entries [][]byte, total int) {
	tb.Helper()
	g := eventgen.New(eventgen.Config{Seed: 1, TargetBytes: 440})
	rng := rand.New(rand.NewPCG(1, 2))
	mo := proto.MarshalOptions{Deterministic: true}
	ts := int64(1_790_000_000_000_000_000)
	for range n {
		b, err := mo.Marshal(g.Next())
		if err != nil {
			tb.Fatal(err)
		}
		var hash [32]byte
		for i := range hash {
			hash[i] = byte(rng.Uint32())
		}
		b = protowire.AppendTag(b, 5, protowire.BytesType)
		b = protowire.AppendBytes(b, hash[:])
		ts += int64(500_000 + rng.IntN(1_000_000))
		b = protowire.AppendTag(b, 6, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(ts))
		entries = append(entries, b)
		total += len(b)
	}
	return entries, total
}

const benchEntries = 50_000

func BenchmarkWrite(b *testing.B) {
	entries, total := realisticEntries(b, benchEntries)
	path := filepath.Join(b.TempDir(), "bench.seg")
	h := testHeader(uint64(len(entries)))
	b.SetBytes(int64(total))
	var size int64
	for b.Loop() {
		writeSegment(b, path, h, entries, nil, WriterOptions{})
		st, err := os.Stat(path)
		if err != nil {
			b.Fatal(err)
		}
		size = st.Size()
	}
	b.ReportMetric(float64(total)/float64(len(entries)), "raw-B/entry")
	b.ReportMetric(float64(size)/float64(len(entries)), "file-B/entry")
	b.ReportMetric(float64(total)/float64(size), "ratio")
}

// benchSegment writes the realistic segment once for the read benchmarks.
func benchSegment(b *testing.B) (path string, total int) {
	entries, total := realisticEntries(b, benchEntries)
	path = filepath.Join(b.TempDir(), "bench.seg")
	writeSegment(b, path, testHeader(uint64(len(entries))), entries, nil, WriterOptions{})
	return path, total
}

func BenchmarkEntryRandomRead(b *testing.B) {
	path, _ := benchSegment(b)
	r, err := Open(path, ReaderOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	rng := rand.New(rand.NewPCG(3, 4))
	b.ResetTimer()
	for b.Loop() {
		if _, err := r.Entry(rng.Uint64N(benchEntries)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkScan(b *testing.B) {
	path, total := benchSegment(b)
	r, err := Open(path, ReaderOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	b.SetBytes(int64(total))
	b.ResetTimer()
	for b.Loop() {
		var n int
		if err := r.Scan(0, func(uint64, []byte) error { n++; return nil }); err != nil || n != benchEntries {
			b.Fatal(n, err)
		}
	}
}

func BenchmarkOpen(b *testing.B) {
	path, _ := benchSegment(b)
	st, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(st.Size())
	b.ResetTimer()
	for b.Loop() {
		r, err := Open(path, ReaderOptions{})
		if err != nil {
			b.Fatal(err)
		}
		r.Close()
	}
}
