package client

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// maxRecvBytes bounds one response: an inclusion proof carries its entry,
// which may be as large as an event.
const maxRecvBytes = 64 << 20

// conns are the connections to the configured nodes and which one is in
// use. All senders share the current node; a failure moves everyone on.
type conns struct {
	addrs []string
	cc    []*grpc.ClientConn
	cur   atomic.Uint64
}

func dialAll(cfg *Config) (*conns, error) {
	creds := insecure.NewCredentials()
	if cfg.TLS != nil {
		creds = credentials.NewTLS(cfg.TLS)
	}
	opts := append([]grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxRecvBytes)),
		grpc.WithUserAgent("trail-go-client"),
	}, cfg.DialOptions...)
	cs := &conns{addrs: cfg.Addrs}
	for _, a := range cfg.Addrs {
		cc, err := grpc.NewClient(a, opts...)
		if err != nil {
			cs.close()
			return nil, fmt.Errorf("client: dial %s: %w", a, err)
		}
		cs.cc = append(cs.cc, cc)
	}
	return cs, nil
}

// pick returns the node in use and its position.
func (cs *conns) pick() (int, *grpc.ClientConn) {
	i := int(cs.cur.Load() % uint64(len(cs.cc)))
	return i, cs.cc[i]
}

// failed moves on from node i unless another caller already has.
func (cs *conns) failed(i int) {
	cur := cs.cur.Load()
	if int(cur%uint64(len(cs.cc))) == i {
		cs.cur.CompareAndSwap(cur, cur+1)
	}
}

func (cs *conns) close() error {
	var err error
	for _, cc := range cs.cc {
		err = errors.Join(err, cc.Close())
	}
	return err
}

// bearer sends an API key with one call. It does not demand transport
// security: Config.Plaintext is the caller's explicit choice.
type bearer string

func (t bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(t)}, nil
}

func (bearer) RequireTransportSecurity() bool { return false }

// callOpts authenticates one call with token, if any.
func callOpts(token string) []grpc.CallOption {
	if token == "" {
		return nil
	}
	return []grpc.CallOption{grpc.PerRPCCredentials(bearer(token))}
}
