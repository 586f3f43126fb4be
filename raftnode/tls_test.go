package raftnode

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
	"testing"
	"time"
)

// testTLS returns a mutual-TLS configuration trusting one self-signed
// certificate for 127.0.0.1, used by every node as server and client.
func testTLS(t testing.TB) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "trail-test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IsCA:                  true,
		BasicConstraintsValid: true,
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
	return &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}},
		RootCAs:      pool,
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS13,
	}
}

// TestTLS runs Raft and forwarding over mutual TLS: a one-node cluster,
// a second node that asks it to join, an append forwarded from the second
// node; a plaintext peer is turned away.
func TestTLS(t *testing.T) {
	cfg := testTLS(t)
	c := newCluster(t, 2, func(c *Config) { c.TLS = cfg })
	c.start(0)
	if err := c.nodes[0].Bootstrap(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	c.leader(10 * time.Second)
	n1 := c.start(1)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := n1.RequestJoin(ctx, c.addrs[0]); err != nil {
		t.Fatal(err)
	}
	// Through whichever node follows, so the append is forwarded over TLS.
	c.leader(10 * time.Second)
	appendOK(t, c.nodes[c.follower()], event("acme", "over-tls"))
	c.converge([]string{"acme"})

	// A peer without TLS gets nothing through.
	plain, err := net.DialTimeout("tcp", c.addrs[0], time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	plain.Write([]byte{connForward, 0, 0, 0, 0})
	plain.SetReadDeadline(time.Now().Add(2 * time.Second))
	// The server answers a stream that is not a ClientHello with at most
	// a TLS alert record (type 21), never a forwarding frame.
	buf := make([]byte, 64)
	if n, _ := plain.Read(buf); n > 0 && buf[0] != 21 {
		t.Fatalf("plaintext peer got %x", buf[:n])
	}
}
