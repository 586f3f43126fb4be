package compliance

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/trailaudit/trail/engine"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// A legal hold keeps matching entries from retention (invariant
// 9). Holds are settings ("hold/<id>" -> LegalHold, deterministic proto
// encoding); a released hold stays stored, with its release recorded, so
// the history of holds can be listed, but it no longer matches anything.

// Limits of the free-text fields of a hold.
const (
	MaxHoldIDLen     = 64
	MaxCaseReference = 256
	MaxHoldReason    = 1024
)

// ErrBadHold is wrapped by every invalid legal hold.
var ErrBadHold = errors.New("invalid legal hold")

const holdPrefix = "hold/"

func holdKey(id string) string { return holdPrefix + id }

// CheckHoldID validates a hold id: 1..64 of [A-Za-z0-9._-].
func CheckHoldID(id string) error {
	if id == "" || len(id) > MaxHoldIDLen {
		return fmt.Errorf("%w: id must be 1 to %d characters", ErrBadHold, MaxHoldIDLen)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
			return fmt.Errorf("%w: id %q: only letters, digits, '.', '-' and '_' are allowed", ErrBadHold, id)
		}
	}
	return nil
}

// CheckHold validates a hold before it is stored: a valid id and tenant, a
// case reference and a reason, a known category if any, scope values no
// longer than the indexed fields they match, and a non-empty time range.
func CheckHold(h *trailv1.LegalHold) error {
	if err := CheckHoldID(h.GetId()); err != nil {
		return err
	}
	if err := engine.ValidateTenantID(h.GetTenantId()); err != nil {
		return fmt.Errorf("%w: %w", ErrBadHold, err)
	}
	if err := checkHoldText(h); err != nil {
		return err
	}
	if c := h.GetCategory(); c != trailv1.Category_CATEGORY_UNSPECIFIED {
		if _, ok := defaultRetention[c]; !ok {
			return fmt.Errorf("%w: unknown category %d", ErrBadHold, c)
		}
	}
	return checkHoldRange(h)
}

func checkHoldText(h *trailv1.LegalHold) error {
	fields := []struct {
		name, v  string
		max      int
		required bool
	}{
		{"case_reference", h.GetCaseReference(), MaxCaseReference, true},
		{"reason", h.GetReason(), MaxHoldReason, true},
		{"subject_id", h.GetSubjectId(), engine.MaxIndexedLen, false},
		{"actor_id", h.GetActorId(), engine.MaxIndexedLen, false},
		{"target_type", h.GetTargetType(), engine.MaxIndexedLen, false},
		{"target_id", h.GetTargetId(), engine.MaxIndexedLen, false},
	}
	for _, f := range fields {
		switch {
		case f.required && strings.TrimSpace(f.v) == "":
			return fmt.Errorf("%w: %s is required", ErrBadHold, f.name)
		case len(f.v) > f.max:
			return fmt.Errorf("%w: %s longer than %d bytes", ErrBadHold, f.name, f.max)
		}
	}
	return nil
}

func checkHoldRange(h *trailv1.LegalHold) error {
	from, to := h.GetFrom(), h.GetTo()
	if from != nil {
		if err := from.CheckValid(); err != nil {
			return fmt.Errorf("%w: from: %v", ErrBadHold, err)
		}
	}
	if to != nil {
		if err := to.CheckValid(); err != nil {
			return fmt.Errorf("%w: to: %v", ErrBadHold, err)
		}
	}
	if from != nil && to != nil && !from.AsTime().Before(to.AsTime()) {
		return fmt.Errorf("%w: time range [from, to) is empty", ErrBadHold)
	}
	return nil
}

// HoldOps returns the setting operations that store h.
func HoldOps(h *trailv1.LegalHold) ([]engine.SettingOp, error) {
	if err := CheckHold(h); err != nil {
		return nil, err
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(h)
	if err != nil {
		return nil, fmt.Errorf("compliance: encode legal hold: %w", err)
	}
	return []engine.SettingOp{{Key: holdKey(h.GetId()), Value: b}}, nil
}

// Released returns a copy of h released by by, for reason, at at.
func Released(h *trailv1.LegalHold, by, reason string, at time.Time) *trailv1.LegalHold {
	out := proto.Clone(h).(*trailv1.LegalHold)
	out.ReleasedAt = timestamppb.New(at)
	out.ReleasedBy = by
	out.ReleaseReason = reason
	return out
}

// Active reports whether h has not been released.
func Active(h *trailv1.LegalHold) bool { return h.GetReleasedAt() == nil }

// LoadHold reads hold id; an unknown id is engine.ErrNotFound.
func LoadHold(e *engine.Engine, id string) (*trailv1.LegalHold, error) {
	if err := CheckHoldID(id); err != nil {
		return nil, err
	}
	b, err := e.Setting(holdKey(id))
	if err != nil {
		return nil, fmt.Errorf("compliance: legal hold %q: %w", id, err)
	}
	h := new(trailv1.LegalHold)
	if err := proto.Unmarshal(b, h); err != nil {
		return nil, fmt.Errorf("compliance: legal hold %q: %w: %v", id, engine.ErrCorrupt, err)
	}
	return h, nil
}

// errUndecodableHold marks a stored hold that does not decode. Nothing can
// say what it covers, so whoever meets it must assume it covers everything.
var errUndecodableHold = errors.New("stored legal hold does not decode")

// ListHolds returns the holds of tenant ("" for every tenant), in id
// order; released ones only when includeReleased.
func ListHolds(ctx context.Context, e *engine.Engine, tenant string, includeReleased bool) ([]*trailv1.LegalHold, error) {
	var out []*trailv1.LegalHold
	var bad error
	err := e.Settings(ctx, holdPrefix, func(key string, value []byte) bool {
		h := new(trailv1.LegalHold)
		if err := proto.Unmarshal(value, h); err != nil {
			bad = fmt.Errorf("compliance: %w: %s: %v", errUndecodableHold, key, err)
			return false
		}
		if (tenant == "" || h.GetTenantId() == tenant) && (includeReleased || Active(h)) {
			out = append(out, h)
		}
		return true
	})
	if err == nil {
		err = bad
	}
	if err != nil {
		return nil, fmt.Errorf("compliance: list legal holds: %w", err)
	}
	return out, nil
}

// Holds is a set of active legal holds, in id order.
type Holds []*trailv1.LegalHold

// ActiveHolds returns the active holds of tenant ("" for every tenant).
func ActiveHolds(ctx context.Context, e *engine.Engine, tenant string) (Holds, error) {
	hs, err := ListHolds(ctx, e, tenant, false)
	return Holds(hs), err
}

// Match returns the ids of the holds that cover entry, in id order.
func (hs Holds) Match(entry *trailv1.Entry) []string {
	var ids []string
	for _, h := range hs {
		if HoldCovers(h, entry) {
			ids = append(ids, h.GetId())
		}
	}
	return ids
}

// HoldCovers reports whether active hold h covers entry: same tenant, and
// every scope field that is set matches (sequencer time in [from, to)).
func HoldCovers(h *trailv1.LegalHold, entry *trailv1.Entry) bool {
	ev := entry.GetEvent()
	t := entry.GetSequencerTime().AsTime()
	switch {
	case !Active(h), ev.GetTenantId() != h.GetTenantId(),
		h.GetSubjectId() != "" && ev.GetSubjectId() != h.GetSubjectId(),
		h.GetActorId() != "" && ev.GetActor().GetId() != h.GetActorId(),
		h.GetTargetType() != "" && ev.GetTarget().GetType() != h.GetTargetType(),
		h.GetTargetId() != "" && ev.GetTarget().GetId() != h.GetTargetId(),
		h.GetCategory() != trailv1.Category_CATEGORY_UNSPECIFIED && ev.GetCategory() != h.GetCategory(),
		h.GetFrom() != nil && t.Before(h.GetFrom().AsTime()),
		h.GetTo() != nil && !t.Before(h.GetTo().AsTime()):
		return false
	}
	return true
}

// MayCoverSpan reports whether some hold of tenant could cover an entry
// with sequencer time in [first, last]: the only question that can still be
// asked of entries whose payloads are gone.
func (hs Holds) MayCoverSpan(tenant string, first, last time.Time) bool {
	for _, h := range hs {
		switch {
		case h.GetTenantId() != tenant,
			h.GetFrom() != nil && last.Before(h.GetFrom().AsTime()),
			h.GetTo() != nil && !first.Before(h.GetTo().AsTime()):
			continue
		}
		return true
	}
	return false
}

// Scope describes what h covers, for logs and events:
// "tenant=acme subject=alice category=financial from=... to=...".
func Scope(h *trailv1.LegalHold) string {
	parts := []string{"tenant=" + h.GetTenantId()}
	add := func(k, v string) {
		if v != "" {
			parts = append(parts, k+"="+v)
		}
	}
	add("subject", h.GetSubjectId())
	add("actor", h.GetActorId())
	add("target_type", h.GetTargetType())
	add("target_id", h.GetTargetId())
	if c := h.GetCategory(); c != trailv1.Category_CATEGORY_UNSPECIFIED {
		add("category", CategoryName(c))
	}
	if h.GetFrom() != nil {
		add("from", h.GetFrom().AsTime().UTC().Format(time.RFC3339Nano))
	}
	if h.GetTo() != nil {
		add("to", h.GetTo().AsTime().UTC().Format(time.RFC3339Nano))
	}
	return strings.Join(parts, " ")
}

// FilterHeld returns the leaves of p that no active legal hold covers, in
// the order given. It is the state machine's guard on every prune command
// (raftnode.Config.PruneFilter): a hold committed after the leader chose
// the leaves still protects them on every replica. It reads only e (holds
// from its settings, entries from p), so every replica computes the same
// answer at the same index. A stored hold that does not decode blocks the
// whole prune rather than fail the state machine.
func FilterHeld(ctx context.Context, e *engine.Engine, p engine.Partition, leaves []uint64) ([]uint64, error) {
	holds, err := ActiveHolds(ctx, e, p.Tenant)
	switch {
	case errors.Is(err, errUndecodableHold):
		return nil, nil
	case err != nil:
		return nil, err
	case len(holds) == 0 || len(leaves) == 0:
		return leaves, nil
	}
	info, err := e.PartitionInfo(ctx, p)
	if err != nil {
		return nil, err
	}
	if info.Dropped || !holds.MayCoverSpan(p.Tenant, info.FirstTime, info.LastTime) {
		return leaves, nil // nothing left to protect, or no hold reaches this month
	}
	kept := make([]uint64, 0, len(leaves))
	for _, leaf := range leaves {
		held, err := leafHeld(ctx, e, p, leaf, holds)
		if err != nil {
			return nil, err
		}
		if !held {
			kept = append(kept, leaf)
		}
	}
	return kept, nil
}

// leafHeld reports whether a hold covers leaf; a leaf already pruned is
// not held (the engine skips it anyway).
func leafHeld(ctx context.Context, e *engine.Engine, p engine.Partition, leaf uint64, holds Holds) (bool, error) {
	se, err := e.Entry(ctx, p, leaf)
	if err != nil {
		return false, err
	}
	if se.Pruned {
		return false, nil
	}
	en := new(trailv1.Entry)
	if err := proto.Unmarshal(se.Data, en); err != nil {
		return false, fmt.Errorf("compliance: %s leaf %d: %w: %v", p, leaf, engine.ErrCorrupt, err)
	}
	return len(holds.Match(en)) > 0, nil
}
