package main

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"github.com/trailaudit/trail/raftnode"
	"github.com/trailaudit/trail/server"
	"github.com/trailaudit/trail/witness"
)

// check validates the configuration on its own, before the data directory
// is read. Every message names the setting by its file key, which is also
// the stem of its flag and environment variable.
func (c *Config) check() error {
	if c.DataDir == "" {
		return fmt.Errorf("data_dir is empty")
	}
	for _, id := range []struct{ key, v string }{{"node_id", c.NodeID}, {"cluster_id", c.ClusterID}} {
		if id.v != "" && !validID(id.v) {
			return fmt.Errorf("%s %q: want 1 to 64 letters, digits, '.', '_' or '-'", id.key, id.v)
		}
	}
	if c.LogName != "" {
		if err := checkLogName(c.LogName); err != nil {
			return err
		}
	}
	for _, a := range []struct{ key, addr string }{
		{"grpc_addr", c.GRPCAddr}, {"http_addr", c.HTTPAddr}, {"raft.bind", c.Raft.Bind},
	} {
		if _, _, err := splitAddr(a.addr); err != nil {
			return fmt.Errorf("%s: %w", a.key, err)
		}
	}
	if c.DebugAddr != "" {
		// Profiles show the program's internals and cost CPU to take:
		// never on a network address, whatever insecure_plaintext says.
		if host, _, err := splitAddr(c.DebugAddr); err != nil || !isLoopback(host) {
			return fmt.Errorf("debug_addr %s: want a loopback address with a port (%v)", c.DebugAddr, err)
		}
	}
	if c.OTel.Endpoint != "" {
		if _, port, err := splitAddr(c.OTel.Endpoint); err != nil || port == 0 {
			return fmt.Errorf("otel.endpoint %s: want host:port (%v)", c.OTel.Endpoint, err)
		}
	}
	if c.OTel.SamplePercent < 0 || c.OTel.SamplePercent > 100 {
		return fmt.Errorf("otel.sample_percent %d: want 0 to 100", c.OTel.SamplePercent)
	}
	if err := c.checkAdvertise(); err != nil {
		return err
	}
	if err := c.checkTLS(); err != nil {
		return err
	}
	if err := c.checkPlaintext(); err != nil {
		return err
	}
	if _, err := parseWitnesses(c.Witnesses); err != nil {
		return err
	}
	if err := c.checkNATS(); err != nil {
		return err
	}
	return c.checkFormation()
}

// checkNATS validates bus ingest's settings when it is on. Audit events
// cross the bus connection, so it follows the API's rule: plaintext only
// to loopback unless insecure_plaintext.
func (c *Config) checkNATS() error {
	n := c.NATS
	if n.URL == "" {
		return nil
	}
	if err := natsSettings(c).Check(); err != nil {
		return err
	}
	if (n.TLS.CertFile == "") != (n.TLS.KeyFile == "") {
		return fmt.Errorf("nats.tls.cert_file and nats.tls.key_file go together")
	}
	for item := range strings.SplitSeq(n.URL, ",") {
		u, err := url.Parse(strings.TrimSpace(item))
		if err != nil || u.Host == "" {
			return fmt.Errorf("nats.url: %q: want nats://host:port or tls://host:port", urlListValue{&item}.String())
		}
		switch u.Scheme {
		case "nats", "tls":
		default:
			return fmt.Errorf("nats.url: scheme %q: want nats or tls", u.Scheme)
		}
		if u.Scheme == "nats" && n.TLS.CAFile == "" && !c.InsecurePlaintext && !isLoopback(u.Hostname()) {
			return fmt.Errorf("nats.url %s is not a loopback address: configure nats.tls.ca_file (or a tls:// URL), or set insecure_plaintext",
				urlListValue{&item}.String())
		}
	}
	return nil
}

func (c *Config) checkAdvertise() error {
	for _, a := range []struct{ key, addr string }{{"raft.advertise", c.Raft.Advertise}, {"grpc_advertise", c.GRPCAdvertise}} {
		if a.addr == "" {
			continue
		}
		host, port, err := splitAddr(a.addr)
		if err != nil {
			return fmt.Errorf("%s: %w", a.key, err)
		}
		if isWildcard(host) || port == 0 {
			return fmt.Errorf("%s %s: want an address other nodes can dial, with a port", a.key, a.addr)
		}
	}
	if host, _, _ := splitAddr(c.Raft.Bind); isWildcard(host) && c.Raft.Advertise == "" {
		return fmt.Errorf("raft.bind %s listens on every interface: set raft.advertise to the address other nodes dial", c.Raft.Bind)
	}
	return nil
}

func (c *Config) checkTLS() error {
	t, r := c.TLS, c.Raft.TLS
	switch {
	case (t.CertFile == "") != (t.KeyFile == ""):
		return fmt.Errorf("tls.cert_file and tls.key_file go together")
	case t.ClientCAFile != "" && t.CertFile == "":
		return fmt.Errorf("tls.client_ca_file (mTLS) needs tls.cert_file and tls.key_file")
	case (r.CertFile == "") != (r.KeyFile == "") || (r.CertFile == "") != (r.CAFile == ""):
		// Raft TLS is always mutual: every node is both server and client.
		return fmt.Errorf("raft.tls.cert_file, raft.tls.key_file and raft.tls.ca_file go together")
	}
	return nil
}

// checkPlaintext refuses plaintext on anything but loopback unless asked
// for: audit events and API keys cross these connections.
func (c *Config) checkPlaintext() error {
	if c.InsecurePlaintext {
		return nil
	}
	if c.TLS.CertFile == "" {
		for _, a := range []struct{ key, addr string }{{"grpc_addr", c.GRPCAddr}, {"http_addr", c.HTTPAddr}} {
			if host, _, _ := splitAddr(a.addr); !isLoopback(host) {
				return fmt.Errorf("%s %s is not a loopback address: configure tls.cert_file and tls.key_file, or set insecure_plaintext", a.key, a.addr)
			}
		}
	}
	if c.Raft.TLS.CertFile == "" {
		if host, _, _ := splitAddr(c.Raft.Bind); !isLoopback(host) {
			return fmt.Errorf("raft.bind %s is not a loopback address: configure raft.tls.cert_file, raft.tls.key_file and raft.tls.ca_file, or set insecure_plaintext", c.Raft.Bind)
		}
	}
	return nil
}

func (c *Config) checkFormation() error {
	switch {
	case c.Bootstrap && c.Join != "":
		return fmt.Errorf("bootstrap and join exclude each other: a node either creates a cluster or joins one")
	case len(c.Peers) > 0 && !c.Bootstrap:
		return fmt.Errorf("peers are the voters of a new cluster: they need bootstrap")
	case c.Join != "":
		if _, _, err := splitAddr(c.Join); err != nil {
			return fmt.Errorf("join: %w", err)
		}
	}
	_, err := parsePeers(c.Peers)
	return err
}

// parsePeers parses "id=host:port" items into the voters of a new cluster.
func parsePeers(items []string) ([]raftnode.Server, error) {
	var out []raftnode.Server
	ids, addrs := make(map[string]bool), make(map[string]bool)
	for _, item := range items {
		id, addr, ok := strings.Cut(item, "=")
		if !ok || !validID(id) {
			return nil, fmt.Errorf("peers: %q: want id=host:port", item)
		}
		if _, _, err := splitAddr(addr); err != nil {
			return nil, fmt.Errorf("peers: %s: %w", id, err)
		}
		if ids[id] || addrs[addr] {
			return nil, fmt.Errorf("peers: %q: id or address listed twice", item)
		}
		ids[id], addrs[addr] = true, true
		out = append(out, raftnode.Server{ID: id, Address: addr})
	}
	return out, nil
}

// parseWitnesses parses "VKEY URL" items into the server's witnesses.
// Neither a verifier key nor a URL contains a space.
func parseWitnesses(items []string) ([]server.Witness, error) {
	var out []server.Witness
	for _, item := range items {
		f := strings.Fields(item)
		if len(f) != 2 {
			return nil, fmt.Errorf("witnesses: %q: want \"VKEY URL\"", item)
		}
		if _, err := witness.NewCosignatureVerifier(f[0]); err != nil {
			return nil, fmt.Errorf("witnesses: %w", err)
		}
		u, err := url.Parse(f[1])
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("witnesses: %q is not an http(s) URL", f[1])
		}
		out = append(out, server.Witness{VerifierKey: f[0], URL: f[1]})
	}
	return out, nil
}

func validID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// checkLogName accepts what can be both a signed-note key name and the
// first part of a checkpoint origin: printable ASCII without spaces or '+'.
func checkLogName(name string) error {
	for _, r := range name {
		if r <= ' ' || r > '~' || r == '+' {
			return fmt.Errorf("log_name %q: want printable ASCII without spaces or '+'", name)
		}
	}
	if name == "" || len(name) > 128 || strings.HasSuffix(name, "/") {
		return fmt.Errorf("log_name %q: want 1 to 128 characters, not ending in '/'", name)
	}
	return nil
}

// splitAddr splits host:port; the host may be empty (every interface).
func splitAddr(addr string) (host string, port int, err error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("address %q: want host:port", addr)
	}
	n, err := strconv.ParseUint(p, 10, 16)
	if err != nil {
		return "", 0, fmt.Errorf("address %q: port %q is not a number up to 65535", addr, p)
	}
	return host, int(n), nil
}

func isWildcard(host string) bool {
	if host == "" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsUnspecified()
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}
