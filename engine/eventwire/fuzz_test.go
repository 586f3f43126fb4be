package eventwire

import (
	"testing"
)

// FuzzScan checks Scan and Canonicalize against Go's decoder and
// deterministic encoder on any input (see checkAgreesWithGo):
//   - Scan never panics;
//   - Scan returns nil only for a fixed point of unmarshal+deterministic
//     marshal, and then extracts what the decoded event's getters return;
//   - Scan reports ErrInvalidEvent exactly when proto.Unmarshal fails, and
//     ErrNotCanonical otherwise;
//   - when proto.Unmarshal succeeds, Canonicalize returns exactly the
//     deterministic encoding, which scans canonical.
func FuzzScan(f *testing.F) {
	for _, e := range generated(32) {
		f.Add(deterministic(f, e))
	}
	for _, e := range edgeCases() {
		f.Add(deterministic(f, e))
	}
	for _, b := range notCanonicalCases(f) {
		f.Add(b)
	}
	for _, b := range invalidCases(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkAgreesWithGo(t, b)
	})
}
