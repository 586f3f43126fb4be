package raftnode

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// The forwarding protocol runs on connections whose kind byte is
// connForward. Each frame is a 4-byte big-endian length and that many
// bytes of protobuf: the client writes a RaftForwardRequest, the server
// answers with a RaftForwardResponse, one exchange at a time per
// connection. Clients keep a few idle connections per leader.

// maxFrameBytes bounds a frame. Appends are split into entries of at most
// MaxBatchBytes before they are forwarded, so real frames are far smaller;
// the bound only stops a bad peer from making us allocate without limit.
const maxFrameBytes = 64 << 20

var errFrameTooLarge = errors.New("frame too large")

func writeFrame(w io.Writer, m proto.Message) error {
	b := make([]byte, 4, 4+proto.Size(m))
	b, err := proto.MarshalOptions{}.MarshalAppend(b, m)
	if err != nil {
		return err
	}
	if len(b)-4 > maxFrameBytes {
		return fmt.Errorf("%w: %d bytes", errFrameTooLarge, len(b)-4)
	}
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	_, err = w.Write(b)
	return err
}

func readFrame(r io.Reader, m proto.Message) error {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > maxFrameBytes {
		return fmt.Errorf("%w: %d bytes", errFrameTooLarge, n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return fmt.Errorf("frame body: %w", io.ErrUnexpectedEOF)
	}
	return proto.Unmarshal(b, m)
}

// forwarder is the client side: it sends a request to one node over a
// pooled connection and returns the response.
type forwarder struct {
	m       *mux
	maxIdle int

	mu     sync.Mutex
	idle   map[string][]net.Conn
	closed bool
}

func newForwarder(m *mux) *forwarder {
	return &forwarder{m: m, maxIdle: 16, idle: make(map[string][]net.Conn)}
}

// aLongTimeAgo is a deadline in the past, to abort blocked I/O.
var aLongTimeAgo = time.Unix(1, 0)

// call sends req to addr. Errors wrap errUnreachable when nothing was sent
// and errForwardIO when the request may have reached the node.
func (f *forwarder) call(ctx context.Context, addr string, req *trailv1.RaftForwardRequest) (*trailv1.RaftForwardResponse, error) {
	c, err := f.get(ctx, addr)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", errUnreachable, addr, err)
	}
	dl, _ := ctx.Deadline()
	c.SetDeadline(dl)
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(aLongTimeAgo) })
	defer stop()
	if dl, ok := ctx.Deadline(); ok {
		req.TimeoutNanos = int64(time.Until(dl))
	}
	resp := new(trailv1.RaftForwardResponse)
	if err := writeFrame(c, req); err != nil {
		c.Close()
		return nil, fmt.Errorf("%w: %s: %v", errForwardIO, addr, err)
	}
	if err := readFrame(c, resp); err != nil {
		c.Close()
		return nil, fmt.Errorf("%w: %s: %v", errForwardIO, addr, err)
	}
	if !stop() {
		c.Close() // the deadline may have been moved into the past
	} else {
		f.put(addr, c)
	}
	return resp, nil
}

func (f *forwarder) get(ctx context.Context, addr string) (net.Conn, error) {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return nil, ErrClosed
	}
	if cs := f.idle[addr]; len(cs) > 0 {
		c := cs[len(cs)-1]
		f.idle[addr] = cs[:len(cs)-1]
		f.mu.Unlock()
		return c, nil
	}
	f.mu.Unlock()
	return f.m.dialKind(ctx, addr, connForward)
}

func (f *forwarder) put(addr string, c net.Conn) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed || len(f.idle[addr]) >= f.maxIdle {
		c.Close()
		return
	}
	f.idle[addr] = append(f.idle[addr], c)
}

func (f *forwarder) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	for _, cs := range f.idle {
		for _, c := range cs {
			c.Close()
		}
	}
	f.idle = nil
}

// serveForward is the server side of one forwarding connection: it answers
// requests until the peer hangs up, sends garbage, or the node closes.
func (n *Node) serveForward(c net.Conn) {
	br := bufio.NewReaderSize(c, 64<<10)
	bw := bufio.NewWriterSize(c, 64<<10)
	for {
		req := new(trailv1.RaftForwardRequest)
		if err := readFrame(br, req); err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				n.log.Debug("raftnode: forwarding connection closed", "remote", c.RemoteAddr().String(), "err", err)
			}
			return
		}
		resp := n.handleForward(req)
		if err := writeFrame(bw, resp); err != nil {
			return
		}
		if err := bw.Flush(); err != nil {
			return
		}
	}
}

// handleForward executes one forwarded request. Requests without Route are
// executed only by the leader; any other node answers NOT_LEADER so that
// the sender re-routes with fresh leader information.
func (n *Node) handleForward(req *trailv1.RaftForwardRequest) *trailv1.RaftForwardResponse {
	ctx, cancel := n.requestContext(req.GetTimeoutNanos())
	defer cancel()
	if req.GetRoute() {
		return n.handleRouted(ctx, req)
	}
	if op, ok := req.Op.(*trailv1.RaftForwardRequest_Root); ok {
		if len(op.Root.GetCosign()) > 0 {
			return n.answerCosign(ctx, op.Root) // cosign.go
		}
		return n.answerRoot(ctx, op.Root) // any node answers for itself (peers.go)
	}
	if !n.isLeader() {
		return &trailv1.RaftForwardResponse{Error: encodeError(fmt.Errorf("raftnode: %s: %w", n.cfg.ID, raft.ErrNotLeader))}
	}
	switch op := req.Op.(type) {
	case *trailv1.RaftForwardRequest_Append:
		results, err := n.appendOnLeader(ctx, op.Append)
		if err != nil {
			return &trailv1.RaftForwardResponse{Error: encodeError(err)}
		}
		return &trailv1.RaftForwardResponse{Results: encodeResults(results)}
	case *trailv1.RaftForwardRequest_Join:
		return errorResponse(n.addVoterLocal(ctx, op.Join.GetId(), op.Join.GetAddress()))
	case *trailv1.RaftForwardRequest_Remove:
		return errorResponse(n.removeLocal(ctx, op.Remove.GetId()))
	case *trailv1.RaftForwardRequest_Transfer:
		return errorResponse(n.transferLocal(ctx, op.Transfer.GetId()))
	case *trailv1.RaftForwardRequest_Seal:
		return errorResponse(n.sealLocal(ctx, op.Seal.GetTenant(), op.Seal.GetPartition()))
	case *trailv1.RaftForwardRequest_Prune:
		pruned, err := n.pruneLocal(ctx, op.Prune)
		return &trailv1.RaftForwardResponse{Error: encodeError(err), Pruned: uint64(pruned)}
	case *trailv1.RaftForwardRequest_Settings:
		return errorResponse(n.settingsLocal(ctx, op.Settings))
	case *trailv1.RaftForwardRequest_DropSegment:
		return errorResponse(n.dropSegmentLocal(ctx, op.DropSegment))
	}
	return errorResponse(fmt.Errorf("raftnode: %w: unknown operation", errBadRequest))
}

// handleRouted executes a request with full routing on this node: used by
// a node joining through a member that need not be the leader.
func (n *Node) handleRouted(ctx context.Context, req *trailv1.RaftForwardRequest) *trailv1.RaftForwardResponse {
	switch op := req.Op.(type) {
	case *trailv1.RaftForwardRequest_Join:
		return errorResponse(n.Join(ctx, op.Join.GetId(), op.Join.GetAddress()))
	}
	return errorResponse(fmt.Errorf("raftnode: %w: operation cannot be routed", errBadRequest))
}

func errorResponse(err error) *trailv1.RaftForwardResponse {
	return &trailv1.RaftForwardResponse{Error: encodeError(err)}
}

// requestContext bounds a forwarded request by the sender's remaining time
// and by the node's lifetime.
func (n *Node) requestContext(timeoutNanos int64) (context.Context, context.CancelFunc) {
	if timeoutNanos > 0 {
		return context.WithTimeout(n.ctx, time.Duration(timeoutNanos))
	}
	return context.WithCancel(n.ctx)
}
