package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/trailaudit/trail/internal/enumname"
	trailproto "github.com/trailaudit/trail/proto"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
	"github.com/trailaudit/trail/raftnode"
	"github.com/trailaudit/trail/server/console"
)

// checkpointPath is the REST route that serves a checkpoint as its signed
// note in text/plain, the form witnesses and note.Open consume directly.
const checkpointPath = "GET /api/v1/audit/tenants/{tenant_id}/partitions/{partition}/checkpoint"

// gateway is the REST mapping: a grpc-gateway mux that is a gRPC client of
// this server over an in-memory connection.
type gateway struct {
	conn *grpc.ClientConn
	mux  *runtime.ServeMux
	json runtime.Marshaler
}

func (s *Server) newGateway() (*gateway, error) {
	conn, err := grpc.NewClient("passthrough:///"+gatewayNetwork, append([]grpc.DialOption{
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return s.mem.dial(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(math.MaxInt32), grpc.MaxCallSendMsgSize(math.MaxInt32)),
	}, s.gatewayTracing()...)...)
	if err != nil {
		return nil, fmt.Errorf("server: gateway connection: %w", err)
	}
	json := strictJSON{&runtime.JSONPb{
		MarshalOptions:   protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: false},
		UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: false},
	}}
	useQueryParser() // restnames.go
	mux := runtime.NewServeMux(
		runtime.WithMarshalerOption(runtime.MIMEWildcard, json),
		runtime.WithMarshalerOption(contentTypeCloudEvent, cloudEvents{strictJSON: json}),
		runtime.WithMarshalerOption(contentTypeCloudEventBatch, cloudEvents{strictJSON: json, batch: true}),
		runtime.WithErrorHandler(httpErrorHandler),
		runtime.WithForwardResponseOption(flushStreamStart),
	)
	ctx := context.Background()
	for _, register := range []func(context.Context, *runtime.ServeMux, *grpc.ClientConn) error{
		trailv1.RegisterIngestServiceHandler,
		trailv1.RegisterReadServiceHandler,
		trailv1.RegisterProofServiceHandler,
		trailv1.RegisterAdminServiceHandler,
		trailv1.RegisterComplianceServiceHandler,
	} {
		if err := register(ctx, mux, conn); err != nil {
			conn.Close()
			return nil, fmt.Errorf("server: register gateway: %w", err)
		}
	}
	return &gateway{conn: conn, mux: mux, json: json}, nil
}

func (g *gateway) close() { g.conn.Close() }

// flushStreamStart sends a server stream's status and headers as soon as
// the stream is established, rather than with its first message. The
// gateway calls it once per stream with a nil message, after the server
// sent its headers (Subscribe does once it is live): a REST client, such as
// the web console, then knows that its subscription is live even while the
// tenant is quiet. Errors before that point still get their HTTP status.
func flushStreamStart(ctx context.Context, w http.ResponseWriter, m proto.Message) error {
	if m != nil {
		return nil
	}
	// A call refused before it started ends "trailers-only", without
	// headers: it is left to the gateway, which answers with its status.
	if md, ok := runtime.ServerMetadataFromContext(ctx); !ok || md.HeaderMD.Len() == 0 {
		return nil
	}
	w.Header().Set("Content-Type", "application/json")
	if err := http.NewResponseController(w).Flush(); err != nil {
		return fmt.Errorf("server: starting a REST stream: %w", err)
	}
	return nil
}

// strictJSON is the gateway's JSON with two differences in what it reads.
// A request body must hold exactly one value: the stock decoder stops
// after the first, so "{event}{event2}" or "{event} xyz" stored the first
// event and dropped the rest without a word. And enum values may be given
// by their short names ("data_access"; see restnames.go).
type strictJSON struct{ *runtime.JSONPb }

func (j strictJSON) NewDecoder(r io.Reader) runtime.Decoder {
	dec := json.NewDecoder(r)
	return runtime.DecoderFunc(func(v any) error {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return err
		}
		if err := j.Unmarshal(raw, v); err != nil {
			return err
		}
		if _, err := dec.Token(); err != io.EOF {
			return status.Error(codes.InvalidArgument, "request body holds more than one JSON value")
		}
		return nil
	})
}

// Unmarshal decodes one JSON value into v: a message, or a pointer to one
// (a request's body field), with short enum names; anything else as the
// stock marshaler does.
func (j strictJSON) Unmarshal(data []byte, v any) error {
	m, ok := v.(proto.Message)
	if !ok {
		rv := reflect.ValueOf(v)
		if rv.Kind() != reflect.Pointer || rv.IsNil() || rv.Elem().Kind() != reflect.Pointer ||
			!rv.Elem().Type().Implements(reflect.TypeFor[proto.Message]()) {
			return j.JSONPb.Unmarshal(data, v)
		}
		if rv.Elem().IsNil() {
			rv.Elem().Set(reflect.New(rv.Elem().Type().Elem()))
		}
		m = rv.Elem().Interface().(proto.Message)
	}
	return enumname.Unmarshal(j.UnmarshalOptions, data, m)
}

// httpErrorHandler is the gateway's default error handler plus a
// Retry-After header for errors carrying RetryInfo (no leader), and 413
// for requests beyond a size limit (see tooLarge).
func httpErrorHandler(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
	if st, ok := status.FromError(err); ok {
		for _, d := range st.Details() {
			if ri, ok := d.(*errdetails.RetryInfo); ok {
				secs := int(math.Ceil(ri.GetRetryDelay().AsDuration().Seconds()))
				w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
			}
		}
		if requestTooLarge(st) {
			w = statusWriter{ResponseWriter: w, code: http.StatusRequestEntityTooLarge}
		}
	}
	runtime.DefaultHTTPErrorHandler(ctx, mux, m, w, r, err)
}

// statusWriter writes code instead of whatever status the wrapped handler
// chooses.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (s statusWriter) WriteHeader(int) { s.ResponseWriter.WriteHeader(s.code) }

// requestTooLarge reports a request refused for its size: marked by
// tooLarge, or refused by gRPC's own message limit.
func requestTooLarge(st *status.Status) bool {
	for _, d := range st.Details() {
		if ei, ok := d.(*errdetails.ErrorInfo); ok && ei.GetReason() == reasonTooLarge {
			return true
		}
	}
	return st.Code() == codes.ResourceExhausted && strings.Contains(st.Message(), "larger than max")
}

// httpHandler routes the HTTP listener: the REST API, its OpenAPI
// document, metrics, health checks and, when enabled, the web console. Metrics and health checks need no
// API key: they carry no log data, and probes have no keys.
func (s *Server) httpHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/api/", s.limitBody(s.gateway.mux))
	// More specific than "/api/", so it takes this one route from the
	// gateway (net/http pattern precedence).
	mux.HandleFunc(checkpointPath, s.serveCheckpointNote)
	mux.HandleFunc(piiReportPath, s.servePIIAccessReport)
	mux.HandleFunc(historyReportPath, s.serveEntityHistory)
	mux.HandleFunc(exportPath, s.serveExport) // export.go: the bundle as a raw download
	mux.HandleFunc("GET /api/v1/openapi.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(trailproto.OpenAPI)
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{Registry: s.metrics.reg}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /readyz", s.serveReady)
	if s.cfg.Console {
		// The console's files carry no log data; its calls to the API
		// carry the user's key, like any other client's.
		c := console.Handler()
		mux.Handle("GET "+console.Path, c)
		mux.Handle("GET "+strings.TrimSuffix(console.Path, "/"), c)
	}
	return s.httpTracing(mux)
}

// bodyReadTimeout bounds the time to send a request body. Without it a
// client trickling bodies held a connection, and a goroutine, for as long
// as it liked, before anything about it was checked.
const bodyReadTimeout = 30 * time.Second

// limitBody guards the REST API's request bodies: a request whose key does
// not authenticate is refused before its body is read, a body far beyond
// what the gRPC side accepts is refused with 413 (JSON is larger than
// protobuf, hence the factor; the gRPC limit still applies to the
// converted request), and a body must arrive within bodyReadTimeout.
func (s *Server) limitBody(next http.Handler) http.Handler {
	limit := int64(4 * s.maxRecvBytes())
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fail := func(err error) {
			// Closing the connection spares net/http reading the unread
			// body before it answers, which a trickling client would
			// drag out.
			w.Header().Set("Connection", "close")
			runtime.HTTPError(r.Context(), s.gateway.mux, s.gateway.json, w, r, toStatus(err))
		}
		if r.Body != nil && r.Body != http.NoBody {
			if _, err := authenticateHeader(r.Header.Values("Authorization"), s.keys); err != nil {
				fail(err)
				return
			}
		}
		if r.ContentLength > limit {
			fail(fmt.Errorf("%w: request body of %d bytes, limit %d", errTooLarge, r.ContentLength, limit))
			return
		}
		http.NewResponseController(w).SetReadDeadline(time.Now().Add(s.cfg.bodyTimeout))
		r.Body = http.MaxBytesReader(w, r.Body, limit)
		next.ServeHTTP(w, r)
	})
}

// serveCheckpointNote answers the checkpoint route with the signed note
// itself. It calls GetCheckpoint through the gateway's connection with the
// metadata the gateway would send, so authentication, authorization and
// auditing are exactly those of the gRPC call.
func (s *Server) serveCheckpointNote(w http.ResponseWriter, r *http.Request) {
	g := s.gateway
	fail := func(ctx context.Context, err error) { runtime.HTTPError(ctx, g.mux, g.json, w, r, err) }
	const method = "/trail.v1.ProofService/GetCheckpoint"
	ctx, err := runtime.AnnotateContext(r.Context(), g.mux, r, method,
		runtime.WithHTTPPathPattern("/api/v1/audit/tenants/{tenant_id}/partitions/{partition}/checkpoint"))
	if err != nil {
		fail(r.Context(), err)
		return
	}
	req := &trailv1.GetCheckpointRequest{TenantId: r.PathValue("tenant_id"), Partition: r.PathValue("partition")}
	if err := parseQuery(req, r, "tenant_id", "partition"); err != nil {
		fail(ctx, err)
		return
	}
	resp, err := trailv1.NewProofServiceClient(g.conn).GetCheckpoint(ctx, req)
	if err != nil {
		fail(ctx, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte(resp.GetCheckpoint().GetSignedNote()))
}

// serveReady reports whether this node should receive traffic: it serves,
// and its cluster has a leader to take writes.
// caughtUp reports whether this node has, since it started, applied every
// entry it knew to be committed. A restarted node replays its log past the
// engine's applied index only once a leader has told it the commit index
// (a leader that backed off from it while it was down may take seconds);
// until then its state, API keys included, is older than the cluster's, so
// it is not ready. Entries committed a moment ago may still be in the
// apply pipeline, so a node briefly behind is given readyCatchUpWait to
// apply them. The first time it has caught up latches: applying always lags
// committing a little under load, which is no reason to be unready.
func (s *Server) caughtUp(ctx context.Context, st raftnode.Status) bool {
	if s.caughtUpOnce.Load() {
		return true
	}
	target := st.CommitIndex
	if target == 0 {
		return false
	}
	// Raft's own applied index counts the no-op a new leader commits,
	// which the engine never sees; the engine's is ahead of Raft's for a
	// moment after each batch.
	applied := func(st raftnode.Status) uint64 { return max(st.AppliedIndex, st.RaftApplied) }
	if applied(st) < target {
		wctx, cancel := context.WithTimeout(ctx, readyCatchUpWait)
		_ = s.cluster.WaitApplied(wctx, target) // timing out is an answer, checked below
		cancel()
		if applied(s.cluster.Status()) < target {
			return false
		}
	}
	s.caughtUpOnce.Store(true)
	return true
}

// readyCatchUpWait is how long a readiness probe waits for entries already
// committed to be applied before it answers "catching up".
const readyCatchUpWait = 250 * time.Millisecond

func (s *Server) serveReady(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	serving := s.state == stateServing
	s.mu.Unlock()
	st := s.cluster.Status()
	switch {
	case !serving:
		http.Error(w, "not serving", http.StatusServiceUnavailable)
	case st.Failed != nil:
		http.Error(w, "state machine failed: "+st.Failed.Error(), http.StatusServiceUnavailable)
	case st.LeaderID == "":
		// Cut off from the leader (a partition, or an election): whatever
		// was committed meanwhile must be applied again before this node
		// is ready, so the catch-up check starts over.
		s.caughtUpOnce.Store(false)
		http.Error(w, "no Raft leader known", http.StatusServiceUnavailable)
	case !s.caughtUp(r.Context(), st):
		http.Error(w, fmt.Sprintf("catching up: applied %d of %d committed entries", st.RaftApplied, st.CommitIndex), http.StatusServiceUnavailable)
	default:
		fmt.Fprintf(w, "ok: %s, leader %s, applied %d\n", st.State, st.LeaderID, s.cluster.AppliedIndex())
	}
}
