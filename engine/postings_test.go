package engine

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// chunkPostings must yield, for any mix of dense and sparse terms over
// several tenants and months, exactly the lists a plain map gathers, in
// key order, and answer in-memory lookups the same; and a reused one must
// behave as a new one.
func TestChunkPostingsMatchReference(t *testing.T) {
	cp := newChunkPostings()
	for round := range 3 {
		rng := rand.New(rand.NewPCG(uint64(round), 9))
		ref := map[string][]uint64{}
		kinds := map[string]IndexKind{}
		var term []byte
		for leaf := uint64(0); leaf < 5000; leaf++ {
			tenant := fmt.Sprintf("t%d", rng.IntN(3))
			m := Month{2026, time.Month(10 + rng.IntN(3))}
			for _, k := range []IndexKind{IndexActor, IndexCategory, IndexSubject, IndexTarget, IndexPIIField} {
				var v string
				switch k {
				case IndexCategory:
					v = fmt.Sprintf("cat-%d", rng.IntN(4))
				case IndexPIIField:
					v = fmt.Sprintf("%d-%d", k, rng.IntN(50))
				case IndexActor: // dense, but many with one posting
					v = fmt.Sprintf("%d-%d", k, rng.IntN(4000))
				default: // sparse: mostly new, some repeats
					v = fmt.Sprintf("%d-%d", k, rng.IntN(3000))
				}
				term = termKey(term, tenant, k, v, m)
				cp.add(k, term, len(tenant)+2, leaf)
				ref[string(term)] = append(ref[string(term)], leaf)
				kinds[string(term)] = k
			}
		}
		keys := slices.Sorted(func(yield func(string) bool) {
			for k := range ref {
				if !yield(k) {
					return
				}
			}
		})
		var got []string
		err := cp.each(func(term []byte, leaves []uint64) error {
			got = append(got, string(term))
			if want := ref[string(term)]; !slices.Equal(leaves, want) {
				t.Fatalf("round %d term %q: leaves %v, want %v", round, term, leaves, want)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, keys) {
			t.Fatalf("round %d: %d terms out of order or missing (want %d)", round, len(got), len(keys))
		}
		for k, want := range ref {
			tenantLen := bytes.IndexByte([]byte(k), 0)
			if leaves := cp.leaves(kinds[k], []byte(k), tenantLen+2); !slices.Equal(leaves, want) {
				t.Fatalf("round %d: lookup of %q gives %v, want %v", round, k, leaves, want)
			}
		}
		cp = cp.reuse()
	}
}
