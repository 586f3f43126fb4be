package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/cockroachdb/pebble/v2"
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

// checkSealKey refuses a sealed event unless its key id is the one the
// subject's data key record starts with. Called with writeMu held.
func (e *Engine) checkSealKey(tenant, subject, keyID []byte) error {
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
	return nil
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
