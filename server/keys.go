package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/trailaudit/trail/engine"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// keyPrefix is the settings prefix of API key records: "apikey/<id>".
// Settings are replicated through Raft, so every node authenticates every
// key, and a revocation reaches every node in log order.
const keyPrefix = "apikey/"

// Limits on a key record, which must fit one engine setting.
const (
	maxKeyTenants     = 1000
	maxKeyDescription = 256
)

// ErrAlreadyBootstrapped is returned by Bootstrap when API keys exist.
var ErrAlreadyBootstrapped = errors.New("server: API keys already exist")

// keyRecord is the stored form of an API key. It never holds the secret,
// only its SHA-256: a stolen snapshot or backup yields no usable key.
type keyRecord struct {
	ID           string    `json:"id"`
	Role         string    `json:"role"` // trailv1.Role name, e.g. "ROLE_AUDITOR"
	Tenants      []string  `json:"tenants,omitempty"`
	Description  string    `json:"description,omitempty"`
	CreatedAt    time.Time `json:"created_at"`
	Revoked      bool      `json:"revoked,omitempty"`
	SecretSHA256 []byte    `json:"secret_sha256"`
}

func (r *keyRecord) role() trailv1.Role { return trailv1.Role(trailv1.Role_value[r.Role]) }

func (r *keyRecord) proto() *trailv1.APIKey {
	return &trailv1.APIKey{
		Id: r.ID, Role: r.role(), Tenants: r.Tenants, Description: r.Description,
		CreatedAt: timestamppb.New(r.CreatedAt), Revoked: r.Revoked,
	}
}

func decodeKeyRecord(b []byte) (*keyRecord, error) {
	r := new(keyRecord)
	if err := json.Unmarshal(b, r); err != nil {
		return nil, fmt.Errorf("decode API key record: %w", err)
	}
	if r.role() == trailv1.Role_ROLE_UNSPECIFIED || len(r.SecretSHA256) != sha256.Size {
		return nil, fmt.Errorf("API key record %q: bad role or hash", r.ID)
	}
	return r, nil
}

// keyStore reads and writes API key records in the replicated settings.
type keyStore struct {
	cluster Cluster
	cache   *keyCache // nil: no caching
}

// lookup authenticates a token: the key must exist, be unrevoked and its
// secret's hash must match, compared in constant time.
func (ks keyStore) lookup(token string) (*principal, error) {
	id, secret, err := parseToken(token)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256([]byte(secret))
	eng := ks.cluster.Engine()
	version := eng.SettingsVersion()
	if p, ok := ks.cache.get(id, sum, eng, version); ok {
		return p, nil
	}
	b, err := eng.Setting(keyPrefix + id)
	if errors.Is(err, engine.ErrNotFound) {
		return nil, errUnknownKey
	}
	if err != nil {
		return nil, fmt.Errorf("read API key %s: %w", id, err)
	}
	rec, err := decodeKeyRecord(b)
	if err != nil {
		return nil, err
	}
	if subtle.ConstantTimeCompare(sum[:], rec.SecretSHA256) != 1 || rec.Revoked {
		return nil, errUnknownKey
	}
	p := newPrincipal(rec)
	ks.cache.put(id, sum, eng, version, p)
	return p, nil
}

// keyCache remembers the principals of keys that authenticated, so that a
// call costs a hash and a map lookup instead of a Pebble read and a JSON
// decode. An entry is valid only for the engine and settings version it
// was read at: any settings command (a revocation among them) or a
// restored snapshot invalidates it. Only keys that authenticated are
// cached, and the cache is bounded, so unknown key ids cannot grow it.
type keyCache struct {
	mu      sync.Mutex
	entries map[string]cachedKey
}

type cachedKey struct {
	secret  [sha256.Size]byte
	eng     *engine.Engine
	version uint64
	p       *principal
}

// maxCachedKeys bounds the cache; a deployment has tens of keys, not
// thousands, so clearing it when full costs a few re-reads at most.
const maxCachedKeys = 4096

func newKeyCache() *keyCache { return &keyCache{entries: make(map[string]cachedKey)} }

func (c *keyCache) get(id string, secret [sha256.Size]byte, eng *engine.Engine, version uint64) (*principal, bool) {
	if c == nil {
		return nil, false
	}
	c.mu.Lock()
	k, ok := c.entries[id]
	c.mu.Unlock()
	if !ok || k.eng != eng || k.version != version || subtle.ConstantTimeCompare(k.secret[:], secret[:]) != 1 {
		return nil, false
	}
	return k.p, true
}

func (c *keyCache) put(id string, secret [sha256.Size]byte, eng *engine.Engine, version uint64, p *principal) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= maxCachedKeys {
		clear(c.entries)
	}
	c.entries[id] = cachedKey{secret: secret, eng: eng, version: version, p: p}
}

// create stores a new key and returns its record and token.
func (ks keyStore) create(ctx context.Context, role trailv1.Role, tenants []string, desc string, now time.Time) (*keyRecord, string, error) {
	if err := checkKeySpec(role, tenants, desc); err != nil {
		return nil, "", err
	}
	id, secret, token, err := newToken()
	if err != nil {
		return nil, "", err
	}
	sum := sha256.Sum256([]byte(secret))
	rec := &keyRecord{
		ID: id, Role: role.String(), Tenants: slices.Compact(slices.Sorted(slices.Values(tenants))),
		Description: desc, CreatedAt: now.UTC(), SecretSHA256: sum[:],
	}
	if err := ks.put(ctx, rec); err != nil {
		return nil, "", err
	}
	return rec, token, nil
}

func (ks keyStore) put(ctx context.Context, rec *keyRecord) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encode API key %s: %w", rec.ID, err)
	}
	key := keyPrefix + rec.ID
	if err := ks.cluster.ApplySettings(ctx, []engine.SettingOp{{Key: key, Value: b}}); err != nil {
		return fmt.Errorf("store API key %s: %w", rec.ID, err)
	}
	return ks.awaitLocal(ctx, key, b)
}

// keyVisibleWait bounds how long a key change waits for this node to
// apply it; replication lag is normally milliseconds.
const keyVisibleWait = 5 * time.Second

// awaitLocal waits until this node's engine holds value under key. The
// cluster answers once the leader has applied a change; on a follower, a
// key just created would not authenticate yet and, worse, a key just
// revoked would still work here. Replication lag is normally milliseconds.
func (ks keyStore) awaitLocal(ctx context.Context, key string, value []byte) error {
	wctx, cancel := context.WithTimeout(ctx, keyVisibleWait)
	defer cancel()
	err := ks.cluster.WaitFor(wctx, func(e *engine.Engine) (bool, error) {
		v, err := e.Setting(key)
		if errors.Is(err, engine.ErrNotFound) {
			return false, nil
		}
		return bytes.Equal(v, value), err
	})
	if err != nil {
		return fmt.Errorf("%w: %s committed but not yet applied on this node: %v", errUnavailable, key, err)
	}
	return nil
}

// revoke marks a key revoked. The record stays, so that ListAPIKeys and the
// audit trail can still name the key.
func (ks keyStore) revoke(ctx context.Context, id string) error {
	if !validKeyID(id) {
		return badRequest("API key id %q: want %d hex digits", id, keyIDLen)
	}
	b, err := ks.cluster.Engine().Setting(keyPrefix + id)
	if err != nil {
		return fmt.Errorf("API key %s: %w", id, err)
	}
	rec, err := decodeKeyRecord(b)
	if err != nil {
		return err
	}
	if rec.Revoked {
		return nil
	}
	rec.Revoked = true
	return ks.put(ctx, rec)
}

func (ks keyStore) list(ctx context.Context) ([]*keyRecord, error) {
	var (
		out     []*keyRecord
		iterErr error
	)
	err := ks.cluster.Engine().Settings(ctx, keyPrefix, func(_ string, v []byte) bool {
		rec, err := decodeKeyRecord(v)
		if err != nil {
			iterErr = err
			return false
		}
		out = append(out, rec)
		return true
	})
	if err == nil {
		err = iterErr
	}
	if err != nil {
		return nil, fmt.Errorf("list API keys: %w", err)
	}
	return out, nil
}

func (ks keyStore) any(ctx context.Context) (bool, error) {
	found := false
	err := ks.cluster.Engine().Settings(ctx, keyPrefix, func(string, []byte) bool {
		found = true
		return false
	})
	if err != nil {
		return false, fmt.Errorf("list API keys: %w", err)
	}
	return found, nil
}

// checkKeySpec validates a key to be created. Admin keys act on every
// tenant and so name none; every other key names at least one. No key may
// append to the system tenant, which only the server writes.
func checkKeySpec(role trailv1.Role, tenants []string, desc string) error {
	if _, ok := trailv1.Role_name[int32(role)]; !ok || role == trailv1.Role_ROLE_UNSPECIFIED {
		return badRequest("role is required")
	}
	if len(desc) > maxKeyDescription || !utf8.ValidString(desc) {
		return badRequest("description must be valid UTF-8 of at most %d bytes", maxKeyDescription)
	}
	if role == trailv1.Role_ROLE_ADMIN {
		if len(tenants) > 0 {
			return badRequest("admin keys act on every tenant and take no tenant list")
		}
		return nil
	}
	if len(tenants) == 0 || len(tenants) > maxKeyTenants {
		return badRequest("a %s key needs 1 to %d tenants", role, maxKeyTenants)
	}
	for _, t := range tenants {
		if err := checkTenant(t); err != nil {
			return err
		}
		if t == engine.SystemTenant && role == trailv1.Role_ROLE_PRODUCER {
			return badRequest("no key may append to tenant %s", engine.SystemTenant)
		}
	}
	return nil
}

// Bootstrap creates the first admin key of a cluster and returns its token,
// which is shown this once and never stored. It fails with
// ErrAlreadyBootstrapped when any key exists, so running it on every start
// is safe. Call it on one node after the cluster has a leader; two nodes
// racing may each create a key, which is harmless (both are admin keys).
func Bootstrap(ctx context.Context, c Cluster, description string) (string, error) {
	ks := keyStore{cluster: c}
	exists, err := ks.any(ctx)
	if err != nil {
		return "", fmt.Errorf("server: bootstrap: %w", err)
	}
	if exists {
		return "", ErrAlreadyBootstrapped
	}
	_, token, err := ks.create(ctx, trailv1.Role_ROLE_ADMIN, nil, description, time.Now())
	if err != nil {
		return "", fmt.Errorf("server: bootstrap: %w", err)
	}
	return token, nil
}
