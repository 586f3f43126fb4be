package compliance

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/trailaudit/trail/engine"
	"github.com/trailaudit/trail/filter"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// Retention sweep: which entries have outlived their policy, how their
// pruning is cut into Raft commands, and the tombstone records that log
// each pruning in the system tenant (invariant 9).

// Actions of the records a sweep writes to the system tenant.
const (
	ActionRetentionPruned  = "audit.retention.pruned"
	ActionRetentionKept    = "audit.retention.kept"
	ActionSegmentDropped   = "audit.retention.segment_dropped"
	retentionActor         = "trail/retention"
	expiredPageSize        = 1000
	expiredPageBytes       = 16 << 20 // a page of large entries stays small in memory
	tombstoneEventIDPrefix = "retention-pruned-"
	dropEventIDPrefix      = "retention-dropped-"
)

// Candidate is one entry whose retention has run out.
type Candidate struct {
	Partition     engine.Partition
	Leaf          uint64
	EventID       string
	Category      trailv1.Category
	RetentionDays uint32
	SequencerTime time.Time
	ExpiredAt     time.Time
	// HeldBy lists the holds that keep it; empty when it may be pruned.
	HeldBy []string
}

// Expired calls fn with the expired, unpruned entries of tenant as of
// asOf, one search page at a time: category by category in enum order,
// oldest first within a category. An entry expires once its sequencer time
// is more than its category's retention before asOf. fn may prune what it
// is given: the walk goes on from its cursor, and pruned entries leave the
// index, so nothing is seen twice.
func Expired(ctx context.Context, e *engine.Engine, tenant string, asOf time.Time, holds Holds, fn func([]Candidate) error) error {
	policies, err := Policies(ctx, e, tenant)
	if err != nil {
		return err
	}
	for _, pol := range policies {
		if err := expiredIn(ctx, e, pol, asOf, holds, fn); err != nil {
			return err
		}
	}
	return nil
}

func expiredIn(ctx context.Context, e *engine.Engine, pol *trailv1.RetentionPolicy, asOf time.Time, holds Holds, fn func([]Candidate) error) error {
	period := retentionPeriod(pol)
	q := engine.Query{Tenant: pol.GetTenantId(), Filter: filter.Filter{Categories: []trailv1.Category{pol.GetCategory()}, To: asOf.Add(-period)},
		Limit: expiredPageSize, MaxBytes: expiredPageBytes}
	for {
		res, err := e.Search(ctx, q)
		if err != nil {
			return fmt.Errorf("compliance: expired %s entries of %s: %w", CategoryName(pol.GetCategory()), pol.GetTenantId(), err)
		}
		if len(res.Hits) > 0 {
			page := make([]Candidate, len(res.Hits))
			for i, h := range res.Hits {
				page[i] = candidateOf(h, pol, period, holds)
			}
			if err := fn(page); err != nil {
				return err
			}
		}
		if res.NextCursor == "" {
			return nil
		}
		q.Cursor = res.NextCursor
	}
}

func candidateOf(h engine.Hit, pol *trailv1.RetentionPolicy, period time.Duration, holds Holds) Candidate {
	t := h.Entry.GetSequencerTime().AsTime()
	return Candidate{
		Partition: h.Partition, Leaf: h.LeafIndex, EventID: h.Entry.GetEvent().GetEventId(),
		Category: pol.GetCategory(), RetentionDays: pol.GetRetentionDays(),
		SequencerTime: t, ExpiredAt: t.Add(period), HeldBy: holds.Match(h.Entry),
	}
}

// Chunk is one prune command to propose: unheld expired leaves of one
// partition and one category, ascending.
type Chunk struct {
	Partition     engine.Partition
	Category      trailv1.Category
	RetentionDays uint32
	Leaves        []uint64
}

// PlanPrunes walks the expired entries of tenant as of asOf and calls fn
// with chunks of at most maxLeaves unheld leaves; it returns how many
// expired entries holds kept. Chunks bound both the Raft command and the
// memory of a sweep, whatever the size of the log (invariant 7);
// they should still be large, since pruning a sealed partition rewrites
// its segment file once per chunk.
func PlanPrunes(ctx context.Context, e *engine.Engine, tenant string, asOf time.Time, holds Holds, maxLeaves int, fn func(Chunk) error) (held uint64, err error) {
	var cur Chunk
	flush := func() error {
		if len(cur.Leaves) == 0 {
			return nil
		}
		c := cur
		cur.Leaves = nil
		return fn(c)
	}
	err = Expired(ctx, e, tenant, asOf, holds, func(page []Candidate) error {
		for _, c := range page {
			if len(c.HeldBy) > 0 {
				held++
				continue
			}
			if c.Partition != cur.Partition || c.Category != cur.Category || len(cur.Leaves) >= maxLeaves {
				if err := flush(); err != nil {
					return err
				}
				cur = Chunk{Partition: c.Partition, Category: c.Category, RetentionDays: c.RetentionDays}
			}
			cur.Leaves = append(cur.Leaves, c.Leaf)
		}
		return nil
	})
	if err != nil {
		return held, err
	}
	return held, flush()
}

// DropCandidates returns the partitions of parts whose segment file may be
// dropped once pending more leaves of each are pruned: sealed, not yet
// dropped, every leaf pruned, and outside every hold's time span. Pruned
// entries can no longer be matched against a hold's other fields, so a
// hold whose time span reaches a partition keeps its file.
func DropCandidates(parts []engine.PartitionInfo, pending map[engine.Partition]uint64, holds Holds) []engine.Partition {
	var out []engine.Partition
	for _, pi := range parts {
		switch {
		case !pi.Sealed, pi.Dropped, pi.Size == 0,
			pi.Pruned+pending[pi.Partition] != pi.Size,
			holds.MayCoverSpan(pi.Tenant, pi.FirstTime, pi.LastTime):
			continue
		}
		out = append(out, pi.Partition)
	}
	return out
}

// DryRunResult is what a sweep as of some time would do.
type DryRunResult struct {
	// Candidates lists the first expired entries, up to the limit asked.
	Candidates []Candidate
	// Expired counts every expired entry, Held those that holds keep.
	Expired, Held uint64
	// Droppable lists the sealed partitions whose file would be dropped.
	Droppable []engine.Partition
}

// Truncated reports whether more entries expired than Candidates lists.
func (r *DryRunResult) Truncated() bool { return r.Expired > uint64(len(r.Candidates)) }

// DryRun adds to r what a sweep of tenant as of asOf would prune, hold and
// drop, listing candidates while r has fewer than limit.
func DryRun(ctx context.Context, e *engine.Engine, tenant string, asOf time.Time, limit int, r *DryRunResult) error {
	holds, err := ActiveHolds(ctx, e, tenant)
	if err != nil {
		return err
	}
	pending := make(map[engine.Partition]uint64)
	err = Expired(ctx, e, tenant, asOf, holds, func(page []Candidate) error {
		for _, c := range page {
			r.Expired++
			if len(c.HeldBy) > 0 {
				r.Held++
			} else {
				pending[c.Partition]++
			}
			if len(r.Candidates) < limit {
				r.Candidates = append(r.Candidates, c)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	parts, err := e.Partitions(ctx, tenant)
	if err != nil {
		return fmt.Errorf("compliance: dry run of %s: %w", tenant, err)
	}
	r.Droppable = append(r.Droppable, DropCandidates(parts, pending, holds)...)
	return nil
}

// FormatRanges writes ascending leaves as ranges: "0-99,105,107-200".
func FormatRanges(leaves []uint64) string {
	var b strings.Builder
	for i := 0; i < len(leaves); {
		j := i
		for j+1 < len(leaves) && leaves[j+1] == leaves[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatUint(leaves[i], 10))
		if j > i {
			b.WriteByte('-')
			b.WriteString(strconv.FormatUint(leaves[j], 10))
		}
		i = j + 1
	}
	return b.String()
}

// maxParsedLeaves bounds what ParseRanges expands, far above any chunk.
const maxParsedLeaves = 1 << 20

// ParseRanges reads what FormatRanges writes.
func ParseRanges(s string) ([]uint64, error) {
	var out []uint64
	if s == "" {
		return nil, nil
	}
	for _, r := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(r, "-")
		a, err := strconv.ParseUint(lo, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("compliance: leaf range %q: %w", r, err)
		}
		b := a
		if isRange {
			if b, err = strconv.ParseUint(hi, 10, 64); err != nil || b < a {
				return nil, fmt.Errorf("compliance: leaf range %q: want low-high", r)
			}
		}
		if b-a >= maxParsedLeaves || uint64(len(out))+b-a >= maxParsedLeaves {
			return nil, fmt.Errorf("compliance: leaf ranges %q: more than %d leaves", s, maxParsedLeaves)
		}
		for l := a; l <= b; l++ {
			out = append(out, l)
		}
	}
	return out, nil
}

// Tombstone records one pruning: what was pruned, under which policy, and
// the tree it was pruned from.
type Tombstone struct {
	Tenant        string
	Partition     string // YYYY-MM
	Category      trailv1.Category
	RetentionDays uint32
	Leaves        []uint64 // ascending, non-empty
	TreeSize      uint64
	Root          []byte
}

// EventID is derived from what was pruned (tenant, partition, first and
// last leaf, count), so writing the tombstone again is idempotent.
func (t Tombstone) EventID() string {
	k := fmt.Sprintf("%s/%s/%d/%d/%d", t.Tenant, t.Partition, t.Leaves[0], t.Leaves[len(t.Leaves)-1], len(t.Leaves))
	sum := sha256.Sum256([]byte(k))
	return tombstoneEventIDPrefix + hex.EncodeToString(sum[:16])
}

// Policy names the policy that expired the leaves: "data_access=2557d".
func (t Tombstone) Policy() string {
	return fmt.Sprintf("%s=%dd", CategoryName(t.Category), t.RetentionDays)
}

// Body is the text the log key signs. Its first line names the log and
// the record type and its second is not a number, so it can never be taken
// for a checkpoint ("origin\nsize\nroot\n"): the key's signature on a
// tombstone vouches for nothing about any tree.
func (t Tombstone) Body(logName string) string {
	lines := []string{
		logName + " retention tombstone v1",
		"tenant " + t.Tenant,
		"partition " + t.Partition,
		"tree " + strconv.FormatUint(t.TreeSize, 10) + " " + base64.StdEncoding.EncodeToString(t.Root),
		"policy " + t.Policy(),
		"count " + strconv.Itoa(len(t.Leaves)),
		"leaves " + FormatRanges(t.Leaves),
	}
	return strings.Join(lines, "\n") + "\n"
}

// Event is the tombstone as a compliance event of the system tenant, with
// the signed body in attribute "signed_note".
func (t Tombstone) Event(signedNote string, at time.Time) *trailv1.Event {
	return retentionRecord(t.EventID(), ActionRetentionPruned, t.Tenant+"/"+t.Partition, at, map[string]string{
		"tenant":      t.Tenant,
		"partition":   t.Partition,
		"leaves":      FormatRanges(t.Leaves),
		"count":       strconv.Itoa(len(t.Leaves)),
		"policy":      t.Policy(),
		"tree_size":   strconv.FormatUint(t.TreeSize, 10),
		"root":        base64.StdEncoding.EncodeToString(t.Root),
		"signed_note": signedNote,
	})
}

// KeptEvent records the leaves of tombstone t that the state machine did
// not prune after all: a legal hold committed between the sweep's choice
// and the prune's apply kept them. The tombstone is written before the
// prune (so no payload is ever removed unrecorded); this record corrects
// it.
func KeptEvent(t Tombstone, kept []uint64, at time.Time) *trailv1.Event {
	sum := sha256.Sum256([]byte(t.EventID() + "/kept/" + FormatRanges(kept)))
	return retentionRecord("retention-kept-"+hex.EncodeToString(sum[:16]), ActionRetentionKept, t.Tenant+"/"+t.Partition, at, map[string]string{
		"tenant":    t.Tenant,
		"partition": t.Partition,
		"tombstone": t.EventID(),
		"kept":      FormatRanges(kept),
		"count":     strconv.Itoa(len(kept)),
		"reason":    "a legal hold committed after the leaves were chosen",
	})
}

// DropEvent records that the segment file of pi was dropped; its catalog
// (final size and root) stays.
func DropEvent(pi engine.PartitionInfo, at time.Time) *trailv1.Event {
	sum := sha256.Sum256([]byte(pi.Partition.String()))
	return retentionRecord(dropEventIDPrefix+hex.EncodeToString(sum[:16]), ActionSegmentDropped, pi.Partition.String(), at, map[string]string{
		"tenant":    pi.Tenant,
		"partition": pi.Month.String(),
		"tree_size": strconv.FormatUint(pi.Size, 10),
		"root":      base64.StdEncoding.EncodeToString(pi.Root[:]),
	})
}

// retentionRecord is a compliance event of the system tenant by the
// retention sweep, about partition target ("tenant/YYYY-MM").
func retentionRecord(id, action, target string, at time.Time, attrs map[string]string) *trailv1.Event {
	return &trailv1.Event{
		TenantId:      engine.SystemTenant,
		EventId:       id,
		Category:      trailv1.Category_CATEGORY_COMPLIANCE,
		Action:        action,
		Outcome:       trailv1.Outcome_OUTCOME_SUCCESS,
		Actor:         &trailv1.Actor{Id: retentionActor, Type: "system"},
		Target:        &trailv1.Target{Type: "partition", Id: target},
		SourceService: "trail-server",
		OccurredAt:    timestamppb.New(at),
		Attributes:    attrs,
	}
}
