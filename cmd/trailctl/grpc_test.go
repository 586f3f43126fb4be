package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/trailaudit/trail/engine"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// fakeServer serves a fixture's engine over real gRPC on loopback: just
// enough of Trail's API to exercise trailctl's client side end to end.
// The real server is tested against trailctl separately.
type fakeServer struct {
	trailv1.UnimplementedIngestServiceServer
	trailv1.UnimplementedReadServiceServer
	trailv1.UnimplementedProofServiceServer

	f     *fixture
	mu    sync.Mutex // serialises Apply, as Raft does
	addr  string
	token string
	// lie makes GetInclusionProof answer with another event's proof.
	lie atomic.Bool
}

func startFakeServer(t *testing.T, f *fixture) *fakeServer {
	t.Helper()
	fs := &fakeServer{f: f, token: "trail_test_token"}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.UnaryInterceptor(fs.authUnary), grpc.StreamInterceptor(fs.authStream))
	trailv1.RegisterIngestServiceServer(srv, fs)
	trailv1.RegisterReadServiceServer(srv, fs)
	trailv1.RegisterProofServiceServer(srv, fs)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	fs.addr = lis.Addr().String()
	return fs
}

func (s *fakeServer) authorize(ctx context.Context) error {
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get("authorization"); len(v) != 1 || v[0] != "Bearer "+s.token {
		return status.Error(codes.Unauthenticated, "missing or wrong API key")
	}
	return nil
}

func (s *fakeServer) authUnary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if err := s.authorize(ctx); err != nil {
		return nil, err
	}
	return h(ctx, req)
}

func (s *fakeServer) authStream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	if err := s.authorize(ss.Context()); err != nil {
		return err
	}
	return h(srv, ss)
}

func (s *fakeServer) applyBatch(evs []*trailv1.Event) []*trailv1.AppendResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.f.index++
	res, err := s.f.eng.Apply(context.Background(), &engine.Batch{Index: s.f.index, Time: nov, Events: evs})
	out := make([]*trailv1.AppendResult, len(evs))
	for i := range evs {
		switch {
		case err != nil:
			out[i] = &trailv1.AppendResult{Result: &trailv1.AppendResult_Error{Error: &trailv1.Error{Code: int32(codes.Internal), Message: err.Error()}}}
		case res[i].Err != nil:
			out[i] = &trailv1.AppendResult{Result: &trailv1.AppendResult_Error{Error: &trailv1.Error{Code: int32(codes.InvalidArgument), Message: res[i].Err.Error()}}}
		default:
			out[i] = &trailv1.AppendResult{Result: &trailv1.AppendResult_Receipt{Receipt: receiptProto(res[i].Receipt)}}
		}
	}
	return out
}

func receiptProto(r engine.Receipt) *trailv1.Receipt {
	return &trailv1.Receipt{
		TenantId: r.Tenant, EventId: r.EventID, Partition: r.Partition.String(), LeafIndex: r.LeafIndex,
		LeafHash: r.LeafHash[:], TreeSize: r.TreeSize, SequencerTime: timestamppb.New(r.SequencerTime), Duplicate: r.Duplicate,
	}
}

func (s *fakeServer) Append(_ context.Context, req *trailv1.AppendRequest) (*trailv1.AppendResponse, error) {
	r := s.applyBatch([]*trailv1.Event{req.GetEvent()})[0]
	if e := r.GetError(); e != nil {
		return nil, status.Error(codes.Code(e.GetCode()), e.GetMessage())
	}
	return &trailv1.AppendResponse{Receipt: r.GetReceipt()}, nil
}

func (s *fakeServer) AppendStream(stream grpc.BidiStreamingServer[trailv1.AppendBatchRequest, trailv1.AppendBatchResponse]) error {
	for {
		req, err := stream.Recv()
		if err != nil {
			return nil // io.EOF: the client is done
		}
		if err := stream.Send(&trailv1.AppendBatchResponse{Results: s.applyBatch(req.GetEvents())}); err != nil {
			return err
		}
	}
}

func (s *fakeServer) GetEvent(ctx context.Context, req *trailv1.GetEventRequest) (*trailv1.GetEventResponse, error) {
	se, rc, err := s.f.eng.EntryByEventID(ctx, req.GetTenantId(), req.GetEventId())
	if errors.Is(err, engine.ErrNotFound) {
		return nil, status.Error(codes.NotFound, "event not found")
	}
	if err != nil {
		return nil, err
	}
	return &trailv1.GetEventResponse{Entry: storedEntryProto(s.f.t, req.GetTenantId(), se), Receipt: receiptProto(rc)}, nil
}

func (s *fakeServer) GetCheckpoint(_ context.Context, req *trailv1.GetCheckpointRequest) (*trailv1.GetCheckpointResponse, error) {
	return &trailv1.GetCheckpointResponse{Checkpoint: s.f.checkpoint(req.GetTenantId(), req.GetPartition(), req.GetTreeSize())}, nil
}

func (s *fakeServer) GetInclusionProof(_ context.Context, req *trailv1.GetInclusionProofRequest) (*trailv1.GetInclusionProofResponse, error) {
	id := req.GetEventId()
	if s.lie.Load() {
		id = "acme-2"
	}
	return s.f.proof(req.GetTenantId(), id, req.GetTreeSize()).Proof, nil
}

func (s *fakeServer) GetConsistencyProof(_ context.Context, req *trailv1.GetConsistencyProofRequest) (*trailv1.GetConsistencyProofResponse, error) {
	to := req.GetToSize()
	if to == 0 {
		to = s.f.checkpoint(req.GetTenantId(), req.GetPartition(), 0).GetTreeSize()
	}
	return s.f.consistency(req.GetTenantId(), req.GetPartition(), req.GetFromSize(), to), nil
}

func (s *fakeServer) ListPartitions(ctx context.Context, req *trailv1.ListPartitionsRequest) (*trailv1.ListPartitionsResponse, error) {
	infos, err := s.f.eng.Partitions(ctx, req.GetTenantId())
	if err != nil {
		return nil, err
	}
	resp := &trailv1.ListPartitionsResponse{}
	for _, pi := range infos {
		resp.Partitions = append(resp.Partitions, &trailv1.PartitionInfo{Partition: pi.Month.String(), Size: pi.Size, RootHash: pi.Root[:]})
	}
	return resp, nil
}

// cli runs trailctl against the fake server.
func (s *fakeServer) cli(t *testing.T, stdin string, args ...string) cliResult {
	t.Helper()
	return runCLI(t, stdin, append(args, "--addr", s.addr, "--token", s.token, "--timeout", "20s")...)
}

func wantExit(t *testing.T, r cliResult, code int, stdout ...string) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, code, r.stdout, r.stderr)
	}
	for _, s := range stdout {
		if !strings.Contains(r.stdout, s) {
			t.Errorf("stdout lacks %q:\n%s", s, r.stdout)
		}
	}
}

func TestClientAgainstFakeServer(t *testing.T) {
	f := standardFixture(t)
	s := startFakeServer(t, f)

	// Sequencer time never goes back for a tenant, so acme's new entries
	// land after its 2026-12 entries whatever the fake's batch time.
	t.Run("append from flags", func(t *testing.T) {
		r := s.cli(t, "", "append", "--tenant", "acme", "--event-id", "cli-1", "--category", "authentication",
			"--action", "user.login", "--actor", "alice")
		wantExit(t, r, exitOK, "event id:", "cli-1", "partition:", "2026-12", "leaf index:", "10")
	})
	t.Run("append from stdin", func(t *testing.T) {
		ev := `{"tenant_id":"acme","event_id":"cli-2","category":"CATEGORY_SYSTEM","action":"job.run",` +
			`"outcome":"OUTCOME_SUCCESS","actor":{"id":"cron"},"occurred_at":"2026-11-02T09:00:00Z"}`
		wantExit(t, s.cli(t, ev, "append", "-", "--json"), exitOK, `"event_id":"cli-2"`, `"partition":"2026-12"`, `"leaf_index":"11"`)
	})
	t.Run("append a duplicate", func(t *testing.T) {
		r := s.cli(t, "", "append", "--tenant", "acme", "--event-id", "cli-1", "--category", "authentication",
			"--action", "user.login", "--actor", "alice", "--occurred-at", "2026-11-02T09:00:00Z")
		// Not the same event (occurred_at differs): the log refuses it.
		wantExit(t, r, exitFailed)
	})
	t.Run("get", func(t *testing.T) {
		wantExit(t, s.cli(t, "", "get", "acme", "acme-17"), exitOK, "event id:", "acme-17", "leaf index:", "17", "prev leaf hash:")
		wantExit(t, s.cli(t, "", "get", "acme", "nope"), exitFailed)
	})
	t.Run("no token", func(t *testing.T) {
		r := runCLI(t, "", "get", "acme", "acme-1", "--addr", s.addr)
		if r.code != exitFailed || !strings.Contains(r.stderr, "Unauthenticated") {
			t.Errorf("exit %d: %s", r.code, r.stderr)
		}
	})
	t.Run("prove then verify offline", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "p.json")
		r := s.cli(t, "", "prove", "acme", "acme-17", "--vkey", f.vkeyFile, "--out", out)
		wantExit(t, r, exitOK, "OK inclusion of leaf 17 (event acme-17) in tree of size 40 of test/acme/2026-11")
		r = runCLI(t, "", "verify", "--vkey", f.vkeyFile, "--proof", out)
		wantExit(t, r, exitOK, "OK inclusion of leaf 17 (event acme-17) in tree of size 40")
	})
	t.Run("prove at a size", func(t *testing.T) {
		wantExit(t, s.cli(t, "", "prove", "acme", "acme-3", "--size", "20", "--vkey", f.vkeyFile), exitOK, "in tree of size 20")
	})
	t.Run("a lying server", func(t *testing.T) {
		s.lie.Store(true)
		defer s.lie.Store(false)
		r := s.cli(t, "", "prove", "acme", "acme-17", "--vkey", f.vkeyFile)
		if r.code != exitFailed || !strings.Contains(r.stderr, `asked for event "acme-17", the server proved event "acme-2"`) {
			t.Errorf("exit %d: %s", r.code, r.stderr)
		}
	})
	t.Run("consistency then verify offline", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "c.json")
		r := s.cli(t, "", "consistency", "acme", "2026-12", "7", "0", "--vkey", f.vkeyFile, "--out", out)
		wantExit(t, r, exitOK, "OK consistency of test/acme/2026-12 from size 7 to size 12")
		wantExit(t, runCLI(t, "", "verify", "--vkey", f.vkeyFile, "--consistency", out), exitOK, "from size 7 to size 12")
	})
	t.Run("checkpoint", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "cp")
		r := s.cli(t, "", "checkpoint", "acme", "2026-12", "--out", out, "--vkey", f.vkeyFile)
		wantExit(t, r, exitOK, "wrote checkpoint test/acme/2026-12 size 12")
		if !strings.Contains(r.stderr, "OK checkpoint test/acme/2026-12 size 12") {
			t.Errorf("stderr: %s", r.stderr)
		}
		wantExit(t, runCLI(t, "", "verify", "--vkey", f.vkeyFile, "--checkpoint", out), exitOK, "OK checkpoint test/acme/2026-12 size 12")
		wantExit(t, s.cli(t, "", "checkpoint", "acme", "2026-12"), exitOK, "test/acme/2026-12\n12\n")
	})
	t.Run("partitions", func(t *testing.T) {
		r := s.cli(t, "", "partitions", "acme")
		wantExit(t, r, exitOK, "PARTITION")
		lines := strings.Split(r.stdout, "\n")
		if len(lines) < 3 || !strings.HasPrefix(strings.Join(strings.Fields(lines[1]), " "), "2026-11 40 ") ||
			!strings.HasPrefix(strings.Join(strings.Fields(lines[2]), " "), "2026-12 12 ") {
			t.Errorf("partitions:\n%s", r.stdout)
		}
	})
	t.Run("watch", func(t *testing.T) {
		dir := t.TempDir()
		watch := func() cliResult {
			return s.cli(t, "", "watch", "acme", "--vkey", f.vkeyFile, "--state-dir", dir, "--once")
		}
		wantExit(t, watch(), exitOK, "NEW test/acme/2026-11 size 40", "NEW test/acme/2026-12 size 12")
		wantExit(t, s.cli(t, "", "append", "--tenant", "acme", "--event-id", "cli-3", "--category", "system", "--action", "x", "--actor", "a"), exitOK)
		wantExit(t, watch(), exitOK, "OK  test/acme/2026-11 size 40 unchanged", "OK  test/acme/2026-12 size 12 -> 13 root")
		if _, err := os.Stat(filepath.Join(dir, "acme", "2026-12.checkpoint")); err != nil {
			t.Error(err)
		}
	})
}

// TestBulkAppend streams a JSON Lines file through AppendStream.
func TestBulkAppend(t *testing.T) {
	f := newFixture(t)
	s := startFakeServer(t, f)
	var in strings.Builder
	const n = 1234
	for i := range n {
		fmt.Fprintf(&in, `{"event_id":"bulk-%d","category":"CATEGORY_SYSTEM","action":"job.run","outcome":"OUTCOME_SUCCESS","actor":{"id":"cron"},"occurred_at":"2026-11-02T09:00:00Z"}`+"\n", i)
		if i == 600 {
			in.WriteString("\n") // blank lines are skipped
		}
	}
	path := filepath.Join(t.TempDir(), "events.jsonl")
	os.WriteFile(path, []byte(in.String()), 0o644)

	r := s.cli(t, "", "append", "--jsonl", path, "--tenant", "acme", "--batch", "100", "--window", "3")
	wantExit(t, r, exitOK, "LINE", "bulk-0 ", "bulk-1233 ")
	if got := strings.Count(r.stdout, "appended\n"); got != n {
		t.Errorf("%d receipts, want %d", got, n)
	}
	if !strings.Contains(r.stderr, "appended 1234 events, 0 duplicates, 0 rejected") {
		t.Errorf("stderr: %s", r.stderr)
	}
	if !strings.Contains(r.stdout, "1235  bulk-1233") {
		t.Errorf("line numbers do not count the blank line:\n%s", r.stdout[len(r.stdout)-200:])
	}

	// Again, from stdin, with one new event, one invalid one, as JSON.
	again := in.String() + `{"event_id":"bulk-new","category":"CATEGORY_SYSTEM","action":"a","outcome":"OUTCOME_SUCCESS","actor":{"id":"x"},"occurred_at":"2026-11-02T09:00:00Z"}` + "\n" +
		`{"event_id":"bulk-bad","action":"a"}` + "\n"
	r = s.cli(t, again, "append", "--jsonl", "-", "--tenant", "acme", "--batch", "500", "--json")
	if r.code != exitFailed || !strings.Contains(r.stderr, "1 events were rejected") || !strings.Contains(r.stderr, "appended 1 events, 1234 duplicates, 1 rejected") {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	if !strings.Contains(r.stdout, `"event_id":"bulk-bad","error":{"code":3`) || !strings.Contains(r.stdout, `"duplicate":true`) {
		t.Errorf("stdout:\n%s", r.stdout[len(r.stdout)-600:])
	}

	// A malformed line stops the load; what was sent before is kept.
	r = s.cli(t, `{"event_id":"late-1","category":"CATEGORY_SYSTEM","action":"a","outcome":"OUTCOME_SUCCESS","actor":{"id":"x"},"occurred_at":"2026-11-02T09:00:00Z"}`+"\n{oops\n",
		"append", "--jsonl", "-", "--tenant", "acme", "--batch", "1")
	if r.code != exitFailed || !strings.Contains(r.stderr, "stopped reading input: line 2: invalid event JSON") || !strings.Contains(r.stdout, "late-1") {
		t.Errorf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}
