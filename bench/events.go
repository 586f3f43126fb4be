package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"

	"google.golang.org/protobuf/encoding/protowire"
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

// eventSource hands one worker its events, already encoded: each template
// is an event's canonical encoding split around its event id
// (eventgen.Template), stamped with a fresh id per use. Producers send the
// bytes as they are (rawMessage), as a client that encodes canonically
// would, so the load generator neither marshals nor makes the server
// re-encode anything.
type eventSource struct {
	tmpls  []eventgen.Template
	next   int
	prefix string
	seq    uint64
}

// source returns worker w's events; size bounds how many events one batch
// may hold. tenant, when set, overrides every event's tenant.
func (t *templates) source(run string, w, size int, tenant string) *eventSource {
	n := max(size, 256)
	s := &eventSource{tmpls: make([]eventgen.Template, n), prefix: run + "-" + strconv.Itoa(w) + "-"}
	for i := range n {
		ev := proto.CloneOf(t.events[(w*7919+i)%len(t.events)])
		if tenant != "" {
			ev.TenantId = tenant
		}
		tm, err := eventgen.NewTemplate(ev)
		if err != nil {
			panic(fmt.Sprintf("bench: template of a generated event: %v", err)) // a bug in eventgen
		}
		s.tmpls[i] = tm
	}
	return s
}

// request encodes the next n events as an AppendBatchRequest, which for
// one event is also an AppendRequest: both carry their events in field 1.
func (s *eventSource) request(n int) []byte {
	b := make([]byte, 0, n*(s.tmpls[s.next].Len(len(s.prefix)+12)+8))
	for range n {
		t := s.tmpls[s.next]
		s.next = (s.next + 1) % len(s.tmpls)
		id := s.prefix + strconv.FormatUint(s.seq, 10)
		s.seq++
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(t.Len(len(id))))
		b = t.Append(b, id)
	}
	return b
}
