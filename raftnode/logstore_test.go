package raftnode

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

func openTestLogStore(t testing.TB, dir string) *logStore {
	t.Helper()
	s, err := openLogStore(dir, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func testLog(i uint64) *raft.Log {
	return &raft.Log{
		Index: i, Term: i/10 + 1, Type: raft.LogCommand,
		Data: fmt.Appendf(nil, "entry-%d", i), Extensions: []byte{byte(i)},
		AppendedAt: time.Unix(0, int64(i)*1000),
	}
}

func checkBounds(t *testing.T, s raftStore, first, last uint64) {
	t.Helper()
	f, _ := s.FirstIndex()
	l, _ := s.LastIndex()
	if f != first || l != last {
		t.Fatalf("bounds %d..%d, want %d..%d", f, l, first, last)
	}
}

func openKind(t testing.TB, kind LogStoreKind, dir string) raftStore {
	t.Helper()
	s, err := openRaftStore(&Config{LogStore: kind}, dir, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestLogStore runs both Raft log kinds through what Raft does to them:
// appends, reads, prefix and suffix truncation, the stable store, and a
// reopen in the same process.
func TestLogStore(t *testing.T) {
	for _, kind := range []LogStoreKind{LogStoreWAL, LogStorePebble} {
		t.Run(string(kind), func(t *testing.T) { testLogStore(t, kind) })
	}
}

func testLogStore(t *testing.T, kind LogStoreKind) {
	dir := t.TempDir()
	s := openKind(t, kind, dir)
	checkBounds(t, s, 0, 0)
	var logs []*raft.Log
	for i := uint64(1); i <= 100; i++ {
		logs = append(logs, testLog(i))
	}
	if err := s.StoreLogs(logs[:50]); err != nil {
		t.Fatal(err)
	}
	if err := s.StoreLog(logs[50]); err != nil {
		t.Fatal(err)
	}
	if err := s.StoreLogs(logs[51:]); err != nil {
		t.Fatal(err)
	}
	checkBounds(t, s, 1, 100)

	var got raft.Log
	if err := s.GetLog(42, &got); err != nil {
		t.Fatal(err)
	}
	want := testLog(42)
	if got.Index != 42 || got.Term != want.Term || got.Type != want.Type || !bytes.Equal(got.Data, want.Data) ||
		!bytes.Equal(got.Extensions, want.Extensions) || !got.AppendedAt.Equal(want.AppendedAt) {
		t.Fatalf("GetLog(42) = %+v, want %+v", got, want)
	}
	if err := s.GetLog(101, &got); !errors.Is(err, raft.ErrLogNotFound) {
		t.Fatalf("GetLog(101): %v", err)
	}

	if err := s.DeleteRange(1, 10); err != nil { // prefix, after a snapshot
		t.Fatal(err)
	}
	checkBounds(t, s, 11, 100)
	if err := s.GetLog(5, &got); !errors.Is(err, raft.ErrLogNotFound) {
		t.Fatalf("GetLog below the first index: %v", err)
	}
	if err := s.DeleteRange(91, 100); err != nil { // conflicting suffix on a follower
		t.Fatal(err)
	}
	checkBounds(t, s, 11, 90)
	if err := s.StoreLogs([]*raft.Log{testLog(91)}); err != nil {
		t.Fatal(err)
	}
	checkBounds(t, s, 11, 91)

	if err := s.SetUint64([]byte("CurrentTerm"), 7); err != nil {
		t.Fatal(err)
	}
	if err := s.Set([]byte("LastVoteCand"), []byte("n1")); err != nil {
		t.Fatal(err)
	}
	// Raft reads missing keys at first start: zero, or an error whose text
	// is "not found".
	if v, err := s.GetUint64([]byte("missing")); v != 0 || (err != nil && err.Error() != "not found") {
		t.Fatalf("GetUint64(missing): %d, %v", v, err)
	}

	// Everything survives a reopen in the same process.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openKind(t, kind, dir)
	defer s.Close()
	checkBounds(t, s, 11, 91)
	if err := s.GetLog(91, &got); err != nil || !bytes.Equal(got.Data, testLog(91).Data) {
		t.Fatalf("GetLog(91) after reopen: %v", err)
	}
	if v, err := s.GetUint64([]byte("CurrentTerm")); err != nil || v != 7 {
		t.Fatalf("GetUint64 after reopen: %d, %v", v, err)
	}
	if v, err := s.Get([]byte("LastVoteCand")); err != nil || string(v) != "n1" {
		t.Fatalf("Get after reopen: %q, %v", v, err)
	}
}

// TestPebbleLogStoreGap: after a snapshot install Raft may continue the
// log past a gap; the Pebble store, which is not monotonic, allows it.
func TestPebbleLogStoreGap(t *testing.T) {
	s := openTestLogStore(t, filepath.Join(t.TempDir(), "log"))
	defer s.Close()
	if err := s.StoreLogs([]*raft.Log{testLog(1), testLog(2)}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteRange(1, 2); err != nil {
		t.Fatal(err)
	}
	checkBounds(t, s, 0, 0)
	if err := s.StoreLogs([]*raft.Log{testLog(500), testLog(501)}); err != nil {
		t.Fatal(err)
	}
	checkBounds(t, s, 500, 501)
	if _, err := s.Get([]byte("missing")); err == nil || err.Error() != "not found" {
		t.Fatalf("Get(missing): %v", err)
	}
}

func TestLogStoreKindIsSticky(t *testing.T) {
	dir := t.TempDir()
	openKind(t, LogStoreWAL, dir).Close()
	if _, err := openRaftStore(&Config{LogStore: LogStorePebble}, dir, slog.New(slog.DiscardHandler)); err == nil {
		t.Fatal("opened a Pebble log over an existing WAL")
	}
}

func TestDecodeLogRejectsGarbage(t *testing.T) {
	good := encodeLog(nil, testLog(3))
	for name, b := range map[string][]byte{
		"empty":       nil,
		"bad version": append([]byte{9}, good[1:]...),
		"truncated":   good[:len(good)-3],
		"trailing":    append(append([]byte(nil), good...), 0),
	} {
		var l raft.Log
		if err := decodeLog(b, &l); err == nil {
			t.Errorf("%s: decoded %+v", name, l)
		}
	}
}

// BenchmarkLogStore measures fsync'd StoreLogs of one entry per call, as
// the leader's Raft loop issues them, for both log kinds: 1 MiB entries (a
// full group-commit batch) and small ones (a lone event).
func BenchmarkLogStore(b *testing.B) {
	for _, kind := range []LogStoreKind{LogStoreWAL, LogStorePebble} {
		for _, size := range []int{1 << 20, 512} {
			b.Run(fmt.Sprintf("%s/entry=%d", kind, size), func(b *testing.B) { benchLogStore(b, kind, size) })
		}
	}
}

func benchLogStore(b *testing.B, kind LogStoreKind, size int) {
	s := openKind(b, kind, b.TempDir())
	defer s.Close()
	data := bytes.Repeat([]byte{0xa5}, size)
	b.SetBytes(int64(size))
	b.ResetTimer()
	for i := range b.N {
		l := &raft.Log{Index: uint64(i + 1), Term: 1, Type: raft.LogCommand, Data: data}
		if err := s.StoreLogs([]*raft.Log{l}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/fsync")
}
