package engine

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/trailaudit/trail/merkle"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// CompactRange at any size resumes the tree: an appender seeded with it
// reaches the checkpoint roots at that size and, after the remaining
// leaves, at the full size, across tile boundaries.
func TestCompactRange(t *testing.T) {
	e := openEngine(t, t.TempDir())
	ctx := context.Background()
	const n = 300
	for i := range n / 100 {
		evs := make([]*trailv1.Event, 0, 100)
		for j := range 100 {
			evs = append(evs, event("acme", fmt.Sprintf("e%d-%d", i, j)))
		}
		applyOK(t, e, uint64(i+1), nov, evs...)
	}
	p := mustPartition(t, "acme", "2026-11")
	full, err := e.Checkpoint(ctx, p, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, size := range []uint64{0, 1, 2, 5, 255, 256, 257, 299, 300} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			edge, err := e.CompactRange(ctx, p, size)
			if err != nil {
				t.Fatal(err)
			}
			a, err := merkle.NewAppender(size, edge)
			if err != nil {
				t.Fatal(err)
			}
			if size > 0 {
				cp, err := e.Checkpoint(ctx, p, size)
				if err != nil {
					t.Fatal(err)
				}
				if a.Root() != cp.Root {
					t.Fatalf("root at %d: %s, checkpoint %s", size, a.Root(), cp.Root)
				}
			}
			ses, err := e.Entries(ctx, p, size, n)
			if err != nil {
				t.Fatal(err)
			}
			for _, se := range ses {
				a.Append(se.LeafHash, nil)
			}
			if a.Size() != n || a.Root() != full.Root {
				t.Fatalf("resumed at %d: size %d root %s, want %d %s", size, a.Size(), a.Root(), n, full.Root)
			}
		})
	}
	if _, err := e.CompactRange(ctx, p, n+1); !errors.Is(err, ErrBadSize) {
		t.Fatalf("beyond the size: %v", err)
	}
}
