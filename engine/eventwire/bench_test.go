package eventwire

import (
	"testing"

	"google.golang.org/protobuf/proto"

	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// benchEvents is the deterministic encoding of 1024 realistic ~512-byte
// events, and their mean size.
func benchEvents(b *testing.B) ([][]byte, int64) {
	var bufs [][]byte
	var total int
	for _, e := range generated(1024) {
		buf := deterministic(b, e)
		bufs = append(bufs, buf)
		total += len(buf)
	}
	return bufs, int64(total / len(bufs))
}

func BenchmarkScan(b *testing.B) {
	bufs, size := benchEvents(b)
	b.SetBytes(size)
	b.ReportAllocs()
	var ev Event
	i := 0
	for b.Loop() {
		if err := Scan(bufs[i%len(bufs)], &ev); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkScanValidate(b *testing.B) {
	bufs, size := benchEvents(b)
	b.SetBytes(size)
	b.ReportAllocs()
	var ev Event
	i := 0
	for b.Loop() {
		if err := Scan(bufs[i%len(bufs)], &ev); err != nil {
			b.Fatal(err)
		}
		if err := Validate(&ev); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkUnmarshalMarshal is the baseline Scan replaces: decoding an event
// into Go structs and encoding it deterministically to get canonical bytes.
func BenchmarkUnmarshalMarshal(b *testing.B) {
	bufs, size := benchEvents(b)
	b.SetBytes(size)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		var e trailv1.Event
		if err := proto.Unmarshal(bufs[i%len(bufs)], &e); err != nil {
			b.Fatal(err)
		}
		if _, err := (proto.MarshalOptions{Deterministic: true}).Marshal(&e); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
