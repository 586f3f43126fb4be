package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
)

// listeners are the node's three ports, and the debug port when it is
// configured. They are all opened before anything is written or started,
// so a port in use stops traild at once, with its name, instead of after
// the node has half started.
type listeners struct {
	raft, grpc, http, debug net.Listener
}

// addrs are the addresses actually bound, which differ from the
// configured ones for port 0.
type addrs struct {
	Raft, GRPC, HTTP string
}

func listenAll(ctx context.Context, c *Config) (*listeners, error) {
	l := new(listeners)
	var lc net.ListenConfig
	for _, p := range []struct {
		key, addr string
		ln        *net.Listener
	}{
		{"raft.bind", c.Raft.Bind, &l.raft},
		{"grpc_addr", c.GRPCAddr, &l.grpc},
		{"http_addr", c.HTTPAddr, &l.http},
		{"debug_addr", c.DebugAddr, &l.debug},
	} {
		if p.addr == "" {
			continue // debug_addr off
		}
		ln, err := lc.Listen(ctx, "tcp", p.addr)
		if err != nil {
			l.close()
			if errors.Is(err, syscall.EADDRINUSE) {
				return nil, fmt.Errorf("%s %s is already in use (is another traild running?)", p.key, p.addr)
			}
			return nil, fmt.Errorf("%s %s: %w", p.key, p.addr, err)
		}
		*p.ln = ln
	}
	return l, nil
}

func (l *listeners) addrs() addrs {
	return addrs{Raft: l.raft.Addr().String(), GRPC: l.grpc.Addr().String(), HTTP: l.http.Addr().String()}
}

// close closes whatever is open; the node and the server close the
// listeners they were given, so this is for failures before that.
func (l *listeners) close() {
	for _, ln := range []net.Listener{l.raft, l.grpc, l.http, l.debug} {
		if ln != nil {
			ln.Close()
		}
	}
}
