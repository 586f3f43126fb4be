package auditgrpc_test

import (
	"context"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/trailaudit/trail/client"
	"github.com/trailaudit/trail/client/auditgrpc"
	"github.com/trailaudit/trail/internal/testnode"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// userOf reads the caller's identity from the "x-user" metadata, as a
// service's own authentication would.
func userOf(ctx context.Context) string {
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get("x-user"); len(v) > 0 {
		return v[0]
	}
	return ""
}

// TestInterceptors serves gRPC's health service behind the interceptors
// and an authorization check, with a real Trail node behind the client,
// and checks the event each call left in the log.
func TestInterceptors(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	node, err := testnode.Start(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close()
	tok, err := node.Key(ctx, trailv1.Role_ROLE_PRODUCER, "ops")
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(client.Config{Addrs: []string{node.Addr}, Token: tok, Plaintext: true, Tenant: "ops", Source: "health"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)

	a, err := auditgrpc.New(auditgrpc.Config{
		Client: c,
		Actor: func(ctx context.Context) *trailv1.Actor {
			if u := userOf(ctx); u != "" {
				return &trailv1.Actor{Id: u, Type: "service"}
			}
			return nil
		},
		Methods: map[string]auditgrpc.Method{
			"/grpc.health.v1.Health/Check": {
				Action: "health.check", Category: trailv1.Category_CATEGORY_SYSTEM, TargetType: "service",
				TargetID: func(req any) string { return req.(*healthpb.HealthCheckRequest).GetService() },
			},
			"/grpc.health.v1.Health/List": {Skip: true},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	// Authorization runs inside the audit interceptor, so refusals are
	// recorded too.
	deny := func(ctx context.Context) error {
		if userOf(ctx) == "mallory" {
			return status.Error(codes.PermissionDenied, "not allowed")
		}
		return nil
	}
	srv := grpc.NewServer(
		grpc.ChainUnaryInterceptor(a.Unary(), func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			if err := deny(ctx); err != nil {
				return nil, err
			}
			return h(ctx, req)
		}),
		grpc.ChainStreamInterceptor(a.Stream()),
	)
	hs := health.NewServer()
	hs.SetServingStatus("billing", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(srv, hs)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Stop()
	cc, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	hc := healthpb.NewHealthClient(cc)
	as := func(user string) context.Context { return metadata.AppendToOutgoingContext(ctx, "x-user", user) }

	if _, err := hc.Check(as("probe"), &healthpb.HealthCheckRequest{Service: "billing"}); err != nil {
		t.Fatal(err)
	}
	if _, err := hc.Check(as("probe"), &healthpb.HealthCheckRequest{Service: "nosuch"}); status.Code(err) != codes.NotFound {
		t.Fatalf("Check of an unknown service: %v", err)
	}
	if _, err := hc.Check(as("mallory"), &healthpb.HealthCheckRequest{Service: "billing"}); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("Check as mallory: %v", err)
	}
	if _, err := hc.List(as("probe"), &healthpb.HealthListRequest{}); err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithCancel(as("watcher"))
	ws, err := hc.Watch(wctx, &healthpb.HealthCheckRequest{Service: "billing"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ws.Recv(); err != nil {
		t.Fatal(err)
	}
	wcancel() // the stream ends cancelled: one event, when it ends

	want := map[string]struct {
		action  string
		outcome trailv1.Outcome
		target  string
		code    string
	}{
		"probe/billing":   {"health.check", trailv1.Outcome_OUTCOME_SUCCESS, "billing", "OK"},
		"probe/nosuch":    {"health.check", trailv1.Outcome_OUTCOME_FAILURE, "nosuch", "NotFound"},
		"mallory/billing": {"health.check", trailv1.Outcome_OUTCOME_DENIED, "billing", "PermissionDenied"},
		"watcher/":        {"grpc.health.v1.Health.Watch", trailv1.Outcome_OUTCOME_FAILURE, "", "Canceled"},
	}
	var evs []*trailv1.Event
	deadline := time.Now().Add(30 * time.Second)
	for {
		// The stream's event is recorded when the server sees the
		// cancellation, after the client's call returned.
		if err := c.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if evs, err = node.Events(ctx, "ops"); err != nil {
			t.Fatal(err)
		}
		if len(evs) >= len(want) || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(evs) != len(want) {
		t.Fatalf("%d events recorded, want %d (List is skipped): %v", len(evs), len(want), evs)
	}
	for _, ev := range evs {
		key := ev.GetActor().GetId() + "/" + ev.GetTarget().GetId()
		w, ok := want[key]
		if !ok {
			t.Errorf("unexpected event %v", ev)
			continue
		}
		wantCat := trailv1.Category_CATEGORY_SYSTEM
		if w.target == "" {
			wantCat = trailv1.Category_CATEGORY_DATA_ACCESS // the default
		}
		if ev.GetAction() != w.action || ev.GetOutcome() != w.outcome || ev.GetCategory() != wantCat ||
			ev.GetAttributes()["grpc.code"] != w.code || ev.GetActor().GetIp() != "127.0.0.1" || ev.GetSourceService() != "health" {
			t.Errorf("%s recorded as %v, want %+v", key, ev, w)
		}
	}
}

// TestOutcome pins the status code classes.
func TestOutcome(t *testing.T) {
	for code, want := range map[codes.Code]trailv1.Outcome{
		codes.OK:               trailv1.Outcome_OUTCOME_SUCCESS,
		codes.PermissionDenied: trailv1.Outcome_OUTCOME_DENIED,
		codes.Unauthenticated:  trailv1.Outcome_OUTCOME_DENIED,
		codes.InvalidArgument:  trailv1.Outcome_OUTCOME_FAILURE,
		codes.NotFound:         trailv1.Outcome_OUTCOME_FAILURE,
		codes.Canceled:         trailv1.Outcome_OUTCOME_FAILURE,
		codes.Internal:         trailv1.Outcome_OUTCOME_ERROR,
		codes.Unavailable:      trailv1.Outcome_OUTCOME_ERROR,
	} {
		if got := auditgrpc.Outcome(code); got != want {
			t.Errorf("Outcome(%v) = %v, want %v", code, got, want)
		}
	}
}

// TestNewRefusesIncompleteConfig: Client and Actor are required.
func TestNewRefusesIncompleteConfig(t *testing.T) {
	if _, err := auditgrpc.New(auditgrpc.Config{}); err == nil {
		t.Fatal("New accepted a config without Client and Actor")
	}
}
