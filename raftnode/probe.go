package raftnode

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/trailaudit/trail/engine"
)

// The probe protocol answers one question before a node forms a cluster:
// does the peer at this address already hold Raft state, and of which
// cluster? It runs on connections whose kind byte is connProbe: the
// dialler sends nothing more, the node writes one frame (a 4-byte
// big-endian length and that much JSON, a PeerInfo) and closes. It reads
// nothing from the node's state that a probe could change, so any peer,
// member or not, may ask; with TLS on, only holders of a certificate the
// node's CA signed get through the handshake.
//
// A node of an older version closes a probe connection without answering;
// Probe then fails as for an unreachable peer.

// connProbe is the kind byte of a probe connection.
const connProbe byte = 'P'

// maxProbeBytes bounds a probe answer.
const maxProbeBytes = 1 << 20

// probeWriteTimeout bounds writing the answer to a prober that stalls.
const probeWriteTimeout = 5 * time.Second

// PeerInfo is what a node tells a prober about itself.
type PeerInfo struct {
	// ID and Address: the node's Raft server ID and advertised address.
	ID      string `json:"id"`
	Address string `json:"address"`
	// State is "Follower", "Candidate", "Leader" or "Shutdown".
	State string `json:"state"`
	// Term is the node's current Raft term: 0 until it has been
	// bootstrapped or has heard from a leader.
	Term uint64 `json:"term"`
	// LastIndex is the last entry of its Raft log (or snapshot).
	LastIndex     uint64 `json:"last_index"`
	LeaderID      string `json:"leader_id,omitempty"`
	LeaderAddress string `json:"leader_address,omitempty"`
	// Servers is its latest Raft configuration (voters and non-voters).
	Servers []Server `json:"servers,omitempty"`
	// ClusterID is the cluster's ID as the node's replicated state records
	// it (Config.ClusterID); empty when unknown.
	ClusterID string `json:"cluster_id,omitempty"`
}

// HasState reports whether the node belongs to a cluster: it has been
// bootstrapped, or a leader has reached it. A node that has neither waits
// to be bootstrapped or added, and could join any cluster.
func (p PeerInfo) HasState() bool {
	return p.Term > 0 || p.LastIndex > 0 || len(p.Servers) > 0
}

// Probe asks the node at addr about its Raft state, over the same
// transport as Raft (tlsConf as for Config.TLS; nil for plaintext). It
// needs no running node: a node that has not started yet uses it to decide
// whether to bootstrap a cluster or join one. ctx bounds the whole
// exchange.
func Probe(ctx context.Context, addr string, tlsConf *tls.Config) (PeerInfo, error) {
	var d net.Dialer
	m := &mux{tls: tlsConf, dial: func(ctx context.Context, addr string) (net.Conn, error) {
		return d.DialContext(ctx, "tcp", addr)
	}}
	c, err := m.dialKind(ctx, addr, connProbe)
	if err != nil {
		return PeerInfo{}, fmt.Errorf("raftnode: probe %s: %w", addr, err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(aLongTimeAgo) })
	defer stop()
	var hdr [4]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return PeerInfo{}, fmt.Errorf("raftnode: probe %s: no answer (a node of an older version does not answer probes): %w", addr, err)
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > maxProbeBytes {
		return PeerInfo{}, fmt.Errorf("raftnode: probe %s: %w: %d bytes", addr, errFrameTooLarge, n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(c, b); err != nil {
		return PeerInfo{}, fmt.Errorf("raftnode: probe %s: %w", addr, err)
	}
	var info PeerInfo
	if err := json.Unmarshal(b, &info); err != nil {
		return PeerInfo{}, fmt.Errorf("raftnode: probe %s: malformed answer: %w", addr, err)
	}
	return info, nil
}

// Info is what this node answers a probe.
func (n *Node) Info() PeerInfo {
	leaderAddr, leaderID := n.raft.LeaderWithID()
	info := PeerInfo{
		ID: n.cfg.ID, Address: n.Addr(), State: n.raft.State().String(),
		Term: n.raft.CurrentTerm(), LastIndex: n.raft.LastIndex(),
		LeaderID: string(leaderID), LeaderAddress: string(leaderAddr),
	}
	if f := n.raft.GetConfiguration(); f.Error() == nil {
		for _, s := range f.Configuration().Servers {
			info.Servers = append(info.Servers, Server{ID: string(s.ID), Address: string(s.Address)})
		}
	}
	if n.cfg.ClusterID != nil {
		n.View(func(e *engine.Engine) error {
			info.ClusterID = n.cfg.ClusterID(e)
			return nil
		})
	}
	return info
}

// serveProbe answers one probe connection.
func (n *Node) serveProbe(c net.Conn) {
	b, err := json.Marshal(n.Info())
	if err != nil {
		return
	}
	out := make([]byte, 4, 4+len(b))
	binary.BigEndian.PutUint32(out, uint32(len(b)))
	c.SetWriteDeadline(time.Now().Add(probeWriteTimeout))
	if _, err := c.Write(append(out, b...)); err != nil {
		n.log.Debug("raftnode: probe answer not sent", "remote", c.RemoteAddr().String(), "err", err)
	}
}
