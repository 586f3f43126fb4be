package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestHealth(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	p := startTraild(t, nil, append(loopbackFlags(dir), fastFlags()...)...)
	p.waitToken() // a leader exists once the key is made

	code, stdout, stderr := runSync(t, nil, "health", "--addr", p.addrs.HTTP)
	if code != exitOK || !strings.HasPrefix(stdout, "ok: Leader") {
		t.Errorf("healthy node: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	// By default the address comes from the configuration, as inside a
	// container whose environment configures the node.
	code, _, stderr = runSync(t, map[string]string{"TRAIL_HTTP_ADDR": p.addrs.HTTP}, "health")
	if code != exitOK {
		t.Errorf("health from TRAIL_HTTP_ADDR: exit %d: %s", code, stderr)
	}
	code, _, stderr = runSync(t, nil, "health", "--addr", "http://"+p.addrs.HTTP+"/")
	if code != exitOK {
		t.Errorf("health with a URL: exit %d: %s", code, stderr)
	}

	closed := busyPort(t) // listening, but not HTTP: then nothing at all
	code, _, stderr = runSync(t, nil, "health", "--addr", closed, "--timeout", "500ms")
	if code != exitError || !strings.Contains(stderr, "not ready") {
		t.Errorf("non-HTTP port: exit %d, stderr %q", code, stderr)
	}
	p.stop()
	code, _, stderr = runSync(t, nil, "health", "--addr", p.addrs.HTTP)
	if code != exitError || !strings.Contains(stderr, "connection refused") {
		t.Errorf("stopped node: exit %d, stderr %q", code, stderr)
	}
}

// TestHealthTLS probes a TLS node the way the compose health check does:
// from the node's own configuration, trusting exactly its certificate.
func TestHealthTLS(t *testing.T) {
	tmp := t.TempDir()
	cert, key := selfSigned(t, tmp, "node")
	vars := map[string]string{"TRAIL_TLS_CERT_FILE": cert, "TRAIL_TLS_KEY_FILE": key}
	p := startTraild(t, vars, append(loopbackFlags(filepath.Join(tmp, "data")), fastFlags()...)...)
	p.waitToken()
	if !strings.Contains(p.stdout.String(), "https://") {
		t.Errorf("banner does not say https:\n%s", p.stdout)
	}
	vars["TRAIL_HTTP_ADDR"] = p.addrs.HTTP
	if code, _, stderr := runSync(t, vars, "health"); code != exitOK {
		t.Errorf("pinned probe: exit %d: %s", code, stderr)
	}
	if code, _, stderr := runSync(t, vars, "health", "--ca", cert); code != exitOK {
		t.Errorf("probe with --ca: exit %d: %s", code, stderr)
	}
	// Another certificate is not this node's.
	other, otherKey := selfSigned(t, tmp, "other")
	wrong := map[string]string{"TRAIL_TLS_CERT_FILE": other, "TRAIL_TLS_KEY_FILE": otherKey, "TRAIL_HTTP_ADDR": p.addrs.HTTP}
	if code, _, stderr := runSync(t, wrong, "health"); code != exitError || !strings.Contains(stderr, "not this node's") {
		t.Errorf("probe pinned to another certificate: exit %d, stderr %q", code, stderr)
	}
	// Plain HTTP to a TLS port is not healthy.
	if code, _, _ := runSync(t, nil, "health", "--addr", "http://"+p.addrs.HTTP); code != exitError {
		t.Errorf("plain HTTP to the TLS port: exit %d", code)
	}
}

// selfSigned writes a certificate for 127.0.0.1 and localhost, and its key.
func selfSigned(t *testing.T, dir, name string) (certFile, keyFile string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IsCA:        true, BasicConstraintsValid: true,
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}
