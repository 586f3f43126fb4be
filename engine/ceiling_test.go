package engine

import (
	"strconv"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"google.golang.org/protobuf/proto"
)

// BenchmarkPebbleCeiling measures what Pebble alone, with the engine's
// options, sustains for the writes an appended event cannot do without,
// with none of the engine's work (no validation, encoding, hashing, dedup
// probe, tiles or catalog). It is the ceiling BenchmarkApply reads against:
// "entry" is the entry under its partition key (what DESIGN.md's "open
// partitions live in Pebble" costs), "+dedup" adds the event_id key that
// exactly-once needs, "+postings" the posting lists of the three
// high-cardinality search terms (actor, subject, target), which differ
// from event to event. Batches of 1000 events, committed without fsync as
// under Raft; keys and sizes come from the same realistic events.
func BenchmarkPebbleCeiling(b *testing.B) {
	for _, shape := range []struct {
		name            string
		dedup, postings bool
	}{
		{"entry", false, false},
		{"entry+dedup", true, false},
		{"entry+dedup+postings", true, true},
	} {
		b.Run(shape.name, func(b *testing.B) { benchPebbleCeiling(b, shape.dedup, shape.postings) })
	}
}

func benchPebbleCeiling(b *testing.B, dedup, postings bool) {
	cache := pebble.NewCache(0)
	defer cache.Unref()
	var opts Options
	opts.setDefaults()
	db, err := pebble.Open(b.TempDir(), pebbleOptions(opts, cache))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	pool := eventPool(4096)
	encoded := make([][]byte, len(pool))
	for i, ev := range pool {
		if encoded[i], err = (proto.MarshalOptions{Deterministic: true}).Marshal(ev); err != nil {
			b.Fatal(err)
		}
	}
	p := mustPartition(b, "acme", "2026-11")
	dr := dedupRecord{Month: p.Month, TreeSize: 1}
	rec := dr.marshal()
	var n uint64
	b.ResetTimer()
	for b.Loop() {
		wb := db.NewBatch()
		for range 1000 {
			ev := pool[n%uint64(len(pool))]
			if err := wb.Set(entryKey(p, n), encoded[n%uint64(len(pool))], nil); err != nil {
				b.Fatal(err)
			}
			if dedup {
				// Event ids are the load generator's: unique, unordered.
				id := strconv.FormatUint(n*0x9e3779b97f4a7c15, 36)
				if err := wb.Set(dedupKey(ev.TenantId, id), rec, nil); err != nil {
					b.Fatal(err)
				}
			}
			if postings {
				for _, t := range indexTerms(ev)[:1] {
					if err := wb.Set(indexKey(ev.TenantId, t.kind, t.value, p.Month, n), encodeLeaves([]uint64{n}), nil); err != nil {
						b.Fatal(err)
					}
				}
				for _, kind := range []IndexKind{IndexSubject, IndexTarget} {
					v := ev.GetSubjectId() + "-" + strconv.FormatUint(n, 10) // distinct per event, as subjects and targets nearly are
					if err := wb.Set(indexKey(ev.TenantId, kind, v, p.Month, n), encodeLeaves([]uint64{n}), nil); err != nil {
						b.Fatal(err)
					}
				}
			}
			n++
		}
		if err := wb.Commit(pebble.NoSync); err != nil {
			b.Fatal(err)
		}
		wb.Close()
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}
