package witness

import (
	"bytes"
	"errors"
	"testing"

	"golang.org/x/mod/sumdb/note"
)

// FuzzParseAddCheckpoint: the request parser never panics, and whatever
// it accepts re-encodes to exactly the input.
func FuzzParseAddCheckpoint(f *testing.F) {
	l := newTestLog(f, "log.test")
	l.grow(11)
	for _, r := range []AddCheckpointRequest{l.request(0, 3), l.request(3, 11), l.request(11, 11)} {
		f.Add(r.Marshal())
	}
	f.Add([]byte("old 0\n\nx"))
	f.Add([]byte("old 01\n\nx\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseAddCheckpoint(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error does not wrap ErrMalformed: %v", err)
			}
			return
		}
		if len(r.Proof) > MaxProofHashes || len(r.Checkpoint) == 0 {
			t.Fatalf("accepted %d proof hashes and a checkpoint of %d bytes", len(r.Proof), len(r.Checkpoint))
		}
		if got := r.Marshal(); !bytes.Equal(got, b) {
			t.Fatalf("accepted input re-encodes differently:\n in %q\nout %q", b, got)
		}
	})
}

// FuzzAddCheckpoint: whatever a client sends, the witness answers with a
// protocol status and never cosigns anything but a checkpoint signed by
// the log that extends what it cosigned before.
func FuzzAddCheckpoint(f *testing.F) {
	l := newTestLog(f, "log.test")
	l.grow(11)
	w := startWitness(f, l)
	first := l.request(0, 3)
	if _, _, err := w.srv.addCheckpoint(first.Marshal()); err != nil {
		f.Fatal(err)
	}
	for _, r := range []AddCheckpointRequest{l.request(3, 11), l.request(3, 3), l.request(0, 11)} {
		f.Add(r.Marshal())
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		before, _ := w.srv.state.load(originHash(l.origin()))
		prev := sizeOf(t, before)
		sig, _, err := w.srv.addCheckpoint(b)
		var rf *refusal
		if err != nil && !errors.As(err, &rf) {
			t.Fatalf("internal error on client input: %v", err)
		}
		if err != nil {
			if after, _ := w.srv.state.load(originHash(l.origin())); !bytes.Equal(before, after) {
				t.Fatalf("a refused request (%v) changed the state", err)
			}
			return
		}
		req, perr := ParseAddCheckpoint(b)
		if perr != nil || len(sig) == 0 {
			t.Fatalf("cosigned an unparsable request")
		}
		if _, err := note.Open(req.Checkpoint, note.VerifierList(l.verifier)); err != nil {
			t.Fatalf("cosigned a checkpoint the log did not sign: %v", err)
		}
		if size := sizeOf(t, req.Checkpoint); size < prev {
			t.Fatalf("cosigned size %d below the size %d cosigned before", size, prev)
		}
	})
}
