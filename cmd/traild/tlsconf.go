package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
)

// apiTLS loads the TLS configuration of the gRPC and HTTP listeners and
// the client CAs for mTLS; the zero value means plaintext.
func apiTLS(c *Config) (apiTLSConfig, error) {
	if c.TLS.CertFile == "" {
		return apiTLSConfig{}, nil
	}
	cert, err := tls.LoadX509KeyPair(c.TLS.CertFile, c.TLS.KeyFile)
	if err != nil {
		return apiTLSConfig{}, fmt.Errorf("tls: load %s and %s: %w", c.TLS.CertFile, c.TLS.KeyFile, err)
	}
	a := apiTLSConfig{tls: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}}
	if c.TLS.ClientCAFile != "" {
		if a.clientCAs, err = loadCertPool(c.TLS.ClientCAFile); err != nil {
			return apiTLSConfig{}, fmt.Errorf("tls.client_ca_file: %w", err)
		}
	}
	return a, nil
}

// raftTLS returns the mutual-TLS configuration between nodes, or nil. One
// CA vouches for every node in both directions, and the dialled host name
// is verified against the peer's certificate (raftnode sets ServerName).
func raftTLS(c *Config) (*tls.Config, error) {
	r := c.Raft.TLS
	if r.CertFile == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(r.CertFile, r.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("raft.tls: load %s and %s: %w", r.CertFile, r.KeyFile, err)
	}
	pool, err := loadCertPool(r.CAFile)
	if err != nil {
		return nil, fmt.Errorf("raft.tls.ca_file: %w", err)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		RootCAs:      pool,
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		// Only traild speaks to traild here, so the newest version will do.
		MinVersion: tls.VersionTLS13,
	}, nil
}

func loadCertPool(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return pool, nil
}
