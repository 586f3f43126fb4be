package engine

import (
	"bytes"
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
// set leaves a key that already has a value as it is; with IfPrefix the op
// applies only while the key's value starts with IfPrefix (a data key is
// erased only if it is still the one the erasure names).
type SettingOp struct {
	Key      string
	Value    []byte
	Delete   bool
	IfAbsent bool
	IfPrefix []byte
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
// replicas stay identical. The ops are committed durably but, as a rule, the
// applied index only in memory: setting ops are idempotent, so a replay from
// the last checkpoint after a crash applies them again to the same effect.
// Commands that change what an append's apply checks read are the
// exception: deleting a data key (appends before it were checked against
// the key, checkSealKey) and turning a tenant's sealing on or off (appends
// before it were checked against the old setting, checkUnsealed). A replay
// of earlier appends after such a command is durable would refuse what
// every other replica accepted, or accept what they refused, and a
// replayed key creation would bring an erased key back. Such a command
// checkpoints first and commits the applied index with its ops. (Creating
// a data key needs no such care: the server seals only under keys already
// committed, so no earlier append names a key created later.)
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
	erasing := changesApplyChecks(ops)
	if erasing {
		if err := e.checkpointNow(); err != nil {
			return err
		}
	}
	wb := e.db.NewIndexedBatch()
	defer wb.Close()
	erased := false
	for _, op := range ops {
		apply, err := opApplies(wb, op)
		if err != nil {
			return e.fail(fmt.Errorf("engine: settings: %w", err))
		}
		if !apply {
			continue
		}
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
	if erasing {
		if err := wb.Set(appliedKey, encodeUint64(index), nil); err != nil {
			return fmt.Errorf("engine: settings: %w", err)
		}
	}
	if err := wb.Commit(pebble.Sync); err != nil {
		return e.fail(fmt.Errorf("engine: settings: %w", err))
	}
	e.applied.Store(index)
	if erasing {
		e.durable.Store(index)
	}
	e.settingsVersion.Add(1)
	if erased {
		e.dataKeysErased.Add(1)
		e.compactDataKeys(ctx)
	}
	return nil
}

// changesApplyChecks reports whether ops change a setting that appends'
// apply checks read, other than by adding a data key.
func changesApplyChecks(ops []SettingOp) bool {
	for _, op := range ops {
		if op.Delete && isDataKeySetting(op.Key) || isSealingSetting(op.Key) {
			return true
		}
	}
	return false
}

// opApplies evaluates op's condition against the batch's view.
func opApplies(b *pebble.Batch, op SettingOp) (bool, error) {
	if !op.IfAbsent && op.IfPrefix == nil {
		return true, nil
	}
	v, closer, err := b.Get(settingKey(op.Key))
	if errors.Is(err, pebble.ErrNotFound) {
		return op.IfPrefix == nil, nil // absent: IfAbsent applies, IfPrefix does not
	}
	if err != nil {
		return false, err
	}
	defer closer.Close()
	return !op.IfAbsent && bytes.HasPrefix(v, op.IfPrefix), nil
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
