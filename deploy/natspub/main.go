// Command natspub publishes audit events to a NATS JetStream bus that
// traild ingests from, for the Compose cluster's demos and its end-to-end
// test. Each line of standard input is one event in the REST API's JSON
// form; it is published to -subject wrapped in a CloudEvents 1.0 envelope,
// with its event_id as JetStream's message id, and natspub waits until
// JetStream has stored it before it prints the event_id and goes on.
//
//	natspub -server tls://127.0.0.1:14222 -ca nats-ca.pem -subject trail.events.acme < events.jsonl
//
// A line that is not a JSON object with an event_id stops it with exit
// code 2; a message JetStream does not store within -timeout, with 1.
// Publishing the same lines again is harmless: JetStream and Trail both
// deduplicate by event_id.
package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func main() {
	server := flag.String("server", "nats://127.0.0.1:4222", "NATS server `URL`")
	ca := flag.String("ca", "", "PEM CA bundle `FILE` the server's certificate must chain to (enables TLS)")
	subject := flag.String("subject", "trail.events.default", "`SUBJECT` to publish to")
	timeout := flag.Duration("timeout", 30*time.Second, "how long to keep trying to have one event stored")
	flag.Parse()
	if err := run(*server, *ca, *subject, *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "natspub:", err)
		var bad badLine
		if errors.As(err, &bad) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

type badLine struct {
	n   int
	err error
}

func (b badLine) Error() string { return fmt.Sprintf("line %d: %v", b.n, b.err) }

func run(server, ca, subject string, timeout time.Duration) error {
	var opts []nats.Option
	if ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("%s holds no PEM certificate", ca)
		}
		opts = append(opts, nats.Secure(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}))
	}
	nc, err := nats.Connect(server, opts...)
	if err != nil {
		return fmt.Errorf("connect %s: %w", server, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for n := 1; in.Scan(); n++ {
		line := in.Bytes()
		if len(line) == 0 {
			continue
		}
		m, id, err := envelope(subject, line)
		if err != nil {
			return badLine{n, err}
		}
		if err := publish(js, m, id, timeout); err != nil {
			return fmt.Errorf("event %s: %w", id, err)
		}
		fmt.Println(id)
	}
	return in.Err()
}

// envelope wraps one event's JSON in a CloudEvents 1.0 envelope.
func envelope(subject string, event []byte) (*nats.Msg, string, error) {
	var ev struct {
		EventID string `json:"event_id"`
	}
	if err := json.Unmarshal(event, &ev); err != nil {
		return nil, "", fmt.Errorf("not a JSON event: %w", err)
	}
	if ev.EventID == "" {
		return nil, "", errors.New("no event_id")
	}
	body, err := json.Marshal(map[string]any{
		"specversion": "1.0", "id": ev.EventID, "source": "/natspub", "type": "trail.event",
		"datacontenttype": "application/json", "data": json.RawMessage(event),
	})
	if err != nil {
		return nil, "", err
	}
	m := nats.NewMsg(subject)
	m.Header.Set("Content-Type", "application/cloudevents+json")
	m.Data = body
	return m, ev.EventID, nil
}

// publish retries until JetStream stores m or timeout passes (the stream
// may not exist yet: the first traild to reach the bus creates it).
func publish(js jetstream.JetStream, m *nats.Msg, id string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		_, err := js.PublishMsg(ctx, m, jetstream.WithMsgID(id))
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(200 * time.Millisecond):
		}
	}
}
