package client_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/trailaudit/trail/client"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// segments lists the spool segment files in dir.
func segments(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "spool-*.log"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(m)
	return m
}

// crash appends events through a client that cannot reach any node, then
// stops it without delivering them, as a crash would: every Append
// returned, so every event is in the spool.
func crash(t *testing.T, dir string, evs ...*trailv1.Event) {
	t.Helper()
	crashWith(t, client.Config{SpoolDir: dir}, evs...)
}

// crashWith is crash with more of the client's configuration.
func crashWith(t *testing.T, cfg client.Config, evs ...*trailv1.Event) {
	t.Helper()
	cfg.Addrs, cfg.Plaintext, cfg.Tenant = []string{deadAddr(t)}, true, tenant
	cfg.MinBackoff, cfg.MaxBackoff = time.Millisecond, 10*time.Millisecond
	c, err := client.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs {
		if _, err := c.Append(ctxFor(t), ev); err != nil {
			t.Fatal(err)
		}
	}
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	err = c.Close(ended)
	if err == nil || !strings.Contains(err.Error(), "kept in the spool") {
		t.Fatalf("Close with undelivered events: %v, want them reported kept in the spool", err)
	}
}

// eventIDs returns the ids of the test tenant's events, in log order.
func eventIDs(t *testing.T, n interface {
	Events(context.Context, string) ([]*trailv1.Event, error)
}) []string {
	t.Helper()
	evs, err := n.Events(ctxFor(t), tenant)
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, len(evs))
	for i, ev := range evs {
		ids[i] = ev.GetEventId()
	}
	sort.Strings(ids)
	return ids
}

// TestSpoolSurvivesCrash: events accepted while Trail is down survive the
// producer's crash and are delivered by the next client on the directory,
// each exactly once, also when a crash left acknowledged events in the
// spool (they are resent and answered as duplicates).
func TestSpoolSurvivesCrash(t *testing.T) {
	n := startNode(t)
	tok := key(t, n, trailv1.Role_ROLE_PRODUCER)
	dir := t.TempDir()
	crash(t, dir, event("spool", 0), event("spool", 1), event("spool", 2))
	if len(segments(t, dir)) == 0 {
		t.Fatal("no spool segment after a crash with undelivered events")
	}

	// The next start delivers them, and takes new events.
	c := newClient(t, client.Config{Addrs: []string{n.Addr}, Token: tok, SpoolDir: dir})
	var ps []*client.Pending
	for i := 3; i < 5; i++ {
		p, err := c.Append(ctxFor(t), event("spool", i))
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	if err := c.Flush(ctxFor(t)); err != nil {
		t.Fatal(err)
	}
	waitAll(t, ps)
	// A copy of the spool now holds acknowledged events only, as a crash
	// between acknowledgement and deletion would leave it.
	acked := t.TempDir()
	for _, seg := range segments(t, dir) {
		b, err := os.ReadFile(seg)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(acked, filepath.Base(seg)), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Close(ctxFor(t)); err != nil {
		t.Fatal(err)
	}
	if segs := segments(t, dir); len(segs) != 0 {
		t.Fatalf("segments %v left after every event was acknowledged", segs)
	}
	want := []string{"spool-0", "spool-1", "spool-2", "spool-3", "spool-4"}
	if got := eventIDs(t, n); !slices.Equal(got, want) {
		t.Fatalf("log holds %v, want %v", got, want)
	}

	// Replaying acknowledged events appends nothing.
	if len(segments(t, acked)) == 0 {
		t.Fatal("the copied spool is empty: the test copied too late")
	}
	c2 := newClient(t, client.Config{Addrs: []string{n.Addr}, Token: tok, SpoolDir: acked})
	if err := c2.Flush(ctxFor(t)); err != nil {
		t.Fatal(err)
	}
	if err := c2.Close(ctxFor(t)); err != nil {
		t.Fatal(err)
	}
	if got := eventIDs(t, n); !slices.Equal(got, want) {
		t.Fatalf("after replaying acknowledged events the log holds %v, want %v", got, want)
	}
	if segs := segments(t, acked); len(segs) != 0 {
		t.Fatalf("segments %v left after replay", segs)
	}
}

// TestSpoolSegments: a spool that outgrew its segment size is several
// files; all are replayed, each event once, and each file is
// deleted once its events are acknowledged.
func TestSpoolSegments(t *testing.T) {
	n := startNode(t)
	dir := t.TempDir()
	var evs []*trailv1.Event
	var want []string
	for i := range 20 {
		evs = append(evs, event("seg", i))
		want = append(want, fmt.Sprintf("seg-%d", i))
	}
	sort.Strings(want)
	crashWith(t, client.Config{SpoolDir: dir, SpoolSegmentBytes: 300}, evs...)
	if segs := segments(t, dir); len(segs) < 4 {
		t.Fatalf("%d segments for 20 events in segments of 300 bytes", len(segs))
	}
	c := newClient(t, client.Config{Addrs: []string{n.Addr}, Token: key(t, n, trailv1.Role_ROLE_PRODUCER), SpoolDir: dir})
	if err := c.Close(ctxFor(t)); err != nil {
		t.Fatal(err)
	}
	if got := eventIDs(t, n); !slices.Equal(got, want) {
		t.Fatalf("log holds %v, want %v", got, want)
	}
	if segs := segments(t, dir); len(segs) != 0 {
		t.Fatalf("segments %v left after replay", segs)
	}
}

// TestSpoolDamage: a torn tail (a crash in mid-write) loses nothing that
// an Append returned for; a corrupt record before the end refuses to start
// rather than skip what follows it.
func TestSpoolDamage(t *testing.T) {
	n := startNode(t)
	tok := key(t, n, trailv1.Role_ROLE_PRODUCER)

	t.Run("torn tail", func(t *testing.T) {
		dir := t.TempDir()
		crash(t, dir, event("torn", 0), event("torn", 1))
		segs := segments(t, dir)
		f, err := os.OpenFile(segs[len(segs)-1], os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		// The start of a record whose write never finished.
		if _, err := f.Write([]byte{0, 0, 0, 90, 1, 2, 3, 4, 5}); err != nil {
			t.Fatal(err)
		}
		f.Close()
		c := newClient(t, client.Config{Addrs: []string{n.Addr}, Token: tok, SpoolDir: dir})
		if err := c.Close(ctxFor(t)); err != nil {
			t.Fatal(err)
		}
		got := eventIDs(t, n)
		if !slices.Contains(got, "torn-0") || !slices.Contains(got, "torn-1") {
			t.Fatalf("log holds %v, want both events before the tear", got)
		}
		if segs := segments(t, dir); len(segs) != 0 {
			t.Fatalf("segments %v left after replay", segs)
		}
	})

	t.Run("corrupt record", func(t *testing.T) {
		dir := t.TempDir()
		crash(t, dir, event("corrupt", 0), event("corrupt", 1))
		segs := segments(t, dir)
		b, err := os.ReadFile(segs[0])
		if err != nil {
			t.Fatal(err)
		}
		b[20] ^= 0x40 // inside the first record's payload
		if err := os.WriteFile(segs[0], b, 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := client.New(client.Config{Addrs: []string{n.Addr}, Token: tok, Plaintext: true, SpoolDir: dir})
		if err == nil {
			c.Close(ctxFor(t))
			t.Fatal("New started over a corrupt spool segment")
		}
		if !errors.Is(err, client.ErrSpoolCorrupt) || !strings.Contains(err.Error(), segs[0]) {
			t.Fatalf("New: %v; want ErrSpoolCorrupt naming %s", err, segs[0])
		}
		if got := eventIDs(t, n); slices.Contains(got, "corrupt-0") || slices.Contains(got, "corrupt-1") {
			t.Fatalf("events of a refused spool were delivered: %v", got)
		}
		if segs2 := segments(t, dir); !slices.Equal(segs2, segs) {
			t.Fatalf("the refused spool changed: %v, was %v", segs2, segs)
		}
	})

	t.Run("locked", func(t *testing.T) {
		dir := t.TempDir()
		newClient(t, client.Config{Addrs: []string{n.Addr}, Token: tok, SpoolDir: dir})
		if c, err := client.New(client.Config{Addrs: []string{n.Addr}, Plaintext: true, SpoolDir: dir}); err == nil {
			c.Close(ctxFor(t))
			t.Fatal("a second client opened a spool in use")
		}
	})
}
