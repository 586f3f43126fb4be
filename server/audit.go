package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/trailaudit/trail/engine"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// Access auditing: every read, search, tail and proof a caller makes, and
// every administrative call, is itself appended to the system tenant
// (docs/architecture.md "API": reads are audited). Appending happens off the request
// path, in batches, through a bounded queue: an audited read never waits
// for Raft, and when the queue overflows events are dropped and counted
// (trail_access_audit_dropped_total) rather than stalling callers.
const (
	auditBatchMax   = 512
	auditFlushEvery = 50 * time.Millisecond
	auditAttempts   = 3
	// maxAuditValue bounds one attribute (a query, a list of event ids):
	// audit events must stay far below the engine's entry size limit.
	maxAuditValue = 4 << 10
)

// auditLog queues access events and appends them to the system tenant.
type auditLog struct {
	cluster Cluster
	timeout time.Duration // per append attempt: Config.CommitTimeout
	queue   chan *trailv1.Event
	metrics *metrics
	log     *slog.Logger
	node    string               // this node's Raft id, recorded in every event
	stop    chan context.Context // close sends the context bounding the final drain
	done    chan struct{}        // closed when run returns
}

func newAuditLog(c Cluster, node string, size int, timeout time.Duration, log *slog.Logger) *auditLog {
	return &auditLog{
		cluster: c,
		timeout: timeout,
		node:    node,
		queue:   make(chan *trailv1.Event, size),
		log:     log,
		stop:    make(chan context.Context, 1),
		done:    make(chan struct{}),
	}
}

// enqueue hands ev to the writer without ever blocking.
func (a *auditLog) enqueue(ev *trailv1.Event) {
	select {
	case a.queue <- ev:
	default:
		a.metrics.auditDropped.Inc()
	}
}

// run appends queued events until close is called, then drains the queue.
func (a *auditLog) run() {
	ctx := context.Background()
	defer close(a.done)
	batch := make([]*trailv1.Event, 0, auditBatchMax)
	tick := time.NewTicker(auditFlushEvery)
	defer tick.Stop()
	for {
		select {
		case ev := <-a.queue:
			batch = append(batch, ev)
			if len(batch) < auditBatchMax {
				continue
			}
		case <-tick.C:
		case stopCtx := <-a.stop:
			a.drain(stopCtx, batch)
			return
		}
		if len(batch) > 0 {
			a.write(ctx, batch, auditAttempts)
			// A fresh slice: the cluster may not be done with the old one
			// when a timed-out append returns.
			batch = make([]*trailv1.Event, 0, auditBatchMax)
		}
	}
}

func (a *auditLog) drain(ctx context.Context, batch []*trailv1.Event) {
	for {
		select {
		case ev := <-a.queue:
			batch = append(batch, ev)
			if len(batch) < auditBatchMax {
				continue
			}
		default:
		}
		if len(batch) == 0 {
			return
		}
		// One attempt each: shutdown should not wait out a leaderless
		// cluster several times over.
		a.write(ctx, batch, 1)
		batch = make([]*trailv1.Event, 0, auditBatchMax)
	}
}

// write appends one batch, retrying a few times: the events carry fixed
// event ids, so a retry after an ambiguous failure never appends twice.
func (a *auditLog) write(ctx context.Context, batch []*trailv1.Event, attempts int) {
	var err error
	for attempt := range attempts {
		if attempt > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(time.Duration(attempt) * 200 * time.Millisecond):
			}
		}
		if ctx.Err() != nil {
			err = ctx.Err()
			break
		}
		actx, cancel := context.WithTimeout(ctx, a.timeout)
		var results []engine.Result
		results, err = a.cluster.Append(actx, batch)
		cancel()
		if err == nil {
			a.count(results)
			return
		}
	}
	a.metrics.auditDropped.Add(float64(len(batch)))
	a.log.Error("access audit events dropped", "events", len(batch), "err", err)
}

func (a *auditLog) count(results []engine.Result) {
	for _, r := range results {
		if r.Err != nil {
			a.metrics.auditDropped.Inc()
			a.log.Error("access audit event rejected", "err", r.Err)
			continue
		}
		a.metrics.auditWritten.Inc()
	}
}

// close stops the writer after it has appended what is queued, or when
// ctx ends.
func (a *auditLog) close(ctx context.Context) {
	a.stop <- ctx
	select {
	case <-a.done:
	case <-ctx.Done():
	}
}

// access describes one audited call. Handlers fill it in; finish turns it
// into an event.
type access struct {
	a        *auditLog
	p        *principal
	method   string
	category trailv1.Category
	tenant   string
	eventIDs []string
	attrs    map[string]string
	at       time.Time
	ip, ua   string
}

// begin starts the audit record of a call by p on tenant ("" for calls not
// scoped to a tenant).
func (a *auditLog) begin(ctx context.Context, p *principal, category trailv1.Category, tenant string) *access {
	method, _ := grpc.Method(ctx)
	ip, ua := callerAddress(ctx)
	return &access{a: a, p: p, method: method, category: category, tenant: tenant,
		attrs: make(map[string]string), at: time.Now(), ip: ip, ua: ua}
}

func (ac *access) set(k, v string) { ac.attrs[k] = truncate(v, maxAuditValue) }

func (ac *access) setUint(k string, v uint64) { ac.set(k, strconv.FormatUint(v, 10)) }

// finish records the call's outcome from its error and queues the event.
func (ac *access) finish(err error) {
	outcome := trailv1.Outcome_OUTCOME_SUCCESS
	if err != nil {
		code := codeOf(err)
		ac.set("code", code.String())
		outcome = trailv1.Outcome_OUTCOME_FAILURE
		if code == codes.PermissionDenied {
			outcome = trailv1.Outcome_OUTCOME_DENIED
		}
	}
	ac.a.enqueue(ac.event(outcome))
}

func (ac *access) event(outcome trailv1.Outcome) *trailv1.Event {
	action := strings.ReplaceAll(strings.TrimPrefix(ac.method, "/"), "/", ".")
	if ac.tenant != "" {
		ac.attrs["tenant"] = ac.tenant
	}
	if len(ac.eventIDs) > 0 {
		ac.set("event_ids", strings.Join(ac.eventIDs, ","))
	}
	ac.attrs["node"] = ac.a.node
	ev := &trailv1.Event{
		TenantId: engine.SystemTenant,
		EventId:  "access-" + randomID(),
		Category: ac.category,
		Action:   action,
		Outcome:  outcome,
		Actor: &trailv1.Actor{
			Id: "apikey:" + ac.p.keyID, Type: "api_key", Roles: []string{ac.p.roleName()},
			Ip: ac.ip, UserAgent: truncate(ac.ua, 512),
		},
		SourceService: "trail-server",
		OccurredAt:    timestamppb.New(ac.at),
		Attributes:    ac.attrs,
	}
	if ac.tenant != "" {
		ev.Target = &trailv1.Target{Type: "tenant", Id: ac.tenant}
	}
	return ev
}

// callerAddress returns the caller's IP and user agent. Behind the gateway
// the gRPC peer is the in-memory connection, so the IP comes from the last
// x-forwarded-for element, which the gateway itself appended from the HTTP
// connection; earlier elements are client-supplied and are not trusted. A
// direct gRPC caller cannot forge it: x-forwarded-for is only read from
// calls that arrived over the gateway's connection.
func callerAddress(ctx context.Context) (ip, userAgent string) {
	md, _ := metadata.FromIncomingContext(ctx)
	p, ok := peer.FromContext(ctx)
	if !ok {
		return "", firstValue(md, "user-agent")
	}
	if p.Addr.Network() != gatewayNetwork {
		host, _, err := net.SplitHostPort(p.Addr.String())
		if err != nil {
			host = p.Addr.String()
		}
		return host, firstValue(md, "user-agent")
	}
	if xff := md.Get("x-forwarded-for"); len(xff) > 0 {
		parts := strings.Split(xff[len(xff)-1], ",")
		ip = strings.TrimSpace(parts[len(parts)-1])
	}
	return ip, firstValue(md, "grpcgateway-user-agent")
}

func firstValue(md metadata.MD, k string) string {
	if v := md.Get(k); len(v) > 0 {
		return v[0]
	}
	return ""
}

// randomID returns 128 random bits in hex, for event ids that must be
// unique without coordination between nodes.
func randomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b[:])
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// Cut at a rune boundary: event fields must stay valid UTF-8.
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// authorizeTenant checks tenant's id, then authorizes as authorize does.
func (s *Server) authorizeTenant(ctx context.Context, perm permission, category trailv1.Category, tenant string) (*access, error) {
	if err := checkTenant(tenant); err != nil {
		return nil, err
	}
	return s.authorize(ctx, perm, category, tenant)
}

// authorize checks that the caller may perform perm on tenant and starts
// the audit record of the call. A denial is audited at once and returned;
// otherwise the handler calls finish on the record when it is done.
func (s *Server) authorize(ctx context.Context, perm permission, category trailv1.Category, tenant string) (*access, error) {
	p, err := principalFrom(ctx)
	if err != nil {
		return nil, err
	}
	ac := s.audit.begin(ctx, p, category, tenant)
	if err := p.check(perm, tenant); err != nil {
		ac.finish(err)
		return nil, err
	}
	return ac, nil
}
