package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// cmdHealth asks a node whether it is ready (GET /readyz: serving, and a
// Raft leader known) and exits 0 only on 200. The container image has no
// shell or curl, so Compose health checks run this. By default it reads
// the same configuration as serve, so inside a node's container plain
// `traild health` probes that node, over TLS when the node serves TLS.
func cmdHealth(ctx context.Context, e *env, args []string) error {
	cf := newConfigFlags("health", e.stderr)
	addr := cf.fs.String("addr", "", "the node's HTTP `ADDRESS`, host:port or a URL (default: http_addr, a wildcard host probed on loopback)")
	caFile := cf.fs.String("ca", "", "verify the node's certificate against the PEM CA bundle `FILE` (default: the node's own certificate, tls.cert_file)")
	timeout := cf.fs.Duration("timeout", 5*time.Second, "give up after this long")
	cf.fs.Usage = settingsUsage(cf.fs, e.stderr, "[--addr HOST:PORT|URL] [--ca FILE] [--timeout D] [settings]", "addr", "ca", "timeout")
	cfg, err := cf.parse(args, e.getenv)
	if err != nil {
		return err
	}
	u, err := healthURL(*addr, cfg, *caFile != "")
	if err != nil {
		return usageErrorf("--addr: %v", err)
	}
	client, err := healthClient(cfg, u, *caFile)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.JoinPath("readyz").String(), nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("not ready: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	msg := strings.TrimSpace(string(body))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("not ready: %s: %s", resp.Status, msg)
	}
	fmt.Fprintln(e.stdout, msg)
	return nil
}

// healthURL is the base URL to probe: --addr, else http_addr with a
// wildcard host replaced by loopback. A bare address uses https when the
// node serves TLS or a CA was given.
func healthURL(addr string, c *Config, haveCA bool) (*url.URL, error) {
	scheme := "http"
	if c.TLS.CertFile != "" || haveCA {
		scheme = "https"
	}
	if strings.Contains(addr, "://") {
		u, err := url.Parse(addr)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("%q: want host:port or an http(s) URL", addr)
		}
		return u, nil
	}
	if addr == "" {
		addr = c.HTTPAddr
	}
	host, port, err := splitAddr(addr)
	if err != nil {
		return nil, err
	}
	if isWildcard(host) {
		host = "127.0.0.1"
		if strings.Contains(addr, "::") {
			host = "::1"
		}
	}
	return &url.URL{Scheme: scheme, Host: net.JoinHostPort(host, fmt.Sprint(port))}, nil
}

// healthClient trusts the CA given, or else exactly the node's own
// certificate: the probe then proves it reached this node, whatever names
// the certificate holds. When the node demands client certificates, the
// probe presents the node's own.
func healthClient(c *Config, u *url.URL, caFile string) (*http.Client, error) {
	tr := &http.Transport{Proxy: nil, DisableKeepAlives: true}
	client := &http.Client{Transport: tr}
	if u.Scheme != "https" {
		return client, nil
	}
	t := &tls.Config{MinVersion: tls.VersionTLS12}
	var own *tls.Certificate
	if c.TLS.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.TLS.CertFile, c.TLS.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls: load %s and %s: %w", c.TLS.CertFile, c.TLS.KeyFile, err)
		}
		own = &cert
	}
	switch {
	case caFile != "":
		pool, err := loadCertPool(caFile)
		if err != nil {
			return nil, fmt.Errorf("--ca: %w", err)
		}
		t.RootCAs = pool
	case own != nil:
		t.InsecureSkipVerify = true // replaced by the pin below
		t.VerifyPeerCertificate = pinLeaf(own.Certificate[0])
	}
	if own != nil && c.TLS.ClientCAFile != "" {
		t.Certificates = []tls.Certificate{*own}
	}
	tr.TLSClientConfig = t
	return client, nil
}

// pinLeaf accepts exactly one certificate, byte for byte.
func pinLeaf(want []byte) func([][]byte, [][]*x509.Certificate) error {
	return func(raw [][]byte, _ [][]*x509.Certificate) error {
		if len(raw) == 0 || !bytes.Equal(raw[0], want) {
			return errors.New("the server's certificate is not this node's (tls.cert_file)")
		}
		return nil
	}
}
