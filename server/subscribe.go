package server

import (
	"context"
	"fmt"
	"slices"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/trailaudit/trail/compliance"
	"github.com/trailaudit/trail/engine"
	"github.com/trailaudit/trail/filter"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// Domain event types of Subscribe.
const (
	DomainEventRecorded          = "audit.event.recorded"
	DomainEventIntegrityVerified = "audit.integrity.verified"
	DomainEventIntegrityViolated = "audit.integrity.violation"
	DomainEventSecurityAnomaly   = compliance.ActionSecurityAnomaly
	DomainEventPartitionSealed   = "audit.partition.sealed"
)

// entryDomainEvents are the domain events that are log entries of their
// own, found through the action index.
var entryDomainEvents = []string{DomainEventSecurityAnomaly, DomainEventIntegrityViolated, DomainEventIntegrityVerified}

var allDomainEvents = []string{
	DomainEventRecorded, DomainEventIntegrityVerified, DomainEventIntegrityViolated,
	DomainEventSecurityAnomaly, DomainEventPartitionSealed,
}

// Subscribe streams a tenant's domain events from now on. Events are
// derived from this node's applied state after each apply, never queued
// for the consumer: audit.event.recorded reports the leaves added since
// the last one sent, so a slow consumer gets fewer, larger batches and
// ingestion never waits for it.
func (c *complianceService) Subscribe(req *trailv1.SubscribeRequest, stream grpc.ServerStreamingServer[trailv1.DomainEvent]) error {
	ctx := stream.Context()
	tenant := req.GetTenantId()
	if err := checkTenant(tenant); err != nil {
		return err
	}
	types, err := domainEventTypes(req.GetTypes())
	if err != nil {
		return err
	}
	ac, err := c.s.authorize(ctx, permRead, trailv1.Category_CATEGORY_DATA_ACCESS, tenant)
	if err != nil {
		return err
	}
	sub := &subscription{s: c.s, tenant: tenant, types: types, send: stream.Send}
	err = sub.start(ctx)
	ac.set("types", fmt.Sprint(req.GetTypes()))
	ac.finish(err)
	if err != nil {
		return err
	}
	// Headers now, so a client knows when the subscription is live: what
	// is applied after this is reported.
	if err := stream.SendHeader(metadata.MD{}); err != nil {
		return err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	defer context.AfterFunc(c.s.life, func() {
		cancel(fmt.Errorf("%w: server shutting down; subscribe on another node", errUnavailable))
	})()
	for {
		wake := c.s.notify.wait()
		if err := sub.poll(ctx); err != nil {
			if cause := context.Cause(ctx); cause != nil && ctx.Err() != nil {
				return cause
			}
			return err
		}
		select {
		case <-ctx.Done():
			if cause := context.Cause(ctx); cause != context.Canceled {
				return cause
			}
			return nil
		case <-wake:
		}
	}
}

func domainEventTypes(names []string) (map[string]bool, error) {
	if len(names) == 0 {
		names = allDomainEvents
	}
	out := make(map[string]bool, len(names))
	for _, n := range names {
		if !slices.Contains(allDomainEvents, n) {
			return nil, badRequest("unknown domain event type %q: want one of %v", n, allDomainEvents)
		}
		out[n] = true
	}
	return out, nil
}

// subscription is the state of one Subscribe stream: how far each kind of
// domain event has been reported.
type subscription struct {
	s      *Server
	tenant string
	types  map[string]bool
	send   func(*trailv1.DomainEvent) error

	// sent is the size reported per partition; unsealed the partitions
	// seen open.
	sent     map[engine.Month]uint64
	unsealed map[engine.Month]bool
	// after is the position of the last entry considered for the
	// entry-backed events, and since its sequencer time.
	after logPosition
	since time.Time
}

type logPosition struct {
	month engine.Month
	leaf  uint64
	set   bool
}

func (p logPosition) before(m engine.Month, leaf uint64) bool {
	return !p.set || p.month.Before(m) || (p.month == m && p.leaf < leaf)
}

// start takes the current end of the tenant's log as the starting point.
func (sub *subscription) start(ctx context.Context) error {
	e, release := sub.s.cluster.AcquireEngine()
	defer release()
	parts, err := e.Partitions(ctx, sub.tenant)
	if err != nil {
		return toStatus(err)
	}
	sub.sent = map[engine.Month]uint64{}
	sub.unsealed = map[engine.Month]bool{}
	for _, pi := range parts {
		sub.sent[pi.Month] = pi.Size
		if !pi.Sealed {
			sub.unsealed[pi.Month] = true
		}
	}
	if n := len(parts); n > 0 && parts[n-1].Size > 0 {
		last := parts[n-1]
		sub.after = logPosition{month: last.Month, leaf: last.Size - 1, set: true}
		sub.since = last.LastTime
	}
	return nil
}

// poll sends what happened since the last poll.
func (sub *subscription) poll(ctx context.Context) error {
	e, release := sub.s.cluster.AcquireEngine()
	defer release()
	parts, err := e.Partitions(ctx, sub.tenant)
	if err != nil {
		return toStatus(err)
	}
	grew, err := sub.recorded(parts)
	if err != nil {
		return err
	}
	// Entry-backed events are new entries: while the tenant's log has not
	// grown (an apply for another tenant woke us), there are none to find.
	if grew {
		if err := sub.entryEvents(ctx, e); err != nil {
			return err
		}
	}
	return sub.sealed(ctx, parts)
}

// recorded reports the leaves added since the last poll and whether there
// were any.
func (sub *subscription) recorded(parts []engine.PartitionInfo) (grew bool, err error) {
	for _, pi := range parts {
		prev, known := sub.sent[pi.Month]
		if known && pi.Size <= prev {
			continue
		}
		grew = true
		sub.sent[pi.Month] = pi.Size
		if !pi.Sealed && !known {
			sub.unsealed[pi.Month] = true
		}
		if !sub.types[DomainEventRecorded] {
			continue
		}
		err := sub.send(&trailv1.DomainEvent{
			Type: DomainEventRecorded, TenantId: sub.tenant, Partition: pi.Month.String(),
			Time: timestamppb.New(pi.LastTime), FromLeaf: prev, Count: pi.Size - prev, TreeSize: pi.Size,
		})
		if err != nil {
			return grew, err
		}
	}
	return grew, nil
}

// entryEvents sends the anomaly and integrity entries recorded since the
// last poll, found through the action index rather than by reading every
// new entry.
func (sub *subscription) entryEvents(ctx context.Context, e *engine.Engine) error {
	var next logPosition
	for _, action := range entryDomainEvents {
		if !sub.types[action] {
			continue
		}
		last, err := sub.entriesOf(ctx, e, action)
		if err != nil {
			return err
		}
		if last.set && (!next.set || next.before(last.month, last.leaf)) {
			next = last
		}
	}
	// Every action's search started at sub.since; they advance together.
	if next.set {
		sub.after = next
		sub.since = sub.sinceOf(ctx, e, next)
	}
	return nil
}

// entriesOf sends the entries with action after sub.after, and returns the
// position of the last one.
func (sub *subscription) entriesOf(ctx context.Context, e *engine.Engine, action string) (logPosition, error) {
	q := engine.Query{Tenant: sub.tenant, Filter: filter.Filter{Actions: []string{action}, From: sub.since}, Limit: engine.MaxSearchLimit}
	var last logPosition
	for {
		res, err := e.Search(ctx, q)
		if err != nil {
			return last, toStatus(err)
		}
		for _, h := range res.Hits {
			if !sub.after.before(h.Partition.Month, h.LeafIndex) {
				continue
			}
			se := sub.s.hitProto(h)
			err := sub.send(&trailv1.DomainEvent{
				Type: action, TenantId: sub.tenant, Partition: h.Partition.Month.String(),
				Time: h.Entry.GetSequencerTime(), FromLeaf: h.LeafIndex, Count: 1, Entry: se,
			})
			if err != nil {
				return last, err
			}
			last = logPosition{month: h.Partition.Month, leaf: h.LeafIndex, set: true}
		}
		if res.NextCursor == "" {
			return last, nil
		}
		q.Cursor = res.NextCursor
	}
}

// sinceOf is the sequencer time of the entry at p: searches resume there
// (inclusive, skipping what was sent), since one Raft entry's events share
// a sequencer time.
func (sub *subscription) sinceOf(ctx context.Context, e *engine.Engine, p logPosition) time.Time {
	se, err := e.Entry(ctx, engine.Partition{Tenant: sub.tenant, Month: p.month}, p.leaf)
	if err != nil || se.Pruned {
		return sub.since
	}
	en := new(trailv1.Entry)
	if err := proto.Unmarshal(se.Data, en); err != nil {
		return sub.since
	}
	return en.GetSequencerTime().AsTime()
}

func (sub *subscription) sealed(ctx context.Context, parts []engine.PartitionInfo) error {
	for _, pi := range parts {
		if !pi.Sealed || !sub.unsealed[pi.Month] {
			continue
		}
		delete(sub.unsealed, pi.Month)
		if !sub.types[DomainEventPartitionSealed] {
			continue
		}
		cp, err := sub.s.signedCheckpoint(ctx, pi.Partition, pi.Size)
		if err != nil {
			return toStatus(err)
		}
		err = sub.send(&trailv1.DomainEvent{
			Type: DomainEventPartitionSealed, TenantId: sub.tenant, Partition: pi.Month.String(),
			Time: timestamppb.New(pi.LastTime), TreeSize: pi.Size, Checkpoint: cp,
		})
		if err != nil {
			return err
		}
	}
	return nil
}
