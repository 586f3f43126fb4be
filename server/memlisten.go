package server

import (
	"context"
	"net"
	"sync"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// gatewayNetwork names the in-memory connections between the REST gateway
// and the gRPC server. The access audit trusts x-forwarded-for only on
// calls that arrive over them.
const gatewayNetwork = "trail-gateway"

type gatewayAddr struct{}

func (gatewayAddr) Network() string { return gatewayNetwork }
func (gatewayAddr) String() string  { return "gateway" }

// memListener is a net.Listener whose connections are in-memory pipes
// dialled by the gateway. Unlike a loopback port it cannot be reached by
// anyone else on the host, so it needs no TLS and nothing can pose as the
// gateway.
type memListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newMemListener() *memListener {
	return &memListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *memListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *memListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *memListener) Addr() net.Addr { return gatewayAddr{} }

// dial connects to the listener.
func (l *memListener) dial(ctx context.Context) (net.Conn, error) {
	server, client := net.Pipe()
	select {
	case l.conns <- gatewayConn{server}:
		return gatewayConn{client}, nil
	case <-l.done:
		err := net.ErrClosed
		server.Close()
		client.Close()
		return nil, err
	case <-ctx.Done():
		server.Close()
		client.Close()
		return nil, ctx.Err()
	}
}

// gatewayConn reports gatewayAddr as both ends, which is what gRPC puts in
// the peer of each call.
type gatewayConn struct{ net.Conn }

func (gatewayConn) LocalAddr() net.Addr  { return gatewayAddr{} }
func (gatewayConn) RemoteAddr() net.Addr { return gatewayAddr{} }

// gatewayCreds is the gRPC server's transport security when TLS is on: TLS
// for every connection except the gateway's in-memory ones, which never
// leave the process (the gateway's own HTTP listener does TLS for them).
// gRPC applies one credentials object to every listener of a server, so
// the exemption is decided per connection, by its type, which nothing
// outside this package can produce.
type gatewayCreds struct {
	credentials.TransportCredentials
}

func (c gatewayCreds) ServerHandshake(conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	if _, ok := conn.(gatewayConn); ok {
		return insecure.NewCredentials().ServerHandshake(conn)
	}
	return c.TransportCredentials.ServerHandshake(conn)
}

func (c gatewayCreds) Clone() credentials.TransportCredentials {
	return gatewayCreds{c.TransportCredentials.Clone()}
}
