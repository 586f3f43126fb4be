package siem

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// A Record is one rendered entry and what the syslog header needs of it.
type Record struct {
	Body    []byte
	Time    time.Time // when the log sequenced the entry
	Warning bool      // a refused, failed or security event (syslog severity warning)
}

// Sink delivers records. Send returns nil only once every record is
// delivered as far as the sink can tell: written and flushed to the
// syslog connection, or answered 2xx by the webhook. A forwarder saves its
// position after Send, so a failed Send is retried from the same records.
type Sink interface {
	Send(ctx context.Context, records []Record) error
	Close() error
}

// SinkOptions configure Open.
type SinkOptions struct {
	// TLS is the client configuration for tls:// and https:// sinks
	// (nil: the system's roots).
	TLS *tls.Config
	// HMACKey signs webhook bodies; required for http(s):// sinks.
	HMACKey []byte
	// Hostname is the syslog header's HOSTNAME (default: os.Hostname).
	Hostname string
	// Format is the records' format, for the webhook's content type.
	Format Format
	// Now is the clock for signatures and syslog headers (default time.Now).
	Now func() time.Time
	// Timeout bounds a connection attempt and a webhook call (default 30s).
	Timeout time.Duration
}

// Open returns the sink rawURL names: tcp://host:port or tls://host:port
// for syslog, http:// or https:// for a webhook.
func Open(ctx context.Context, rawURL string, opts SinkOptions) (Sink, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("siem: sink %q: %w", rawURL, err)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 30 * time.Second
	}
	if opts.Hostname == "" {
		opts.Hostname, _ = os.Hostname()
	}
	switch u.Scheme {
	case "tcp", "tls":
		if u.Host == "" || u.Port() == "" {
			return nil, fmt.Errorf("siem: sink %q: want %s://host:port", rawURL, u.Scheme)
		}
		s := &syslogSink{addr: u.Host, opts: opts}
		if u.Scheme == "tls" {
			s.tls = opts.TLS
			if s.tls == nil {
				s.tls = &tls.Config{}
			}
			s.tls = s.tls.Clone()
			if s.tls.ServerName == "" {
				s.tls.ServerName = u.Hostname()
			}
		}
		if err := s.connect(ctx); err != nil {
			return nil, err
		}
		return s, nil
	case "http", "https":
		if len(opts.HMACKey) == 0 {
			return nil, fmt.Errorf("siem: sink %q: a webhook needs an HMAC key", rawURL)
		}
		client := &http.Client{Timeout: opts.Timeout}
		if opts.TLS != nil {
			client.Transport = &http.Transport{TLSClientConfig: opts.TLS.Clone()}
		}
		return &webhookSink{url: u.String(), client: client, opts: opts}, nil
	}
	return nil, fmt.Errorf("siem: sink %q: scheme must be tcp, tls, http or https", rawURL)
}

// syslogSink writes RFC 5424 messages, each framed by its length (octet
// counting, RFC 6587 section 3.4.1 and RFC 5425 for TLS), so a record may
// hold any byte, line breaks included.
type syslogSink struct {
	addr string
	tls  *tls.Config
	opts SinkOptions
	conn net.Conn
	w    *bufio.Writer
}

func (s *syslogSink) connect(ctx context.Context) error {
	d := &net.Dialer{Timeout: s.opts.Timeout}
	var conn net.Conn
	var err error
	if s.tls != nil {
		conn, err = (&tls.Dialer{NetDialer: d, Config: s.tls}).DialContext(ctx, "tcp", s.addr)
	} else {
		conn, err = d.DialContext(ctx, "tcp", s.addr)
	}
	if err != nil {
		return fmt.Errorf("siem: connect to syslog %s: %w", s.addr, err)
	}
	s.conn, s.w = conn, bufio.NewWriterSize(conn, 64<<10)
	return nil
}

// Facility 13 is "log audit"; severity 6 informational, 4 warning.
const (
	facilityLogAudit = 13
	sevInfo          = 6
	sevWarning       = 4
)

func (s *syslogSink) Send(ctx context.Context, records []Record) error {
	if s.conn == nil {
		if err := s.connect(ctx); err != nil {
			return err
		}
	}
	if dl, ok := ctx.Deadline(); ok {
		s.conn.SetWriteDeadline(dl)
	} else {
		s.conn.SetWriteDeadline(s.opts.Now().Add(s.opts.Timeout))
	}
	var msg []byte
	for _, r := range records {
		msg = s.message(msg[:0], r)
		s.w.WriteString(strconv.Itoa(len(msg)))
		s.w.WriteByte(' ')
		s.w.Write(msg)
	}
	if err := s.w.Flush(); err != nil {
		// The connection's state is unknown: the next Send reconnects
		// and sends these records again.
		s.conn.Close()
		s.conn = nil
		return fmt.Errorf("siem: write to syslog %s: %w", s.addr, err)
	}
	return nil
}

// message is an RFC 5424 message: <PRI>1 TIMESTAMP HOSTNAME APP-NAME
// PROCID MSGID STRUCTURED-DATA MSG.
func (s *syslogSink) message(b []byte, r Record) []byte {
	sev := sevInfo
	if r.Warning {
		sev = sevWarning
	}
	b = append(b, '<')
	b = strconv.AppendInt(b, facilityLogAudit*8+int64(sev), 10)
	b = append(b, ">1 "...)
	b = r.Time.UTC().AppendFormat(b, "2006-01-02T15:04:05.000000Z")
	b = append(b, ' ')
	b = append(b, syslogName(s.opts.Hostname)...)
	b = append(b, " trail - "...)
	b = append(b, strings.ToUpper(string(s.opts.Format))...)
	b = append(b, " - "...)
	return append(b, r.Body...)
}

// syslogName is a header field: printable ASCII without spaces, or "-".
func syslogName(s string) string {
	s = strings.Map(func(r rune) rune {
		if r <= ' ' || r > '~' {
			return -1
		}
		return r
	}, s)
	if s == "" {
		return "-"
	}
	if len(s) > 255 {
		s = s[:255]
	}
	return s
}

func (s *syslogSink) Close() error {
	if s.conn == nil {
		return nil
	}
	err := s.w.Flush()
	if cerr := s.conn.Close(); err == nil {
		err = cerr
	}
	s.conn = nil
	return err
}

// webhookSink POSTs a batch per Send: OCSF records as a JSON array, CEF
// records one per line. The body is signed (see Sign).
type webhookSink struct {
	url    string
	client *http.Client
	opts   SinkOptions
}

// Signature headers. The timestamp is signed with the body, so a captured
// request cannot be replayed later with a fresh time.
const (
	HeaderTimestamp = "X-Trail-Timestamp"
	HeaderSignature = "X-Trail-Signature"
)

func (s *webhookSink) Send(ctx context.Context, records []Record) error {
	body, ctype := s.body(records)
	ts := strconv.FormatInt(s.opts.Now().Unix(), 10)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("siem: webhook request: %w", err)
	}
	req.Header.Set("Content-Type", ctype)
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderSignature, Sign(s.opts.HMACKey, ts, body))
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("siem: webhook %s: %w", s.url, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("siem: webhook %s: %s: %s", s.url, resp.Status, strings.TrimSpace(string(msg)))
	}
	return nil
}

func (s *webhookSink) body(records []Record) ([]byte, string) {
	var b bytes.Buffer
	if s.opts.Format == FormatOCSF {
		b.WriteByte('[')
		for i, r := range records {
			if i > 0 {
				b.WriteByte(',')
			}
			b.Write(r.Body)
		}
		b.WriteByte(']')
		return b.Bytes(), "application/json"
	}
	for _, r := range records {
		b.Write(r.Body)
		b.WriteByte('\n')
	}
	return b.Bytes(), "text/plain; charset=utf-8"
}

func (s *webhookSink) Close() error { return nil }

// Sign is the X-Trail-Signature of a webhook body sent at timestamp ts
// (Unix seconds, as sent in X-Trail-Timestamp): "sha256=" and the hex
// HMAC-SHA256 of ts, a dot, and the body.
func Sign(key []byte, ts string, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// ErrBadSignature is a webhook request whose signature does not verify.
var ErrBadSignature = errors.New("siem: bad webhook signature")

// VerifySignature is what a webhook receiver runs: the signature must be
// the body's under key, and the timestamp within tolerance of now.
func VerifySignature(key []byte, ts, signature string, body []byte, now time.Time, tolerance time.Duration) error {
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: timestamp %q", ErrBadSignature, ts)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: timestamp %s is %s away from now", ErrBadSignature, ts, d.Round(time.Second))
	}
	want := Sign(key, ts, body)
	if !hmac.Equal([]byte(want), []byte(signature)) {
		return ErrBadSignature
	}
	return nil
}
