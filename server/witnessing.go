package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/trailaudit/trail/engine"
	"github.com/trailaudit/trail/merkle"
	"github.com/trailaudit/trail/witness"
)

// DefaultWitnessInterval is how often the leader submits new checkpoints
// to the configured witnesses.
const DefaultWitnessInterval = time.Minute

// witnessTimeout bounds one add-checkpoint call.
const witnessTimeout = 10 * time.Second

// Witness is an external C2SP tlog-witness the log submits its
// checkpoints to.
type Witness struct {
	// URL is the witness's submission prefix (add-checkpoint is posted to
	// URL/add-checkpoint).
	URL string
	// VerifierKey is the witness's public key as a cosignature/v1 (or
	// plain Ed25519) verifier key; only its cosignatures are kept.
	VerifierKey string
}

// witnessedPrefix keys the replicated record of each origin's latest
// witnessed checkpoint: the log's signed note followed by the
// cosignature lines the witnesses returned for it.
const witnessedPrefix = "witnessed/"

func witnessedKey(origin string) string { return witnessedPrefix + origin }

// witnessPeer is one configured witness.
type witnessPeer struct {
	client witness.Client
}

func newWitnessPeers(ws []Witness) ([]*witnessPeer, error) {
	peers := make([]*witnessPeer, 0, len(ws))
	for i, w := range ws {
		if !strings.HasPrefix(w.URL, "http://") && !strings.HasPrefix(w.URL, "https://") {
			return nil, fmt.Errorf("server: witness %d: URL %q is not http(s)", i, w.URL)
		}
		v, err := witness.NewCosignatureVerifier(w.VerifierKey)
		if err != nil {
			return nil, fmt.Errorf("server: witness %d: %w", i, err)
		}
		peers = append(peers, &witnessPeer{client: witness.Client{
			URL: w.URL, Verifier: v, HTTP: &http.Client{Timeout: witnessTimeout},
		}})
	}
	return peers, nil
}

func (w *witnessPeer) name() string { return w.client.Verifier.Name() }

// runWitnessing submits new checkpoints every WitnessInterval while this
// node leads, until ctx ends. Only the leader submits, so witnesses see
// one client per log; the cosignatures reach every node through Raft.
func (s *Server) runWitnessing(ctx context.Context) {
	if len(s.witnesses) == 0 || s.cfg.WitnessInterval < 0 {
		return
	}
	s.whileLeading(ctx, s.cfg.WitnessInterval, func(ctx context.Context) {
		if err := s.WitnessNow(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("witnessing", "err", err)
		}
	})
}

// WitnessNow submits every partition's current checkpoint to each
// configured witness that has not cosigned it yet, and commits the
// cosignatures it gets through Raft. It goes on past a failing witness or
// partition and returns the errors joined.
func (s *Server) WitnessNow(ctx context.Context) error {
	s.witnessMu.Lock()
	defer s.witnessMu.Unlock()
	eng, release := s.cluster.AcquireEngine()
	defer release()
	tenants, err := eng.Tenants(ctx)
	if err != nil {
		return fmt.Errorf("server: witnessing: %w", err)
	}
	var errs []error
	for _, t := range tenants {
		parts, err := eng.Partitions(ctx, t)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, pi := range parts {
			if pi.Size == 0 {
				continue
			}
			if err := s.witnessPartition(ctx, eng, pi.Partition, pi.Size); err != nil {
				errs = append(errs, err)
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
		}
	}
	return errors.Join(errs...)
}

// witnessPartition gets p's checkpoint at size cosigned by the witnesses
// whose cosignature of it is not yet recorded.
func (s *Server) witnessPartition(ctx context.Context, eng *engine.Engine, p engine.Partition, size uint64) error {
	cp, err := eng.Checkpoint(ctx, p, size)
	if err != nil {
		return err
	}
	signed, err := s.sign(cp)
	if err != nil {
		return err
	}
	logNote := []byte(signed.GetSignedNote())
	prev, err := witnessedRecord(eng, cp.Origin)
	if err != nil {
		return err
	}
	var keep, got []byte
	var errs []error
	for _, w := range s.witnesses {
		prevSize, had := cosignedBy(prev, w.client.Verifier)
		if had && bytes.HasPrefix(prev, logNote) {
			// This witness already cosigned exactly this checkpoint.
			keep = append(keep, cosignatureLines(prev, w.client.Verifier)...)
			continue
		}
		lines, err := s.submit(ctx, eng, w, p, cp, logNote, prevSize)
		if err != nil {
			errs = append(errs, fmt.Errorf("witness %s, %s: %w", w.name(), cp.Origin, err))
			continue
		}
		got = append(got, lines...)
	}
	if len(got) > 0 {
		rec := append(append(logNote, keep...), got...)
		if err := s.cluster.ApplySettings(ctx, []engine.SettingOp{{Key: witnessedKey(cp.Origin), Value: rec}}); err != nil {
			errs = append(errs, fmt.Errorf("record cosignatures of %s: %w", cp.Origin, err))
		}
	}
	return errors.Join(errs...)
}

// submit sends cp to one witness with a consistency proof from the size
// the witness last cosigned. That size is taken from the replicated
// record; when the witness knows better (another leader's submission that
// was never recorded, a witness reset) it answers 409 with its size and
// the call is repeated once from there.
func (s *Server) submit(ctx context.Context, eng *engine.Engine, w *witnessPeer, p engine.Partition, cp merkle.Checkpoint, logNote []byte, old uint64) ([]byte, error) {
	count := func(result string) { s.metrics.witnessed.WithLabelValues(w.name(), result).Inc() }
	for attempt := 0; ; attempt++ {
		if old > cp.Size {
			// The witness cosigned a larger tree of this origin than the
			// log now has: the log was rolled back (a restore from an old
			// backup) or forked. Never paper over it.
			count("inconsistent")
			s.log.Error("a witness has cosigned a larger tree than this log has", "witness", w.name(), "origin", cp.Origin, "witness_size", old, "size", cp.Size)
			return nil, fmt.Errorf("the witness has cosigned size %d, above this log's %d", old, cp.Size)
		}
		var proof []merkle.Hash
		if old != 0 && old != cp.Size {
			var err error
			if proof, err = eng.ConsistencyProof(ctx, p, old, cp.Size); err != nil {
				return nil, err
			}
		}
		cctx, cancel := context.WithTimeout(ctx, witnessTimeout)
		lines, err := w.client.AddCheckpoint(cctx, witness.AddCheckpointRequest{OldSize: old, Proof: proof, Checkpoint: logNote})
		cancel()
		var conflict *witness.ConflictError
		var refused *witness.StatusError
		switch {
		case err == nil:
			count("cosigned")
		case errors.As(err, &conflict) && attempt == 0:
			count("conflict")
			old = conflict.Size
			continue
		case errors.As(err, &refused) && refused.Code == http.StatusUnprocessableEntity:
			// The witness holds a checkpoint this one is not consistent
			// with: evidence of a fork, whichever side it is on.
			count("inconsistent")
			s.log.Error("a witness refused a checkpoint as inconsistent", "witness", w.name(), "origin", cp.Origin, "old_size", old, "size", cp.Size, "err", err)
		default:
			count("failed")
		}
		return lines, err
	}
}

// witnessedRecord returns origin's replicated cosigned checkpoint, or nil.
func witnessedRecord(eng *engine.Engine, origin string) ([]byte, error) {
	rec, err := eng.Setting(witnessedKey(origin))
	if errors.Is(err, engine.ErrNotFound) {
		return nil, nil
	}
	return rec, err
}

// cosignedBy reports whether rec carries a valid cosignature by v, and the
// size of the checkpoint it cosigned.
func cosignedBy(rec []byte, v note.Verifier) (uint64, bool) {
	if rec == nil {
		return 0, false
	}
	n, err := note.Open(rec, note.VerifierList(v))
	if err != nil {
		return 0, false
	}
	cp, err := merkle.ParseCheckpoint([]byte(n.Text))
	if err != nil {
		return 0, false
	}
	return cp.Size, true
}

// cosignatureLines returns rec's signature lines by v.
func cosignatureLines(rec []byte, v note.Verifier) []byte {
	n, err := note.Open(rec, note.VerifierList(v))
	if err != nil {
		return nil
	}
	return witness.SignatureLines(n.Sigs)
}

// withCosignatures returns the signed note with the witnesses'
// cosignatures of the same checkpoint appended, when there are any. The
// log's Ed25519 signature is deterministic, so the record of a checkpoint
// starts with exactly the note signing it again yields.
func (s *Server) withCosignatures(eng *engine.Engine, origin, signed string) string {
	rec := s.witnessedNote(eng, origin)
	if len(rec) <= len(signed) || !bytes.HasPrefix(rec, []byte(signed)) {
		return signed
	}
	return string(rec)
}

// witnessedNote returns origin's witnessed record, remembered per settings
// version: every proof and checkpoint served looks it up, and it changes
// only when a settings command applies (or a snapshot replaces the
// engine). Origins without a record are remembered too.
func (s *Server) witnessedNote(eng *engine.Engine, origin string) []byte {
	version := eng.SettingsVersion() // before the read: a newer record only empties the cache sooner
	if rec, ok := s.witnessed.get(eng, version, origin); ok {
		return rec
	}
	rec, err := witnessedRecord(eng, origin)
	if err != nil {
		return nil // served without cosignatures; asked again next time
	}
	s.witnessed.put(eng, version, origin, rec, signCacheSize)
	return rec
}
