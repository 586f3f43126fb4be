package main

import (
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/trailaudit/trail/merkle"
)

// The decoders read evidence from anywhere; fuzzing shows they never
// panic, that whatever they accept survives a round trip, and that the
// verification behind them never panics on what they accept.
//
// Each target builds its seeds from a real engine and closes it before
// fuzzing: Pebble's background goroutines would otherwise change the
// coverage counters between runs of one input and stall the fuzzer.

func fuzzTrust(t testing.TB, f *fixture) trust {
	v, err := merkle.NewVerifier(f.vkey)
	if err != nil {
		t.Fatal(err)
	}
	return trust{verifier: v, logName: testLog}
}

func FuzzProofFile(f *testing.F) {
	fx := standardFixture(f)
	for _, id := range []string{"acme-0", "acme-17", "acme-49"} {
		b, err := encodeProofFile(fx.proof("acme", id, 0))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	fx.close()
	f.Add([]byte(`{"tenant_id":"acme"}`))
	f.Add([]byte(`{"tenant_id":"acme","proof":["AAAA"],"leaf_index":"3"}`))
	tr := fuzzTrust(f, fx)
	f.Fuzz(func(t *testing.T, b []byte) {
		pf, err := decodeProofFile(b)
		if err != nil {
			return
		}
		_, _ = checkInclusion(tr, pf)
		again, err := encodeProofFile(pf)
		if err != nil {
			t.Fatalf("encode after decode: %v", err)
		}
		back, err := decodeProofFile(again)
		if err != nil {
			t.Fatalf("decode of re-encoded file: %v\n%s", err, again)
		}
		if back.TenantID != pf.TenantID || !proto.Equal(back.Proof, pf.Proof) {
			t.Fatalf("round trip changed the proof file")
		}
	})
}

func FuzzConsistencyFile(f *testing.F) {
	fx := standardFixture(f)
	for _, sizes := range [][2]uint64{{1, 40}, {13, 40}, {32, 40}, {40, 40}} {
		b, err := encodeConsistencyFile(fx.consistency("acme", "2026-11", sizes[0], sizes[1]))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	fx.close()
	f.Add([]byte(`{}`))
	tr := fuzzTrust(f, fx)
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeConsistencyFile(b)
		if err != nil {
			return
		}
		_, _ = checkConsistency(tr, r)
		again, err := encodeConsistencyFile(r)
		if err != nil {
			t.Fatalf("encode after decode: %v", err)
		}
		back, err := decodeConsistencyFile(again)
		if err != nil || !proto.Equal(back, r) {
			t.Fatalf("round trip: %v", err)
		}
	})
}

func FuzzChainLine(f *testing.F) {
	fx := standardFixture(f)
	ses := append(fx.entries("acme", "2026-11", 0, 2), fx.entries("acme", "2026-12", 0, 1)...)
	pruned := fx.entries("acme", "2026-11", 5, 6)[0]
	prune(pruned)
	for _, se := range append(ses, pruned) {
		b, err := encodeChainLine(se)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	fx.close()
	f.Add([]byte(`{"tenant_id":"acme","partition":"2026-11","pruned":true,"leaf_hash":"AAAA"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		se, err := decodeChainLine(b)
		if err != nil {
			return
		}
		// A chain of this one line, and of the first fixture entry then it.
		var c chainCheck
		if c.add(se) == nil {
			_, _ = c.finish()
		}
		var c2 chainCheck
		if c2.add(ses[0]) == nil {
			_ = c2.add(se)
		}
		again, err := encodeChainLine(se)
		if err != nil {
			t.Fatalf("encode after decode: %v", err)
		}
		back, err := decodeChainLine(again)
		if err != nil || !proto.Equal(back, se) {
			t.Fatalf("round trip: %v", err)
		}
	})
}
