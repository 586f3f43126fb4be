package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/cockroachdb/pebble/v2"

	"github.com/trailaudit/trail/engine/eventwire"
)

// Data keys (crypto-shredding, package shred) are settings like any
// other, under their own prefix, with two rules of their own: an append of
// a sealed event is refused unless the key it names is its subject's
// current one, and erasing a key compacts it out of Pebble's files at once
// rather than leaving the old value under a tombstone until some later
// compaction. The engine knows nothing of the cryptography: a record is
// opaque bytes that start with its key id.

// DataKeyPrefix starts the setting key of every subject's data key.
const DataKeyPrefix = "datakey/"

// sealingPrefix starts SealingSetting.
const sealingPrefix = "privacy/"

// SealingSetting is the setting whose presence means a tenant seals
// subject payloads.
func SealingSetting(tenant string) string { return sealingPrefix + tenant }

func isSealingSetting(key string) bool { return strings.HasPrefix(key, sealingPrefix) }

// ErrUnsealed refuses an event of a sealing tenant that carries a
// subject's changes or attributes in clear: the node that received it had
// not yet applied the setting. A retry is sealed.
var ErrUnsealed = errors.New("the tenant seals subject payloads and this event's were not sealed (the node that received it was behind); retry the append")

// ErrStaleDataKey is the refusal of a sealed event whose key is not its
// subject's current data key: it was sealed under a key erased meanwhile.
// Sealing it again (a retry) uses the subject's new key.
var ErrStaleDataKey = errors.New("sealed under a data key that is no longer the subject's (erased meanwhile); retry the append")

// DataKeySetting is the setting key of a subject's data key record.
func DataKeySetting(tenant, subject string) string {
	return DataKeyPrefix + tenant + "/" + subject
}

func isDataKeySetting(key string) bool { return strings.HasPrefix(key, DataKeyPrefix) }

// DataKeysErased changes whenever a data key is erased on this engine
// (and starts afresh with every Open): a cache of unwrapped keys compares
// it, with the engine it read from, before trusting an entry.
func (e *Engine) DataKeysErased() uint64 { return e.dataKeysErased.Load() }

// Seals reports whether tenant seals subject payloads, as of the last
// applied settings command.
func (e *Engine) Seals(tenant string) (bool, error) {
	_, err := e.Setting(SealingSetting(tenant))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, ErrNotFound):
		return false, nil
	}
	return false, err
}

// checkSealing applies the two rules of sealing tenants to an event about
// to be appended (invariant 14).
func (e *Engine) checkSealing(ev *eventwire.Event) error {
	if ev.HasSealed {
		return e.checkSealKey(ev.TenantID, ev.SubjectID, ev.SealedKeyID)
	}
	return e.checkUnsealed(ev)
}

// checkUnsealed refuses an event of a sealing tenant whose subject's
// changes or attributes are in clear. Trail's own records are exempt.
// Called with writeMu held.
func (e *Engine) checkUnsealed(ev *eventwire.Event) error {
	if ev.HasSealed || len(ev.SubjectID) == 0 || ev.Changes+ev.Attributes == 0 || string(ev.SourceService) == eventwire.TrailSource {
		return nil
	}
	seals, err := e.tenantSealsLocked(ev.TenantID)
	if err != nil || !seals {
		return err
	}
	return fmt.Errorf("%w: tenant %q event %q", ErrUnsealed, ev.TenantID, ev.EventID)
}

// tenantSealsLocked reads the tenant's sealing setting, through a cache
// that a settings command empties.
func (e *Engine) tenantSealsLocked(tenant []byte) (bool, error) {
	if v := e.settingsVersion.Load(); e.sealsVersion != v || e.seals == nil || len(e.seals) >= sealKeysMax {
		e.seals, e.sealsVersion = make(map[string]bool), v
	}
	if seals, ok := e.seals[string(tenant)]; ok {
		return seals, nil
	}
	seals, err := e.Seals(string(tenant))
	if err != nil {
		return false, err
	}
	e.seals[string(tenant)] = seals
	return seals, nil
}

// sealKeysMax bounds the data key ids the engine remembers (invariant 7):
// past it the cache starts over.
const sealKeysMax = 1 << 16

// checkSealKey refuses a sealed event unless its key id is the one the
// subject's data key record starts with. Called with writeMu held. The
// subject's current key id is remembered until the next erasure: a sealing
// tenant's every event would otherwise read Pebble here.
func (e *Engine) checkSealKey(tenant, subject, keyID []byte) error {
	if erased := e.dataKeysErased.Load(); e.sealKeysErased != erased || e.sealKeysCount >= sealKeysMax {
		e.sealKeys, e.sealKeysCount, e.sealKeysErased = nil, 0, erased
	}
	if id, ok := e.sealKeys[string(tenant)][string(subject)]; ok && bytes.Equal(id, keyID) {
		return nil
	}
	rec, closer, err := e.db.Get(settingKey(DataKeySetting(string(tenant), string(subject))))
	if errors.Is(err, pebble.ErrNotFound) {
		return fmt.Errorf("%w: tenant %q subject %q has no data key", ErrStaleDataKey, tenant, subject)
	}
	if err != nil {
		return fmt.Errorf("engine: data key of %q: %w", subject, err)
	}
	defer closer.Close()
	if !bytes.HasPrefix(rec, keyID) {
		return fmt.Errorf("%w: tenant %q subject %q", ErrStaleDataKey, tenant, subject)
	}
	e.rememberSealKey(string(tenant), string(subject), bytes.Clone(keyID))
	return nil
}

func (e *Engine) rememberSealKey(tenant, subject string, keyID []byte) {
	if e.sealKeys == nil {
		e.sealKeys = make(map[string]map[string][]byte)
	}
	bySubject := e.sealKeys[tenant]
	if bySubject == nil {
		bySubject = make(map[string][]byte)
		e.sealKeys[tenant] = bySubject
	}
	bySubject[subject] = keyID
	e.sealKeysCount++
}

// compactDataKeys rewrites the files that hold data key records, so that
// an erased key's value is gone from the live tables, not merely shadowed
// by a tombstone. Settings reach Pebble through its memtable and WAL;
// Compact flushes the memtable first, after which the WAL that carried the
// value is obsolete. The range holds only data key records, which are
// small. It is best effort: the deletion is committed already, and a
// failed compaction only leaves the old value to a later one, so it is
// logged rather than made a storage failure.
func (e *Engine) compactDataKeys(ctx context.Context) {
	lo := settingKey(DataKeyPrefix)
	if err := e.db.Compact(ctx, lo, prefixEnd(lo), false); err != nil {
		e.opts.Logger.Warn("engine: compacting erased data keys failed; a later compaction removes them", "err", err)
	}
}
