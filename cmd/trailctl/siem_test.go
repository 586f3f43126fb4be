package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trailaudit/trail/internal/syncbuf"
	"github.com/trailaudit/trail/siem"
)

// webhookReceiver is a SIEM's webhook: it checks every signature, fails
// the first deliveries it is told to, and keeps the event ids received.
type webhookReceiver struct {
	key      []byte
	mu       sync.Mutex
	failNext int
	ids      []string
	refused  int
}

func (wr *webhookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if err := siem.VerifySignature(wr.key, r.Header.Get(siem.HeaderTimestamp), r.Header.Get(siem.HeaderSignature), body, time.Now(), time.Minute); err != nil {
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	wr.mu.Lock()
	defer wr.mu.Unlock()
	if wr.failNext > 0 {
		wr.failNext--
		wr.refused++
		http.Error(w, "index busy", http.StatusServiceUnavailable)
		return
	}
	var records []struct {
		Metadata struct {
			UID string `json:"uid"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(body, &records); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	for _, rec := range records {
		wr.ids = append(wr.ids, rec.Metadata.UID)
	}
}

func (wr *webhookReceiver) received() []string {
	wr.mu.Lock()
	defer wr.mu.Unlock()
	return slices.Clone(wr.ids)
}

func appendSIEMEvents(t *testing.T, rs *realServer, dir string, from, n int) {
	t.Helper()
	var b strings.Builder
	for i := from; i < from+n; i++ {
		fmt.Fprintf(&b, `{"tenant_id":"acme","event_id":"s-%03d","category":"data_access","action":"record.view",`+
			`"outcome":"OUTCOME_SUCCESS","actor":{"id":"clerk-%d"},"subject_id":"EE-%d","pii_fields_accessed":["name"],"purpose_code":"case-handling","occurred_at":"2026-12-06T10:00:00Z"}`+"\n", i, i%3, i)
	}
	path := filepath.Join(dir, fmt.Sprintf("events-%d.jsonl", from))
	writeTestFile(t, path, b.String())
	rs.runOK(t, rs.admin, "append", "--jsonl", path)
}

func waitForIDs(t *testing.T, get func() []string, n int) []string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := get()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("received %d records, want %d: %q", len(got), n, got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func wantIDs(from, n int) []string {
	var out []string
	for i := from; i < from+n; i++ {
		out = append(out, fmt.Sprintf("s-%03d", i))
	}
	return out
}

// TestSIEMWebhookResumes: the forwarder delivers a tenant's log from its
// first entry to a signed webhook, retries a refused delivery, and a
// second run resumes after the last delivered entry: every event arrives
// once, in log order.
func TestSIEMWebhookResumes(t *testing.T) {
	rs := startRealServer(t)
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "hook.key")
	writeTestFile(t, keyFile, "0123456789abcdef0123456789abcdef\n")
	recv := &webhookReceiver{key: []byte("0123456789abcdef0123456789abcdef"), failNext: 1}
	hook := httptest.NewServer(recv)
	defer hook.Close()
	state := filepath.Join(dir, "acme.siem.json")
	appendSIEMEvents(t, rs, dir, 0, 25)

	forward := func(ctx context.Context, stderr *syncbuf.Buffer) <-chan int {
		done := make(chan int, 1)
		go func() {
			var out syncbuf.Buffer
			done <- rs.run(ctx, rs.admin, &out, stderr, "siem", "acme", "--sink", hook.URL, "--hmac-key-file", keyFile,
				"--state", state, "--from-start", "--batch", "10", "--flush", "50ms")
		}()
		return done
	}
	ctx, cancel := context.WithCancel(context.Background())
	var stderr syncbuf.Buffer
	done := forward(ctx, &stderr)
	got := waitForIDs(t, recv.received, 25)
	cancel()
	if code := <-done; code != exitOK {
		t.Fatalf("siem exit %d: %s", code, stderr.String())
	}
	if !slices.Equal(got, wantIDs(0, 25)) {
		t.Fatalf("first run delivered %q", got)
	}
	if recv.refused != 1 || !strings.Contains(stderr.String(), "503") {
		t.Errorf("the refused delivery was not retried with a message: refused %d, stderr %q", recv.refused, stderr.String())
	}
	var st siemState
	b, err := os.ReadFile(state)
	if err != nil || json.Unmarshal(b, &st) != nil || st.Tenant != "acme" || st.NextLeaf == 0 {
		t.Fatalf("state %s: %s %v", state, b, err)
	}

	// Appended while no forwarder ran; --from-start no longer matters.
	appendSIEMEvents(t, rs, dir, 25, 7)
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	done = forward(ctx, &stderr)
	got = waitForIDs(t, recv.received, 32)
	time.Sleep(200 * time.Millisecond) // nothing more may come
	cancel()
	<-done
	if got = recv.received(); !slices.Equal(got, wantIDs(0, 32)) {
		t.Fatalf("after the second run: %q", got)
	}
}

// TestSIEMSyslogCEF: CEF over syslog TCP, octet-counted, one frame per
// entry, carrying the entry's place in the log.
func TestSIEMSyslogCEF(t *testing.T) {
	rs := startRealServer(t)
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	frames := make(chan string, 100)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		r := bufio.NewReader(conn)
		for {
			size, err := r.ReadString(' ')
			if err != nil {
				return
			}
			n, _ := strconv.Atoi(strings.TrimSpace(size))
			msg := make([]byte, n)
			if _, err := io.ReadFull(r, msg); err != nil {
				return
			}
			frames <- string(msg)
		}
	}()
	appendSIEMEvents(t, rs, dir, 0, 5)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	var out, stderr syncbuf.Buffer
	go func() {
		done <- rs.run(ctx, rs.admin, &out, &stderr, "siem", "acme", "--sink", "tcp://"+ln.Addr().String(), "--format", "cef",
			"--state", filepath.Join(dir, "state.json"), "--from-start", "--flush", "20ms")
	}()
	for i := range 5 {
		select {
		case f := <-frames:
			if !strings.HasPrefix(f, "<110>1 ") || !strings.Contains(f, " trail - CEF - CEF:0|Trail|traild|1|data_access:record.view|") ||
				!strings.Contains(f, fmt.Sprintf("externalId=s-%03d ", i)) || !strings.Contains(f, fmt.Sprintf("cn1=%d cn1Label=leafIndex", i)) {
				t.Errorf("frame %d: %q", i, f)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("frame %d never came; stderr %s", i, stderr.String())
		}
	}
	cancel()
	if code := <-done; code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
}

func TestSIEMBadInput(t *testing.T) {
	dir := t.TempDir()
	otherState := filepath.Join(dir, "beta.json")
	writeTestFile(t, otherState, `{"tenant":"beta","partition":"2026-12","next_leaf":3}`)
	garbage := filepath.Join(dir, "garbage.json")
	writeTestFile(t, garbage, `{not json`)
	shortKey := filepath.Join(dir, "short.key")
	writeTestFile(t, shortKey, "abc")
	state := filepath.Join(dir, "s.json")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no sink", []string{"acme", "--state", state}, "--sink is required"},
		{"no state", []string{"acme", "--sink", "tcp://127.0.0.1:1"}, "--state FILE is required"},
		{"bad format", []string{"acme", "--sink", "tcp://127.0.0.1:1", "--state", state, "--format", "leef"}, "unknown format"},
		{"bad batch", []string{"acme", "--sink", "tcp://127.0.0.1:1", "--state", state, "--batch", "0"}, "--batch"},
		{"another tenant's state", []string{"acme", "--sink", "tcp://127.0.0.1:1", "--state", otherState}, `tenant "beta"'s`},
		{"corrupt state", []string{"acme", "--sink", "tcp://127.0.0.1:1", "--state", garbage}, "siem state"},
		{"short key", []string{"acme", "--sink", "https://127.0.0.1:1/hook", "--state", state, "--hmac-key-file", shortKey}, "at least 16 bytes"},
		{"webhook without a key", []string{"acme", "--sink", "https://127.0.0.1:1/hook", "--state", state}, "needs an HMAC key"},
		{"unknown scheme", []string{"acme", "--sink", "udp://127.0.0.1:514", "--state", state}, "scheme must be"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, stderr syncbuf.Buffer
			e := &env{stdin: strings.NewReader(""), stdout: &out, stderr: &stderr,
				getenv: func(string) string { return "" }, now: time.Now}
			if code := run(context.Background(), e, append([]string{"siem"}, tc.args...)); code == exitOK {
				t.Fatalf("exit 0")
			}
			if !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("stderr %q, want %q", stderr.String(), tc.want)
			}
			if _, err := os.Stat(state); err == nil {
				t.Errorf("a refused run wrote state")
			}
		})
	}
}

// A position that cannot be saved stops the forwarder with the reason:
// going on would resend everything after a restart.
func TestSIEMStateUnwritable(t *testing.T) {
	rs := startRealServer(t)
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "hook.key")
	writeTestFile(t, keyFile, "0123456789abcdef0123456789abcdef\n")
	recv := &webhookReceiver{key: []byte("0123456789abcdef0123456789abcdef")}
	hook := httptest.NewServer(recv)
	defer hook.Close()
	appendSIEMEvents(t, rs, dir, 0, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out, stderr syncbuf.Buffer
	code := rs.run(ctx, rs.admin, &out, &stderr, "siem", "acme", "--sink", hook.URL, "--hmac-key-file", keyFile,
		"--state", filepath.Join(dir, "no-such-dir", "state.json"), "--from-start", "--flush", "20ms")
	if code == exitOK || ctx.Err() != nil || !strings.Contains(stderr.String(), "siem state") {
		t.Fatalf("exit %d (ctx %v): %s", code, ctx.Err(), stderr.String())
	}
}
