package raftnode

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"github.com/trailaudit/trail/engine"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// applyResult is the response of one applied log entry, handed back to the
// proposer through raft's ApplyFuture.
type applyResult struct {
	results []engine.Result // append: one per event of the entry
	pruned  int             // prune: payloads removed
	err     error           // the whole command failed or was refused
}

// fsm feeds committed entries to the engine. It implements
// raft.BatchingFSM. Raft calls ApplyBatch, Snapshot and Restore from one
// goroutine, so they never overlap each other.
//
// Nothing here reads the clock or random numbers (invariant 6):
// the sequencer time comes from the command.
type fsm struct {
	engines *engineSlot
	log     *slog.Logger
	onFatal func(error)
	// pruneFilter is Config.PruneFilter: it runs at apply time on every
	// replica, so a hold committed after the leader chose the leaves still
	// protects them everywhere.
	pruneFilter PruneFilter

	// applied is the index of the last entry this FSM has processed; after
	// a restore, the snapshot's index.
	applied atomic.Uint64
	// lastTime is the largest sequencer time applied so far (Unix ns); the
	// batcher never proposes below it, so a new leader with a slow clock
	// keeps time monotonic.
	lastTime atomic.Int64
	notify   notifier

	failMu sync.Mutex
	failed error
}

var _ raft.BatchingFSM = (*fsm)(nil)

func newFSM(engines *engineSlot, log *slog.Logger, onFatal func(error)) *fsm {
	f := &fsm{engines: engines, log: log, onFatal: onFatal}
	f.applied.Store(engines.current().e.AppliedIndex())
	return f
}

// Apply implements raft.FSM; raft uses ApplyBatch, this is for completeness.
func (f *fsm) Apply(l *raft.Log) any { return f.ApplyBatch([]*raft.Log{l})[0] }

// ApplyBatch implements raft.BatchingFSM. A run of append entries goes to
// the engine in one call, which writes the files once for all of them.
func (f *fsm) ApplyBatch(logs []*raft.Log) []any {
	out := make([]any, len(logs))
	h := f.engines.acquire()
	defer h.release()
	for i := 0; i < len(logs); {
		if n := f.applyAppends(h.e, logs[i:], out[i:]); n > 0 {
			i += n
			continue
		}
		out[i] = f.applyOne(h.e, logs[i])
		i++
	}
	if f.err() == nil && len(logs) > 0 {
		f.setApplied(logs[len(logs)-1].Index)
	}
	return out
}

func (f *fsm) setApplied(index uint64) {
	for {
		cur := f.applied.Load()
		if index <= cur || f.applied.CompareAndSwap(cur, index) {
			break
		}
	}
	f.notify.broadcast()
}

// applyAppends applies the append entries at the start of logs, if any,
// and returns how many it took. The events stay as the entry carries
// them: the engine reads what it needs from their bytes.
func (f *fsm) applyAppends(e *engine.Engine, logs []*raft.Log, out []any) int {
	var batches []*engine.Batch
	for _, l := range logs {
		if l.Type != raft.LogCommand {
			break
		}
		t, events, ok := appendOf(l.Data)
		if !ok {
			break
		}
		batches = append(batches, &engine.Batch{Index: l.Index, Time: time.Unix(0, t).UTC(), EventBytes: events})
	}
	if len(batches) == 0 {
		return 0
	}
	if err := f.err(); err != nil {
		for i := range batches {
			out[i] = &applyResult{err: err}
		}
		return len(batches)
	}
	// Entries the engine already holds are replayed after a restart:
	// nobody waits for their results.
	skip := 0
	for applied := e.AppliedIndex(); skip < len(batches) && batches[skip].Index <= applied; skip++ {
		out[skip] = &applyResult{}
	}
	todo := batches[skip:]
	if len(todo) == 0 {
		return len(batches)
	}
	for _, b := range todo {
		f.observeTime(b.Time.UnixNano())
	}
	var results [][]engine.Result
	_, err := f.run(e, todo[len(todo)-1].Index, func() error {
		var err error
		results, err = e.ApplyBatches(context.Background(), todo)
		return err
	})
	for k := range todo {
		r := &applyResult{err: err}
		if err == nil && results != nil {
			r.results = results[k]
		}
		out[skip+k] = r
	}
	return len(batches)
}

func (f *fsm) applyOne(e *engine.Engine, l *raft.Log) *applyResult {
	if err := f.err(); err != nil {
		return &applyResult{err: err}
	}
	switch l.Type {
	case raft.LogCommand:
		return f.applyCommand(e, l)
	case raft.LogConfiguration:
		// Membership changes touch no data, but the engine's applied index
		// stays exact so that a snapshot's index is the entry's.
		_, err := f.run(e, l.Index, func() error { return e.Advance(l.Index) })
		return &applyResult{err: err}
	}
	return nil
}

func (f *fsm) applyCommand(e *engine.Engine, l *raft.Log) *applyResult {
	cmd, err := decodeCommand(l.Data)
	if err != nil {
		// Every replica fails the same way on the same bytes; advance so
		// that the replicas' applied indexes stay identical.
		f.log.Error("raftnode: undecodable command", "index", l.Index, "err", err)
		if _, ferr := f.run(e, l.Index, func() error { return e.Advance(l.Index) }); ferr != nil {
			return &applyResult{err: ferr}
		}
		return &applyResult{err: err}
	}
	res := &applyResult{}
	var refusal error
	switch c := cmd.Command.(type) {
	case *trailv1.RaftCommand_Append:
		// appendOf could not read it, but proto.Unmarshal could: an
		// encoding this version does not write. Its events are re-encoded.
		f.observeTime(c.Append.GetTimeUnixNano())
		b := &engine.Batch{Index: l.Index, Time: time.Unix(0, c.Append.GetTimeUnixNano()).UTC(), Events: c.Append.GetEvents()}
		refusal, err = f.run(e, l.Index, func() error {
			r, err := e.Apply(context.Background(), b)
			res.results = r
			return err
		})
	case *trailv1.RaftCommand_Seal:
		f.observeTime(c.Seal.GetTimeUnixNano())
		refusal, err = f.applySeal(e, l.Index, c.Seal)
	case *trailv1.RaftCommand_Prune:
		refusal, err = f.applyPrune(e, l.Index, c.Prune, res)
	case *trailv1.RaftCommand_Settings:
		ops := settingOps(c.Settings)
		refusal, err = f.run(e, l.Index, func() error { return e.ApplySettings(context.Background(), l.Index, ops) })
	case *trailv1.RaftCommand_DropSegment:
		refusal, err = f.applyDropSegment(e, l.Index, c.DropSegment)
	}
	if err != nil {
		return &applyResult{err: err}
	}
	res.err = refusal
	return res
}

func (f *fsm) observeTime(t int64) {
	for {
		cur := f.lastTime.Load()
		if t <= cur || f.lastTime.CompareAndSwap(cur, t) {
			return
		}
	}
}

func (f *fsm) applySeal(e *engine.Engine, index uint64, s *trailv1.RaftSeal) (refusal, err error) {
	m, perr := engine.ParseMonth(s.GetPartition())
	if perr != nil {
		return f.refuse(e, index, fmt.Errorf("%w: %v", errBadRequest, perr))
	}
	p := engine.Partition{Tenant: s.GetTenant(), Month: m}
	at := time.Unix(0, s.GetTimeUnixNano()).UTC()
	return f.run(e, index, func() error { return e.Seal(context.Background(), index, p, at) })
}

func (f *fsm) applyPrune(e *engine.Engine, index uint64, c *trailv1.RaftPrune, res *applyResult) (refusal, err error) {
	m, perr := engine.ParseMonth(c.GetPartition())
	if perr != nil {
		return f.refuse(e, index, fmt.Errorf("%w: %v", errBadRequest, perr))
	}
	p := engine.Partition{Tenant: c.GetTenant(), Month: m}
	return f.run(e, index, func() error {
		leaves, err := f.filterPrune(e, p, c.GetLeaves())
		if err != nil {
			return err
		}
		n, err := e.Prune(context.Background(), index, p, leaves)
		res.pruned = n
		return err
	})
}

// refuse records a command every replica rejects before reaching the
// engine, advancing the applied index past it.
func (f *fsm) refuse(e *engine.Engine, index uint64, refusal error) (error, error) {
	if _, err := f.run(e, index, func() error { return e.Advance(index) }); err != nil {
		return nil, err
	}
	return refusal, nil
}

func settingOps(s *trailv1.RaftSettings) []engine.SettingOp {
	ops := make([]engine.SettingOp, len(s.GetOps()))
	for i, op := range s.GetOps() {
		ops[i] = engine.SettingOp{Key: op.GetKey(), Value: op.GetValue(), Delete: op.GetDelete(), IfAbsent: op.GetIfAbsent(), IfPrefix: op.GetIfPrefix()}
	}
	return ops
}

// Refusals are deterministic outcomes of a command: every replica reaches
// the same one from the same state, so they are results, not failures.
var refusals = []error{
	engine.ErrNotFound, engine.ErrBadSize, engine.ErrSealed, engine.ErrMonthNotEnded,
	engine.ErrBadSetting, engine.ErrInvalidEvent, engine.ErrNotDroppable,
}

func isRefusal(err error) bool {
	for _, r := range refusals {
		if errors.Is(err, r) {
			return true
		}
	}
	return false
}

const (
	storageAttempts = 3
	storageBackoff  = 100 * time.Millisecond
)

// run executes one engine mutation for the entry at index and sorts out
// what its error means:
//   - nil, or ErrAlreadyApplied on replay: done;
//   - a refusal (the engine's applied index reached index, or the error is
//     one of refusals): a deterministic result, returned as refusal, with
//     the applied index advanced if the engine did not;
//   - anything else is a storage failure. The engine left nothing of the
//     command behind, so it is retried; if it persists the FSM fails
//     (ErrFSMFailed) rather than skip an entry and diverge from the other
//     replicas, and the node shuts down.
func (f *fsm) run(e *engine.Engine, index uint64, op func() error) (refusal, fatal error) {
	for attempt := 1; ; attempt++ {
		err := op()
		switch {
		case err == nil, errors.Is(err, engine.ErrAlreadyApplied):
			return nil, nil
		case e.AppliedIndex() >= index:
			return err, nil
		case isRefusal(err):
			if aerr := e.Advance(index); aerr != nil && !errors.Is(aerr, engine.ErrAlreadyApplied) {
				return nil, f.fail(index, aerr)
			}
			return err, nil
		case attempt == storageAttempts:
			return nil, f.fail(index, err)
		}
		f.log.Warn("raftnode: engine write failed; retrying", "index", index, "attempt", attempt, "err", err)
		time.Sleep(storageBackoff * time.Duration(attempt))
	}
}

func (f *fsm) fail(index uint64, err error) error {
	f.failMu.Lock()
	first := f.failed == nil
	if first {
		f.failed = fmt.Errorf("%w at index %d: %w", ErrFSMFailed, index, err)
	}
	failed := f.failed
	f.failMu.Unlock()
	if first {
		f.log.Error("raftnode: state machine failed; shutting down", "index", index, "err", err)
		if f.onFatal != nil {
			f.onFatal(failed)
		}
	}
	return failed
}

func (f *fsm) err() error {
	f.failMu.Lock()
	defer f.failMu.Unlock()
	return f.failed
}

// Snapshot implements raft.FSM. It only takes the engine's hard-linked
// checkpoint, which is fast; Persist does the streaming.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	if err := f.err(); err != nil {
		return nil, err
	}
	h := f.engines.acquire()
	s, err := h.e.CaptureSnapshot(context.Background())
	if err != nil {
		h.release()
		return nil, fmt.Errorf("raftnode: snapshot: %w", err)
	}
	return &fsmSnapshot{h: h, snap: s, raftIndex: f.applied.Load()}, nil
}

// Restore implements raft.FSM: it replaces the engine with the snapshot's.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	br := bufio.NewReaderSize(rc, 1<<20)
	hdr, err := readSnapshotHeader(br)
	if err != nil {
		return err
	}
	if err := f.engines.restore(context.Background(), br, hdr.engineIndex); err != nil {
		return err
	}
	f.applied.Store(hdr.raftIndex)
	f.lastTime.Store(0)
	f.notify.broadcast()
	return nil
}

// fsmSnapshot is one captured engine snapshot. It holds a reference to its
// engine, so a concurrent restore cannot remove the directory it lives in.
type fsmSnapshot struct {
	h         *engineHandle
	snap      *engine.Snapshot
	raftIndex uint64
}

// Persist implements raft.FSMSnapshot: a header, then the engine's archive.
// Before reporting success it syncs the live engine: once the snapshot is
// done Raft may drop the log it covers, so the engine must no longer need
// that log to recover (invariant 10).
func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	err := s.persist(sink)
	if err != nil {
		sink.Cancel()
		return fmt.Errorf("raftnode: persist snapshot: %w", err)
	}
	return sink.Close()
}

func (s *fsmSnapshot) persist(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	hdr := snapshotHeader{raftIndex: s.raftIndex, engineIndex: s.snap.Index}
	if _, err := bw.Write(hdr.marshal()); err != nil {
		return err
	}
	if _, err := s.snap.WriteTo(bw); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	return s.h.e.Sync()
}

// Release implements raft.FSMSnapshot.
func (s *fsmSnapshot) Release() {
	s.snap.Release()
	s.h.release()
}

// snapshotHeader precedes the engine archive in a Raft snapshot. raftIndex
// is the FSM's applied index when it was taken; engineIndex is the engine's
// applied index inside the archive, checked after a restore and compared
// at startup with the local engine.
type snapshotHeader struct {
	raftIndex, engineIndex uint64
}

var snapshotMagic = []byte("TRAILSN1")

func (h snapshotHeader) marshal() []byte {
	b := append([]byte(nil), snapshotMagic...)
	b = binary.BigEndian.AppendUint64(b, h.raftIndex)
	return binary.BigEndian.AppendUint64(b, h.engineIndex)
}

var errBadSnapshot = errors.New("raftnode: not a Trail snapshot")

func readSnapshotHeader(r io.Reader) (snapshotHeader, error) {
	var b [24]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return snapshotHeader{}, fmt.Errorf("%w: header: %v", errBadSnapshot, err)
	}
	if string(b[:8]) != string(snapshotMagic) {
		return snapshotHeader{}, fmt.Errorf("%w: bad magic", errBadSnapshot)
	}
	return snapshotHeader{
		raftIndex:   binary.BigEndian.Uint64(b[8:16]),
		engineIndex: binary.BigEndian.Uint64(b[16:24]),
	}, nil
}

// notifier wakes every waiter when the applied index moves.
type notifier struct {
	mu sync.Mutex
	ch chan struct{}
}

func (n *notifier) wait() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ch == nil {
		n.ch = make(chan struct{})
	}
	return n.ch
}

func (n *notifier) broadcast() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ch != nil {
		close(n.ch)
		n.ch = nil
	}
}
