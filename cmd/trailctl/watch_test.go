package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trailaudit/trail/merkle"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// engineSource is a logSource over a fixture's engine, signing as the
// server does. Tests swap fixtures underneath it to show the witness a
// log that forks or rolls back.
type engineSource struct {
	f        *fixture
	err      error                                        // returned by every call when set
	tamper   func(r *trailv1.GetConsistencyProofResponse) // edits proofs when set
	hide     string                                       // partition left out of listings
	failN    int                                          // Checkpoint calls that fail first
	onCall   func(n int)                                  // observes each Checkpoint call
	checkpts int
}

func (s *engineSource) Partitions(ctx context.Context, tenant string) ([]string, error) {
	if s.err != nil {
		return nil, s.err
	}
	infos, err := s.f.eng.Partitions(ctx, tenant)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, pi := range infos {
		if p := pi.Month.String(); p != s.hide {
			out = append(out, p)
		}
	}
	return out, nil
}

func (s *engineSource) Checkpoint(_ context.Context, tenant, partition string) (*trailv1.Checkpoint, error) {
	s.checkpts++
	if s.onCall != nil {
		s.onCall(s.checkpts)
	}
	if s.err != nil {
		return nil, s.err
	}
	if s.checkpts <= s.failN {
		return nil, ioError(errors.New("connection refused"))
	}
	return s.f.checkpoint(tenant, partition, 0), nil
}

func (s *engineSource) Consistency(_ context.Context, tenant, partition string, from, to uint64) (*trailv1.GetConsistencyProofResponse, error) {
	if s.err != nil {
		return nil, s.err
	}
	r := s.f.consistency(tenant, partition, from, to)
	if s.tamper != nil {
		s.tamper(r)
	}
	return r, nil
}

func newTestWitness(t *testing.T, f *fixture, src logSource) *witness {
	t.Helper()
	v, err := merkle.NewVerifier(f.vkey)
	if err != nil {
		t.Fatal(err)
	}
	return &witness{
		src: src, trust: trust{verifier: v, logName: testLog}, state: stateDir{root: t.TempDir()},
		tenant: "acme", now: func() time.Time { return dec },
	}
}

func statuses(obs []observation) []string {
	out := make([]string, len(obs))
	for i, o := range obs {
		out[i] = o.Origin + " " + o.Status
	}
	return out
}

func pollOK(t *testing.T, w *witness) []string {
	t.Helper()
	obs, err := w.poll(context.Background())
	if err != nil {
		t.Fatalf("poll: %v", err)
	}
	return statuses(obs)
}

func TestWitnessFollowsGrowingLog(t *testing.T) {
	f := newFixture(t)
	f.appendEvents("acme", "acme", 0, 10, nov)
	w := newTestWitness(t, f, &engineSource{f: f})

	steps := []struct {
		grow func()
		want []string
	}{
		{nil, []string{"test/acme/2026-11 new"}},
		{func() { f.appendEvents("acme", "acme", 10, 7, nov.Add(time.Minute)) }, []string{"test/acme/2026-11 consistent"}},
		{nil, []string{"test/acme/2026-11 unchanged"}},
		{func() { f.appendEvents("acme", "acme", 17, 33, nov.Add(time.Hour)) }, []string{"test/acme/2026-11 consistent"}},
		{func() { f.appendEvents("acme", "acme", 50, 3, dec) }, []string{"test/acme/2026-11 unchanged", "test/acme/2026-12 new"}},
		{func() { f.appendEvents("acme", "acme", 53, 1, dec.Add(time.Second)) }, []string{"test/acme/2026-11 unchanged", "test/acme/2026-12 consistent"}},
	}
	for i, s := range steps {
		if s.grow != nil {
			s.grow()
		}
		if got := pollOK(t, w); !slices.Equal(got, s.want) {
			t.Fatalf("poll %d: %q, want %q", i, got, s.want)
		}
	}
	saved, err := w.state.load("acme", "2026-11")
	if err != nil {
		t.Fatal(err)
	}
	if want := f.checkpoint("acme", "2026-11", 0).GetSignedNote(); string(saved) != want {
		t.Errorf("saved state is not the latest checkpoint:\n%s\nwant\n%s", saved, want)
	}
}

func TestWitnessDetectsInconsistency(t *testing.T) {
	for _, tc := range []struct {
		name string
		// seen is the log the witness first saw; then it polls shown.
		seen, shown func(t *testing.T, base *fixture) *fixture
		src         func(s *engineSource)
		all         bool // watch every partition, not just 2026-11
		want        string
	}{{
		name:  "fork at the same size",
		seen:  func(t *testing.T, base *fixture) *fixture { return base },
		shown: func(t *testing.T, base *fixture) *fixture { return forkedFixture(t, base) },
		want:  "the log signed two different roots for size 40",
	}, {
		name:  "fork that grew",
		seen:  func(t *testing.T, base *fixture) *fixture { return prefixFixture(t, base, 25) },
		shown: func(t *testing.T, base *fixture) *fixture { return forkedFixture(t, base) },
		want:  "the log signed two different roots for size 25",
	}, {
		name:  "rollback",
		seen:  func(t *testing.T, base *fixture) *fixture { return base },
		shown: func(t *testing.T, base *fixture) *fixture { return prefixFixture(t, base, 25) },
		want:  "the tree size went backwards from 40 to 25",
	}, {
		name:  "tampered proof",
		seen:  func(t *testing.T, base *fixture) *fixture { return prefixFixture(t, base, 25) },
		shown: func(t *testing.T, base *fixture) *fixture { return base },
		src:   func(s *engineSource) { s.tamper = func(r *trailv1.GetConsistencyProofResponse) { r.Proof[1][0] ^= 1 } },
		want:  "the consistency proof from size 25 to 40 does not verify",
	}, {
		name:  "proof of other sizes",
		seen:  func(t *testing.T, base *fixture) *fixture { return prefixFixture(t, base, 25) },
		shown: func(t *testing.T, base *fixture) *fixture { return base },
		src: func(s *engineSource) {
			s.tamper = func(r *trailv1.GetConsistencyProofResponse) { *r = *s.f.consistency("acme", "2026-11", 32, 40) }
		},
		want: "asked for a proof from size 25 to 40, got one from 32 to 40",
	}, {
		name:  "vanished partition",
		seen:  func(t *testing.T, base *fixture) *fixture { return base },
		shown: func(t *testing.T, base *fixture) *fixture { return base },
		src:   func(s *engineSource) { s.hide = "2026-12" },
		all:   true,
		want:  "the log no longer lists partition 2026-12",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			base := standardFixture(t)
			src := &engineSource{f: tc.seen(t, base)}
			w := newTestWitness(t, base, src)
			if !tc.all {
				w.partition = "2026-11"
			}
			pollOK(t, w)
			before, _ := w.state.load("acme", "2026-11")

			src.f = tc.shown(t, base)
			if tc.src != nil {
				tc.src(src)
			}
			_, err := w.poll(context.Background())
			var inc *inconsistency
			if !errors.As(err, &inc) {
				t.Fatalf("poll = %v, want an inconsistency", err)
			}
			if !strings.Contains(inc.reason, tc.want) {
				t.Errorf("reason %q, want %q", inc.reason, tc.want)
			}
			if exitCode(err) != exitFailed {
				t.Errorf("exit code %d, want %d", exitCode(err), exitFailed)
			}
			if !strings.Contains(inc.report(), "--- saved checkpoint ---\n"+testLog+"/acme/") {
				t.Errorf("report lacks the saved checkpoint:\n%s", inc.report())
			}
			after, _ := w.state.load("acme", "2026-11")
			if !bytes.Equal(before, after) {
				t.Errorf("state changed after an inconsistency")
			}
		})
	}
}

// prefixFixture is a log under base's key holding only the first n of
// acme's 2026-11 entries: identical bytes, as Apply is deterministic.
func prefixFixture(t testing.TB, base *fixture, n int) *fixture {
	f := newFixture(t)
	f.signer, f.vkey, f.vkeyFile = base.signer, base.vkey, base.vkeyFile
	f.appendEvents("acme", "acme", 0, min(n, 25), nov)
	f.appendEvents("other", "other", 0, 5, nov)
	if n > 25 {
		f.appendEvents("acme", "acme", 25, n-25, nov.Add(time.Hour))
	}
	return f
}

func TestWitnessRejectsUnsignedCheckpoint(t *testing.T) {
	base := standardFixture(t)
	src := &engineSource{f: base}
	w := newTestWitness(t, base, src)
	w.partition = "2026-11"
	pollOK(t, w)
	before, _ := w.state.load("acme", "2026-11")

	impostor := newFixture(t) // same events, its own key
	impostor.appendEvents("acme", "acme", 0, 25, nov)
	src.f = impostor
	_, err := w.poll(context.Background())
	var inc *inconsistency
	if err == nil || errors.As(err, &inc) || !strings.Contains(err.Error(), "does not verify") {
		t.Fatalf("poll = %v, want a verification failure", err)
	}
	if exitCode(err) != exitFailed {
		t.Errorf("exit code %d, want %d", exitCode(err), exitFailed)
	}
	if after, _ := w.state.load("acme", "2026-11"); !bytes.Equal(before, after) {
		t.Errorf("state changed")
	}
}

func TestWitnessRejectsAlteredState(t *testing.T) {
	f := standardFixture(t)
	w := newTestWitness(t, f, &engineSource{f: f})
	w.partition = "2026-11"
	pollOK(t, w)
	path := w.state.file("acme", "2026-11")
	note, _ := os.ReadFile(path)
	os.WriteFile(path, bytes.Replace(note, []byte("\n40\n"), []byte("\n39\n"), 1), 0o644)
	_, err := w.poll(context.Background())
	if err == nil || !strings.Contains(err.Error(), "does not verify (wrong --vkey, or the file was altered)") {
		t.Fatalf("poll = %v", err)
	}
}

func TestCompareCheckpoints(t *testing.T) {
	r1, r2 := merkle.Hash{1}, merkle.Hash{2}
	for _, tc := range []struct {
		name          string
		saved, latest merkle.Checkpoint
		proof         bool
		reason        string
	}{
		{"unchanged", merkle.Checkpoint{Size: 5, Root: r1}, merkle.Checkpoint{Size: 5, Root: r1}, false, ""},
		{"grew", merkle.Checkpoint{Size: 5, Root: r1}, merkle.Checkpoint{Size: 6, Root: r2}, true, ""},
		{"same size, other root", merkle.Checkpoint{Size: 5, Root: r1}, merkle.Checkpoint{Size: 5, Root: r2}, false, "two different roots for size 5"},
		{"shrank", merkle.Checkpoint{Size: 5, Root: r1}, merkle.Checkpoint{Size: 4, Root: r1}, false, "went backwards from 5 to 4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			proof, reason := compareCheckpoints(tc.saved, tc.latest)
			if proof != tc.proof || !strings.Contains(reason, tc.reason) || (tc.reason == "") != (reason == "") {
				t.Errorf("compareCheckpoints = %t, %q; want %t, %q", proof, reason, tc.proof, tc.reason)
			}
		})
	}
}

func TestStateDir(t *testing.T) {
	s := stateDir{root: filepath.Join(t.TempDir(), "state")}
	if b, err := s.load("acme", "2026-11"); b != nil || err != nil {
		t.Fatalf("load of nothing = %q, %v", b, err)
	}
	if got, err := s.saved("acme"); len(got) != 0 || err != nil {
		t.Fatalf("saved of nothing = %q, %v", got, err)
	}
	for _, note := range []string{"first\n", "second, longer\n"} {
		if err := s.save("acme", "2026-11", []byte(note)); err != nil {
			t.Fatal(err)
		}
		if b, err := s.load("acme", "2026-11"); string(b) != note || err != nil {
			t.Fatalf("load = %q, %v; want %q", b, err, note)
		}
	}
	if err := s.save("acme", "2026-12", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.saveEvidence("acme", "2026-12", dec, "report"); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(s.dir("acme"), "notes.txt"), nil, 0o644)
	got, err := s.saved("acme")
	if err != nil || !slices.Equal(got, []string{"2026-11", "2026-12"}) {
		t.Errorf("saved = %q, %v", got, err)
	}
	// Atomic writes leave no temporary files behind.
	entries, _ := os.ReadDir(s.dir("acme"))
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp") {
			t.Errorf("temporary file left: %s", e.Name())
		}
	}
}

func TestWatchLoop(t *testing.T) {
	t.Run("inconsistency is loud and saved", func(t *testing.T) {
		base := standardFixture(t)
		src := &engineSource{f: base}
		w := newTestWitness(t, base, src)
		pollOK(t, w)
		src.f = forkedFixture(t, base)
		e, _, stderr := bufferEnv()
		err := watchLoop(context.Background(), e, w, time.Hour, false, false)
		if exitCode(err) != exitFailed {
			t.Fatalf("watchLoop = %v (exit %d), want exit 1", err, exitCode(err))
		}
		for _, s := range []string{"INCONSISTENCY DETECTED in test/acme/2026-11", "--- saved checkpoint ---", "--- new checkpoint ---", "evidence saved to "} {
			if !strings.Contains(stderr.String(), s) {
				t.Errorf("stderr lacks %q:\n%s", s, stderr)
			}
		}
		path := strings.TrimSpace(stderr.String()[strings.LastIndex(stderr.String(), "evidence saved to ")+len("evidence saved to "):])
		if b, err := os.ReadFile(path); err != nil || !strings.Contains(string(b), "two different roots") {
			t.Errorf("evidence file %s: %v\n%s", path, err, b)
		}
	})
	t.Run("network error with --once", func(t *testing.T) {
		f := standardFixture(t)
		w := newTestWitness(t, f, &engineSource{f: f, err: ioError(errors.New("connection refused"))})
		e, _, _ := bufferEnv()
		if err := watchLoop(context.Background(), e, w, time.Hour, true, false); exitCode(err) != exitIO {
			t.Fatalf("watchLoop = %v, want exit 3", err)
		}
	})
	t.Run("network errors are retried", func(t *testing.T) {
		f := standardFixture(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		// The first poll's first checkpoint call fails; the second poll
		// succeeds for both partitions, and the test then stops the loop.
		src := &engineSource{f: f, failN: 1}
		src.onCall = func(n int) {
			if n == 3 {
				cancel()
			}
		}
		w := newTestWitness(t, f, src)
		e, stdout, stderr := bufferEnv()
		if err := watchLoop(ctx, e, w, time.Millisecond, false, true); err != nil {
			t.Fatalf("watchLoop = %v", err)
		}
		if !strings.Contains(stderr.String(), "poll failed, retrying") {
			t.Errorf("stderr: %s", stderr)
		}
		if !strings.Contains(stdout.String(), `"status":"new"`) {
			t.Errorf("stdout: %s", stdout)
		}
	})
}

func bufferEnv() (*env, *bytes.Buffer, *bytes.Buffer) {
	var out, errb bytes.Buffer
	return &env{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: offlineEnv, now: time.Now}, &out, &errb
}
