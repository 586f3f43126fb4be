package witness

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/trailaudit/trail/merkle"
)

// post sends a raw add-checkpoint body and returns the status, content
// type and body.
func post(t *testing.T, w *testWitness, body []byte) (int, string, string) {
	t.Helper()
	resp, err := w.http.Client().Post(w.http.URL+AddCheckpointPath, "text/plain", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
}

// monitored fetches the monitoring endpoint's checkpoint of origin.
func monitored(t *testing.T, w *testWitness, origin string) (int, []byte) {
	t.Helper()
	resp, err := w.http.Client().Get(w.http.URL + "/" + originHash(origin) + "/checkpoint")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// openCosigned checks that signed carries a cosignature by the witness
// that a third-party verifier of the spec accepts, and the log's
// signature, with x/mod/sumdb/note; it returns the checkpoint.
func openCosigned(t *testing.T, w *testWitness, l *testLog, signed []byte) merkle.Checkpoint {
	t.Helper()
	n, err := note.Open(signed, note.VerifierList(newSpecVerifier(t, w.vkey)))
	if err != nil {
		t.Fatalf("third-party cosignature verification: %v\n%s", err, signed)
	}
	if len(n.Sigs) != 1 {
		t.Fatalf("%d verified cosignatures, want 1", len(n.Sigs))
	}
	if _, err := note.Open(signed, note.VerifierList(l.verifier)); err != nil {
		t.Fatalf("log signature: %v\n%s", err, signed)
	}
	cp, err := merkle.ParseCheckpoint([]byte(n.Text))
	if err != nil {
		t.Fatal(err)
	}
	return cp
}

func TestAddCheckpointCosigns(t *testing.T) {
	l := newTestLog(t, "log.test")
	w := startWitness(t, l)
	ctx := context.Background()
	l.grow(13)
	for _, step := range []struct{ old, size uint64 }{
		{0, 5},  // first sight: no proof
		{5, 5},  // the same checkpoint again
		{5, 13}, // grown: consistency proof
	} {
		req := l.request(step.old, step.size)
		sigs, err := w.client.AddCheckpoint(ctx, req)
		if err != nil {
			t.Fatalf("old %d size %d: %v", step.old, step.size, err)
		}
		cp := openCosigned(t, w, l, append(req.Checkpoint, sigs...))
		if cp.Size != step.size {
			t.Fatalf("cosigned size %d, want %d", cp.Size, step.size)
		}
		code, stored := monitored(t, w, l.origin())
		if code != http.StatusOK {
			t.Fatalf("monitoring endpoint: %d", code)
		}
		if cp := openCosigned(t, w, l, stored); cp.Size != step.size {
			t.Fatalf("monitoring endpoint serves size %d, want %d", cp.Size, step.size)
		}
	}
	if code, _ := monitored(t, w, "log.test/other/2026-12"); code != http.StatusNotFound {
		t.Fatalf("monitoring an origin never cosigned: %d, want 404", code)
	}
}

// TestAddCheckpointRefusals: every refusal the protocol defines, each with
// its status code, and none changes the witness's state.
func TestAddCheckpointRefusals(t *testing.T) {
	l := newTestLog(t, "log.test")
	other := newTestLog(t, "log.test") // another key of the same name
	stranger := newTestLog(t, "stranger.test")
	w := startWitness(t, l)
	l.grow(20)
	if _, err := w.client.AddCheckpoint(context.Background(), l.request(0, 8)); err != nil {
		t.Fatal(err)
	}
	_, before := monitored(t, w, l.origin())

	forkRoot := l.tree(8).Root()
	forkRoot[0] ^= 1
	tampered := tamperSignature(t, l.checkpoint(12))
	badProof := l.proof(8, 12)
	badProof[0][0] ^= 1
	emptyZero := AddCheckpointRequest{OldSize: 0, Checkpoint: l.sign(merkle.Checkpoint{Origin: "log.test/new/2026-12", Size: 0, Root: merkle.LeafHash(nil)})}

	for _, tc := range []struct {
		name string
		body []byte
		code int
		want string
	}{
		{"malformed body", []byte("old 8\nnot base64\n\n" + string(l.checkpoint(12))), http.StatusBadRequest, "proof line 1"},
		{"no old line", l.checkpoint(12), http.StatusBadRequest, "old <size>"},
		{"unknown origin", stranger.request(0, 0).Marshal(), http.StatusNotFound, "unknown log origin"},
		{"signed by an untrusted key", AddCheckpointRequest{OldSize: 8, Proof: l.proof(8, 12), Checkpoint: other.sign(merkle.Checkpoint{Origin: l.origin(), Size: 12, Root: l.tree(12).Root()})}.Marshal(), http.StatusForbidden, "not signed"},
		{"bad signature by the trusted key", AddCheckpointRequest{OldSize: 8, Proof: l.proof(8, 12), Checkpoint: tampered}.Marshal(), http.StatusForbidden, "not signed"},
		{"old size above the checkpoint", AddCheckpointRequest{OldSize: 8, Checkpoint: l.checkpoint(5)}.Marshal(), http.StatusBadRequest, "above the checkpoint size"},
		{"stale old size", l.request(5, 12).Marshal(), http.StatusConflict, "8\n"},
		{"old size zero once known", l.request(0, 12).Marshal(), http.StatusConflict, "8\n"},
		{"rolled back, old size claimed", AddCheckpointRequest{OldSize: 6, Proof: l.proof(6, 6), Checkpoint: l.checkpoint(6)}.Marshal(), http.StatusConflict, "8\n"},
		{"inconsistent proof", AddCheckpointRequest{OldSize: 8, Proof: badProof, Checkpoint: l.checkpoint(12)}.Marshal(), http.StatusUnprocessableEntity, "not consistent"},
		{"fork at the same size", AddCheckpointRequest{OldSize: 8, Checkpoint: l.sign(merkle.Checkpoint{Origin: l.origin(), Size: 8, Root: forkRoot})}.Marshal(), http.StatusUnprocessableEntity, "not consistent"},
		{"same size with a proof", AddCheckpointRequest{OldSize: 8, Proof: l.proof(7, 8), Checkpoint: l.checkpoint(8)}.Marshal(), http.StatusUnprocessableEntity, "not consistent"},
		{"size zero with a non-empty root", emptyZero.Marshal(), http.StatusUnprocessableEntity, "empty tree"},
		{"new origin, proof from zero", AddCheckpointRequest{OldSize: 0, Proof: l.proof(4, 12), Checkpoint: l.sign(merkle.Checkpoint{Origin: "log.test/new/2026-12", Size: 12, Root: l.tree(12).Root()})}.Marshal(), http.StatusUnprocessableEntity, "not consistent"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, ctype, body := post(t, w, tc.body)
			if code != tc.code || !strings.Contains(body, tc.want) {
				t.Fatalf("status %d %q, want %d mentioning %q", code, body, tc.code, tc.want)
			}
			if code == http.StatusConflict && (ctype != SizeContentType || body != "8\n") {
				t.Fatalf("409 answer %q of type %q, want \"8\\n\" of type %s", body, ctype, SizeContentType)
			}
			if _, after := monitored(t, w, l.origin()); !bytes.Equal(after, before) {
				t.Fatalf("the refused request changed the state:\n%s", after)
			}
			if code, _ := monitored(t, w, "log.test/new/2026-12"); code != http.StatusNotFound {
				t.Fatalf("the refused request stored a new origin")
			}
		})
	}
	if code, _, _ := post(t, w, make([]byte, MaxRequestBytes+1)); code != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversized body: %d", code)
	}
	resp, err := w.http.Client().Get(w.http.URL + AddCheckpointPath)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET add-checkpoint: %d, want 405", resp.StatusCode)
	}
}

// TestClientConflictRetry: the client reports the witness's size, from
// which a log retries.
func TestClientConflict(t *testing.T) {
	l := newTestLog(t, "log.test")
	w := startWitness(t, l)
	l.grow(10)
	ctx := context.Background()
	if _, err := w.client.AddCheckpoint(ctx, l.request(0, 4)); err != nil {
		t.Fatal(err)
	}
	_, err := w.client.AddCheckpoint(ctx, l.request(0, 10))
	var conflict *ConflictError
	if !errors.As(err, &conflict) || conflict.Size != 4 {
		t.Fatalf("AddCheckpoint from 0 = %v, want a conflict at size 4", err)
	}
	if _, err := w.client.AddCheckpoint(ctx, l.request(conflict.Size, 10)); err != nil {
		t.Fatalf("retry from the witness's size: %v", err)
	}
	var refused *StatusError
	if _, err := w.client.AddCheckpoint(ctx, AddCheckpointRequest{OldSize: 10, Checkpoint: l.checkpoint(4)}); !errors.As(err, &refused) || refused.Code != http.StatusBadRequest {
		t.Fatalf("rolled back checkpoint = %v, want HTTP 400", err)
	}
}

// TestClientRejectsWrongCosigner: cosignatures by a key other than the
// one the client trusts are not accepted as the witness's.
func TestClientRejectsWrongCosigner(t *testing.T) {
	l := newTestLog(t, "log.test")
	w := startWitness(t, l)
	l.grow(3)
	_, otherV, err := GenerateKey("witness.test/w1")
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewCosignatureVerifier(otherV)
	if err != nil {
		t.Fatal(err)
	}
	c := &Client{URL: w.http.URL, Verifier: v, HTTP: w.http.Client()}
	if _, err := c.AddCheckpoint(context.Background(), l.request(0, 3)); err == nil || !strings.Contains(err.Error(), "no valid cosignature") {
		t.Fatalf("AddCheckpoint with the wrong witness key = %v", err)
	}
}

// TestStatePersists: a restarted witness remembers what it cosigned, and
// refuses to work from a state file that was altered.
func TestStatePersists(t *testing.T) {
	l := newTestLog(t, "log.test")
	w := startWitness(t, l)
	l.grow(9)
	ctx := context.Background()
	if _, err := w.client.AddCheckpoint(ctx, l.request(0, 6)); err != nil {
		t.Fatal(err)
	}
	w.http.Close()

	w2 := startWitnessWith(t, w.skey, w.vkey, w.dir, l)
	var conflict *ConflictError
	if _, err := w2.client.AddCheckpoint(ctx, l.request(0, 9)); !errors.As(err, &conflict) || conflict.Size != 6 {
		t.Fatalf("restarted witness: %v, want a conflict at size 6", err)
	}
	if _, err := w2.client.AddCheckpoint(ctx, l.request(6, 9)); err != nil {
		t.Fatal(err)
	}

	// Replace the state with a note the witness never cosigned: the log's
	// own checkpoint of a smaller size (a rollback of the witness's disk).
	path := filepath.Join(w.dir, originHash(l.origin()))
	if err := os.WriteFile(path, l.checkpoint(2), 0o600); err != nil {
		t.Fatal(err)
	}
	var refused *StatusError
	if _, err := w2.client.AddCheckpoint(ctx, l.request(2, 9)); !errors.As(err, &refused) || refused.Code != http.StatusInternalServerError {
		t.Fatalf("with an altered state file: %v, want HTTP 500", err)
	}
}

// TestConcurrentSubmissionsNeverRollBack: of concurrent requests from the
// same old size, exactly one is cosigned; the others conflict, and the
// stored size is the cosigned one's.
func TestConcurrentSubmissionsNeverRollBack(t *testing.T) {
	l := newTestLog(t, "log.test")
	w := startWitness(t, l)
	l.grow(40)
	ctx := context.Background()
	if _, err := w.client.AddCheckpoint(ctx, l.request(0, 4)); err != nil {
		t.Fatal(err)
	}
	reqs := make([]AddCheckpointRequest, 0, 8)
	for size := uint64(5); size < 40; size += 5 {
		reqs = append(reqs, l.request(4, size))
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var won []uint64
	for _, r := range reqs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := w.client.AddCheckpoint(ctx, r)
			var conflict *ConflictError
			switch {
			case err == nil:
				mu.Lock()
				won = append(won, sizeOf(t, r.Checkpoint))
				mu.Unlock()
			case errors.As(err, &conflict):
			default:
				t.Errorf("size %d: %v", sizeOf(t, r.Checkpoint), err)
			}
		}()
	}
	wg.Wait()
	if len(won) != 1 {
		t.Fatalf("%d requests from size 4 were cosigned, want exactly 1", len(won))
	}
	_, stored := monitored(t, w, l.origin())
	if got := openCosigned(t, w, l, stored).Size; got != won[0] {
		t.Fatalf("stored size %d, cosigned %d", got, won[0])
	}
}

func sizeOf(t testing.TB, signed []byte) uint64 {
	t.Helper()
	text, _, _ := strings.Cut(string(signed), "\n\n")
	cp, err := merkle.ParseCheckpoint([]byte(text + "\n"))
	if err != nil {
		t.Error(err)
	}
	return cp.Size
}

// tamperSignature flips a bit of the last signature's Ed25519 bytes, so
// the line still names the key but no longer verifies.
func tamperSignature(t *testing.T, signed []byte) []byte {
	t.Helper()
	text := strings.TrimSuffix(string(signed), "\n")
	i := strings.LastIndex(text, " ")
	raw, err := base64.StdEncoding.DecodeString(text[i+1:])
	if err != nil || len(raw) < 10 {
		t.Fatalf("fixture: signature line of %q", signed)
	}
	raw[8] ^= 1
	return []byte(text[:i+1] + base64.StdEncoding.EncodeToString(raw) + "\n")
}

func TestFetchCheckpoint(t *testing.T) {
	l := newTestLog(t, "log.test")
	w := startWitness(t, l)
	l.grow(4)
	ctx := context.Background()
	if _, err := FetchCheckpoint(ctx, w.http.Client(), w.http.URL, l.origin()); !errors.Is(err, ErrNotCosigned) {
		t.Fatalf("before any cosignature: %v, want ErrNotCosigned", err)
	}
	if _, err := w.client.AddCheckpoint(ctx, l.request(0, 4)); err != nil {
		t.Fatal(err)
	}
	got, err := FetchCheckpoint(ctx, w.http.Client(), w.http.URL+"/", l.origin())
	if err != nil {
		t.Fatal(err)
	}
	if cp := openCosigned(t, w, l, got); cp.Size != 4 {
		t.Fatalf("fetched size %d, want 4", cp.Size)
	}
	resp, err := w.http.Client().Get(w.http.URL + "/NOT-A-HASH/checkpoint")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("a malformed origin hash: %d, want 404", resp.StatusCode)
	}
}
