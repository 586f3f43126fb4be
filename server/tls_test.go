package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"net/http"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// testCA issues certificates for TLS tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "trail test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

func (ca *testCA) issue(t *testing.T, cn string, usage x509.ExtKeyUsage) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func TestTLSAndMTLS(t *testing.T) {
	ca := newTestCA(t)
	serverCert := ca.issue(t, "trail server", x509.ExtKeyUsageServerAuth)
	clientCert := ca.issue(t, "trail client", x509.ExtKeyUsageClientAuth)
	serverTLS := &tls.Config{Certificates: []tls.Certificate{serverCert}}

	t.Run("TLS", func(t *testing.T) {
		client := &tls.Config{RootCAs: ca.pool}
		e := newEnv(t, envOptions{serverTLS: serverTLS, clientTLS: client})
		e.appendAll(e.admin, []*trailv1.Event{event("acme", "tls")})
		if code, body, _ := e.rest("GET", "/api/v1/audit/tenants/acme/partitions", e.admin, nil); code != http.StatusOK {
			t.Fatalf("HTTPS: %d: %s", code, body)
		}
		// Plaintext is refused on a TLS server.
		conn, err := grpc.NewClient(e.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		ctx, cancel := context.WithTimeout(e.ctx(e.admin), 3*time.Second)
		defer cancel()
		_, err = trailv1.NewAdminServiceClient(conn).ClusterStatus(ctx, &trailv1.ClusterStatusRequest{})
		wantCode(t, err, codes.Unavailable)
	})

	t.Run("mTLS", func(t *testing.T) {
		withCert := &tls.Config{RootCAs: ca.pool, Certificates: []tls.Certificate{clientCert}}
		e := newEnv(t, envOptions{serverTLS: serverTLS, clientTLS: withCert, tune: func(c *Config) { c.ClientCAs = ca.pool }})
		if _, err := e.adm.ClusterStatus(e.ctx(e.admin), &trailv1.ClusterStatusRequest{}); err != nil {
			t.Fatalf("with a client certificate: %v", err)
		}
		if code, _, _ := e.rest("GET", "/healthz", "", nil); code != http.StatusOK {
			t.Fatalf("HTTPS with a client certificate: %d", code)
		}
		// Without a client certificate: refused by both listeners.
		conn, err := grpc.NewClient(e.grpcAddr, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: ca.pool})))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		ctx, cancel := context.WithTimeout(e.ctx(e.admin), 3*time.Second)
		defer cancel()
		_, err = trailv1.NewAdminServiceClient(conn).ClusterStatus(ctx, &trailv1.ClusterStatusRequest{})
		wantCode(t, err, codes.Unavailable)
		noCert := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool}}, Timeout: 3 * time.Second}
		if resp, err := noCert.Get(e.httpBase + "/healthz"); err == nil {
			resp.Body.Close()
			t.Fatalf("HTTPS without a client certificate: HTTP %d", resp.StatusCode)
		}
	})
}

func TestConfigRequiresExplicitTransport(t *testing.T) {
	node := startNode(t, nil)
	skey, _, err := generateTestKey()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"neither TLS nor plaintext", Config{Cluster: node, Signer: skey}},
		{"both TLS and plaintext", Config{Cluster: node, Signer: skey, Plaintext: true, TLS: &tls.Config{}}},
		{"client CAs without TLS", Config{Cluster: node, Signer: skey, Plaintext: true, ClientCAs: x509.NewCertPool()}},
		{"no signer", Config{Cluster: node, Plaintext: true}},
		{"no cluster", Config{Signer: skey, Plaintext: true}},
	} {
		if _, err := New(tc.cfg); err == nil {
			t.Errorf("%s: New accepted the config", tc.name)
		}
	}
}
