package console

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/trailaudit/trail/internal/browsertest"
	"github.com/trailaudit/trail/merkle"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// TestHandler: the console's files are served with a policy that lets the
// page run only its own code, the bare path redirects, and nothing but
// GET and HEAD is answered.
func TestHandler(t *testing.T) {
	srv := httptest.NewServer(Handler())
	defer srv.Close()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	tests := []struct {
		method, path string
		status       int
		contentType  string
		body         string
	}{
		{"GET", "/console/", http.StatusOK, "text/html", `<script type="module" src="js/app.js">`},
		{"HEAD", "/console/", http.StatusOK, "text/html", ""},
		{"GET", "/console/js/verify.js", http.StatusOK, "text/javascript", "rootFromInclusion"},
		{"GET", "/console/console.css", http.StatusOK, "text/css", ":root"},
		{"GET", "/console", http.StatusMovedPermanently, "", ""},
		{"GET", "/console/nope.js", http.StatusNotFound, "", ""},
		{"GET", "/console/js/", http.StatusNotFound, "", ""},
		{"GET", "/console/js/screens/", http.StatusNotFound, "", ""},
		{"GET", "/console/../api/v1/whoami", http.StatusNotFound, "", ""},
		{"POST", "/console/", http.StatusMethodNotAllowed, "", ""},
		{"DELETE", "/console/js/app.js", http.StatusMethodNotAllowed, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, srv.URL+tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status {
				t.Fatalf("HTTP %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			if tc.status == http.StatusMovedPermanently && resp.Header.Get("Location") != Path {
				t.Errorf("redirects to %q, want %q", resp.Header.Get("Location"), Path)
			}
			if tc.status != http.StatusOK {
				return
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, tc.contentType) {
				t.Errorf("Content-Type %q, want %s", ct, tc.contentType)
			}
			for k, v := range securityHeaders() {
				if got := resp.Header.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			if !strings.Contains(string(body), tc.body) {
				t.Errorf("body lacks %q", tc.body)
			}
		})
	}
}

// verifierCases are what the browser's verifier is run on, with what Go's
// reference implementations say about each.
type verifierCases struct {
	VKey      string          `json:"vkey"`
	OtherVKey string          `json:"other_vkey"`
	Inclusion []inclusionCase `json:"inclusion"`
	Consist   []consistCase   `json:"consistency"`
	Notes     []noteCase      `json:"notes"`
	Entries   []entryCase     `json:"entries"`
	JSON      []jsonCase      `json:"json"`
	// Zip is an archive laid out as a report bundle (deflated and stored
	// members), with its members' contents.
	Zip        []byte            `json:"zip"`
	ZipMembers map[string][]byte `json:"zip_members"`
	// Garbage are random byte strings every decoder must refuse with an
	// Error or read, never loop on or crash with another exception.
	Garbage [][]byte `json:"garbage"`
}

type inclusionCase struct {
	Index uint64   `json:"index"`
	Size  uint64   `json:"size"`
	Entry []byte   `json:"entry"`
	Proof [][]byte `json:"proof"`
	Root  []byte   `json:"root"`
	// Valid is false for a proof with a flipped bit or a wrong index: the
	// root it folds to must differ, or the fold must fail.
	Valid bool `json:"valid"`
}

type consistCase struct {
	First, Second uint64
	FirstRoot     []byte   `json:"first_root"`
	SecondRoot    []byte   `json:"second_root"`
	Proof         [][]byte `json:"proof"`
	Valid         bool     `json:"valid"`
}

type noteCase struct {
	Note   string `json:"note"`
	Origin string `json:"origin"`
	Size   uint64 `json:"size"`
	Root   []byte `json:"root"`
	// Key is "vkey" or "other_vkey"; Valid is whether it must open.
	Key   string `json:"key"`
	Valid bool   `json:"valid"`
}

type entryCase struct {
	Bytes        []byte `json:"bytes"`
	Partition    string `json:"partition"`
	LeafIndex    uint64 `json:"leaf_index"`
	PrevLeafHash []byte `json:"prev_leaf_hash"`
	LinkPart     string `json:"link_partition"`
	LinkSize     uint64 `json:"link_size"`
}

type jsonCase struct {
	Indented string `json:"indented"`
	Compact  string `json:"compact"`
}

// TestBrowserVerifierMatchesReference runs the console's verifier
// (js/verify.js) in Chromium over proofs, notes and entries made by the
// reference implementations: transparency-dev's Merkle tree (invariant
// 2), the log's own checkpoint signing, protobuf's encoder and Go's JSON
// indenting. Every genuine case must verify and every damaged one fail.
func TestBrowserVerifierMatchesReference(t *testing.T) {
	ctx := browsertest.New(t)
	srv := httptest.NewServer(Handler())
	defer srv.Close()
	cases := makeVerifierCases(t, rand.New(rand.NewPCG(1, 15)))
	in, err := json.Marshal(cases)
	if err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+Path)); err != nil {
		t.Fatal(err)
	}
	script := fmt.Sprintf(`(async () => {
  const v = await import('/console/js/verify.js');
  const c = %s;
  const b = s => v.b64decode(s || '');
  const fails = [];
  const hexOf = s => v.hex(b(s));
  for (const [i, k] of c.inclusion.entries()) {
    let ok;
    try {
      const root = await v.rootFromInclusion(k.index, k.size, await v.leafHash(b(k.entry)), (k.proof || []).map(b));
      ok = v.equal(root, b(k.root));
    } catch (e) { ok = false; }
    if (ok !== k.valid) fails.push('inclusion ' + i + ' (leaf ' + k.index + ' of ' + k.size + '): verified=' + ok + ', want ' + k.valid);
  }
  for (const [i, k] of c.consistency.entries()) {
    let ok = true, why = '';
    try { await v.verifyConsistency(k.First, k.Second, b(k.first_root), b(k.second_root), (k.proof || []).map(b)); }
    catch (e) { ok = false; why = e.message; }
    if (ok !== k.valid) fails.push('consistency ' + i + ' (' + k.First + ' to ' + k.Second + '): verified=' + ok + ' ' + why + ', want ' + k.valid);
  }
  const keys = {vkey: await v.parseVerifierKey(c.vkey), other_vkey: await v.parseVerifierKey(c.other_vkey)};
  for (const [i, k] of c.notes.entries()) {
    let ok = true, why = '';
    try {
      const cp = await v.openCheckpoint(k.note, keys[k.key]);
      if (cp.origin !== k.origin || cp.size !== BigInt(k.size) || !v.equal(cp.root, b(k.root))) { ok = false; why = 'parsed wrong'; }
    } catch (e) { ok = false; why = e.message; }
    if (ok !== k.valid) fails.push('note ' + i + ': opened=' + ok + ' ' + why + ', want ' + k.valid);
  }
  for (const [i, k] of c.entries.entries()) {
    const e = v.readEntry(b(k.bytes));
    const got = [e.partition, String(e.leafIndex), v.hex(e.prevLeafHash), e.prevPartition ? e.prevPartition.partition + ':' + e.prevPartition.size : ''].join(' ');
    const want = [k.partition, String(k.leaf_index), hexOf(k.prev_leaf_hash), k.link_partition ? k.link_partition + ':' + k.link_size : ''].join(' ');
    if (got !== want) fails.push('entry ' + i + ': read ' + got + ', want ' + want);
  }
  for (const [i, k] of c.json.entries()) {
    const got = v.compactJSON(v.rawMember(k.indented, 'content'));
    if (got !== k.compact) fails.push('json ' + i + ': compacted to ' + got + ', want ' + k.compact);
  }
  const zip = await (await import('/console/js/zip.js')).readZip(b(c.zip));
  const want = Object.keys(c.zip_members).sort();
  if (zip.map(m => m.name).sort().join() !== want.join()) fails.push('zip members ' + zip.map(m => m.name) + ', want ' + want);
  for (const m of zip) if (v.hex(m.data) !== hexOf(c.zip_members[m.name])) fails.push('zip member ' + m.name + ' read wrong');
  const {readZip} = await import('/console/js/zip.js');
  const text = new TextDecoder();
  for (const [i, g] of c.garbage.entries()) {
    const bytes = b(g);
    for (const [name, fn] of [['readEntry', () => v.readEntry(bytes)], ['readZip', () => readZip(bytes)],
      ['parseCheckpoint', () => v.parseCheckpoint(text.decode(bytes))], ['rawMember', () => v.rawMember(text.decode(bytes), 'content')],
      ['openNote', () => v.openNote(text.decode(bytes), keys.vkey)], ['parseVerifierKey', () => v.parseVerifierKey(text.decode(bytes))]]) {
      // A refusal is an Error; a TypeError (reading what is not there)
      // is a bug, except the decoder's own word on invalid UTF-8.
      try { await fn(); } catch (e) {
        if (!(e instanceof Error) || (e instanceof TypeError && !/encoded data/.test(e.message))) fails.push(name + ' on garbage ' + i + ': ' + e);
      }
    }
  }
  return fails;
})()`, in)
	evalCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	fails, err := chromedp.Run(evalCtx, chromedp.Evaluate[[]string](script, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fails {
		t.Error(f)
	}
	t.Logf("%d inclusion, %d consistency, %d note, %d entry, %d JSON and %d garbage cases, and a zip", len(cases.Inclusion), len(cases.Consist), len(cases.Notes), len(cases.Entries), len(cases.JSON), len(cases.Garbage))
}

func makeVerifierCases(t *testing.T, rnd *rand.Rand) verifierCases {
	t.Helper()
	var c verifierCases
	tree := testonly.New(rfc6962.DefaultHasher)
	entries := make([][]byte, 0, 300)
	for i := range 300 {
		e := make([]byte, 1+rnd.IntN(200))
		for j := range e {
			e[j] = byte(rnd.Uint32())
		}
		e[0] = byte(i)
		entries = append(entries, e)
		tree.AppendData(e)
	}
	flip := func(proof [][]byte) [][]byte {
		out := make([][]byte, len(proof))
		for i, p := range proof {
			out[i] = bytes.Clone(p)
		}
		k := rnd.IntN(len(out))
		out[k][rnd.IntN(32)] ^= 1 << rnd.IntN(8)
		return out
	}
	sizes := []uint64{1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 64, 100, 127, 128, 129, 255, 256, 257, 300}
	for _, size := range sizes {
		root := tree.HashAt(size)
		for _, index := range []uint64{0, size / 2, size - 1, uint64(rnd.IntN(int(size)))} {
			proof, err := tree.InclusionProof(index, size)
			if err != nil {
				t.Fatal(err)
			}
			c.Inclusion = append(c.Inclusion, inclusionCase{Index: index, Size: size, Entry: entries[index], Proof: proof, Root: root, Valid: true})
			if len(proof) > 0 {
				c.Inclusion = append(c.Inclusion,
					inclusionCase{Index: index, Size: size, Entry: entries[index], Proof: flip(proof), Root: root},
					inclusionCase{Index: index, Size: size, Entry: entries[index], Proof: proof[:len(proof)-1], Root: root},
					inclusionCase{Index: index, Size: size, Entry: entries[index], Proof: append(proof, proof[0]), Root: root})
			}
			other := (index + 1) % size
			if other != index {
				c.Inclusion = append(c.Inclusion, inclusionCase{Index: other, Size: size, Entry: entries[index], Proof: proof, Root: root})
			}
			c.Inclusion = append(c.Inclusion, inclusionCase{Index: index, Size: size, Entry: append(bytes.Clone(entries[index]), 0), Proof: proof, Root: root})
		}
		for _, first := range []uint64{1, size / 2, size - 1, size, uint64(1 + rnd.IntN(int(size)))} {
			if first == 0 {
				continue
			}
			proof, err := tree.ConsistencyProof(first, size)
			if err != nil {
				t.Fatal(err)
			}
			fr := tree.HashAt(first)
			c.Consist = append(c.Consist, consistCase{First: first, Second: size, FirstRoot: fr, SecondRoot: root, Proof: proof, Valid: true})
			if len(proof) > 0 {
				c.Consist = append(c.Consist,
					consistCase{First: first, Second: size, FirstRoot: fr, SecondRoot: root, Proof: flip(proof)},
					consistCase{First: first, Second: size, FirstRoot: fr, SecondRoot: root, Proof: proof[:len(proof)-1]})
			}
			if first != size {
				c.Consist = append(c.Consist,
					consistCase{First: first, Second: size, FirstRoot: root, SecondRoot: fr, Proof: proof},
					consistCase{First: first, Second: size, FirstRoot: tree.HashAt(first + 1), SecondRoot: root, Proof: proof})
			}
		}
	}

	skey, vkey, err := merkle.GenerateKey("trail", nil)
	if err != nil {
		t.Fatal(err)
	}
	_, other, err := merkle.GenerateKey("trail", nil)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := merkle.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	c.VKey, c.OtherVKey = vkey, other
	for _, size := range []uint64{1, 17, 300} {
		cp := merkle.Checkpoint{Origin: "trail/acme/2026-03", Size: size}
		copy(cp.Root[:], tree.HashAt(size))
		signed, err := merkle.SignCheckpoint(cp, signer)
		if err != nil {
			t.Fatal(err)
		}
		note := string(signed)
		c.Notes = append(c.Notes,
			noteCase{Note: note, Origin: cp.Origin, Size: size, Root: cp.Root[:], Key: "vkey", Valid: true},
			noteCase{Note: note, Origin: cp.Origin, Size: size, Root: cp.Root[:], Key: "other_vkey"},
			noteCase{Note: strings.Replace(note, fmt.Sprintf("\n%d\n", size), fmt.Sprintf("\n%d\n", size+1), 1), Origin: cp.Origin, Size: size + 1, Root: cp.Root[:], Key: "vkey"},
			noteCase{Note: strings.Replace(note, "trail/acme", "trail/evil", 1), Origin: "trail/evil/2026-03", Size: size, Root: cp.Root[:], Key: "vkey"},
			noteCase{Note: strings.TrimSuffix(note, "\n"), Origin: cp.Origin, Size: size, Root: cp.Root[:], Key: "vkey"},
			noteCase{Note: note[:strings.LastIndex(note, "\n\n")+2], Origin: cp.Origin, Size: size, Root: cp.Root[:], Key: "vkey"})
	}

	for i, link := range []*trailv1.PartitionLink{nil, {Partition: "2026-02", Size: 1 << 40, Root: tree.HashAt(5)}} {
		en := &trailv1.Entry{
			Event: &trailv1.Event{TenantId: "acme", EventId: fmt.Sprintf("e-%d", i), Category: trailv1.Category_CATEGORY_DATA_ACCESS,
				Action: "record.view", Actor: &trailv1.Actor{Id: "alice"}, OccurredAt: timestamppb.Now(),
				Attributes: map[string]string{"partition": "decoy"}},
			SequencerTime: timestamppb.Now(), Partition: "2026-03", LeafIndex: uint64(i) * 300_000_000_000,
			PrevLeafHash: tree.LeafHash(uint64(i)), PrevPartition: link,
		}
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(en)
		if err != nil {
			t.Fatal(err)
		}
		ec := entryCase{Bytes: b, Partition: en.Partition, LeafIndex: en.LeafIndex, PrevLeafHash: en.PrevLeafHash}
		if link != nil {
			ec.LinkPart, ec.LinkSize = link.Partition, link.Size
		}
		c.Entries = append(c.Entries, ec)
	}

	for _, content := range []any{
		map[string]any{"a": "x  y", "b": []any{1, 2.5, true, nil}, "c": map[string]any{}},
		map[string]any{"s": "quote \" backslash \\ tab \t newline \n unicode é \u2028 <html>", "n": -0.5e10},
		[]any{"", []any{}, map[string]any{"k": "}{][,:"}},
	} {
		var compact bytes.Buffer
		enc := json.NewEncoder(&compact)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(content); err != nil {
			t.Fatal(err)
		}
		raw := bytes.TrimSuffix(compact.Bytes(), []byte("\n"))
		var doc bytes.Buffer
		enc = json.NewEncoder(&doc)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		if err := enc.Encode(map[string]any{"attestation": map[string]any{"digest": "x"}, "content": json.RawMessage(raw), "z": 1}); err != nil {
			t.Fatal(err)
		}
		c.JSON = append(c.JSON, jsonCase{Indented: doc.String(), Compact: string(raw)})
	}
	var zbuf bytes.Buffer
	zw := zip.NewWriter(&zbuf)
	c.ZipMembers = map[string][]byte{}
	for i, method := range []uint16{zip.Deflate, zip.Deflate, zip.Store} {
		name := fmt.Sprintf("report-%d.%s", i, []string{"json", "csv", "pdf"}[i])
		data := bytes.Repeat(entries[i], 50+i)
		w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: method})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data)
		c.ZipMembers[name] = data
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	c.Zip = zbuf.Bytes()

	// Garbage: random bytes, and valid inputs cut or with bytes changed.
	valid := [][]byte{c.Zip, c.Entries[1].Bytes, []byte(c.Notes[0].Note), []byte(c.JSON[0].Indented), []byte(vkey)}
	for i := range 400 {
		var g []byte
		if i%2 == 0 {
			g = make([]byte, rnd.IntN(120))
			for j := range g {
				g[j] = byte(rnd.Uint32())
			}
		} else {
			g = bytes.Clone(valid[i/2%len(valid)])
			if rnd.IntN(2) == 0 {
				g = g[:rnd.IntN(len(g))]
			}
			for range 1 + rnd.IntN(4) {
				if len(g) > 0 {
					g[rnd.IntN(len(g))] = byte(rnd.Uint32())
				}
			}
		}
		c.Garbage = append(c.Garbage, g)
	}
	return c
}
