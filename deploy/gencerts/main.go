// Command gencerts creates a throwaway certificate authority and one
// certificate per node, for the Compose cluster in deploy/: every node
// uses its certificate both for Raft (mutual TLS between nodes) and for the
// client API. The CA's private key is never written, so nothing can issue
// more certificates under it: to change the set of nodes, generate all of
// it again. It is for development and tests, not for production.
//
//	gencerts -out DIR -nodes node1,node2,node3 [-hosts localhost,127.0.0.1] [-keep] [-valid 720h]
//
// writes DIR/ca.pem and, per node, DIR/NODE.pem and DIR/NODE-key.pem (mode
// 0600). Each node certificate names the node, and every extra host, so
// that clients on the Docker host can verify it at 127.0.0.1.
package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

func main() {
	out := flag.String("out", "certs", "`DIR` to write the certificates into")
	nodes := flag.String("nodes", "node1,node2,node3", "comma-separated node host names, one certificate each")
	hosts := flag.String("hosts", "localhost,127.0.0.1", "comma-separated extra names or IPs every node certificate holds")
	keep := flag.Bool("keep", false, "do nothing if DIR/ca.pem exists (so a restarted deployment keeps its certificates)")
	valid := flag.Duration("valid", 30*24*time.Hour, "validity of every certificate")
	flag.Parse()
	if err := run(*out, split(*nodes), split(*hosts), *keep, *valid); err != nil {
		fmt.Fprintln(os.Stderr, "gencerts:", err)
		os.Exit(1)
	}
}

func run(out string, nodes, hosts []string, keep bool, valid time.Duration) error {
	if len(nodes) == 0 {
		return errors.New("no nodes")
	}
	caFile := filepath.Join(out, "ca.pem")
	if _, err := os.Stat(caFile); err == nil && keep {
		fmt.Printf("gencerts: %s exists; keeping the certificates in %s\n", caFile, out)
		return nil
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	now := time.Now()
	ca, caKey, err := newCA(now, valid)
	if err != nil {
		return err
	}
	for _, n := range nodes {
		cert, key, err := issue(ca, caKey, n, hosts, now, valid)
		if err != nil {
			return fmt.Errorf("node %s: %w", n, err)
		}
		if err := write(filepath.Join(out, n+"-key.pem"), "PRIVATE KEY", key, 0o600); err != nil {
			return err
		}
		if err := write(filepath.Join(out, n+".pem"), "CERTIFICATE", cert, 0o644); err != nil {
			return err
		}
	}
	// The CA goes last: its presence is what -keep takes as "done".
	if err := write(caFile, "CERTIFICATE", ca.Raw, 0o644); err != nil {
		return err
	}
	fmt.Printf("gencerts: wrote a CA and certificates for %s into %s\n", strings.Join(nodes, ", "), out)
	return nil
}

func newCA(now time.Time, valid time.Duration) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "Trail throwaway CA " + now.UTC().Format(time.RFC3339)},
		NotBefore:             now.Add(-time.Hour), // tolerate clock skew between host and containers
		NotAfter:              now.Add(valid),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	ca, err := x509.ParseCertificate(der)
	return ca, key, err
}

// issue returns a node certificate (DER) and its PKCS#8 key, valid for
// server and client authentication: Raft connections are mutual TLS.
func issue(ca *x509.Certificate, caKey *ecdsa.PrivateKey, node string, hosts []string, now time.Time, valid time.Duration) (cert, key []byte, err error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: node},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(valid),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	for _, h := range append([]string{node}, hosts...) {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	if cert, err = x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey); err != nil {
		return nil, nil, err
	}
	key, err = x509.MarshalPKCS8PrivateKey(k)
	return cert, key, err
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return n
}

func write(path, typ string, der []byte, perm os.FileMode) error {
	// Remove first: WriteFile would keep an existing file's mode, and a
	// new key must never sit in a file more readable than perm.
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), perm)
}

func split(s string) []string {
	var out []string
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}
