package server

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/trailaudit/trail/compliance"
	"github.com/trailaudit/trail/engine"
	"github.com/trailaudit/trail/engine/eventwire"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
	"github.com/trailaudit/trail/shred"
)

// actionSubjectErased is the action of an erasure's own record.
const actionSubjectErased = "subject.erased"

// GetPrivacySettings returns whether a tenant seals subject payloads.
func (cs *complianceService) GetPrivacySettings(ctx context.Context, req *trailv1.GetPrivacySettingsRequest) (_ *trailv1.PrivacySettings, err error) {
	tenant := req.GetTenantId()
	ac, err := cs.s.authorizeTenant(ctx, permRead, trailv1.Category_CATEGORY_COMPLIANCE, tenant)
	if err != nil {
		return nil, err
	}
	defer func() { ac.finish(err) }()
	on, err := cs.s.cluster.Engine().Seals(tenant)
	if err != nil {
		return nil, err
	}
	return &trailv1.PrivacySettings{TenantId: tenant, SealSubjectPayloads: on}, nil
}

// SetPrivacySettings turns sealing of a tenant's subject payloads on or
// off; it applies to events appended after it. Turning it on records the
// sealing secret's check value the first time, so that a node with another
// secret cannot seal.
func (cs *complianceService) SetPrivacySettings(ctx context.Context, req *trailv1.SetPrivacySettingsRequest) (_ *trailv1.PrivacySettings, err error) {
	want := req.GetSettings()
	tenant := want.GetTenantId()
	ac, err := cs.beginCompliance(ctx, tenant, tenantRequired)
	if err != nil {
		return nil, err
	}
	defer func() { ac.finish(err) }()
	ac.set("seal_subject_payloads", fmt.Sprint(want.GetSealSubjectPayloads()))
	if tenant == eventwire.SystemTenant {
		return nil, badRequest("the %s tenant holds Trail's own records and never seals", eventwire.SystemTenant)
	}
	ops := []engine.SettingOp{{Key: engine.SealingSetting(tenant), Delete: true}}
	if want.GetSealSubjectPayloads() {
		if _, err := cs.s.clusterSecret(cs.s.cluster.Engine()); err != nil {
			return nil, err
		}
		ops = []engine.SettingOp{
			{Key: sealingCheckSetting, Value: cs.s.cfg.Sealing.CheckValue(), IfAbsent: true},
			{Key: engine.SealingSetting(tenant), Value: []byte{1}},
		}
	}
	if err := cs.s.cluster.ApplySettings(ctx, ops); err != nil {
		return nil, err
	}
	return &trailv1.PrivacySettings{TenantId: tenant, SealSubjectPayloads: want.GetSealSubjectPayloads()}, nil
}

// EraseSubject erases a subject's data key: first the erasure is recorded
// in the tenant's log (its leaf is part of the signed statement), then the
// key is deleted on every node through Raft, only if it is still the key
// the record names. The statement is always built from the record as
// stored, so a retry after a failure between the two, by anyone, with any
// words, finds the record (its event_id is the key's), signs what it says
// and finishes the deletion. The node first catches up with the commit
// index it knows, so that a hold or a key committed through another node
// moments ago is seen; an active legal hold that may cover the subject
// refuses the erasure (GDPR Art. 17(3)(e)).
func (cs *complianceService) EraseSubject(ctx context.Context, req *trailv1.EraseSubjectRequest) (_ *trailv1.EraseSubjectResponse, err error) {
	tenant, subject := req.GetTenantId(), req.GetSubjectId()
	ac, err := cs.s.authorizeTenant(ctx, permPIIReport, trailv1.Category_CATEGORY_COMPLIANCE, tenant)
	if err != nil {
		return nil, err
	}
	defer func() { ac.finish(err) }()
	ac.set("subject_id", subject)
	req, err = normalizeErasure(req, cs.s.cfg.Signer.Name())
	if err != nil {
		return nil, err
	}
	if err := cs.s.catchUp(ctx); err != nil {
		return nil, err
	}
	eng := cs.s.cluster.Engine()
	if err := cs.checkHolds(ctx, eng, tenant, subject); err != nil {
		return nil, err
	}
	rec, err := eng.Setting(engine.DataKeySetting(tenant, subject))
	if errors.Is(err, engine.ErrNotFound) {
		return nil, fmt.Errorf("%w: subject %q of tenant %q has no data key: nothing of theirs is sealed, or it was erased already (ListErasures)", engine.ErrNotFound, subject, tenant)
	}
	if err != nil {
		return nil, err
	}
	keyID, err := shred.RecordKeyID(rec)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", engine.ErrCorrupt, err)
	}
	ac.set("key_id", hex.EncodeToString(keyID))
	receipt, err := cs.recordErasure(ctx, req, keyID, "apikey:"+ac.p.keyID)
	if err != nil {
		return nil, err
	}
	value, err := proto.Marshal(receipt)
	if err != nil {
		return nil, err
	}
	ops := []engine.SettingOp{
		{Key: engine.DataKeySetting(tenant, subject), Delete: true, IfPrefix: keyID},
		{Key: erasureSettingKey(tenant, subject, keyID), Value: value},
	}
	if err := cs.s.cluster.ApplySettings(ctx, ops); err != nil {
		return nil, fmt.Errorf("erasure of %q recorded at %s leaf %d, but deleting the key failed; retry: %w",
			subject, receipt.GetRecord().GetPartition(), receipt.GetRecord().GetLeafIndex(), err)
	}
	return &trailv1.EraseSubjectResponse{Receipt: receipt}, nil
}

// normalizeErasure checks an erasure request and trims its reason and
// reference; whatever the statement could not carry is refused here,
// before anything is recorded.
func normalizeErasure(req *trailv1.EraseSubjectRequest, logName string) (*trailv1.EraseSubjectRequest, error) {
	subject := req.GetSubjectId()
	if subject == "" || len(subject) > eventwire.MaxIndexedLen || !utf8.ValidString(subject) || strings.IndexByte(subject, 0) >= 0 {
		return nil, badRequest("subject_id is required: at most %d bytes of UTF-8 without NUL", eventwire.MaxIndexedLen)
	}
	out := proto.CloneOf(req)
	out.Reason, out.Reference = strings.TrimSpace(req.GetReason()), strings.TrimSpace(req.GetReference())
	if out.Reason == "" {
		return nil, badRequest("reason is required: say why the subject's data is erased (e.g. \"Art. 17(1)(b): consent withdrawn\")")
	}
	for _, f := range []struct{ name, v string }{{"reason", out.Reason}, {"reference", out.Reference}} {
		if err := shred.CheckLine(f.v); err != nil || len(f.v) > 512 {
			return nil, badRequest("%s must be one line of at most 512 bytes without control characters", f.name)
		}
	}
	// The statement as it will be signed, with a stand-in record.
	probe := &shred.Erasure{Log: logName, Tenant: out.GetTenantId(), Subject: subject, KeyID: make([]byte, shred.KeyIDSize),
		ErasedBy: "apikey:probe", Reason: out.Reason, Reference: out.Reference, Record: shred.Record{Partition: "2006-01", LeafHash: make([]byte, 32)}}
	if _, err := probe.Text(); err != nil {
		return nil, badRequest("%v", err)
	}
	return out, nil
}

// checkHolds refuses an erasure while an active legal hold of the tenant
// may cover the subject's events: one naming the subject, or naming none.
func (cs *complianceService) checkHolds(ctx context.Context, eng *engine.Engine, tenant, subject string) error {
	holds, err := compliance.ListHolds(ctx, eng, tenant, false)
	if err != nil {
		return err
	}
	for _, h := range holds {
		if h.GetSubjectId() == "" || h.GetSubjectId() == subject {
			return fmt.Errorf("%w: legal hold %s (case %q) covers subject %q; erasure is exempt while it is active (GDPR Art. 17(3)(e))",
				errPrecondition, h.GetId(), h.GetCaseReference(), subject)
		}
	}
	return nil
}

// erasureRecord is the event that records the erasure of key keyID. Its
// event_id is the key's, so there is one record per key whoever asks.
// Trail's own records (source_service "trail") are never sealed.
func erasureRecord(req *trailv1.EraseSubjectRequest, keyID []byte, by string, at time.Time) *trailv1.Event {
	keyHex := hex.EncodeToString(keyID)
	return &trailv1.Event{
		TenantId: req.GetTenantId(), EventId: eventwire.TrailIDPrefix + "erasure:" + keyHex,
		Category: trailv1.Category_CATEGORY_COMPLIANCE, Action: actionSubjectErased, Outcome: trailv1.Outcome_OUTCOME_SUCCESS,
		Actor:         &trailv1.Actor{Id: by, Type: "api_key"},
		SubjectId:     req.GetSubjectId(),
		Target:        &trailv1.Target{Type: "data_key", Id: keyHex},
		SourceService: eventwire.TrailSource,
		OccurredAt:    timestamppb.New(at),
		Attributes:    map[string]string{"reason": req.GetReason(), "reference": req.GetReference()},
	}
}

// recordErasure appends the erasure's record, unless one is stored
// already, and returns the signed receipt built from the stored one.
func (cs *complianceService) recordErasure(ctx context.Context, req *trailv1.EraseSubjectRequest, keyID []byte, by string) (*trailv1.ErasureReceipt, error) {
	checked, err := checkOwnEvents([]*trailv1.Event{erasureRecord(req, keyID, by, cs.s.cfg.Now())})
	if err != nil {
		return nil, err
	}
	results, err := cs.s.commit(ctx, checked)
	if err != nil {
		return nil, err
	}
	if r := results[0]; r.Err != nil && !errors.Is(r.Err, engine.ErrEventIDConflict) {
		return nil, r.Err
	}
	// New, duplicate or recorded before with other words: the stored
	// record is what the receipt states.
	id := checked[0].Event.EventID
	var stored engine.StoredEntry
	var rcpt engine.Receipt
	err = cs.s.cluster.WaitFor(ctx, func(e *engine.Engine) (bool, error) {
		var err error
		stored, rcpt, err = e.EntryByEventID(ctx, req.GetTenantId(), string(id))
		if errors.Is(err, engine.ErrNotFound) {
			return false, nil
		}
		return err == nil, err
	})
	if err != nil {
		return nil, fmt.Errorf("read the erasure record: %w", err)
	}
	en := new(trailv1.Entry)
	if stored.Pruned {
		return nil, fmt.Errorf("%w: the erasure record of key %x was pruned by retention; its receipt cannot be stated again", errPrecondition, keyID)
	}
	if err := proto.Unmarshal(stored.Data, en); err != nil {
		return nil, fmt.Errorf("%w: erasure record: %v", engine.ErrCorrupt, err)
	}
	ev := en.GetEvent()
	if !isErasureRecord(ev, req.GetSubjectId(), keyID) {
		return nil, fmt.Errorf("%w: event %s of tenant %q is not the erasure record of key %x", engine.ErrCorrupt, id, req.GetTenantId(), keyID)
	}
	st := &shred.Erasure{
		Log: cs.s.cfg.Signer.Name(), Tenant: ev.GetTenantId(), Subject: ev.GetSubjectId(), KeyID: keyID,
		ErasedAt: rcpt.SequencerTime, ErasedBy: ev.GetActor().GetId(), Reason: ev.GetAttributes()["reason"], Reference: ev.GetAttributes()["reference"],
		Record: shred.Record{Partition: rcpt.Partition.String(), LeafIndex: rcpt.LeafIndex, LeafHash: rcpt.LeafHash[:]},
	}
	signed, err := shred.SignErasure(st, cs.s.cfg.Signer)
	if err != nil {
		return nil, err
	}
	return &trailv1.ErasureReceipt{
		TenantId: st.Tenant, SubjectId: st.Subject, KeyId: keyID, Reason: st.Reason, Reference: st.Reference,
		ErasedAt: timestamppb.New(st.ErasedAt), ErasedBy: st.ErasedBy, Record: receiptProto(rcpt, 0), Note: string(signed),
	}, nil
}

// isErasureRecord reports whether ev is Trail's record of the erasure of
// subject's key keyID.
func isErasureRecord(ev *trailv1.Event, subject string, keyID []byte) bool {
	return ev.GetSourceService() == eventwire.TrailSource && ev.GetAction() == actionSubjectErased &&
		ev.GetSubjectId() == subject && ev.GetTarget().GetType() == "data_key" && ev.GetTarget().GetId() == hex.EncodeToString(keyID)
}

func erasureSettingKey(tenant, subject string, keyID []byte) string {
	return erasureSettingPrefix + tenant + "/" + subject + "/" + hex.EncodeToString(keyID)
}

// ListErasures returns a tenant's erasure receipts, or one subject's.
func (cs *complianceService) ListErasures(ctx context.Context, req *trailv1.ListErasuresRequest) (_ *trailv1.ListErasuresResponse, err error) {
	tenant := req.GetTenantId()
	ac, err := cs.s.authorizeTenant(ctx, permPIIReport, trailv1.Category_CATEGORY_COMPLIANCE, tenant)
	if err != nil {
		return nil, err
	}
	defer func() { ac.finish(err) }()
	prefix := erasureSettingPrefix + tenant + "/"
	if req.GetSubjectId() != "" {
		prefix += req.GetSubjectId() + "/"
	}
	resp := &trailv1.ListErasuresResponse{}
	var decodeErr error
	err = cs.s.cluster.Engine().Settings(ctx, prefix, func(key string, value []byte) bool {
		r := new(trailv1.ErasureReceipt)
		if decodeErr = proto.Unmarshal(value, r); decodeErr != nil {
			decodeErr = fmt.Errorf("%w: erasure record %s: %v", engine.ErrCorrupt, key, decodeErr)
			return false
		}
		// A subject id may contain "/": keep only exact matches.
		if req.GetSubjectId() == "" || r.GetSubjectId() == req.GetSubjectId() {
			resp.Receipts = append(resp.Receipts, r)
		}
		return true
	})
	if err == nil {
		err = decodeErr
	}
	if err != nil {
		return nil, err
	}
	return resp, nil
}
