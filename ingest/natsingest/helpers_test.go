package natsingest

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/trailaudit/trail/compliance"
	"github.com/trailaudit/trail/engine"
	"github.com/trailaudit/trail/internal/loopback"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
	"github.com/trailaudit/trail/raftnode"
)

// testLogger logs to stderr with NATSINGEST_TEST_LOG set, else nowhere.
func testLogger() *slog.Logger {
	if os.Getenv("NATSINGEST_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return nil
}

// startNATS runs a real NATS server with JetStream in-process, on a
// loopback port, storing in a temporary directory.
func startNATS(t testing.TB) *natsserver.Server {
	t.Helper()
	ns, err := natsserver.NewServer(&natsserver.Options{
		Host: "127.0.0.1", Port: natsserver.RANDOM_PORT,
		JetStream: true, StoreDir: t.TempDir(),
		NoLog: true, NoSigs: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	t.Cleanup(func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	})
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	return ns
}

// client connects a producer to ns.
func client(t testing.TB, ns *natsserver.Server) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// createStream creates the stream the ingester would, so that producers
// can publish before it starts.
func createStream(t testing.TB, js jetstream.JetStream) {
	t.Helper()
	if _, err := js.CreateStream(context.Background(), jetstream.StreamConfig{
		Name: DefaultStream, Subjects: []string{DefaultSubject, DefaultDeadLetterSubject}, Storage: jetstream.FileStorage,
	}); err != nil {
		t.Fatal(err)
	}
}

// maxEntry is the largest event the test nodes take, small enough that a
// test message can exceed it.
const maxEntry = 16 << 10

// testNode is a real single-node Trail cluster (Raft over loopback TCP,
// Pebble) that can be closed and opened again on the same directory and
// address.
type testNode struct {
	t    testing.TB
	dir  string
	addr string
	node *raftnode.Node
}

func newTestNode(t testing.TB) *testNode {
	t.Helper()
	addr, err := loopback.Addr()
	if err != nil {
		t.Fatal(err)
	}
	n := &testNode{t: t, dir: t.TempDir(), addr: addr}
	n.open(true)
	t.Cleanup(func() {
		if n.node != nil {
			n.node.Close()
		}
	})
	return n
}

// open starts the node, bootstrapping it the first time, and waits for
// it to lead. The port may take a moment to be free after a close.
func (n *testNode) open(bootstrap bool) {
	n.t.Helper()
	var node *raftnode.Node
	var err error
	for range 50 {
		node, err = raftnode.Open(context.Background(), raftnode.Config{
			ID: "n1", Dir: n.dir, BindAddr: n.addr,
			HeartbeatTimeout: 300 * time.Millisecond, ElectionTimeout: 300 * time.Millisecond,
			LeaderLeaseTimeout: 200 * time.Millisecond, CommitTimeout: 5 * time.Millisecond,
			Engine:    engine.Options{LogName: "test.trail", CacheBytes: 4 << 20, MaxEntryBytes: maxEntry},
			Inspector: compliance.NewDetector(),
		})
		if err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		n.t.Fatalf("open node: %v", err)
	}
	n.node = node
	if bootstrap {
		if err := node.Bootstrap(context.Background(), nil); err != nil {
			n.t.Fatal(err)
		}
	}
	waitFor(n.t, 10*time.Second, "leadership", func() bool { return node.Status().State == "Leader" })
}

func (n *testNode) close() {
	n.t.Helper()
	if err := n.node.Close(); err != nil {
		n.t.Fatalf("close node: %v", err)
	}
	n.node = nil
}

// ids reads tenant's whole log and counts each event_id in it.
func (n *testNode) ids(tenant string) map[string]int {
	n.t.Helper()
	e, release := n.node.AcquireEngine()
	defer release()
	ctx := context.Background()
	parts, err := e.Partitions(ctx, tenant)
	if err != nil {
		n.t.Fatalf("partitions of %s: %v", tenant, err)
	}
	out := make(map[string]int)
	for _, pi := range parts {
		for leaf := uint64(0); leaf < pi.Size; leaf++ {
			se, err := e.Entry(ctx, pi.Partition, leaf)
			if err != nil {
				n.t.Fatalf("entry %s/%d: %v", pi.Partition, leaf, err)
			}
			var en trailv1.Entry
			if err := proto.Unmarshal(se.Data, &en); err != nil {
				n.t.Fatalf("decode %s/%d: %v", pi.Partition, leaf, err)
			}
			out[en.GetEvent().GetEventId()]++
		}
	}
	return out
}

// entry reads one logged event.
func (n *testNode) entry(tenant, id string) *trailv1.Event {
	n.t.Helper()
	e, release := n.node.AcquireEngine()
	defer release()
	se, _, err := e.EntryByEventID(context.Background(), tenant, id)
	if err != nil {
		n.t.Fatalf("entry %s/%s: %v", tenant, id, err)
	}
	var en trailv1.Entry
	if err := proto.Unmarshal(se.Data, &en); err != nil {
		n.t.Fatal(err)
	}
	return en.GetEvent()
}

// running is an ingester running in the background.
type running struct {
	in     *Ingester
	cancel context.CancelFunc
	done   chan error
}

// startIngest runs an ingester for cluster against ns until stop.
func startIngest(t testing.TB, ns *natsserver.Server, cluster Cluster, tune func(*Config)) *running {
	t.Helper()
	cfg := Config{
		Settings: Settings{
			URL: ns.ClientURL(), Tenants: []string{"acme", "beta"},
			Batch: 64, AckWait: 5 * time.Second,
		},
		Cluster:    cluster,
		RetryDelay: 100 * time.Millisecond,
		IdleWait:   time.Second,
		Logger:     testLogger(),
		Registerer: prometheus.NewRegistry(),
	}
	if tune != nil {
		tune(&cfg)
	}
	in, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{in: in, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- in.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

func (r *running) stop(t testing.TB) {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("ingester: %v", err)
		}
		r.done <- nil // later stops return at once
	case <-time.After(60 * time.Second):
		t.Fatal("ingester did not stop")
	}
}

var eventSeq int

// event is a valid event. Its category is system: the anomaly rules,
// which add events of their own to a tenant's log, look at data access.
func event(tenant, id string) *trailv1.Event {
	eventSeq++
	return &trailv1.Event{
		TenantId: tenant, EventId: id,
		Category: trailv1.Category_CATEGORY_SYSTEM, Action: "record.view",
		Outcome:    trailv1.Outcome_OUTCOME_SUCCESS,
		Actor:      &trailv1.Actor{Id: fmt.Sprintf("user-%d", eventSeq%3), Type: "user"},
		SubjectId:  fmt.Sprintf("citizen-%d", eventSeq%5),
		Target:     &trailv1.Target{Type: "record", Id: id},
		OccurredAt: timestamppb.New(time.Date(2026, 11, 3, 10, 0, eventSeq%60, 0, time.UTC)),
		Attributes: map[string]string{"seq": fmt.Sprint(eventSeq)},
	}
}

// The encodings a producer may publish an event in.
type encoding int

const (
	encProtobuf       encoding = iota // Content-Type: application/protobuf
	encProtobufBare                   // no headers at all
	encJSON                           // the REST JSON form
	encCloudEvent                     // CloudEvents envelope, data as JSON
	encCloudEventB64                  // CloudEvents envelope, data_base64 protobuf
	encCloudEventBare                 // CloudEvents envelope without a Content-Type
	numEncodings
)

func marshalProto(t testing.TB, ev *trailv1.Event) []byte {
	t.Helper()
	b, err := proto.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func marshalJSON(t testing.TB, ev *trailv1.Event) []byte {
	t.Helper()
	b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// cloudEvent wraps data (a JSON member value) in an envelope.
func cloudEvent(t testing.TB, id string, member string, data json.RawMessage, extra map[string]any) []byte {
	t.Helper()
	m := map[string]any{
		"specversion": "1.0", "id": id, "source": "/test/producer", "type": "com.example.audit",
		member: data,
	}
	for k, v := range extra {
		m[k] = v
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// message encodes ev as enc for subject.
func message(t testing.TB, subject string, ev *trailv1.Event, enc encoding) *nats.Msg {
	t.Helper()
	m := nats.NewMsg(subject)
	switch enc {
	case encProtobuf:
		m.Header.Set("Content-Type", ContentTypeProtobuf)
		m.Data = marshalProto(t, ev)
	case encProtobufBare:
		m.Header = nil
		m.Data = marshalProto(t, ev)
	case encJSON:
		m.Header.Set("content-type", ContentTypeJSON)
		m.Data = marshalJSON(t, ev)
	case encCloudEvent:
		m.Header.Set("Content-Type", ContentTypeCloudEvents)
		m.Data = cloudEvent(t, "ce-"+ev.GetEventId(), "data", marshalJSON(t, ev), map[string]any{"datacontenttype": "application/json"})
	case encCloudEventB64:
		m.Header.Set("Content-Type", ContentTypeCloudEvents+"; charset=utf-8")
		b64, _ := json.Marshal(base64.StdEncoding.EncodeToString(marshalProto(t, ev)))
		m.Data = cloudEvent(t, "ce-"+ev.GetEventId(), "data_base64", b64, map[string]any{"datacontenttype": ContentTypeProtobuf})
	case encCloudEventBare:
		m.Header = nil
		m.Data = cloudEvent(t, "ce-"+ev.GetEventId(), "data", marshalJSON(t, ev), nil)
	}
	return m
}

// publish stores m in JetStream and returns its stream sequence.
func publish(t testing.TB, js jetstream.JetStream, m *nats.Msg) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ack, err := js.PublishMsg(ctx, m)
	if err != nil {
		t.Fatalf("publish to %s: %v", m.Subject, err)
	}
	return ack.Sequence
}

// settled reports whether the consumer has nothing pending and nothing
// awaiting an ack: every message it was given was acked or terminated.
func settled(t testing.TB, js jetstream.JetStream) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := js.Consumer(ctx, DefaultStream, DefaultConsumer)
	if err != nil {
		return false
	}
	info, err := c.Info(ctx)
	if err != nil {
		return false
	}
	return info.NumPending == 0 && info.NumAckPending == 0
}

// deadLetters reads every message stored on the dead-letter subject.
func deadLetters(t testing.TB, js jetstream.JetStream) []*nats.Msg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(DefaultDeadLetterSubject))
	if err != nil {
		t.Fatal(err)
	}
	want := int(info.State.Subjects[DefaultDeadLetterSubject])
	if want == 0 {
		return nil
	}
	oc, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{DefaultDeadLetterSubject}})
	if err != nil {
		t.Fatal(err)
	}
	var out []*nats.Msg
	for len(out) < want {
		m, err := oc.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			t.Fatalf("reading dead letters (%d of %d): %v", len(out), want, err)
		}
		out = append(out, &nats.Msg{Subject: m.Subject(), Header: m.Headers(), Data: m.Data()})
	}
	return out
}

func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// count is how many messages r counted under result.
func (r *running) count(result string) int {
	return int(testutil.ToFloat64(r.in.metrics.messages.WithLabelValues(result)))
}
