package server

import (
	"testing"

	"google.golang.org/grpc/codes"

	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
	"github.com/trailaudit/trail/raftnode"
)

// A node whose disk is below its reserve refuses appends with
// RESOURCE_EXHAUSTED before proposing anything: nothing is written.
func TestAppendRefusedWhenDiskIsFull(t *testing.T) {
	e := newEnv(t, envOptions{tuneNode: func(c *raftnode.Config) {
		c.Engine.MinFreeBytes = 1 << 62 // more than any disk has
	}})
	producer := e.key(trailv1.Role_ROLE_PRODUCER, "acme")
	_, err := e.ingest.Append(e.ctx(producer), &trailv1.AppendRequest{Event: event("acme", "full-1")})
	wantCode(t, err, codes.ResourceExhausted)
	if _, _, err := e.node.Engine().EntryByEventID(e.ctx(producer), "acme", "full-1"); err == nil {
		t.Fatal("a refused append was written")
	}
	if parts, err := e.node.Engine().Partitions(e.ctx(producer), "acme"); err != nil || len(parts) != 0 {
		t.Fatalf("a refused append created partitions %v (%v)", parts, err)
	}
}
