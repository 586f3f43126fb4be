package engine

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The crash workload is a pure function of the Raft index, so the parent
// can tell exactly what must be present for any applied index.
const (
	crashEventsPerBatch = 20
	crashSealFirst      = 61 // indexes 61..63 seal each tenant's November
	crashSealLast       = 63
)

var crashBase = time.Date(2026, 11, 30, 23, 0, 0, 0, time.UTC)

var crashTenants = []string{"t0", "t1", "t2", crashSealedTenant}

func crashTenant(k uint64, j int) string { return fmt.Sprintf("t%d", (int(k)+j)%3) }

// Every ten indexes the workload creates a data key of tenant s (at 5),
// appends an event sealed under it with each of the next two batches (6
// and 7) and erases it (8): a replay after a crash must accept those
// events again, which it can only if the erasure is never durable without
// them.
const crashSealedTenant = "s"

func crashKeyRound(k uint64) (subject string, id []byte) {
	return fmt.Sprintf("subject-%d", k/10), []byte(fmt.Sprintf("key-%012d", k/10))
}

func crashIsSettings(k uint64) bool { return k%10 == 5 || k%10 == 8 }

func crashSealedEvent(k uint64) bool { return k%10 == 6 || k%10 == 7 }

func crashSettings(ctx context.Context, e *Engine, k uint64) error {
	subject, id := crashKeyRound(k)
	key := DataKeySetting(crashSealedTenant, subject)
	op := SettingOp{Key: key, Value: append(bytes.Clone(id), bytes.Repeat([]byte{'w'}, 60)...), IfAbsent: true}
	if k%10 == 8 {
		op = SettingOp{Key: key, Delete: true, IfPrefix: id}
	}
	return e.ApplySettings(ctx, k, []SettingOp{op})
}

func crashCommand(ctx context.Context, e *Engine, k uint64) error {
	if k >= crashSealFirst && k <= crashSealLast {
		p := Partition{Tenant: fmt.Sprintf("t%d", k-crashSealFirst), Month: Month{2026, 11}}
		return e.Seal(ctx, k, p, crashBase.Add(time.Duration(k)*time.Minute))
	}
	if crashIsSettings(k) {
		return crashSettings(ctx, e, k)
	}
	b := &Batch{Index: k, Time: crashBase.Add(time.Duration(k) * time.Minute)}
	for j := range crashEventsPerBatch {
		ev := event(crashTenant(k, j), fmt.Sprintf("%d-%d", k, j))
		ev.SubjectId = fmt.Sprintf("citizen-%d", j)
		ev.Attributes = map[string]string{"payload": strings.Repeat("p", int(k%97))}
		b.Events = append(b.Events, ev)
	}
	if crashSealedEvent(k) {
		subject, id := crashKeyRound(k)
		b.Events = append(b.Events, sealedEvent(crashSealedTenant, fmt.Sprintf("%d-sealed", k), subject, id))
	}
	res, err := e.Apply(ctx, b)
	if err != nil {
		return err
	}
	for _, r := range res {
		if r.Err != nil {
			return r.Err
		}
	}
	return nil
}

// crashOptions checkpoint every few batches, so that kills land before,
// during and after background checkpoints.
func crashOptions(dir string) Options {
	return Options{Dir: dir, LogName: "test.trail", CacheBytes: 8 << 20, ChunkEvents: 3*crashEventsPerBatch + 7}
}

// TestCrashChild is the child process of TestCrashRecovery; it applies
// commands until killed, reporting each applied index and the durable
// index after it on stdout.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv("TRAIL_CRASH_CHILD_DIR")
	if dir == "" {
		t.Skip("child process of TestCrashRecovery only")
	}
	ctx := context.Background()
	e, err := Open(ctx, crashOptions(dir))
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	for k := e.AppliedIndex() + 1; ; k++ {
		if err := crashCommand(ctx, e, k); err != nil {
			fmt.Println("error", err)
			os.Exit(2)
		}
		fmt.Println("applied", k, e.DurableIndex())
	}
}

// TestCrashRecovery kills a process applying commands at random moments,
// many times. After each kill the engine must reopen at a checkpoint at
// or after every durable index the child reported, hold exactly the
// commands up to it with every chain, root and proof verifying, and,
// once the commands after it are replayed as Raft would, hold what an
// engine that never crashed holds, root for root.
func TestCrashRecovery(t *testing.T) {
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(1, 2))
	// durable is the highest index the child reported durable (or the
	// parent closed at); known the highest anyone applied.
	var durable, known uint64
	rounds := 16
	if testing.Short() {
		rounds = 5
	}
	ctx := context.Background()
	for round := 0; round < rounds; round++ {
		last, lastDurable := runAndKill(t, dir, time.Duration(50+rng.IntN(400))*time.Millisecond)
		durable, known = max(durable, lastDurable), max(known, last)
		e, err := Open(ctx, crashOptions(dir))
		if err != nil {
			t.Fatalf("round %d: reopen after SIGKILL: %v", round, err)
		}
		applied := e.AppliedIndex()
		if applied < durable || applied > known+1 {
			t.Fatalf("round %d: reopened at %d; durable %d, applied %d before the kill", round, applied, durable, known)
		}
		checkCrashState(t, e, applied)
		// Raft replays what the checkpoint does not cover, and a little more.
		for k := applied + 1; k <= known+uint64(rng.IntN(5)); k++ {
			if err := crashCommand(ctx, e, k); err != nil {
				t.Fatalf("round %d: replay %d: %v", round, k, err)
			}
		}
		checkCrashState(t, e, e.AppliedIndex())
		if err := e.Close(); err != nil {
			t.Fatalf("round %d: close: %v", round, err)
		}
		durable, known = max(durable, e.AppliedIndex()), max(known, e.AppliedIndex())
	}
	if durable <= crashSealLast {
		t.Logf("the child never got past the seals (reached %d); crash coverage of sealing is partial", durable)
	}
	e, err := Open(ctx, crashOptions(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	compareWithUncrashed(t, e)
}

// compareWithUncrashed applies the same commands to a fresh engine that
// never crashes and compares every partition's size and root.
func compareWithUncrashed(t *testing.T, crashed *Engine) {
	t.Helper()
	ctx := context.Background()
	ref := openEngine(t, t.TempDir())
	for k := uint64(1); k <= crashed.AppliedIndex(); k++ {
		if err := crashCommand(ctx, ref, k); err != nil {
			t.Fatalf("reference engine, command %d: %v", k, err)
		}
	}
	for _, tenant := range crashTenants {
		got, err := crashed.Partitions(ctx, tenant)
		if err != nil {
			t.Fatal(err)
		}
		want, err := ref.Partitions(ctx, tenant)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("tenant %s after crashes and replay:\n%+v\nan engine that never crashed:\n%+v", tenant, got, want)
		}
	}
}

// runAndKill starts the child, lets it run for d, SIGKILLs it and returns
// the last applied and durable indexes it reported.
func runAndKill(t *testing.T, dir string, d time.Duration) (applied, durable uint64) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.v=false")
	cmd.Env = append(os.Environ(), "TRAIL_CRASH_CHILD_DIR="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	type report struct{ applied, durable uint64 }
	lines := make(chan report, 1024)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) == 3 && f[0] == "applied" {
				a, err1 := strconv.ParseUint(f[1], 10, 64)
				d, err2 := strconv.ParseUint(f[2], 10, 64)
				if err1 == nil && err2 == nil {
					lines <- report{a, d}
				}
			} else if len(f) > 0 && f[0] == "error" {
				t.Errorf("child: %s", sc.Text())
			}
		}
	}()
	time.Sleep(d)
	cmd.Process.Signal(syscall.SIGKILL)
	for r := range lines {
		applied, durable = r.applied, r.durable
	}
	cmd.Wait()
	return applied, durable
}

// checkCrashState verifies that exactly the commands up to applied are
// present, and that every chain, root and proof verifies.
func checkCrashState(t *testing.T, e *Engine, applied uint64) {
	t.Helper()
	want := map[string]uint64{}
	for k := uint64(1); k <= applied; k++ {
		if k >= crashSealFirst && k <= crashSealLast || crashIsSettings(k) {
			continue
		}
		for j := range crashEventsPerBatch {
			want[crashTenant(k, j)]++
		}
		if crashSealedEvent(k) {
			want[crashSealedTenant]++
		}
	}
	for _, tenant := range crashTenants {
		if got := verifyTenantChain(t, e, tenant); got != want[tenant] {
			t.Fatalf("applied %d: tenant %s holds %d entries, want %d", applied, tenant, got, want[tenant])
		}
		parts, _ := e.Partitions(context.Background(), tenant)
		for _, p := range parts {
			checkPartitionSample(t, e, p.Partition)
		}
		nextID := fmt.Sprintf("%d-0", applied+1)
		if _, _, err := e.EntryByEventID(context.Background(), crashTenant(applied+1, 0), nextID); err == nil {
			t.Fatalf("applied %d but event %s of the next batch is visible", applied, nextID)
		}
	}
}
