package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// prefixSetting holds replicated configuration that is not log content:
// API key hashes, retention policies, legal holds. It goes through Raft
// like everything else, so every node holds the same settings at the same
// applied index.
const prefixSetting = 's'

// SettingOp sets (Delete false) or deletes one setting. With IfAbsent a
// set leaves a key that already has a value as it is.
type SettingOp struct {
	Key      string
	Value    []byte
	Delete   bool
	IfAbsent bool
}

// Maximum sizes of a setting, to keep them metadata.
const (
	MaxSettingKey   = 512
	MaxSettingValue = 64 << 10
)

// ErrBadSetting is returned for malformed setting operations.
var ErrBadSetting = errors.New("invalid setting")

func settingKey(k string) []byte { return append([]byte{prefixSetting}, k...) }

// ApplySettings applies ops atomically at Raft index. Invalid ops reject the
// whole command with ErrBadSetting; the applied index still advances so that
// replicas stay identical. The ops are committed durably but the applied
// index only in memory: setting ops are idempotent, so a replay from the
// last checkpoint after a crash applies them again to the same effect.
func (e *Engine) ApplySettings(ctx context.Context, index uint64, ops []SettingOp) error {
	if err := e.checkWritable(); err != nil {
		return err
	}
	e.writeMu.Lock()
	defer e.writeMu.Unlock()
	if index <= e.applied.Load() {
		return ErrAlreadyApplied
	}
	if refusal := checkSettingOps(ops); refusal != nil {
		e.applied.Store(index)
		return refusal
	}
	wb := e.db.NewIndexedBatch()
	defer wb.Close()
	erased := false
	for _, op := range ops {
		if op.IfAbsent {
			if present, err := batchHas(wb, settingKey(op.Key)); err != nil || present {
				if err != nil {
					return e.fail(fmt.Errorf("engine: settings: %w", err))
				}
				continue
			}
		}
		var err error
		if op.Delete {
			err = wb.Delete(settingKey(op.Key), nil)
			erased = erased || isDataKeySetting(op.Key)
		} else {
			err = wb.Set(settingKey(op.Key), op.Value, nil)
		}
		if err != nil {
			return fmt.Errorf("engine: settings: %w", err)
		}
	}
	if err := wb.Commit(pebble.Sync); err != nil {
		return e.fail(fmt.Errorf("engine: settings: %w", err))
	}
	e.applied.Store(index)
	e.settingsVersion.Add(1)
	if erased {
		e.dataKeysErased.Add(1)
		if err := e.compactDataKeys(ctx); err != nil {
			return e.fail(err)
		}
	}
	return nil
}

// batchHas reports whether key has a value, as the batch sees it.
func batchHas(b *pebble.Batch, key []byte) (bool, error) {
	_, closer, err := b.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, closer.Close()
}

// SettingsVersion changes whenever a settings command commits on this
// engine. It starts afresh with every Open, so a cache must also compare
// the engine it read from (a restored snapshot is a new engine).
func (e *Engine) SettingsVersion() uint64 { return e.settingsVersion.Load() }

func checkSettingOps(ops []SettingOp) error {
	for _, op := range ops {
		switch {
		case op.Key == "":
			return fmt.Errorf("%w: empty key", ErrBadSetting)
		case len(op.Key) > MaxSettingKey:
			return fmt.Errorf("%w: key longer than %d bytes", ErrBadSetting, MaxSettingKey)
		case len(op.Value) > MaxSettingValue:
			return fmt.Errorf("%w: value of %q longer than %d bytes", ErrBadSetting, op.Key, MaxSettingValue)
		}
	}
	return nil
}

// Setting returns the value of key, or ErrNotFound.
func (e *Engine) Setting(key string) ([]byte, error) {
	if err := e.checkOpen(); err != nil {
		return nil, err
	}
	v, closer, err := e.db.Get(settingKey(key))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, fmt.Errorf("engine: setting %q: %w", key, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("engine: setting %q: %w", key, err)
	}
	defer closer.Close()
	return append([]byte(nil), v...), nil
}

// Settings calls fn for every setting whose key starts with prefix, in key
// order, until fn returns false.
func (e *Engine) Settings(ctx context.Context, prefix string, fn func(key string, value []byte) bool) error {
	if err := e.checkOpen(); err != nil {
		return err
	}
	lo := settingKey(prefix)
	it, err := e.db.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: lo, UpperBound: prefixEnd(lo)})
	if err != nil {
		return fmt.Errorf("engine: settings %q: %w", prefix, err)
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		if !fn(string(it.Key()[1:]), append([]byte(nil), it.Value()...)) {
			break
		}
	}
	return it.Error()
}

// Advance records a Raft index that changes nothing in the engine
// (membership changes, no-ops), keeping the applied index exact. The next
// checkpoint makes it durable; a replay before that advances again.
func (e *Engine) Advance(index uint64) error {
	if err := e.checkWritable(); err != nil {
		return err
	}
	e.writeMu.Lock()
	defer e.writeMu.Unlock()
	if index <= e.applied.Load() {
		return ErrAlreadyApplied
	}
	e.applied.Store(index)
	return nil
}
