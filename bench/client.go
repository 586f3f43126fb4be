package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// tokenCreds attaches the API key to every call.
type tokenCreds struct {
	token  string
	secure bool
}

func (t tokenCreds) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + t.token}, nil
}

// RequireTransportSecurity is false so that plaintext loopback clusters
// work; the bench never sends a token to a remote plaintext address unless
// the user asked for it with -addr and no TLS flag.
func (t tokenCreds) RequireTransportSecurity() bool { return t.secure }

// dialOptions are how the bench talks to a node: TLS with the given CA
// file (or the system roots when useTLS and no file), else plaintext.
func dialOptions(token, caFile string, useTLS bool) ([]grpc.DialOption, error) {
	transport := insecure.NewCredentials()
	secure := useTLS || caFile != ""
	if secure {
		cfg, err := tlsConfig(caFile)
		if err != nil {
			return nil, err
		}
		transport = credentials.NewTLS(cfg)
	}
	return []grpc.DialOption{
		grpc.WithTransportCredentials(transport),
		grpc.WithPerRPCCredentials(tokenCreds{token: token, secure: secure}),
		// Tail and batch responses of large events exceed the 4 MiB default.
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20), grpc.MaxCallSendMsgSize(64<<20)),
	}, nil
}

// tlsConfig trusts the CA certificates in caFile, or the system roots when
// caFile is empty. The gRPC connections and the /metrics scrapes share it:
// a node's two listeners carry the same certificate.
func tlsConfig(caFile string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile == "" {
		return cfg, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("read CA: %w", err)
	}
	cfg.RootCAs = x509.NewCertPool()
	if !cfg.RootCAs.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("no certificates in %s", caFile)
	}
	return cfg, nil
}
