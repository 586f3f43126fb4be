package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/trailaudit/trail/bundle"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// bundleMode is the verify scenario's row for what an auditor actually
// runs: "trailctl verify --bundle" on an export, with nothing but the log's
// public key.
const bundleMode = "export bundle"

// exportBundle downloads an attested export of tenant into path.
func exportBundle(ctx context.Context, tgt *target, tenant, path string) (int64, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	stream, err := trailv1.NewComplianceServiceClient(tgt.conn(0)).Export(ctx, &trailv1.ExportRequest{TenantId: tenant})
	if err != nil {
		return 0, fmt.Errorf("export: %w", err)
	}
	var n int64
	for {
		c, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return n, f.Sync()
		}
		if err != nil {
			return n, fmt.Errorf("export: %w", err)
		}
		m, err := f.Write(c.GetData())
		n += int64(m)
		if err != nil {
			return n, err
		}
	}
}

// measureBundleVerify verifies the bundle at path again and again for d,
// with workers verifications running at once (one stream each: a bundle
// is verified front to back), and reports entries verified per second.
func measureBundleVerify(path string, key note.Verifier, workers int, d time.Duration, prof *profiler) (verifyRow, error) {
	row := verifyRow{Mode: bundleMode, Workers: workers, LoadAvg: loadAvg()}
	if err := prof.start(); err != nil {
		return row, err
	}
	defer prof.stop()
	var (
		mu      sync.Mutex
		entries uint64
		first   error
	)
	start := time.Now()
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for time.Since(start) < d {
				n, err := verifyBundleOnce(path, key)
				mu.Lock()
				entries += n
				if err != nil && first == nil {
					first = err
				}
				row.Passes++
				mu.Unlock()
				if err != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	row.Seconds = time.Since(start).Seconds()
	row.EntriesPerSec = float64(entries) / row.Seconds
	return row, first
}

func verifyBundleOnce(path string, key note.Verifier) (uint64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	rep, err := bundle.NewKeyVerifier(key).Verify(context.Background(), f)
	if err != nil {
		return 0, err
	}
	return rep.Entries, nil
}
