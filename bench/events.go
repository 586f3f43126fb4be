package main

import (
	"crypto/rand"
	"encoding/hex"
	"strconv"

	"google.golang.org/protobuf/proto"

	"github.com/trailaudit/trail/internal/eventgen"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// templates are realistic events (eventgen: skewed tenants, realistic
// categories and payloads) generated once per run. Producers send copies
// with fresh event ids, so that generating events costs the client
// nothing while it is measured: with -local the client shares the CPU
// with the nodes.
type templates struct {
	events    []*trailv1.Event
	meanBytes float64 // mean encoded size, with a bench event id
}

func newTemplates(n, eventBytes, tenants int) *templates {
	g := eventgen.New(eventgen.Config{Seed: 42, Tenants: tenants, TargetBytes: eventBytes})
	t := &templates{events: make([]*trailv1.Event, n)}
	var total int
	for i := range t.events {
		t.events[i] = g.Next()
		// Size it with an id as long as the ones the producers use.
		ev := proto.CloneOf(t.events[i])
		ev.EventId = "0123456789abcdef-00-0000000"
		total += proto.Size(ev)
	}
	t.meanBytes = float64(total) / float64(n)
	return t
}

// runID makes this run's event ids unique, so that running the bench twice
// against one cluster appends twice instead of deduplicating.
func runID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// eventSource hands one worker its events. It owns private copies of the
// templates because it rewrites their ids; gRPC has serialized a message
// by the time the call that sent it returns (or SendMsg, for streams), so
// a copy may be reused as soon as the batch holding it has been sent.
type eventSource struct {
	events []*trailv1.Event
	next   int
	prefix string
	seq    uint64
	tenant string // when set, overrides every event's tenant
}

// source returns worker w's events; size bounds how many events one batch
// may hold.
func (t *templates) source(run string, w, size int, tenant string) *eventSource {
	n := max(size, 256)
	s := &eventSource{events: make([]*trailv1.Event, n), prefix: run + "-" + strconv.Itoa(w) + "-", tenant: tenant}
	for i := range n {
		s.events[i] = proto.CloneOf(t.events[(w*7919+i)%len(t.events)])
		if tenant != "" {
			s.events[i].TenantId = tenant
		}
	}
	return s
}

// batch fills dst with the next n events.
func (s *eventSource) batch(dst []*trailv1.Event, n int) []*trailv1.Event {
	dst = dst[:0]
	for range n {
		ev := s.events[s.next]
		s.next = (s.next + 1) % len(s.events)
		ev.EventId = s.prefix + strconv.FormatUint(s.seq, 10)
		s.seq++
		dst = append(dst, ev)
	}
	return dst
}
