package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"

	"github.com/trailaudit/trail/engine"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// Rotating the sealing secret (docs/erasure.md). Data keys are wrapped
// under the cluster's secret; rotating makes the serving node's current
// secret the cluster's and re-wraps every data key under it, so that once
// the old secret is destroyed every copy of a record wrapped under it (in
// Raft log segments, old snapshots, backups: the residues of erased keys
// among them) is useless. Nodes must hold the new secret, and the old one
// as a previous secret, before: a node that lacks the cluster's secret
// refuses to seal and cannot open what it cannot unwrap.

// catchUp waits until this node has applied what it knows to be
// committed, so that checks read a state no older than the replication
// delay (holds, keys and records committed through other nodes).
func (s *Server) catchUp(ctx context.Context) error {
	return s.cluster.WaitApplied(ctx, s.cluster.Status().CommitIndex)
}

// rewrapBatch bounds the data keys one settings command re-wraps.
const rewrapBatch = 256

// RotateSealingKey makes this node's current sealing secret the cluster's
// and re-wraps every data key under it.
func (cs *complianceService) RotateSealingKey(ctx context.Context, _ *trailv1.RotateSealingKeyRequest) (_ *trailv1.RotateSealingKeyResponse, err error) {
	ac, err := cs.beginCompliance(ctx, "", tenantOptional)
	if err != nil {
		return nil, err
	}
	defer func() { ac.finish(err) }()
	k := cs.s.cfg.Sealing
	if k == nil {
		return nil, errNoSealing
	}
	if err := cs.s.catchUp(ctx); err != nil {
		return nil, err
	}
	prev, err := cs.s.cluster.Engine().Setting(sealingCheckSetting)
	if errors.Is(err, engine.ErrNotFound) {
		return nil, fmt.Errorf("%w: no tenant seals yet: there is nothing to rotate", errPrecondition)
	}
	if err != nil {
		return nil, err
	}
	cur := k.CheckValue()
	ac.set("check_value", fmt.Sprintf("%x", cur))
	if !bytes.Equal(prev, cur) {
		if !k.Holds(prev) {
			return nil, fmt.Errorf("%w: this node lacks the cluster's current sealing secret (check value %x); give every node the new secret with the old one in sealing_previous_key_files first", errPrecondition, prev)
		}
		if err := cs.s.cluster.ApplySettings(ctx, []engine.SettingOp{{Key: sealingCheckSetting, Value: cur}}); err != nil {
			return nil, err
		}
	}
	n, err := cs.s.rewrapAll(ctx, cur)
	ac.setUint("rewrapped", n)
	if err != nil {
		return nil, fmt.Errorf("re-wrapped %d data keys, then: %w", n, err)
	}
	return &trailv1.RotateSealingKeyResponse{CheckValue: cur, PreviousCheckValue: prev, Rewrapped: n}, nil
}

// rewrapAll re-wraps, in commands of at most rewrapBatch, every data key
// record not wrapped under the secret of check value check, until a pass
// finds none. Each op applies only if the record is still the one read
// (an erasure or another rotation in between wins), so passes repeat
// until the store agrees.
func (s *Server) rewrapAll(ctx context.Context, check []byte) (uint64, error) {
	var total uint64
	for {
		if err := s.catchUp(ctx); err != nil {
			return total, err
		}
		ops, err := s.rewrapPass(ctx, check)
		if err != nil || len(ops) == 0 {
			return total, err
		}
		if err := s.cluster.ApplySettings(ctx, ops); err != nil {
			return total, err
		}
		total += uint64(len(ops))
	}
}

// rewrapPass returns the ops that re-wrap up to rewrapBatch records.
func (s *Server) rewrapPass(ctx context.Context, check []byte) ([]engine.SettingOp, error) {
	var ops []engine.SettingOp
	var rewrapErr error
	err := s.cluster.Engine().Settings(ctx, engine.DataKeyPrefix, func(key string, rec []byte) bool {
		tenant, subject, ok := strings.Cut(strings.TrimPrefix(key, engine.DataKeyPrefix), "/")
		if !ok {
			rewrapErr = fmt.Errorf("%w: data key record %q", engine.ErrCorrupt, key)
			return false
		}
		re, changed, err := s.cfg.Sealing.Rewrap(check, tenant, subject, rec, rand.Reader)
		if err != nil {
			rewrapErr = fmt.Errorf("data key of tenant %q subject %q: %w", tenant, subject, err)
			return false
		}
		if changed {
			ops = append(ops, engine.SettingOp{Key: key, Value: re, IfPrefix: bytes.Clone(rec)})
		}
		return len(ops) < rewrapBatch
	})
	if err == nil {
		err = rewrapErr
	}
	return ops, err
}
