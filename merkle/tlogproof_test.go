package merkle

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	tproof "github.com/transparency-dev/formats/proof"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
)

// tlogProofFixture builds a tree of n entries and returns a tlog-proof of
// entry index, signed by a test log key, with its verifier.
func tlogProofFixture(t testing.TB, n, index int) (TLogProof, note.Verifier, []byte) {
	t.Helper()
	entries := make([][]byte, n)
	leaves := make([]Hash, n)
	for i := range entries {
		entries[i] = []byte(fmt.Sprintf("entry %d", i))
		leaves[i] = LeafHash(entries[i])
	}
	m := NewMemoryNodes(leaves)
	path, err := InclusionProof(context.Background(), uint64(index), uint64(n), m)
	if err != nil {
		t.Fatal(err)
	}
	s, v, _ := testKey(t, "log.example", 7)
	signed, err := SignCheckpoint(Checkpoint{Origin: "log.example/acme/2026-12", Size: uint64(n), Root: m.Root()}, s)
	if err != nil {
		t.Fatal(err)
	}
	return TLogProof{Extra: entries[index], Index: uint64(index), Proof: path, Checkpoint: signed}, v, entries[index]
}

func TestTLogProofRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name     string
		n, index int
		extra    []byte
	}{
		{"one leaf, no proof hashes", 1, 0, []byte("entry 0")},
		{"middle leaf", 13, 6, []byte("entry 6")},
		{"last leaf", 64, 63, []byte("entry 63")},
		{"no extra line", 5, 2, nil},
		{"empty extra line", 5, 2, []byte{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, _, _ := tlogProofFixture(t, tc.n, tc.index)
			p.Extra = tc.extra
			b := p.Marshal()
			got, err := ParseTLogProof(b)
			if err != nil {
				t.Fatalf("ParseTLogProof: %v\n%s", err, b)
			}
			if (got.Extra == nil) != (tc.extra == nil) || !bytes.Equal(got.Extra, tc.extra) || got.Index != p.Index ||
				!slices.Equal(got.Proof, p.Proof) || !bytes.Equal(got.Checkpoint, p.Checkpoint) {
				t.Fatalf("round trip changed the proof:\n got %+v\nwant %+v", got, p)
			}
			if !bytes.Equal(got.Marshal(), b) {
				t.Fatalf("re-encoding differs")
			}
		})
	}
}

// TestTLogProofCrossCheck checks the format against
// transparency-dev/formats' tlog-proof codec in both directions, the path
// with transparency-dev/merkle's verifier, and the checkpoint with
// x/mod/sumdb/note alone.
func TestTLogProofCrossCheck(t *testing.T) {
	for _, n := range []int{1, 2, 7, 100} {
		for _, index := range []int{0, n / 2, n - 1} {
			p, v, entry := tlogProofFixture(t, n, index)
			b := p.Marshal()

			var ref tproof.TLogProof
			if err := ref.Unmarshal(b); err != nil {
				t.Fatalf("n=%d index=%d: reference parser: %v", n, index, err)
			}
			if ref.Index != p.Index || !bytes.Equal(ref.ExtraData, entry) || !bytes.Equal(ref.Checkpoint, p.Checkpoint) || len(ref.Hashes) != len(p.Proof) {
				t.Fatalf("n=%d index=%d: reference parser read %+v", n, index, ref)
			}
			if !bytes.Equal(ref.Marshal(), b) {
				t.Fatalf("n=%d index=%d: reference encoding differs:\n%s\nours:\n%s", n, index, ref.Marshal(), b)
			}
			back, err := ParseTLogProof(ref.Marshal())
			if err != nil || back.Index != p.Index {
				t.Fatalf("n=%d index=%d: parse reference encoding: %v", n, index, err)
			}

			nt, err := note.Open(ref.Checkpoint, note.VerifierList(v))
			if err != nil {
				t.Fatalf("note.Open: %v", err)
			}
			cp, err := ParseCheckpoint([]byte(nt.Text))
			if err != nil {
				t.Fatal(err)
			}
			hashes := make([][]byte, len(ref.Hashes))
			for i := range ref.Hashes {
				hashes[i] = ref.Hashes[i][:]
			}
			leaf := rfc6962.DefaultHasher.HashLeaf(ref.ExtraData)
			if err := proof.VerifyInclusion(rfc6962.DefaultHasher, ref.Index, cp.Size, leaf, hashes, cp.Root[:]); err != nil {
				t.Fatalf("n=%d index=%d: reference verifier rejects the proof: %v", n, index, err)
			}
		}
	}
}

func TestParseTLogProofRejects(t *testing.T) {
	good, _, _ := tlogProofFixture(t, 9, 4)
	enc := string(good.Marshal())
	h0 := strings.Split(enc, "\n")[3] // first proof hash line
	for _, tc := range []struct {
		name, in, want string
	}{
		{"empty", "", "is not"},
		{"wrong header", strings.Replace(enc, "tlog-proof@v1", "tlog-proof@v2", 1), "is not"},
		{"header only", TLogProofHeader + "\n", "no index line"},
		{"no index", strings.Replace(enc, "index 4\n", "", 1), "is not \"index"},
		{"index leading zero", strings.Replace(enc, "index 4\n", "index 04\n", 1), "leading zeros"},
		{"index signed", strings.Replace(enc, "index 4\n", "index +4\n", 1), "not a decimal"},
		{"index too large", strings.Replace(enc, "index 4\n", "index 18446744073709551616\n", 1), "out of range"},
		{"index empty", strings.Replace(enc, "index 4\n", "index \n", 1), "empty number"},
		{"extra not base64", strings.Replace(enc, "extra ", "extra !", 1), "canonical base64"},
		{"extra unpadded", strings.Replace(enc, "extra ZW50cnkgNA==", "extra ZW50cnkgNA", 1), "canonical base64"},
		{"extra after index", strings.Replace(strings.Replace(enc, "extra ZW50cnkgNA==\n", "", 1), "index 4\n", "index 4\nextra ZW50cnkgNA==\n", 1), "proof hash 1"},
		{"short hash", strings.Replace(enc, h0, h0[:40], 1), "base64 characters"},
		{"hash with CR", strings.Replace(enc, h0+"\n", h0+"\r\n", 1), "base64 characters"},
		{"no blank line", strings.Replace(enc, "\n\n", "\n", 1), "proof hash"},
		{"no checkpoint", enc[:strings.Index(enc, "\n\n")+2], "no checkpoint"},
		{"checkpoint without final newline", strings.TrimSuffix(enc, "\n"), "newline"},
		{"checkpoint not UTF-8", strings.Replace(enc, "log.example/acme", "log.example/\xff", 1), "UTF-8"},
		{"too many hashes", strings.Replace(enc, h0+"\n", strings.Repeat(h0+"\n", MaxTLogProofHashes+1), 1), "more than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseTLogProof([]byte(tc.in))
			if !errors.Is(err, ErrInvalidTLogProof) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ParseTLogProof = %v, want ErrInvalidTLogProof mentioning %q", err, tc.want)
			}
		})
	}
}
