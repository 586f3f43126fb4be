package bundle

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
)

// BenchmarkVerify measures the verification rate, in entries/s, of a
// bundle of 2^15 entries of about 500 bytes each (the protobuf bytes; the
// line is a third longer in base64): as one run, the shape of an
// unfiltered export of a partition, and in runs of 64 leaves, the shape
// of a filtered export whose matches cluster.
func BenchmarkVerify(b *testing.B) {
	key := newTestKey(b, testLog)
	const n = 1 << 15
	log := newPaddedLog(b, key, nil, strings.Repeat("audit trail padding ", 16), n)
	if size := len(log.parts[0].entries[0]); size < 450 || size > 550 {
		b.Fatalf("entries of %d bytes, want about 500", size)
	}
	for _, run := range []uint64{0, 64} {
		name := "run=partition"
		if run > 0 {
			name = fmt.Sprintf("run=%d", run)
		}
		b.Run(name, func(b *testing.B) {
			bundle := log.export(exportOpts{maxRun: run})
			v, err := NewVerifier(key.vkey)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(bundle)))
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				r, err := v.Verify(context.Background(), bytes.NewReader(bundle))
				if err != nil || r.Entries != n {
					b.Fatalf("verify: %v", err)
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "entries/s")
		})
	}
}
