package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"

	"google.golang.org/protobuf/proto"

	"github.com/trailaudit/trail/engine"
	"github.com/trailaudit/trail/engine/eventwire"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
	"github.com/trailaudit/trail/shred"
)

// Crypto-shredding on the server (docs/erasure.md). The node that receives
// an append seals it, before anything is proposed: a tenant that seals
// subject payloads has the changes and attributes of every event with a
// subject_id encrypted under that subject's data key, and Raft, every
// replica and every file only ever see the ciphertext. Sealing is
// deterministic (package shred), so a retry sealed again, on any node, is
// the same bytes and stays a duplicate. Data keys are replicated settings:
// a subject's first key is proposed if absent, and every node that needed
// one reads back the record that won. The engine refuses, retryably, an
// event sealed under a key that is no longer its subject's (erased
// meanwhile) and a sealing tenant's event whose payload came in clear from
// a node behind the setting (invariant 14).

// Setting keys of the privacy settings.
const (
	// sealingCheckSetting holds the check value of the sealing secret the
	// cluster seals with; a node with another secret refuses to seal or
	// open rather than write records its peers cannot read.
	sealingCheckSetting = "sealing/check"
	// erasureSettingPrefix + tenant/subject/key id (hex) holds an
	// erasure's receipt.
	erasureSettingPrefix = "erasure/"
)

// dataKeyCacheMax bounds the unwrapped data keys a node keeps, and
// sealsCacheMax the tenants whose sealing setting it remembers.
const (
	dataKeyCacheMax = 1 << 14
	sealsCacheMax   = 1 << 14
)

func cacheKey(tenant, subject string) string { return tenant + "\x00" + subject }

// tenantSeals reports whether tenant seals subject payloads, remembered
// per settings version: the append path asks for every batch, and a
// Pebble read per tenant per batch was 2% of a node's CPU under load.
func (s *Server) tenantSeals(eng *engine.Engine, tenant string) (bool, error) {
	version := eng.SettingsVersion()
	if on, ok := s.sealsCache.get(eng, version, tenant); ok {
		return on, nil
	}
	on, err := eng.Seals(tenant)
	if err != nil {
		return false, err
	}
	s.sealsCache.put(eng, version, tenant, on, sealsCacheMax)
	return on, nil
}

// errNoSealing is returned when this node cannot seal or open.
var errNoSealing = fmt.Errorf("%w: this node holds no sealing secret, or another one than the cluster's", errPrecondition)

// clusterSecret returns the check value of the secret the cluster wraps
// data keys under: the one recorded when sealing was first turned on, or
// last rotated to; this node's current one before that. A node that does
// not hold it refuses.
func (s *Server) clusterSecret(eng *engine.Engine) ([]byte, error) {
	if s.cfg.Sealing == nil {
		return nil, errNoSealing
	}
	check, err := eng.Setting(sealingCheckSetting)
	if errors.Is(err, engine.ErrNotFound) {
		return s.cfg.Sealing.CheckValue(), nil
	}
	if err != nil {
		return nil, err
	}
	if !s.cfg.Sealing.Holds(check) {
		return nil, errNoSealing
	}
	return check, nil
}

// sealChecked seals, in place, the events of valid that their tenants
// want sealed, and refuses events that arrive sealed (only Trail seals).
// It returns, per event, nil or why it was refused; a returned error
// fails the whole call (no key could be made, say).
func (s *Server) sealChecked(ctx context.Context, valid []eventwire.Checked) ([]error, error) {
	refused := make([]error, len(valid))
	eng := s.cluster.Engine()
	var todo []int
	var lastTenant []byte
	var lastOn bool
	for i := range valid {
		ev := &valid[i].Event
		if ev.HasSealed {
			refused[i] = fmt.Errorf("%w: sealed is set by Trail, never by a producer", engine.ErrInvalidEvent)
			continue
		}
		if string(ev.SourceService) == eventwire.TrailSource {
			refused[i] = fmt.Errorf("%w: source_service %q is reserved for Trail's own records", engine.ErrInvalidEvent, eventwire.TrailSource)
			continue
		}
		if bytes.HasPrefix(ev.EventID, []byte(eventwire.TrailIDPrefix)) {
			refused[i] = fmt.Errorf("%w: event ids starting with %q are reserved for Trail's own records", engine.ErrInvalidEvent, eventwire.TrailIDPrefix)
			continue
		}
		if len(ev.SubjectID) == 0 || ev.Changes+ev.Attributes == 0 {
			continue
		}
		// A batch is mostly one tenant's: ask once per run of it.
		if lastTenant == nil || !bytes.Equal(lastTenant, ev.TenantID) {
			var err error
			if lastOn, err = s.tenantSeals(eng, string(ev.TenantID)); err != nil {
				return nil, err
			}
			lastTenant = ev.TenantID
		}
		if lastOn {
			todo = append(todo, i)
		}
	}
	if len(todo) == 0 {
		return refused, nil
	}
	check, err := s.clusterSecret(eng)
	if err != nil {
		return nil, err
	}
	keys, err := s.dataKeys(ctx, valid, todo, check)
	if err != nil {
		return nil, err
	}
	for _, i := range todo {
		c := &valid[i]
		dk := keys[cacheKey(string(c.Event.TenantID), string(c.Event.SubjectID))]
		refused[i] = sealOne(c, dk)
	}
	return refused, nil
}

// sealOne replaces c's bytes with those of its sealed event: from the
// bytes when it can (shred.SealEncoded), else by decoding.
func sealOne(c *eventwire.Checked, dk shred.DataKey) error {
	if b, ok := shred.SealEncoded(c.Bytes, dk, &c.Event); ok {
		c.Bytes = b
		return eventwire.Validate(&c.Event)
	}
	var ev trailv1.Event
	if err := proto.Unmarshal(c.Bytes, &ev); err != nil {
		return fmt.Errorf("%w: %v", engine.ErrInvalidEvent, err)
	}
	if err := shred.SealEvent(&ev, dk); err != nil {
		return err
	}
	b, err := eventwire.Marshal(&ev, &c.Event)
	if err != nil {
		return err
	}
	if err := eventwire.Validate(&c.Event); err != nil {
		return err
	}
	c.Bytes = b
	return nil
}

// dataKeys returns the data key of the subject of each event todo names,
// keyed by cacheKey. Subjects without one get one: all of the call's new
// records are proposed in one settings command, each only if absent, and
// whatever won is read back from this node's engine once it applied them.
func (s *Server) dataKeys(ctx context.Context, valid []eventwire.Checked, todo []int, check []byte) (map[string]shred.DataKey, error) {
	// Waiting for a new key to show up locally must end even for a caller
	// without a deadline: a key erased before this node applied it never
	// does (below, that is ErrStaleDataKey, and a retry).
	ctx, cancel := context.WithTimeout(ctx, s.cfg.CommitTimeout)
	defer cancel()
	eng := s.cluster.Engine()
	keys := make(map[string]shred.DataKey)
	var missing []engine.SettingOp
	for _, i := range todo {
		tenant, subject := string(valid[i].Event.TenantID), string(valid[i].Event.SubjectID)
		ck := cacheKey(tenant, subject)
		if _, ok := keys[ck]; ok {
			continue
		}
		dk, found, err := s.loadDataKey(eng, tenant, subject)
		if err != nil {
			return nil, err
		}
		if found {
			keys[ck] = dk
			continue
		}
		keys[ck] = shred.DataKey{} // proposed below
		fresh, err := shred.NewDataKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		rec, err := s.cfg.Sealing.Wrap(check, tenant, subject, fresh, rand.Reader)
		if err != nil {
			return nil, err
		}
		missing = append(missing, engine.SettingOp{Key: engine.DataKeySetting(tenant, subject), Value: rec, IfAbsent: true})
	}
	if len(missing) == 0 {
		return keys, nil
	}
	if err := s.cluster.ApplySettings(ctx, missing); err != nil {
		return nil, fmt.Errorf("create %d data keys: %w", len(missing), err)
	}
	present := func(e *engine.Engine) (bool, error) {
		for _, op := range missing {
			if _, err := e.Setting(op.Key); errors.Is(err, engine.ErrNotFound) {
				return false, nil
			} else if err != nil {
				return false, err
			}
		}
		return true, nil
	}
	if err := s.cluster.WaitFor(ctx, present); err != nil {
		return nil, fmt.Errorf("wait for %d new data keys: %w", len(missing), err)
	}
	eng = s.cluster.Engine()
	for ck, dk := range keys {
		if dk != (shred.DataKey{}) {
			continue
		}
		tenant, subject, _ := bytes.Cut([]byte(ck), []byte{0})
		got, found, err := s.loadDataKey(eng, string(tenant), string(subject))
		if err != nil {
			return nil, err
		}
		if !found {
			// Erased between its creation and now: the caller retries.
			return nil, fmt.Errorf("%w: data key of subject %q was erased while it was made", engine.ErrStaleDataKey, subject)
		}
		keys[ck] = got
	}
	return keys, nil
}

// loadDataKey returns the subject's current data key, from the cache or
// the engine.
func (s *Server) loadDataKey(eng *engine.Engine, tenant, subject string) (shred.DataKey, bool, error) {
	// Unwrapped keys are remembered until the next erasure on eng, so an
	// erased key is never served from memory.
	gen := eng.DataKeysErased()
	dk, ok := s.keyCache.get(eng, gen, cacheKey(tenant, subject))
	if ok {
		return dk, true, nil
	}
	rec, err := eng.Setting(engine.DataKeySetting(tenant, subject))
	if errors.Is(err, engine.ErrNotFound) {
		return shred.DataKey{}, false, nil
	}
	if err != nil {
		return shred.DataKey{}, false, err
	}
	if s.cfg.Sealing == nil {
		return shred.DataKey{}, false, errNoSealing
	}
	dk, err = s.cfg.Sealing.Unwrap(tenant, subject, rec)
	if err != nil {
		return shred.DataKey{}, false, fmt.Errorf("%w: %v", errNoSealing, err)
	}
	s.keyCache.put(eng, gen, cacheKey(tenant, subject), dk, dataKeyCacheMax)
	return dk, true, nil
}

// openEntry shows what a reader may see of a sealed entry: its changes and
// attributes and the event's key while the subject's data key lives,
// ERASED once it was erased. entry_bytes are never touched (invariant 1).
func (s *Server) openEntry(out *trailv1.StoredEntry) {
	s.openEntryOn(s.cluster.Engine(), out)
}

// sealedPayload is what openEntryOn makes of a sealed entry's payload,
// for readers that write the state and key down (reports, exports):
// the state and, opened, the event's key.
func (s *Server) sealedPayload(eng *engine.Engine, en *trailv1.Entry) (trailv1.SealedState, []byte) {
	se := &trailv1.StoredEntry{Entry: en}
	s.openEntryOn(eng, se)
	return se.GetSealed(), se.GetOpeningKey()
}

// openEntryOn is openEntry with the data keys of eng, for a reader that
// holds one engine for all its reads (reports, exports).
func (s *Server) openEntryOn(eng *engine.Engine, out *trailv1.StoredEntry) {
	ev := out.GetEntry().GetEvent()
	if ev.GetSealed() == nil {
		return
	}
	out.Sealed = trailv1.SealedState_SEALED_STATE_UNAVAILABLE
	if s.cfg.Sealing == nil {
		return
	}
	dk, found, err := s.loadDataKey(eng, ev.GetTenantId(), ev.GetSubjectId())
	if err != nil {
		return
	}
	if !found || !bytes.Equal(dk.ID[:], ev.GetSealed().GetKeyId()) {
		out.Sealed = trailv1.SealedState_SEALED_STATE_ERASED
		return
	}
	key := shred.EventKey(dk, ev.GetTenantId(), ev.GetEventId())
	fields, err := shred.Open(ev, key)
	if err != nil {
		return
	}
	// A copy: a search hit's entry may be the engine's.
	en := proto.Clone(out.Entry).(*trailv1.Entry)
	en.Event.Changes, en.Event.Attributes = fields.GetChanges(), fields.GetAttributes()
	out.Entry = en
	out.Sealed = trailv1.SealedState_SEALED_STATE_OPENED
	out.OpeningKey = key
}

// settleSealedRetries answers a retry of a sealed event with its original
// receipt when the retry could not be sealed to the same bytes: its
// subject's key was erased since, so it was sealed under another. The
// engine refuses it as a conflict; if the stored event is the same in
// everything but the sealed payload, and the key it was sealed under is
// no longer its subject's (so its payload can never be compared), it is
// the same event. While that key lives, a conflict stays a conflict.
func (s *Server) settleSealedRetries(ctx context.Context, events []eventwire.Checked, results []engine.Result) {
	for i := range results {
		if !errors.Is(results[i].Err, engine.ErrEventIDConflict) || !events[i].Event.HasSealed {
			continue
		}
		ev := &events[i].Event
		eng := s.cluster.Engine()
		stored, rcpt, err := eng.EntryByEventID(ctx, string(ev.TenantID), string(ev.EventID))
		if err != nil || stored.Pruned {
			continue
		}
		if sameButSealed(stored.Data, events[i].Bytes, eng) {
			rcpt.Duplicate = true
			results[i] = engine.Result{Receipt: rcpt}
		}
	}
}

// sameButSealed reports whether the event of a stored entry and an
// encoded event differ only in their sealed payloads, sealed under two
// keys: the stored one's since erased. Under one key, a different payload
// is a different event (a real conflict), as the ciphertext says.
func sameButSealed(entry, event []byte, eng *engine.Engine) bool {
	var en trailv1.Entry
	var ev trailv1.Event
	if proto.Unmarshal(entry, &en) != nil || proto.Unmarshal(event, &ev) != nil || en.GetEvent().GetSealed() == nil {
		return false
	}
	was := en.GetEvent()
	if bytes.Equal(was.GetSealed().GetKeyId(), ev.GetSealed().GetKeyId()) {
		return false
	}
	if rec, err := eng.Setting(engine.DataKeySetting(was.GetTenantId(), was.GetSubjectId())); err == nil && bytes.HasPrefix(rec, was.GetSealed().GetKeyId()) {
		return false // the original's key lives: its payload is comparable, and differs
	}
	was.Sealed, ev.Sealed = nil, nil
	return proto.Equal(was, &ev)
}

// AppendChecked appends events read and checked elsewhere (the bus
// ingest), sealed as the API's are, and returns one result per event.
func (s *Server) AppendChecked(ctx context.Context, events []eventwire.Checked) ([]engine.Result, error) {
	out := make([]engine.Result, len(events))
	pos := make([]int, len(events))
	for i := range pos {
		pos[i] = i
	}
	// A copy: the caller's slice keeps its order, its results by index.
	keep, pos, err := s.sealValid(ctx, slices.Clone(events), pos, func(at int, err error) { out[at].Err = err })
	if err != nil {
		return nil, err
	}
	if len(keep) == 0 {
		return out, nil
	}
	results, err := s.cluster.AppendChecked(ctx, keep)
	if err != nil {
		return nil, err
	}
	s.settleSealedRetries(ctx, keep, results)
	for j, r := range results {
		out[pos[j]] = r
	}
	return out, nil
}
