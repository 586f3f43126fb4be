package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"strings"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/trailaudit/trail/ingest/natsingest"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// startBus runs a real NATS server with JetStream on loopback.
func startBus(t *testing.T, opts *natsserver.Options) *natsserver.Server {
	t.Helper()
	opts.Host, opts.Port = "127.0.0.1", natsserver.RANDOM_PORT
	opts.JetStream, opts.StoreDir = true, t.TempDir()
	opts.NoLog, opts.NoSigs = true, true
	ns, err := natsserver.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	return ns
}

// checkBusIngest starts traild with bus ingest from ns (flags add the
// connection's security), publishes a CloudEvent and an event of a tenant
// outside nats.tenants, and checks that the first is readable through the
// gRPC API and the second lands on the dead-letter subject.
func checkBusIngest(t *testing.T, ns *natsserver.Server, clientOpts []nats.Option, flags ...string) {
	t.Helper()
	dir := t.TempDir()
	args := append(append(loopbackFlags(dir), fastFlags()...), "--nats-url", ns.ClientURL(), "--nats-tenants", "acme")
	p := startTraild(t, nil, append(args, flags...)...)
	token := p.waitToken()

	nc, err := nats.Connect(ns.ClientURL(), clientOpts...)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// traild creates the stream; publishing waits for it.
	publish := func(subject string, ev *trailv1.Event) {
		t.Helper()
		data, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		m := nats.NewMsg(subject)
		m.Header.Set("Content-Type", natsingest.ContentTypeCloudEvents)
		m.Data = []byte(`{"specversion":"1.0","id":"` + ev.GetEventId() + `","source":"/billing","type":"com.example.audit","data":` + string(data) + `}`)
		for {
			_, err := js.PublishMsg(ctx, m)
			if err == nil {
				return
			}
			if ctx.Err() != nil {
				t.Fatalf("publish: %v\n%s", err, p.stderr)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	publish("trail.events.acme", testEvent("bus-1"))
	other := testEvent("bus-2")
	other.TenantId = "globex"
	publish("trail.events.globex", other)

	read := trailv1.NewReadServiceClient(p.dial())
	for {
		got, err := read.GetEvent(withToken(ctx, token), &trailv1.GetEventRequest{TenantId: "acme", EventId: "bus-1"})
		if err == nil {
			if a := got.GetEntry().GetEntry().GetEvent().GetAction(); a != "traild.test" {
				t.Errorf("read back action %q", a)
			}
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("event from the bus never readable: %v\n%s", err, p.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}

	cons, err := js.OrderedConsumer(ctx, natsingest.DefaultStream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{natsingest.DefaultDeadLetterSubject},
	})
	if err != nil {
		t.Fatal(err)
	}
	dl, err := cons.Next(jetstream.FetchMaxWait(30 * time.Second))
	if err != nil {
		t.Fatalf("no dead letter: %v\n%s", err, p.stderr)
	}
	if c := dl.Headers().Get(natsingest.HeaderCause); c != natsingest.CauseTenant {
		t.Errorf("dead letter cause %q, want %q (reason %q)", c, natsingest.CauseTenant, dl.Headers().Get(natsingest.HeaderReason))
	}
	if code := p.stop(); code != exitOK {
		t.Fatalf("stop: exit %d: %s", code, p.stderr)
	}
}

// TestNATSIngest: traild consumes a plaintext bus on loopback.
func TestNATSIngest(t *testing.T) {
	checkBusIngest(t, startBus(t, &natsserver.Options{}), nil)
}

// TestNATSIngestMutualTLS: traild verifies the bus's certificate against
// nats.tls.ca_file and presents nats.tls.cert_file to a bus that requires
// a client certificate.
func TestNATSIngestMutualTLS(t *testing.T) {
	tmp := t.TempDir()
	busCert, busKey := selfSigned(t, tmp, "bus")
	clientCert, clientKey := selfSigned(t, tmp, "client")
	pool := func(file string) *x509.CertPool {
		p, err := loadCertPool(file)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	pair := func(cert, key string) tls.Certificate {
		c, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	ns := startBus(t, &natsserver.Options{
		TLS: true, TLSVerify: true,
		TLSConfig: &tls.Config{
			Certificates: []tls.Certificate{pair(busCert, busKey)},
			ClientCAs:    pool(clientCert), ClientAuth: tls.RequireAndVerifyClientCert,
			MinVersion: tls.VersionTLS12,
		},
	})
	producer := nats.Secure(&tls.Config{RootCAs: pool(busCert), Certificates: []tls.Certificate{pair(clientCert, clientKey)}})
	checkBusIngest(t, ns, []nats.Option{producer},
		"--nats-tls-ca-file", busCert, "--nats-tls-cert-file", clientCert, "--nats-tls-key-file", clientKey)
}

// TestConfigHidesNATSPassword: traild config shows the bus URL without
// its credentials.
func TestConfigHidesNATSPassword(t *testing.T) {
	code, stdout, stderr := runSync(t, nil, "config", "--nats-url", "nats://svc:hunter2@127.0.0.1:4222,nats://127.0.0.1:4223", "--nats-tenants", "acme")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if strings.Contains(stdout, "hunter2") || !strings.Contains(stdout, "nats://REDACTED@127.0.0.1:4222,nats://127.0.0.1:4223") {
		t.Errorf("config output:\n%s", stdout)
	}
}
