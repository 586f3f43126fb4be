package merkle

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// chainOf returns n linked entries: leaf hashes and the prev hash each
// records, the first recording first.
func chainOf(first Hash, n int) (leaves, prevs []Hash) {
	prev := first
	for i := range n {
		leaf := LeafHash([]byte{byte(i), 'e'})
		leaves, prevs = append(leaves, leaf), append(prevs, prev)
		prev = leaf
	}
	return leaves, prevs
}

func TestChainVerifier(t *testing.T) {
	start := LeafHash([]byte("last entry of the previous partition"))
	for _, tc := range []struct {
		name   string
		first  Hash   // what the verifier expects the first entry to record
		start  uint64 // position of the first entry
		breaks map[int]Hash
		want   []uint64 // positions reported broken
	}{
		{name: "tenant's first entries", first: Hash{}},
		{name: "continues a partition", first: start, start: 1000},
		{name: "break in the middle", first: Hash{}, start: 10, breaks: map[int]Hash{5: LeafHash([]byte("forged"))}, want: []uint64{15}},
		{name: "first entry does not chain", first: start, start: 0, breaks: map[int]Hash{0: {}}, want: []uint64{0}},
		{name: "last entry does not chain", first: Hash{}, breaks: map[int]Hash{9: {1}}, want: []uint64{9}},
		{name: "two breaks", first: Hash{}, breaks: map[int]Hash{2: {}, 7: {2}}, want: []uint64{2, 7}},
	} {
		leaves, prevs := chainOf(tc.first, 10)
		for i, h := range tc.breaks {
			prevs[i] = h
		}
		v := NewChainVerifier(tc.first, tc.start)
		if v.Last() != tc.first || v.Count() != 0 {
			t.Errorf("%s: new verifier Last %s Count %d", tc.name, v.Last(), v.Count())
		}
		var broken []uint64
		for i := range leaves {
			err := v.Next(leaves[i], prevs[i])
			if err == nil {
				continue
			}
			pos := tc.start + uint64(i)
			if !errors.Is(err, ErrChainBroken) {
				t.Errorf("%s: entry %d: %v, want ErrChainBroken", tc.name, pos, err)
			}
			recorded, want := prevs[i], expected(tc.first, leaves, i)
			if !strings.Contains(err.Error(), recorded.String()) || !strings.Contains(err.Error(), want.String()) {
				t.Errorf("%s: entry %d: message %q lacks the hashes", tc.name, pos, err)
			}
			broken = append(broken, pos)
		}
		if !slices.Equal(broken, tc.want) {
			t.Errorf("%s: broken at %v, want %v", tc.name, broken, tc.want)
		}
		if v.Count() != 10 || v.Last() != leaves[9] {
			t.Errorf("%s: Count %d Last %s, want 10 and %s", tc.name, v.Count(), v.Last(), leaves[9])
		}
	}
}

// expected returns the prev hash entry i should record.
func expected(first Hash, leaves []Hash, i int) Hash {
	if i == 0 {
		return first
	}
	return leaves[i-1]
}

func TestChainVerifierMessage(t *testing.T) {
	v := NewChainVerifier(Hash{}, 41)
	err := v.Next(LeafHash(nil), Hash{0xab})
	if err == nil || !strings.Contains(err.Error(), "entry 41") {
		t.Errorf("Next = %v, want a message naming entry 41", err)
	}
}
