package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/trailaudit/trail/engine"
	"github.com/trailaudit/trail/merkle"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
	"github.com/trailaudit/trail/raftnode"
	"github.com/trailaudit/trail/shred"
)

const testLogName = "test.trail"

// env is a real single-node cluster on disk with a server in front of it,
// listening on loopback: what the tests talk to is what production runs.
type env struct {
	t        testing.TB
	node     *raftnode.Node
	srv      *Server
	grpcAddr string
	httpBase string
	conn     *grpc.ClientConn
	http     *http.Client
	admin    string // admin token
	verifier note.Verifier
	serveErr chan error

	ingest trailv1.IngestServiceClient
	read   trailv1.ReadServiceClient
	proofs trailv1.ProofServiceClient
	adm    trailv1.AdminServiceClient
	comp   trailv1.ComplianceServiceClient

	// peers are the envs of the other nodes of a cluster env.
	peers []*env
}

type envOptions struct {
	tune     func(*Config)
	tuneNode func(*raftnode.Config)
	// tls, when set, is applied to the server config and used to dial.
	serverTLS *tls.Config
	clientTLS *tls.Config
}

func testLogger() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// startNode opens and bootstraps a single-node cluster and waits until it
// leads.
func startNode(t testing.TB, tune func(*raftnode.Config)) *raftnode.Node {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := raftnode.Config{
		ID: "n1", Dir: t.TempDir(), Listener: ln,
		HeartbeatTimeout: 300 * time.Millisecond, ElectionTimeout: 300 * time.Millisecond,
		LeaderLeaseTimeout: 200 * time.Millisecond, CommitTimeout: 5 * time.Millisecond,
		Engine: engine.Options{LogName: testLogName, CacheBytes: 4 << 20},
		Logger: testLogger(),
	}
	if tune != nil {
		tune(&cfg)
	}
	node, err := raftnode.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { node.Close() })
	if err := node.Bootstrap(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "leadership", func() bool { return node.Status().State == "Leader" })
	return node
}

// generateTestKey returns a fresh log key.
func generateTestKey() (note.Signer, note.Verifier, error) {
	skey, vkey, err := merkle.GenerateKey(testLogName, nil)
	if err != nil {
		return nil, nil, err
	}
	signer, err := merkle.NewSigner(skey)
	if err != nil {
		return nil, nil, err
	}
	verifier, err := merkle.NewVerifier(vkey)
	return signer, verifier, err
}

// testSealing is the sealing secret of every test node (one cluster, one
// secret, as traild derives it from the shared log key).
func testSealing(t testing.TB) *shred.Keyring {
	k, err := shred.NewKeyring([]byte("trail test sealing secret, 32 bytes or more"))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newEnv(t testing.TB, opts envOptions) *env {
	t.Helper()
	node := startNode(t, opts.tuneNode)
	signer, verifier, err := generateTestKey()
	if err != nil {
		t.Fatal(err)
	}
	admin, err := Bootstrap(context.Background(), node, "test admin")
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Cluster: node, Signer: signer, Sealing: testSealing(t), Logger: testLogger(), TLS: opts.serverTLS, Plaintext: opts.serverTLS == nil}
	if opts.tune != nil {
		opts.tune(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, node: node, srv: srv, admin: admin, verifier: verifier, serveErr: make(chan error, 1)}
	e.listen(opts.clientTLS)
	return e
}

// listen starts serving and dials the server over gRPC and HTTP.
func (e *env) listen(clientTLS *tls.Config) {
	t := e.t
	gl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { e.serveErr <- e.srv.Serve(gl, hl) }()
	t.Cleanup(func() { e.shutdown() })
	e.grpcAddr = gl.Addr().String()
	scheme := "http"
	creds := grpc.WithTransportCredentials(insecure.NewCredentials())
	e.http = &http.Client{Timeout: 30 * time.Second}
	if clientTLS != nil {
		scheme = "https"
		creds = grpc.WithTransportCredentials(credentials.NewTLS(clientTLS))
		e.http.Transport = &http.Transport{TLSClientConfig: clientTLS}
	}
	e.httpBase = scheme + "://" + hl.Addr().String()
	e.conn, err = grpc.NewClient(e.grpcAddr, creds, grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.conn.Close() })
	e.ingest = trailv1.NewIngestServiceClient(e.conn)
	e.read = trailv1.NewReadServiceClient(e.conn)
	e.proofs = trailv1.NewProofServiceClient(e.conn)
	e.adm = trailv1.NewAdminServiceClient(e.conn)
	e.comp = trailv1.NewComplianceServiceClient(e.conn)
}

// shutdown stops the server (once) and reports what Serve returned.
func (e *env) shutdown() error {
	if e.srv == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := e.srv.Shutdown(ctx)
	select {
	case serr := <-e.serveErr:
		if err == nil {
			err = serr
		}
	case <-ctx.Done():
		err = fmt.Errorf("Serve did not return after Shutdown")
	}
	e.srv = nil
	return err
}

// ctx returns a context that authenticates as token, with a deadline.
func (e *env) ctx(token string) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	e.t.Cleanup(cancel)
	if token == "" {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
}

// key creates an API key and returns its token.
func (e *env) key(role trailv1.Role, tenants ...string) string {
	e.t.Helper()
	resp, err := e.adm.CreateAPIKey(e.ctx(e.admin), &trailv1.CreateAPIKeyRequest{Role: role, Tenants: tenants, Description: "test"})
	if err != nil {
		e.t.Fatalf("create %s key: %v", role, err)
	}
	return resp.GetToken()
}

// rest performs an HTTP call with a JSON (protojson) body and returns the
// status and body.
func (e *env) rest(method, path, token string, body proto.Message) (int, []byte, http.Header) {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := protojson.Marshal(body)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, e.httpBase+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := e.http.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp.StatusCode, b, resp.Header
}

// restJSON performs an HTTP call that must succeed and decodes its body.
func (e *env) restJSON(method, path, token string, body, out proto.Message) {
	e.t.Helper()
	code, b, _ := e.rest(method, path, token, body)
	if code != http.StatusOK {
		e.t.Fatalf("%s %s: HTTP %d: %s", method, path, code, b)
	}
	if err := protojson.Unmarshal(b, out); err != nil {
		e.t.Fatalf("%s %s: decode %s: %v", method, path, b, err)
	}
}

var eventSeq int

// event returns a valid event of tenant with the given id.
func event(tenant, id string) *trailv1.Event {
	eventSeq++
	return &trailv1.Event{
		TenantId: tenant, EventId: id,
		Category: trailv1.Category_CATEGORY_DATA_ACCESS, Action: "record.view",
		Outcome:    trailv1.Outcome_OUTCOME_SUCCESS,
		Actor:      &trailv1.Actor{Id: fmt.Sprintf("user-%d", eventSeq%3), Type: "user"},
		SubjectId:  fmt.Sprintf("citizen-%d", eventSeq%5),
		Target:     &trailv1.Target{Type: "record", Id: id},
		OccurredAt: timestamppb.Now(),
		Attributes: map[string]string{"seq": fmt.Sprint(eventSeq)},
	}
}

func events(tenant, prefix string, n int) []*trailv1.Event {
	out := make([]*trailv1.Event, n)
	for i := range out {
		out[i] = event(tenant, fmt.Sprintf("%s-%d", prefix, i))
	}
	return out
}

// appendAll appends evs over gRPC and returns their receipts.
func (e *env) appendAll(token string, evs []*trailv1.Event) []*trailv1.Receipt {
	e.t.Helper()
	resp, err := e.ingest.AppendBatch(e.ctx(token), &trailv1.AppendBatchRequest{Events: evs})
	if err != nil {
		e.t.Fatalf("append batch: %v", err)
	}
	out := make([]*trailv1.Receipt, len(evs))
	for i, r := range resp.GetResults() {
		if r.GetError() != nil {
			e.t.Fatalf("event %d: %v", i, r.GetError())
		}
		out[i] = r.GetReceipt()
	}
	return out
}

// openCheckpoint verifies a signed note with both note.Open and the
// transparency-dev checkpoint parser, for the origin expected of p.
func (e *env) openCheckpoint(signed []byte, tenant, partition string) *log.Checkpoint {
	e.t.Helper()
	if _, err := note.Open(signed, note.VerifierList(e.verifier)); err != nil {
		e.t.Fatalf("note.Open: %v\n%s", err, signed)
	}
	origin := testLogName + "/" + tenant + "/" + partition
	cp, _, _, err := log.ParseCheckpoint(signed, origin, e.verifier)
	if err != nil {
		e.t.Fatalf("ParseCheckpoint(origin %q): %v\n%s", origin, err, signed)
	}
	return cp
}

// verifyInclusion checks an inclusion proof response end to end, from the
// entry bytes to the signed checkpoint, with transparency-dev/merkle.
func (e *env) verifyInclusion(resp *trailv1.GetInclusionProofResponse, tenant string) {
	e.t.Helper()
	leaf := rfc6962.DefaultHasher.HashLeaf(resp.GetEntryBytes())
	if !bytes.Equal(leaf, resp.GetLeafHash()) {
		e.t.Fatalf("leaf hash of entry bytes %x, response says %x", leaf, resp.GetLeafHash())
	}
	cp := e.openCheckpoint([]byte(resp.GetCheckpoint().GetSignedNote()), tenant, resp.GetPartition())
	if cp.Size != resp.GetTreeSize() {
		e.t.Fatalf("checkpoint size %d, proof against %d", cp.Size, resp.GetTreeSize())
	}
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, resp.GetLeafIndex(), cp.Size, leaf, resp.GetProof(), cp.Hash); err != nil {
		e.t.Fatalf("inclusion proof of leaf %d in %d: %v", resp.GetLeafIndex(), cp.Size, err)
	}
}

// counterValue reads a counter's current value.
func counterValue(t testing.TB, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// wantCode fails unless err carries code.
func wantCode(t testing.TB, err error, code codes.Code) {
	t.Helper()
	if got := status.Code(err); got != code {
		t.Fatalf("got %v (%v), want %v", got, err, code)
	}
}

func query(kv ...string) string {
	var b strings.Builder
	for i := 0; i+1 < len(kv); i += 2 {
		if i == 0 {
			b.WriteByte('?')
		} else {
			b.WriteByte('&')
		}
		b.WriteString(kv[i] + "=" + kv[i+1])
	}
	return b.String()
}
