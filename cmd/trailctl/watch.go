package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// watchFlags configure "trailctl watch".
type watchFlags struct {
	net       netCommand
	trust     trustFlags
	partition string
	stateDir  string
	interval  time.Duration
	once      bool
}

func cmdWatch(ctx context.Context, e *env, args []string) error {
	var f watchFlags
	fs := newFlagSet("watch")
	f.net.register(fs)
	f.trust.register(fs)
	fs.StringVar(&f.partition, "partition", "", "watch only this partition (default: every partition the log lists)")
	fs.StringVar(&f.stateDir, "state-dir", "", "keep the last verified checkpoint of each partition in `DIR`")
	fs.DurationVar(&f.interval, "interval", 30*time.Second, "time between polls")
	fs.BoolVar(&f.once, "once", false, "poll once and exit (for cron)")
	pos, err := parseCommand(e, "watch", fs, args, 1, 1)
	if err != nil {
		return err
	}
	if err := f.check(pos[0]); err != nil {
		return err
	}
	t, err := f.trust.load()
	if err != nil {
		return err
	}
	conn, err := f.net.connect(e)
	if err != nil {
		return err
	}
	defer conn.Close()
	w := &witness{
		src:   grpcSource{client: trailv1.NewProofServiceClient(conn), timeout: f.net.conn.timeout},
		trust: t, state: stateDir{root: f.stateDir}, tenant: pos[0], partition: f.partition, now: e.now,
	}
	return watchLoop(ctx, e, w, f.interval, f.once, f.net.json)
}

func (f *watchFlags) check(tenant string) error {
	switch {
	case validTenant(tenant) != nil:
		return usageErrorf("%v", validTenant(tenant))
	case f.partition != "" && validPartition(f.partition) != nil:
		return usageErrorf("--partition: %v", validPartition(f.partition))
	case f.stateDir == "":
		return usageErrorf("--state-dir DIR is required")
	case f.interval <= 0:
		return usageErrorf("--interval must be positive")
	}
	return nil
}

// watchLoop polls until interrupted. An inconsistency ends it (exit 1) after
// a loud report; so does a checkpoint that fails verification. Network
// errors are retried at the next poll, except with --once.
func watchLoop(ctx context.Context, e *env, w *witness, interval time.Duration, once, asJSON bool) error {
	for {
		obs, err := w.poll(ctx)
		if perr := printObservations(e, obs, asJSON); perr != nil {
			return ioError(perr)
		}
		var inc *inconsistency
		switch {
		case errors.As(err, &inc):
			reportInconsistency(e, w, inc)
			return err
		case err != nil && ctx.Err() != nil:
			return nil
		case err != nil && (once || exitCode(err) != exitIO):
			return err
		case err != nil:
			fmt.Fprintf(e.stderr, "trailctl watch: poll failed, retrying in %s: %v\n", interval, err)
		}
		if once {
			return nil
		}
		t := time.NewTimer(interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

func reportInconsistency(e *env, w *witness, inc *inconsistency) {
	report := inc.report()
	fmt.Fprint(e.stderr, report)
	path, err := w.state.saveEvidence(w.tenant, inc.partition, w.now(), report)
	if err != nil {
		fmt.Fprintf(e.stderr, "trailctl watch: could not save the evidence: %v\n", err)
		return
	}
	fmt.Fprintf(e.stderr, "evidence saved to %s\n", path)
}

func printObservations(e *env, obs []observation, asJSON bool) error {
	for _, o := range obs {
		if asJSON {
			b, err := json.Marshal(o)
			if err != nil {
				return err
			}
			if _, err := fmt.Fprintf(e.stdout, "%s\n", b); err != nil {
				return err
			}
			continue
		}
		if _, err := fmt.Fprintln(e.stdout, describeObservation(o)); err != nil {
			return err
		}
	}
	return nil
}

func describeObservation(o observation) string {
	ts := o.Time.Format(time.RFC3339)
	switch o.Status {
	case "new":
		return fmt.Sprintf("%s NEW %s size %d root %s (first checkpoint seen: trusted on first use)", ts, o.Origin, o.Size, o.Root)
	case "unchanged":
		return fmt.Sprintf("%s OK  %s size %d unchanged", ts, o.Origin, o.Size)
	}
	return fmt.Sprintf("%s OK  %s size %d -> %d root %s (consistency proven)", ts, o.Origin, o.OldSize, o.Size, o.Root)
}

// grpcSource is the witness's view of a server: ProofService calls, each
// under its own deadline.
type grpcSource struct {
	client  trailv1.ProofServiceClient
	timeout time.Duration
}

func (s grpcSource) Partitions(ctx context.Context, tenant string) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	resp, err := s.client.ListPartitions(ctx, &trailv1.ListPartitionsRequest{TenantId: tenant})
	if err != nil {
		return nil, wrapRPC("ListPartitions", err)
	}
	out := make([]string, len(resp.GetPartitions()))
	for i, p := range resp.GetPartitions() {
		out[i] = p.GetPartition()
	}
	return out, nil
}

func (s grpcSource) Checkpoint(ctx context.Context, tenant, partition string) (*trailv1.Checkpoint, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	resp, err := s.client.GetCheckpoint(ctx, &trailv1.GetCheckpointRequest{TenantId: tenant, Partition: partition})
	if err != nil {
		return nil, wrapRPC("GetCheckpoint", err)
	}
	return resp.GetCheckpoint(), nil
}

func (s grpcSource) Consistency(ctx context.Context, tenant, partition string, from, to uint64) (*trailv1.GetConsistencyProofResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	resp, err := s.client.GetConsistencyProof(ctx, &trailv1.GetConsistencyProofRequest{
		TenantId: tenant, Partition: partition, FromSize: from, ToSize: to,
	})
	if err != nil {
		return nil, wrapRPC("GetConsistencyProof", err)
	}
	return resp, nil
}
