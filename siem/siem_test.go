package siem

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

var seqTime = time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)

func entry(ev *trailv1.Event, leaf uint64) *trailv1.StoredEntry {
	ev.TenantId = "acme"
	if ev.EventId == "" {
		ev.EventId = "ev-" + strconv.FormatUint(leaf, 10)
	}
	return &trailv1.StoredEntry{
		Partition: "2026-12", LeafIndex: leaf, LeafHash: []byte{0x01, 0x02},
		Entry: &trailv1.Entry{Event: ev, SequencerTime: timestamppb.New(seqTime), PrevLeafHash: []byte{0xab, 0xcd}},
	}
}

func ocsf(t *testing.T, se *trailv1.StoredEntry) map[string]any {
	t.Helper()
	b, err := Render(FormatOCSF, se, DefaultProduct)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, b)
	}
	return m
}

func TestOCSFClasses(t *testing.T) {
	tests := []struct {
		name                         string
		ev                           *trailv1.Event
		class, activity, status, sev float64
		typeName                     string
	}{
		{"login", &trailv1.Event{Category: trailv1.Category_CATEGORY_AUTHENTICATION, Action: "user.login", Outcome: trailv1.Outcome_OUTCOME_SUCCESS},
			3002, 1, 1, 1, "Authentication: Logon"},
		{"logout", &trailv1.Event{Category: trailv1.Category_CATEGORY_AUTHENTICATION, Action: "user.logout", Outcome: trailv1.Outcome_OUTCOME_SUCCESS},
			3002, 2, 1, 1, "Authentication: Logoff"},
		{"grant refused", &trailv1.Event{Category: trailv1.Category_CATEGORY_AUTHORIZATION, Action: "role.grant", Outcome: trailv1.Outcome_OUTCOME_DENIED},
			3005, 1, 2, 2, "User Access Management: Assign Privileges"},
		{"record read", &trailv1.Event{Category: trailv1.Category_CATEGORY_DATA_ACCESS, Action: "record.view", Outcome: trailv1.Outcome_OUTCOME_SUCCESS},
			6003, 2, 1, 1, "API Activity: Read"},
		{"record changed", &trailv1.Event{Category: trailv1.Category_CATEGORY_DATA_MODIFICATION, Action: "citizen.address.update", Outcome: trailv1.Outcome_OUTCOME_SUCCESS},
			6003, 3, 1, 1, "API Activity: Update"},
		{"record erased", &trailv1.Event{Category: trailv1.Category_CATEGORY_DATA_MODIFICATION, Action: "record.delete", Outcome: trailv1.Outcome_OUTCOME_ERROR},
			6003, 4, 2, 1, "API Activity: Delete"},
		{"payment", &trailv1.Event{Category: trailv1.Category_CATEGORY_FINANCIAL, Action: "payment.approve", Outcome: trailv1.Outcome_OUTCOME_SUCCESS},
			6003, 99, 1, 1, "API Activity: Other"},
		{"security", &trailv1.Event{Category: trailv1.Category_CATEGORY_SECURITY, Action: "anomaly.raised"},
			6003, 99, 0, 3, "API Activity: Other"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := ocsf(t, entry(tc.ev, uint64(i)))
			if m["class_uid"] != tc.class || m["activity_id"] != tc.activity || m["status_id"] != tc.status || m["severity_id"] != tc.sev {
				t.Errorf("class %v activity %v status %v severity %v, want %v %v %v %v",
					m["class_uid"], m["activity_id"], m["status_id"], m["severity_id"], tc.class, tc.activity, tc.status, tc.sev)
			}
			if want := tc.class*100 + tc.activity; m["type_uid"] != want || m["type_name"] != tc.typeName {
				t.Errorf("type %v %q, want %v %q", m["type_uid"], m["type_name"], want, tc.typeName)
			}
		})
	}
}

func TestOCSFCarriesEverything(t *testing.T) {
	ev := &trailv1.Event{
		EventId: "acc-1", Category: trailv1.Category_CATEGORY_DATA_ACCESS, Action: "record.view", Outcome: trailv1.Outcome_OUTCOME_SUCCESS,
		Actor:     &trailv1.Actor{Id: "clerk-17", Type: "user", DisplayName: "Clerk 17", Roles: []string{"case worker"}, Ip: "10.0.0.7", UserAgent: "ua/1", SessionId: "s-1"},
		SubjectId: "EE-1001", Target: &trailv1.Target{Type: "record", Id: "rec-9"}, PiiFieldsAccessed: []string{"name", "address"},
		PurposeCode: "case-handling", SourceService: "registry", TraceId: "4bf92f3577b34da6a3ce929d0e0e4736",
		OccurredAt: timestamppb.New(seqTime.Add(-time.Second)), Attributes: map[string]string{"reason": "ticket 7"},
		Changes: []*trailv1.Change{{Field: "address", Before: "a", After: "b"}},
	}
	se := entry(ev, 41)
	m := ocsf(t, se)
	md := m["metadata"].(map[string]any)
	for k, want := range map[string]any{"uid": "acc-1", "tenant_uid": "acme", "log_name": "2026-12", "sequence": 41.0,
		"correlation_uid": "4bf92f3577b34da6a3ce929d0e0e4736", "logged_time": float64(seqTime.UnixMilli()), "version": ocsfVersion} {
		if md[k] != want {
			t.Errorf("metadata.%s = %v, want %v", k, md[k], want)
		}
	}
	if m["time"] != float64(seqTime.Add(-time.Second).UnixMilli()) {
		t.Errorf("time = %v, want the event's occurred_at", m["time"])
	}
	user := m["actor"].(map[string]any)["user"].(map[string]any)
	if user["uid"] != "clerk-17" || user["name"] != "Clerk 17" || user["groups"].([]any)[0].(map[string]any)["name"] != "case worker" {
		t.Errorf("actor.user = %v", user)
	}
	if m["src_endpoint"].(map[string]any)["ip"] != "10.0.0.7" || m["api"].(map[string]any)["service"].(map[string]any)["name"] != "registry" {
		t.Errorf("src_endpoint %v api %v", m["src_endpoint"], m["api"])
	}
	un := m["unmapped"].(map[string]any)
	if un["subject_id"] != "EE-1001" || un["purpose_code"] != "case-handling" || len(un["pii_fields_accessed"].([]any)) != 2 ||
		un["attributes"].(map[string]any)["reason"] != "ticket 7" || un["changes"].([]any)[0].(map[string]any)["after"] != "b" {
		t.Errorf("unmapped = %v", un)
	}
	if e := un["trail_entry"].(map[string]any); e["leaf_index"] != 41.0 || e["prev_leaf_hash"] != "abcd" || e["leaf_hash"] != "0102" {
		t.Errorf("trail_entry = %v", e)
	}
	// A record is the same bytes every time: a resent record is recognizably the same.
	a, _ := Render(FormatOCSF, se, DefaultProduct)
	b, _ := Render(FormatOCSF, se, DefaultProduct)
	if string(a) != string(b) {
		t.Error("two renderings differ")
	}
}

func TestCEF(t *testing.T) {
	ev := &trailv1.Event{
		EventId: "acc-1", Category: trailv1.Category_CATEGORY_DATA_ACCESS, Action: "record|view", Outcome: trailv1.Outcome_OUTCOME_DENIED,
		Actor:     &trailv1.Actor{Id: `clerk=17\x`, Roles: []string{"a", "b"}},
		SubjectId: "EE-1001", PurposeCode: "line one\nline two", Target: &trailv1.Target{Type: "record", Id: "rec-9"},
	}
	b, err := Render(FormatCEF, entry(ev, 3), DefaultProduct)
	if err != nil {
		t.Fatal(err)
	}
	line := string(b)
	if strings.ContainsAny(line, "\r\n") {
		t.Fatalf("a record spans lines: %q", line)
	}
	for _, want := range []string{
		`CEF:0|Trail|traild|1|data_access:record\|view|record\|view|5|`,
		`externalId=acc-1`, `suser=clerk\=17\\x`, `spriv=a,b`, `duser=EE-1001`, `outcome=denied`,
		`cs1=acme cs1Label=tenant`, `cs2=2026-12 cs2Label=partition`, `cn1=3 cn1Label=leafIndex`,
		`cs3=line one\nline two cs3Label=purpose`, `flexString1=record/rec-9 flexString1Label=target`, `cs6=abcd cs6Label=prevLeafHash flexString2=0102 flexString2Label=leafHash`,
		`rt=` + strconv.FormatInt(seqTime.UnixMilli(), 10),
	} {
		if !strings.Contains(line, want) {
			t.Errorf("missing %q in\n%s", want, line)
		}
	}
	if strings.Contains(line, "src=") || strings.Contains(line, "cs5=") {
		t.Errorf("empty values written: %s", line)
	}
}

func TestPrunedEntryIsRefused(t *testing.T) {
	se := &trailv1.StoredEntry{Partition: "2026-12", LeafIndex: 1, Entry: &trailv1.Entry{}}
	for _, f := range []Format{FormatOCSF, FormatCEF} {
		if _, err := Render(f, se, DefaultProduct); err == nil {
			t.Errorf("%s: a pruned entry rendered", f)
		}
	}
	if _, err := ParseFormat("leef"); err == nil {
		t.Error("unknown format accepted")
	}
}

// readFrames reads octet-counted syslog frames: LEN SP MSG.
func readFrames(r *bufio.Reader, n int) ([]string, error) {
	var out []string
	for len(out) < n {
		lenStr, err := r.ReadString(' ')
		if err != nil {
			return out, err
		}
		size, err := strconv.Atoi(strings.TrimSuffix(lenStr, " "))
		if err != nil || size <= 0 {
			return out, fmt.Errorf("bad frame length %q", lenStr)
		}
		msg := make([]byte, size)
		if _, err := io.ReadFull(r, msg); err != nil {
			return out, err
		}
		out = append(out, string(msg))
	}
	return out, nil
}

func records(t *testing.T, f Format, n int) []Record {
	t.Helper()
	var out []Record
	for i := range n {
		ev := &trailv1.Event{Category: trailv1.Category_CATEGORY_AUTHENTICATION, Action: "user.login", Outcome: trailv1.Outcome_OUTCOME_FAILURE,
			Actor: &trailv1.Actor{Id: "u"}, Attributes: map[string]string{"note": "two\nlines"}}
		b, err := Render(f, entry(ev, uint64(i)), DefaultProduct)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, Record{Body: b, Time: seqTime, Warning: i%2 == 0})
	}
	return out
}

func syslogServer(t *testing.T, cfg *tls.Config) (addr string, frames <-chan []string) {
	t.Helper()
	var ln net.Listener
	var err error
	if cfg != nil {
		ln, err = tls.Listen("tcp", "127.0.0.1:0", cfg)
	} else {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	ch := make(chan []string, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		got, _ := readFrames(bufio.NewReader(conn), 3)
		ch <- got
	}()
	return ln.Addr().String(), ch
}

func TestSyslogSinks(t *testing.T) {
	cert, roots := selfSigned(t)
	for _, tc := range []struct {
		scheme string
		server *tls.Config
		client *tls.Config
	}{
		{"tcp", nil, nil},
		{"tls", &tls.Config{Certificates: []tls.Certificate{cert}}, &tls.Config{RootCAs: roots}},
	} {
		t.Run(tc.scheme, func(t *testing.T) {
			addr, frames := syslogServer(t, tc.server)
			ctx := context.Background()
			sink, err := Open(ctx, tc.scheme+"://"+addr, SinkOptions{TLS: tc.client, Hostname: "node one", Format: FormatOCSF})
			if err != nil {
				t.Fatal(err)
			}
			defer sink.Close()
			recs := records(t, FormatOCSF, 3)
			if err := sink.Send(ctx, recs); err != nil {
				t.Fatal(err)
			}
			var got []string
			select {
			case got = <-frames:
			case <-time.After(10 * time.Second):
				t.Fatal("no frames")
			}
			if len(got) != 3 {
				t.Fatalf("%d frames, want 3", len(got))
			}
			// Facility 13 (log audit): 13*8+4 for a warning, +6 otherwise.
			for i, pri := range []string{"<108>", "<110>", "<108>"} {
				want := pri + "1 2026-12-06T10:00:00.000000Z nodeone trail - OCSF - " + string(recs[i].Body)
				if got[i] != want {
					t.Errorf("frame %d:\n got %q\nwant %q", i, got[i], want)
				}
			}
		})
	}
}

func TestSyslogTLSRefusesAnUnknownServer(t *testing.T) {
	cert, _ := selfSigned(t)
	_, otherRoots := selfSigned(t)
	addr, _ := syslogServer(t, &tls.Config{Certificates: []tls.Certificate{cert}})
	_, err := Open(context.Background(), "tls://"+addr, SinkOptions{TLS: &tls.Config{RootCAs: otherRoots}, Timeout: 5 * time.Second})
	var uerr x509.UnknownAuthorityError
	if !errors.As(err, &uerr) {
		t.Fatalf("err = %v, want an unknown authority", err)
	}
}

func TestWebhook(t *testing.T) {
	key := []byte("0123456789abcdef-secret")
	now := time.Now()
	var bodies [][]byte
	var types []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := VerifySignature(key, r.Header.Get(HeaderTimestamp), r.Header.Get(HeaderSignature), body, now, time.Minute); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		bodies, types = append(bodies, body), append(types, r.Header.Get("Content-Type"))
	}))
	defer srv.Close()
	ctx := context.Background()
	for _, f := range []Format{FormatOCSF, FormatCEF} {
		sink, err := Open(ctx, srv.URL, SinkOptions{HMACKey: key, Format: f, Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		if err := sink.Send(ctx, records(t, f, 3)); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
	}
	if len(bodies) != 2 {
		t.Fatalf("%d deliveries, want 2", len(bodies))
	}
	var arr []map[string]any
	if err := json.Unmarshal(bodies[0], &arr); err != nil || len(arr) != 3 || types[0] != "application/json" {
		t.Errorf("OCSF body: %d records, %v, %q", len(arr), err, types[0])
	}
	if lines := strings.Split(strings.TrimSuffix(string(bodies[1]), "\n"), "\n"); len(lines) != 3 || !strings.HasPrefix(lines[2], "CEF:0|") {
		t.Errorf("CEF body: %q", bodies[1])
	}

	// A wrong key is refused by the receiver, and the sink says so.
	sink, _ := Open(ctx, srv.URL, SinkOptions{HMACKey: []byte("another key entirely"), Format: FormatCEF, Now: func() time.Time { return now }})
	if err := sink.Send(ctx, records(t, FormatCEF, 1)); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("wrong key: %v", err)
	}
}

func TestOpenRefusesBadSinks(t *testing.T) {
	for _, u := range []string{"", "udp://127.0.0.1:514", "tcp://127.0.0.1", "tls://:6514x", "http://example.test/hook", "::bad"} {
		if s, err := Open(context.Background(), u, SinkOptions{Timeout: time.Second}); err == nil {
			s.Close()
			t.Errorf("%q opened", u)
		}
	}
	// Nothing listens there: a clear error, not a hang.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	if _, err := Open(context.Background(), "tcp://"+addr, SinkOptions{Timeout: time.Second}); err == nil || !strings.Contains(err.Error(), "connect to syslog") {
		t.Errorf("closed port: %v", err)
	}
}

func TestVerifySignature(t *testing.T) {
	key, body, now := []byte("k-0123456789abcdef"), []byte(`[{"a":1}]`), time.Unix(1_800_000_000, 0)
	ts := strconv.FormatInt(now.Unix(), 10)
	sig := Sign(key, ts, body)
	tests := []struct {
		name      string
		ts, sig   string
		body      []byte
		at        time.Time
		wantError bool
	}{
		{"good", ts, sig, body, now, false},
		{"body changed", ts, sig, []byte(`[{"a":2}]`), now, true},
		{"timestamp changed", strconv.FormatInt(now.Unix()+1, 10), sig, body, now, true},
		{"replayed late", ts, sig, body, now.Add(10 * time.Minute), true},
		{"garbage timestamp", "soon", sig, body, now, true},
		{"no signature", ts, "", body, now, true},
	}
	for _, tc := range tests {
		err := VerifySignature(key, tc.ts, tc.sig, tc.body, tc.at, 5*time.Minute)
		if (err != nil) != tc.wantError {
			t.Errorf("%s: err = %v", tc.name, err)
		}
		if err != nil && !errors.Is(err, ErrBadSignature) {
			t.Errorf("%s: %v is not ErrBadSignature", tc.name, err)
		}
	}
}

func FuzzVerifySignature(f *testing.F) {
	f.Add([]byte("key-key-key-key!"), "1800000000", "sha256=00", []byte("body"))
	f.Fuzz(func(t *testing.T, key []byte, ts, sig string, body []byte) {
		now := time.Unix(1_800_000_000, 0)
		if VerifySignature(key, ts, sig, body, now, time.Hour) == nil && sig != Sign(key, ts, body) {
			t.Fatalf("accepted a signature that is not the body's: %q", sig)
		}
		good := Sign(key, "1800000000", body)
		if err := VerifySignature(key, "1800000000", good, body, now, time.Hour); err != nil {
			t.Fatalf("refused its own signature: %v", err)
		}
	})
}

// FuzzCEFValue: an escaped value never ends the record or an extension
// pair early, and unescapes to itself.
func FuzzCEFValue(f *testing.F) {
	for _, s := range []string{"a=b", `back\slash`, "two\nlines\r", "plain"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e := cefValue(s)
		if strings.ContainsAny(e, "\r\n") {
			t.Fatalf("line break in %q", e)
		}
		var out strings.Builder
		for i := 0; i < len(e); i++ {
			c := e[i]
			if c == '=' {
				t.Fatalf("unescaped = in %q", e)
			}
			if c != '\\' {
				out.WriteByte(c)
				continue
			}
			i++
			switch e[i] {
			case 'n':
				out.WriteByte('\n')
			case 'r':
				out.WriteByte('\r')
			default:
				out.WriteByte(e[i])
			}
		}
		if out.String() != s {
			t.Fatalf("%q escaped to %q unescapes to %q", s, e, out.String())
		}
	})
}

// selfSigned returns a certificate for 127.0.0.1 and a pool trusting it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "siem test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// RecordOf flags for syslog exactly the events above informational.
func TestRecordOfWarning(t *testing.T) {
	for _, tc := range []struct {
		cat  trailv1.Category
		out  trailv1.Outcome
		warn bool
	}{
		{trailv1.Category_CATEGORY_DATA_ACCESS, trailv1.Outcome_OUTCOME_SUCCESS, false},
		{trailv1.Category_CATEGORY_DATA_ACCESS, trailv1.Outcome_OUTCOME_ERROR, false},
		{trailv1.Category_CATEGORY_DATA_ACCESS, trailv1.Outcome_OUTCOME_DENIED, true},
		{trailv1.Category_CATEGORY_AUTHENTICATION, trailv1.Outcome_OUTCOME_FAILURE, true},
		{trailv1.Category_CATEGORY_SECURITY, trailv1.Outcome_OUTCOME_SUCCESS, true},
	} {
		r, err := RecordOf(FormatCEF, entry(&trailv1.Event{Category: tc.cat, Outcome: tc.out, Action: "a"}, 1), DefaultProduct)
		if err != nil || r.Warning != tc.warn || !r.Time.Equal(seqTime) || len(r.Body) == 0 {
			t.Errorf("%v %v: %+v %v", tc.cat, tc.out, r, err)
		}
	}
}
