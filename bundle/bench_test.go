package bundle

import (
	"bytes"
	"context"
	"testing"
)

// BenchmarkVerify measures the verification rate of a bundle of realistic
// entries with per-entry inclusion proofs against 2^14-leaf trees.
func BenchmarkVerify(b *testing.B) {
	key := newTestKey(b, testLog)
	const n = 1 << 14
	bundle := newFakeLog(b, key, n).export(exportOpts{})
	v, err := NewVerifier(key.vkey)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(bundle)))
	b.ResetTimer()
	for b.Loop() {
		r, err := v.Verify(context.Background(), bytes.NewReader(bundle))
		if err != nil || r.Entries != n {
			b.Fatalf("verify: %v", err)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "entries/s")
}
