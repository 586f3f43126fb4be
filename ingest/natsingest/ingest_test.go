package natsingest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/trailaudit/trail/engine"
	"github.com/trailaudit/trail/engine/eventwire"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
	"github.com/trailaudit/trail/raftnode"
)

// TestCommitsAndAcks publishes events in every accepted encoding to two
// tenants and checks that each is committed once and every message acked.
func TestCommitsAndAcks(t *testing.T) {
	ns := startNATS(t)
	_, js := client(t, ns)
	n := newTestNode(t)
	r := startIngest(t, ns, n.node, nil)

	const perTenant = 150
	want := map[string]*trailv1.Event{}
	for i := range perTenant {
		for _, tenant := range []string{"acme", "beta"} {
			ev := event(tenant, fmt.Sprintf("e-%d", i))
			want[tenant+"/"+ev.GetEventId()] = ev
			publish(t, js, message(t, "trail.events."+tenant, ev, encoding(i%int(numEncodings))))
		}
	}
	waitFor(t, 30*time.Second, "every event in the log", func() bool {
		return len(n.ids("acme")) == perTenant && len(n.ids("beta")) == perTenant
	})
	waitFor(t, 10*time.Second, "every message acked", func() bool { return settled(t, js) })
	if got := r.count(resultAppended); got != 2*perTenant {
		t.Errorf("counted %d events appended, want %d", got, 2*perTenant)
	}
	for _, tenant := range []string{"acme", "beta"} {
		for id, count := range n.ids(tenant) {
			if count != 1 || want[tenant+"/"+id] == nil {
				t.Errorf("%s/%s: %d times in the log, published: %v", tenant, id, count, want[tenant+"/"+id] != nil)
			}
		}
	}
	// What is logged is the event as published, whatever its encoding.
	for i := range int(numEncodings) {
		id := fmt.Sprintf("e-%d", i)
		if got := n.entry("acme", id); !proto.Equal(got, want["acme/"+id]) {
			t.Errorf("encoding %d: logged %v, published %v", i, got, want["acme/"+id])
		}
	}
	if dl := deadLetters(t, js); len(dl) != 0 {
		t.Errorf("%d dead letters, want none: first %q", len(dl), dl[0].Header.Get(HeaderReason))
	}
}

// TestDuplicatesAppearOnce republishes events with the same event_id, in
// other encodings, before and after the first copy is committed: the log
// holds each once, and every copy is acked as a success.
func TestDuplicatesAppearOnce(t *testing.T) {
	ns := startNATS(t)
	_, js := client(t, ns)
	createStream(t, js)
	evs := []*trailv1.Event{event("acme", "dup-1"), event("acme", "dup-2"), event("acme", "dup-3")}
	// Two copies of each are in the stream before the consumer starts,
	// so some land in one batch.
	for _, ev := range evs {
		publish(t, js, message(t, "trail.events.acme", ev, encProtobuf))
		publish(t, js, message(t, "trail.events.acme", ev, encCloudEvent))
	}
	n := newTestNode(t)
	startIngest(t, ns, n.node, nil)
	waitFor(t, 20*time.Second, "first copies committed", func() bool { return settled(t, js) })
	for _, ev := range evs {
		publish(t, js, message(t, "trail.events.acme", ev, encJSON))
	}
	publish(t, js, message(t, "trail.events.acme", event("acme", "last"), encProtobuf))
	waitFor(t, 20*time.Second, "the last event", func() bool { return n.ids("acme")["last"] == 1 })
	waitFor(t, 10*time.Second, "every message acked", func() bool { return settled(t, js) })
	ids := n.ids("acme")
	if len(ids) != 4 {
		t.Errorf("log holds %d event ids, want 4: %v", len(ids), ids)
	}
	for id, count := range ids {
		if count != 1 {
			t.Errorf("%s appears %d times", id, count)
		}
	}
	if dl := deadLetters(t, js); len(dl) != 0 {
		t.Errorf("%d dead letters, want none: first %q", len(dl), dl[0].Header.Get(HeaderReason))
	}
}

// TestPoisonGoesToDeadLetters publishes messages that can never be
// appended among valid ones: each poison message is stored on the
// dead-letter subject with its cause and reason and terminated; the valid
// ones are committed.
func TestPoisonGoesToDeadLetters(t *testing.T) {
	ns := startNATS(t)
	_, js := client(t, ns)
	createStream(t, js)
	n := newTestNode(t)

	msgs := 0
	withHeader := func(ct string, body []byte) *nats.Msg {
		msgs++
		m := nats.NewMsg("trail.events.acme")
		m.Header.Set("Content-Type", ct)
		m.Header.Set("Producer", "billing")
		m.Header.Set("Nats-Msg-Id", fmt.Sprintf("producer-id-%d", msgs))
		m.Data = body
		return m
	}
	noAction := event("acme", "p-no-action")
	noAction.Action = ""
	conflict := event("acme", "p-conflict")
	conflicting := proto.Clone(conflict).(*trailv1.Event)
	conflicting.Action = "record.delete"
	large := event("acme", "p-large")
	large.Attributes["blob"] = strings.Repeat("x", maxEntry)

	cases := []struct {
		name   string
		msg    *nats.Msg
		cause  string
		reason string
	}{
		{"garbage protobuf", withHeader(ContentTypeProtobuf, []byte{0xff, 0xff, 0xff}), CauseUndecodable, "protobuf"},
		{"unknown content type", withHeader("text/plain", []byte("hello")), CauseUndecodable, `"text/plain"`},
		{"old CloudEvents version", withHeader(ContentTypeCloudEvents,
			cloudEvent(t, "x", "data", marshalJSON(t, event("acme", "p-v03")), map[string]any{"specversion": "0.3"})),
			CauseUndecodable, `specversion "0.3"`},
		{"envelope without data", withHeader(ContentTypeCloudEvents, []byte(`{"specversion":"1.0","id":"1","source":"/s","type":"t"}`)),
			CauseUndecodable, "no data"},
		{"invalid event", message(t, "trail.events.acme", noAction, encCloudEvent), CauseInvalid, "action"},
		{"tenant outside the scope", message(t, "trail.events.gamma", event("gamma", "p-gamma"), encProtobuf), CauseTenant, `"gamma"`},
		{"system tenant", message(t, "trail.events.system", event("_system", "p-system"), encJSON), CauseTenant, "_system"},
		{"event_id reused for other content", message(t, "trail.events.acme", conflicting, encProtobuf), CauseConflict, "p-conflict"},
		{"too large", message(t, "trail.events.acme", large, encProtobuf), CauseTooLarge, "limit"},
	}
	// The original of the conflicting event goes first, in a batch of
	// its own, so that the conflict is the engine's to find.
	publish(t, js, message(t, "trail.events.acme", conflict, encProtobuf))
	r := startIngest(t, ns, n.node, nil)
	waitFor(t, 20*time.Second, "the first event", func() bool { return n.ids("acme")["p-conflict"] == 1 })
	r.stop(t)
	seqs := make([]string, len(cases))
	for i, c := range cases {
		seqs[i] = fmt.Sprint(publish(t, js, c.msg))
		publish(t, js, message(t, "trail.events.beta", event("beta", fmt.Sprintf("ok-%d", i)), encProtobuf))
	}
	r = startIngest(t, ns, n.node, nil)
	waitFor(t, 30*time.Second, "every message settled", func() bool { return settled(t, js) })
	if got := r.count(resultDeadLetter); got != len(cases) {
		t.Errorf("counted %d dead letters, want %d", got, len(cases))
	}
	if got := r.count(resultAppended); got != len(cases) {
		t.Errorf("counted %d appended, want %d", got, len(cases))
	}

	if got := len(n.ids("beta")); got != len(cases) {
		t.Errorf("beta holds %d events, want the %d valid ones", got, len(cases))
	}
	acme := n.ids("acme")
	if len(acme) != 1 || acme["p-conflict"] != 1 {
		t.Errorf("acme holds %v, want only p-conflict once", acme)
	}
	if e := n.entry("acme", "p-conflict"); e.GetAction() != conflict.GetAction() {
		t.Errorf("p-conflict logged with action %q, want the original's %q", e.GetAction(), conflict.GetAction())
	}
	// Dead letters are found by the original's sequence: their order
	// depends on batching and redeliveries.
	dl := make(map[string]*nats.Msg)
	for _, m := range deadLetters(t, js) {
		seq := m.Header.Get(HeaderSequence)
		if dl[seq] != nil {
			t.Errorf("two dead letters for sequence %s", seq)
		}
		dl[seq] = m
	}
	if len(dl) != len(cases) {
		t.Errorf("%d dead letters, want %d", len(dl), len(cases))
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := dl[seqs[i]]
			if m == nil {
				t.Fatalf("no dead letter for sequence %s", seqs[i])
			}
			if got := m.Header.Get(HeaderCause); got != c.cause {
				t.Errorf("cause %q, want %q (reason %q)", got, c.cause, m.Header.Get(HeaderReason))
			}
			if got := m.Header.Get(HeaderReason); !strings.Contains(got, c.reason) {
				t.Errorf("reason %q does not mention %q", got, c.reason)
			}
			if got := m.Header.Get(HeaderSubject); got != c.msg.Subject {
				t.Errorf("original subject %q, want %q", got, c.msg.Subject)
			}
			if m.Header.Get(HeaderStream) != DefaultStream {
				t.Errorf("original stream %q", m.Header.Get(HeaderStream))
			}
			if string(m.Data) != string(c.msg.Data) {
				t.Errorf("dead letter body differs from the original")
			}
			if c.msg.Header.Get("Producer") != "" && m.Header.Get("Producer") != "billing" {
				t.Errorf("producer's header lost: %v", m.Header)
			}
			if m.Header.Get("Nats-Msg-Id") == c.msg.Header.Get("Nats-Msg-Id") && c.msg.Header.Get("Nats-Msg-Id") != "" {
				t.Errorf("dead letter kept the original's Nats-Msg-Id")
			}
		})
	}
}

// TestDeadLettersNeedAStream starts against a stream that does not store
// the dead-letter subject: nothing is consumed (a poison message could not
// be recorded) until a stream for dead letters exists.
func TestDeadLettersNeedAStream(t *testing.T) {
	ns := startNATS(t)
	_, js := client(t, ns)
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: DefaultStream, Subjects: []string{DefaultSubject}}); err != nil {
		t.Fatal(err)
	}
	publish(t, js, message(t, "trail.events.acme", event("acme", "waits"), encProtobuf))
	n := newTestNode(t)
	startIngest(t, ns, n.node, nil)
	time.Sleep(time.Second)
	if _, err := js.Consumer(ctx, DefaultStream, DefaultConsumer); err == nil {
		t.Fatal("consumer created although dead letters have no stream")
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "DEAD", Subjects: []string{DefaultDeadLetterSubject}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the event, once dead letters have a stream", func() bool { return n.ids("acme")["waits"] == 1 })
}

// TestCrashesLoseAndDuplicateNothing publishes a stream of events while
// the node is closed under the consumer with appends in flight and opened
// again on the same directory, and while the consumer alone is killed and
// restarted: the log ends up holding exactly the published events, each
// once.
func TestCrashesLoseAndDuplicateNothing(t *testing.T) {
	ns := startNATS(t)
	_, js := client(t, ns)
	createStream(t, js)
	n := newTestNode(t)
	tune := func(c *Config) { c.Batch = 50 }
	crash := &closeDuring{node: n.node, at: 500, closed: make(chan error, 1)}
	r := startIngest(t, ns, crash, tune)

	const total = 3000
	var mu sync.Mutex
	published := make(map[string]bool, total)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range total {
			select {
			case <-stop:
				return
			default:
			}
			ev := event("acme", fmt.Sprintf("c-%05d", i))
			m := message(t, "trail.events.acme", ev, encoding(i%int(numEncodings)))
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_, err := js.PublishMsg(ctx, m)
			cancel()
			if err != nil {
				t.Errorf("publish %s: %v", ev.GetEventId(), err)
				return
			}
			mu.Lock()
			published[ev.GetEventId()] = true
			mu.Unlock()
		}
	}()
	t.Cleanup(func() { close(stop); <-done })
	count := func() int { return len(n.ids("acme")) }

	// The node closes under the running consumer, during an append: that
	// append's events may or may not be committed, and the appends after
	// it fail; their messages are handed back unacked.
	select {
	case err := <-crash.closed:
		if err != nil {
			t.Fatalf("close node: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the node was never closed")
	}
	n.node = nil
	waitFor(t, 10*time.Second, "appends failing on the closed node", func() bool { return r.count(resultRetried) > 0 })
	r.stop(t)
	n.open(false)
	r = startIngest(t, ns, n.node, tune)

	// Kill the consumer alone, mid-batch, and start another.
	before := count()
	waitFor(t, 60*time.Second, "more events", func() bool { return count() >= before+500 })
	r.stop(t)
	startIngest(t, ns, n.node, tune)

	<-done
	waitFor(t, 120*time.Second, "every published event", func() bool { return count() == total })
	waitFor(t, 30*time.Second, "every message acked", func() bool { return settled(t, js) })
	mu.Lock()
	defer mu.Unlock()
	if len(published) != total {
		t.Fatalf("published %d of %d", len(published), total)
	}
	ids := n.ids("acme")
	for id, c := range ids {
		if c != 1 || !published[id] {
			t.Errorf("%s: %d times in the log, published %v", id, c, published[id])
		}
	}
	for id := range published {
		if ids[id] == 0 {
			t.Errorf("%s published and acked, not in the log", id)
		}
	}
}

// closeDuring is a node's own append path, except that the first append
// that starts once at events were appended also starts closing the node,
// which then closes while that append is in flight.
type closeDuring struct {
	node     *raftnode.Node
	at       int
	appended atomic.Int64
	once     sync.Once
	closed   chan error
}

func (c *closeDuring) AppendChecked(ctx context.Context, events []eventwire.Checked) ([]engine.Result, error) {
	if c.appended.Load() >= int64(c.at) {
		c.once.Do(func() { go func() { c.closed <- c.node.Close() }() })
	}
	res, err := c.node.AppendChecked(ctx, events)
	if err == nil {
		c.appended.Add(int64(len(events)))
	}
	return res, err
}

// TestFullDiskHoldsMessages: while the disk is below its reserve nothing
// is appended, acked or dead-lettered; the messages wait on the bus and
// are appended once there is room.
func TestFullDiskHoldsMessages(t *testing.T) {
	ns := startNATS(t)
	_, js := client(t, ns)
	createStream(t, js)
	n := newTestNode(t)
	var full atomic.Bool
	full.Store(true)
	r := startIngest(t, ns, n.node, func(c *Config) {
		c.Space = func() error {
			if full.Load() {
				return engine.ErrDiskFull
			}
			return nil
		}
	})
	for i := range 20 {
		publish(t, js, message(t, "trail.events.acme", event("acme", fmt.Sprintf("f-%d", i)), encProtobuf))
	}
	waitFor(t, 10*time.Second, "appends held back", func() bool { return r.count(resultRetried) >= 20 })
	if got := len(n.ids("acme")); got != 0 {
		t.Fatalf("%d events appended on a full disk", got)
	}
	full.Store(false)
	waitFor(t, 20*time.Second, "every event, once there is room", func() bool { return len(n.ids("acme")) == 20 })
	waitFor(t, 10*time.Second, "every message acked", func() bool { return settled(t, js) })
	if r.count(resultDeadLetter) != 0 {
		t.Errorf("%d dead letters", r.count(resultDeadLetter))
	}
}
