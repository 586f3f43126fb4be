package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// defaultAddr is traild's default gRPC listen address.
const defaultAddr = "127.0.0.1:7070"

// maxRecvBytes bounds one response. Search pages of large entries are the
// biggest responses; gRPC's 4 MiB default is too small for them.
const maxRecvBytes = 64 << 20

// retryServiceConfig makes gRPC retry calls that failed with UNAVAILABLE
// (no leader during an election, a node restarting). Appends are safe to
// retry because the server deduplicates by event_id (invariant 8),
// and reads and proofs have no effects. AdminService is left out: a retried
// CreateAPIKey whose first attempt did commit would create a second key.
const retryServiceConfig = `{
  "methodConfig": [{
    "name": [
      {"service": "trail.v1.IngestService"},
      {"service": "trail.v1.ReadService"},
      {"service": "trail.v1.ProofService"}
    ],
    "retryPolicy": {
      "maxAttempts": 5,
      "initialBackoff": "0.2s",
      "maxBackoff": "3s",
      "backoffMultiplier": 2,
      "retryableStatusCodes": ["UNAVAILABLE"]
    }
  }]
}`

// connFlags are the connection flags every networked command accepts.
type connFlags struct {
	addr       string
	token      string
	tokenFile  string
	useTLS     bool
	caFile     string
	certFile   string
	keyFile    string
	serverName string
	insecure   bool
	timeout    time.Duration
}

func (c *connFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.addr, "addr", "", "server gRPC address host:port (default $TRAIL_ADDR, else "+defaultAddr+")")
	fs.StringVar(&c.token, "token", "", "API key, sent as \"authorization: Bearer <token>\" (default $TRAIL_TOKEN)")
	fs.StringVar(&c.tokenFile, "token-file", "", "read the API key from `FILE` (default $TRAIL_TOKEN_FILE)")
	fs.BoolVar(&c.useTLS, "tls", false, "use TLS (the default for non-loopback addresses)")
	fs.StringVar(&c.caFile, "ca", "", "verify the server with the PEM CA bundle in `FILE` instead of the system roots (implies --tls; default $TRAIL_CA)")
	fs.StringVar(&c.certFile, "cert", "", "client certificate PEM `FILE` for mTLS (implies --tls; default $TRAIL_CERT)")
	fs.StringVar(&c.keyFile, "key", "", "client private key PEM `FILE` for mTLS (default $TRAIL_KEY)")
	fs.StringVar(&c.serverName, "server-name", "", "TLS server name to verify (default: the host of --addr)")
	fs.BoolVar(&c.insecure, "insecure", false, "plaintext without TLS even to a non-loopback address (plaintext is the default only for loopback)")
	fs.DurationVar(&c.timeout, "timeout", 30*time.Second, "deadline of each RPC")
}

// resolve fills unset flags from the environment and checks combinations.
// Environment defaults are applied here, not as flag defaults, so that -h
// never prints a token.
func (c *connFlags) resolve(getenv func(string) string) error {
	for _, f := range []struct {
		v   *string
		env string
	}{
		{&c.addr, "TRAIL_ADDR"}, {&c.token, "TRAIL_TOKEN"}, {&c.tokenFile, "TRAIL_TOKEN_FILE"},
		{&c.caFile, "TRAIL_CA"}, {&c.certFile, "TRAIL_CERT"}, {&c.keyFile, "TRAIL_KEY"},
	} {
		if *f.v == "" {
			*f.v = getenv(f.env)
		}
	}
	if c.addr == "" {
		c.addr = defaultAddr
	}
	switch {
	case c.insecure && (c.useTLS || c.caFile != "" || c.certFile != ""):
		return usageErrorf("--insecure contradicts --tls, --ca and --cert")
	case (c.certFile == "") != (c.keyFile == ""):
		return usageErrorf("--cert and --key go together")
	case c.token != "" && c.tokenFile != "":
		return usageErrorf("give --token or --token-file, not both")
	case c.timeout <= 0:
		return usageErrorf("--timeout must be positive")
	}
	return nil
}

// secure reports whether the connection uses TLS: when asked to, and by
// default for anything but a loopback address.
func (c *connFlags) secure() bool {
	if c.useTLS || c.caFile != "" || c.certFile != "" {
		return true
	}
	return !c.insecure && !isLoopback(c.addr)
}

func isLoopback(addr string) bool {
	if strings.HasPrefix(addr, "unix:") {
		return true
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// dial returns a client connection. grpc.NewClient connects lazily, so an
// unreachable server shows up as UNAVAILABLE on the first call.
func (c *connFlags) dial(warn io.Writer) (*grpc.ClientConn, error) {
	creds, err := c.transport()
	if err != nil {
		return nil, err
	}
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultServiceConfig(retryServiceConfig),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxRecvBytes)),
		grpc.WithUserAgent("trailctl"),
	}
	tok, err := c.readToken()
	if err != nil {
		return nil, err
	}
	if tok != "" {
		if !c.secure() && !isLoopback(c.addr) {
			fmt.Fprintf(warn, "trailctl: warning: sending the API key to %s without TLS\n", c.addr)
		}
		opts = append(opts, grpc.WithPerRPCCredentials(bearerToken(tok)))
	}
	conn, err := grpc.NewClient(c.addr, opts...)
	if err != nil {
		return nil, usageErrorf("connect to %s: %v", c.addr, err)
	}
	return conn, nil
}

func (c *connFlags) readToken() (string, error) {
	if c.tokenFile == "" {
		return c.token, nil
	}
	b, err := os.ReadFile(c.tokenFile)
	if err != nil {
		return "", ioError(fmt.Errorf("read token: %w", err))
	}
	return strings.TrimSpace(string(b)), nil
}

func (c *connFlags) transport() (credentials.TransportCredentials, error) {
	if !c.secure() {
		return insecure.NewCredentials(), nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.serverName}
	if c.caFile != "" {
		pem, err := os.ReadFile(c.caFile)
		if err != nil {
			return nil, ioError(fmt.Errorf("read CA bundle: %w", err))
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, usageErrorf("--ca %s: no PEM certificates found", c.caFile)
		}
	}
	if c.certFile != "" {
		cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
		if err != nil {
			return nil, usageErrorf("load client certificate: %v", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return credentials.NewTLS(cfg), nil
}

// bearerToken sends the API key with every call. It does not demand
// transport security because plaintext is allowed on loopback; dial warns
// when the key would cross a network in the clear.
type bearerToken string

func (t bearerToken) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(t)}, nil
}

func (bearerToken) RequireTransportSecurity() bool { return false }

// netCommand holds what every networked command shares: connection flags
// and the output format.
type netCommand struct {
	conn connFlags
	json bool
}

func (n *netCommand) register(fs *flag.FlagSet) {
	n.conn.register(fs)
	fs.BoolVar(&n.json, "json", false, "print JSON (proto field names) instead of tables")
}

// connect resolves the flags and dials. The caller closes the connection.
func (n *netCommand) connect(e *env) (*grpc.ClientConn, error) {
	if err := n.conn.resolve(e.getenv); err != nil {
		return nil, err
	}
	return n.conn.dial(e.stderr)
}

// rpcContext bounds one call by --timeout.
func (n *netCommand) rpcContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, n.conn.timeout)
}
