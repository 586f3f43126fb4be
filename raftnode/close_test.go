package raftnode

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// TestCloseAnswersAppendsInFlight closes a node under concurrent appends
// whose contexts never end: every call returns, with its results,
// ErrClosed or an ambiguous error, rather than waiting forever for an
// entry Raft took in before it shut down and will never answer for.
func TestCloseAnswersAppendsInFlight(t *testing.T) {
	for round := range 5 {
		t.Run(fmt.Sprint(round), func(t *testing.T) {
			c := newCluster(t, 1, nil)
			c.boot()
			n := c.nodes[0]
			var wg sync.WaitGroup
			errs := make(chan error, 16)
			for g := range cap(errs) {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; ; i++ {
						_, err := n.Append(context.Background(), []*trailv1.Event{event("acme", fmt.Sprintf("g%d-%d", g, i))})
						if err != nil {
							errs <- err
							return
						}
					}
				}()
			}
			appendOK(t, n, event("acme", "barrier"))
			c.kill(0)
			done := make(chan struct{})
			go func() { wg.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(60 * time.Second):
				t.Fatal("appends in flight when the node closed were never answered")
			}
			close(errs)
			for err := range errs {
				var amb *AmbiguousError
				if !errors.Is(err, ErrClosed) && !errors.As(err, &amb) {
					t.Errorf("append during close: %v", err)
				}
			}
		})
	}
}
