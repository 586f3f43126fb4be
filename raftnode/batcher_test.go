package raftnode

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	"github.com/trailaudit/trail/engine"
)

// fakeFuture is a raft.ApplyFuture answered by fakeRaft.
type fakeFuture struct {
	done  chan struct{}
	err   error
	resp  any
	index uint64
}

func (f *fakeFuture) Error() error  { <-f.done; return f.err }
func (f *fakeFuture) Response() any { return f.resp }
func (f *fakeFuture) Index() uint64 { return f.index }

// fakeRaft stands in for Raft under the batcher: it decodes each proposed
// entry, records it, and "applies" it after a delay with one receipt per
// event naming the event.
type fakeRaft struct {
	delay time.Duration
	fail  error

	mu       sync.Mutex
	entries  []entryInfo
	inflight atomic.Int32
	maxSeen  atomic.Int32
}

type entryInfo struct {
	time   int64
	events int
	bytes  int
}

func (r *fakeRaft) propose(cmd []byte) raft.ApplyFuture {
	f := &fakeFuture{done: make(chan struct{})}
	c, err := decodeCommand(cmd)
	if err != nil {
		panic(err)
	}
	a := c.GetAppend()
	r.mu.Lock()
	f.index = uint64(len(r.entries) + 1)
	r.entries = append(r.entries, entryInfo{time: a.GetTimeUnixNano(), events: len(a.GetEvents()), bytes: len(cmd)})
	r.mu.Unlock()
	if n := r.inflight.Add(1); n > r.maxSeen.Load() {
		r.maxSeen.Store(n)
	}
	go func() {
		time.Sleep(r.delay)
		res := &applyResult{}
		for _, ev := range a.GetEvents() {
			res.results = append(res.results, engine.Result{Receipt: engine.Receipt{EventID: ev.GetEventId()}})
		}
		f.resp, f.err = res, r.fail
		r.inflight.Add(-1)
		close(f.done)
	}()
	return f
}

func newTestBatcher(r *fakeRaft, tune func(*Config)) *batcher {
	cfg := Config{ID: "x", Dir: "x", BindAddr: "x"}
	if tune != nil {
		tune(&cfg)
	}
	if err := cfg.setDefaults(); err != nil {
		panic(err)
	}
	b := newBatcher(&cfg, r.propose, func() int64 { return 0 })
	b.start()
	return b
}

func submitEvents(b *batcher, ids ...string) (*applyResult, error) {
	p := &proposal{}
	for _, id := range ids {
		data, _ := proto.Marshal(event("acme", id))
		p.events = append(p.events, data)
		p.bytes += len(data)
	}
	return b.submit(context.Background(), "append", p)
}

// TestBatcherGroupCommit: many concurrent callers are packed into few
// entries within the bounds, at most MaxInFlight entries are outstanding,
// and every caller gets exactly its own results.
func TestBatcherGroupCommit(t *testing.T) {
	r := &fakeRaft{delay: 5 * time.Millisecond}
	b := newTestBatcher(r, func(c *Config) { c.MaxBatchEvents = 16; c.MaxInFlight = 2; c.Linger = 2 * time.Millisecond })
	defer b.stop()
	const callers = 200
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ids := []string{fmt.Sprintf("c%d-a", i), fmt.Sprintf("c%d-b", i)}
			res, err := submitEvents(b, ids...)
			if err != nil {
				errs <- err
				return
			}
			if len(res.results) != 2 || res.results[0].Receipt.EventID != ids[0] || res.results[1].Receipt.EventID != ids[1] {
				errs <- fmt.Errorf("caller %d got %+v", i, res.results)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	total := 0
	for _, e := range r.entries {
		if e.events > 16 {
			t.Fatalf("entry of %d events, bound 16", e.events)
		}
		total += e.events
	}
	if total != 2*callers {
		t.Fatalf("%d events proposed, want %d", total, 2*callers)
	}
	if len(r.entries) >= callers/2 {
		t.Fatalf("%d entries for %d callers: no group commit", len(r.entries), callers)
	}
	if m := r.maxSeen.Load(); m > 2 {
		t.Fatalf("%d entries in flight, limit 2", m)
	}
	t.Logf("%d callers -> %d entries", callers, len(r.entries))
}

// TestBatcherBytesBound: an entry stays within MaxBatchBytes unless a
// single caller's events exceed it alone.
func TestBatcherBytesBound(t *testing.T) {
	r := &fakeRaft{delay: 2 * time.Millisecond}
	one, _ := proto.Marshal(event("acme", "c00-0"))
	limit := 5 * len(one)
	b := newTestBatcher(r, func(c *Config) { c.MaxBatchBytes = limit; c.MaxInFlight = 1 })
	defer b.stop()
	var wg sync.WaitGroup
	for i := range 60 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := submitEvents(b, fmt.Sprintf("c%02d-0", i)); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	for _, e := range r.entries {
		if e.events > 5 {
			t.Fatalf("entry of %d events (%d bytes), bound %d bytes", e.events, e.bytes, limit)
		}
	}
}

// TestBatcherTimeMonotonic: sequencer time never goes back, even when the
// wall clock does, and never below what was already applied.
func TestBatcherTimeMonotonic(t *testing.T) {
	clock := newFakeClock(time.Unix(1000, 0))
	r := &fakeRaft{}
	cfg := Config{ID: "x", Dir: "x", BindAddr: "x", Clock: clock.now, MaxInFlight: 1}
	cfg.setDefaults()
	var floor atomic.Int64
	b := newBatcher(&cfg, r.propose, floor.Load)
	b.start()
	defer b.stop()
	steps := []time.Time{time.Unix(1000, 0), time.Unix(999, 0), time.Unix(1001, 0), time.Unix(500, 0)}
	for i, now := range steps {
		clock.set(now)
		if _, err := submitEvents(b, fmt.Sprintf("e%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	floor.Store(time.Unix(2000, 0).UnixNano()) // a previous leader was ahead
	if _, err := submitEvents(b, "after-floor"); err != nil {
		t.Fatal(err)
	}
	want := []int64{1000, 1000, 1001, 1001, 2000}
	for i, e := range r.entries {
		if e.time != want[i]*1e9 {
			t.Fatalf("entry %d: time %d, want %d s", i, e.time, want[i])
		}
	}
}

// TestBatcherErrors: a leadership loss reported by Raft reaches each
// caller as ambiguous; a stopped batcher refuses new work.
func TestBatcherErrors(t *testing.T) {
	r := &fakeRaft{fail: raft.ErrLeadershipLost}
	b := newTestBatcher(r, nil)
	_, err := submitEvents(b, "x")
	if !errors.Is(err, ErrAmbiguous) || !errors.Is(err, raft.ErrLeadershipLost) {
		t.Fatalf("leadership lost: %v", err)
	}
	r.fail = raft.ErrNotLeader // the previous entry is done: no race
	if _, err := submitEvents(b, "y"); errors.Is(err, ErrAmbiguous) || !errors.Is(err, raft.ErrNotLeader) {
		t.Fatalf("not leader: %v", err)
	}
	b.stop()
	if _, err := submitEvents(b, "z"); !errors.Is(err, ErrClosed) {
		t.Fatalf("after stop: %v", err)
	}
}
