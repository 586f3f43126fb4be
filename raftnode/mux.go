package raftnode

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// Connection kinds: the first byte a dialer writes on a new connection.
const (
	connRaft    byte = 'R'
	connForward byte = 'F'
)

// handshakeTimeout bounds the TLS handshake and the kind byte of an
// accepted connection, so that a silent peer cannot hold a goroutine.
const handshakeTimeout = 10 * time.Second

// mux owns the node's one TCP listener. It accepts connections, completes
// TLS when configured, reads the kind byte, and hands Raft connections to
// Raft's transport (through raftLayer) and forwarding connections to the
// forwarding server. It also dials connections of either kind.
type mux struct {
	ln        net.Listener
	advertise net.Addr
	tls       *tls.Config
	dial      func(ctx context.Context, addr string) (net.Conn, error)
	forward   func(net.Conn) // serves one forwarding connection
	probe     func(net.Conn) // answers one probe connection (probe.go)
	log       *slog.Logger

	raftConns chan net.Conn
	done      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup

	mu    sync.Mutex
	conns map[net.Conn]struct{} // accepted connections not yet handed to Raft; closed on Close
}

func newMux(ln net.Listener, advertise net.Addr, cfg *Config) *mux {
	return &mux{
		ln:        ln,
		advertise: advertise,
		tls:       cfg.TLS,
		dial:      cfg.Dial,
		log:       cfg.Logger,
		raftConns: make(chan net.Conn),
		done:      make(chan struct{}),
		conns:     make(map[net.Conn]struct{}),
	}
}

// serve accepts connections until Close. forward must be set first.
func (m *mux) serve() {
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		for {
			c, err := m.ln.Accept()
			if err != nil {
				select {
				case <-m.done:
					return
				default:
				}
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					continue
				}
				m.log.Error("raftnode: accept failed; listener stopped", "err", err)
				return
			}
			m.wg.Add(1)
			go func() {
				defer m.wg.Done()
				m.route(c)
			}()
		}
	}()
}

// route completes TLS, reads the kind byte and dispatches c. The raw
// connection is tracked until it is handed to Raft or served, so that Close
// does not wait for a stalled handshake.
func (m *mux) route(raw net.Conn) {
	if !m.track(raw) {
		return
	}
	c := raw
	c.SetDeadline(time.Now().Add(handshakeTimeout))
	if m.tls != nil {
		tc := tls.Server(c, m.tls)
		if err := tc.Handshake(); err != nil {
			m.log.Warn("raftnode: TLS handshake failed", "remote", c.RemoteAddr().String(), "err", err)
			m.untrack(raw, true)
			return
		}
		c = tc
	}
	var kind [1]byte
	if _, err := io.ReadFull(c, kind[:]); err != nil {
		m.untrack(raw, true)
		return
	}
	c.SetDeadline(time.Time{})
	switch kind[0] {
	case connRaft:
		m.untrack(raw, false)
		select {
		case m.raftConns <- c:
		case <-m.done:
			c.Close()
		}
	case connForward:
		defer m.untrack(raw, true)
		m.forward(c)
	case connProbe:
		defer m.untrack(raw, true)
		if m.probe != nil {
			m.probe(c)
		}
	default:
		m.log.Warn("raftnode: unknown connection kind", "remote", c.RemoteAddr().String(), "kind", kind[0])
		m.untrack(raw, true)
	}
}

func (m *mux) track(c net.Conn) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	select {
	case <-m.done:
		c.Close()
		return false
	default:
	}
	m.conns[c] = struct{}{}
	return true
}

func (m *mux) untrack(c net.Conn, close bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.conns, c)
	if close {
		c.Close()
	}
}

// dialKind opens a connection to addr and announces its kind.
func (m *mux) dialKind(ctx context.Context, addr string, kind byte) (net.Conn, error) {
	c, err := m.dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	if m.tls != nil {
		cfg := m.tls.Clone()
		if cfg.ServerName == "" {
			host, _, err := net.SplitHostPort(addr)
			if err != nil {
				c.Close()
				return nil, err
			}
			cfg.ServerName = host
		}
		tc := tls.Client(c, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			c.Close()
			return nil, fmt.Errorf("TLS handshake with %s: %w", addr, err)
		}
		c = tc
	}
	if _, err := c.Write([]byte{kind}); err != nil {
		c.Close()
		return nil, err
	}
	c.SetDeadline(time.Time{})
	return c, nil
}

// Close stops accepting, closes forwarding connections and waits for the
// routing goroutines. Raft connections handed over belong to Raft.
func (m *mux) Close() error {
	var err error
	m.closeOnce.Do(func() {
		m.mu.Lock()
		close(m.done)
		for c := range m.conns {
			c.Close()
		}
		m.mu.Unlock()
		err = m.ln.Close()
		m.wg.Wait()
	})
	return err
}

// raftLayer is the raft.StreamLayer view of the mux.
type raftLayer struct{ m *mux }

var _ raft.StreamLayer = raftLayer{}

// Accept implements net.Listener for Raft's transport.
func (l raftLayer) Accept() (net.Conn, error) {
	select {
	case c := <-l.m.raftConns:
		return c, nil
	case <-l.m.done:
		return nil, net.ErrClosed
	}
}

// Close implements net.Listener; Raft's transport calls it on shutdown.
func (l raftLayer) Close() error { return l.m.Close() }

// Addr is the advertised address: Raft uses it as this node's address.
func (l raftLayer) Addr() net.Addr { return l.m.advertise }

// Dial implements raft.StreamLayer.
func (l raftLayer) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return l.m.dialKind(ctx, string(addr), connRaft)
}

// advertiseAddr is a net.Addr for a configured "host:port" string.
type advertiseAddr string

func (a advertiseAddr) Network() string { return "tcp" }
func (a advertiseAddr) String() string  { return string(a) }
