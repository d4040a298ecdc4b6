package tenants

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync"
	"time"
)

// API keys authenticate service accounts. A key reads
//
//	cgw_<id>_<secret>
//
// where id is 16 lowercase hex digits (8 random bytes) naming the stored
// record, and secret is 32 random bytes in unpadded base64url (43
// characters, which may themselves contain '_' or '-'). The store keeps only
// the SHA-256 of the secret: a fast hash is enough for 256 random bits.

const (
	apiKeyPrefix    = "cgw_"
	apiKeyIDBytes   = 8
	apiKeyIDLen     = 2 * apiKeyIDBytes
	apiKeySecretLen = 32
)

// apiKeyLen is the length of every well-formed key.
var apiKeyLen = len(apiKeyPrefix) + apiKeyIDLen + 1 + base64.RawURLEncoding.EncodedLen(apiKeySecretLen)

// ErrInvalidAPIKey is the one error Verify returns for a key that is
// malformed, unknown, revoked or has the wrong secret, so a caller cannot
// tell which.
var ErrInvalidAPIKey = errors.New("invalid API key")

// ErrKeyNotFound is returned by Revoke for an ID with no key.
var ErrKeyNotFound = errors.New("API key not found")

// KeyStore is the storage APIKeys needs; both credential-store backends are
// one. Records are opaque bytes holding no secret.
//
// GetAPIKey and DeleteAPIKey of a missing id, and PutAPIKey of a taken one,
// return errors that wrap fs.ErrNotExist and fs.ErrExist respectively, so
// that tenants need not import the store's package to tell "no such key"
// from a store failure.
type KeyStore interface {
	PutAPIKey(ctx context.Context, id string, record []byte) error
	GetAPIKey(ctx context.Context, id string) ([]byte, error)
	DeleteAPIKey(ctx context.Context, id string) error
	ListAPIKeys(ctx context.Context) ([]string, error)
}

// APIKey describes a stored API key. It carries no secret and no hash.
type APIKey struct {
	ID        string    `json:"id"`
	Tenant    string    `json:"tenant"`
	Admin     bool      `json:"admin"`
	CreatedAt time.Time `json:"created_at"`
}

// apiKeyRecord is an API key as stored.
type apiKeyRecord struct {
	APIKey
	Hash []byte `json:"hash"` // SHA-256 of the secret
}

// APIKeys creates, lists, revokes and verifies API keys kept in a KeyStore.
// It is safe for concurrent use if its store is.
//
// Verify keeps the records it read for CacheTTL, so a busy agent's key is
// not fetched from the store (a Vault round trip) on every request. A key
// revoked through this APIKeys is forgotten at once; one revoked elsewhere
// (another replica) stops working within CacheTTL, or at once once Forget
// or ForgetTenant is told of it.
type APIKeys struct {
	store KeyStore
	now   func() time.Time
	// CacheTTL bounds how long a verified key's record is reused; zero
	// means DefaultAPIKeyCacheTTL, negative no cache. Set it before use.
	CacheTTL time.Duration

	mu    sync.Mutex
	cache map[string]cachedKey // by key ID; guarded by mu
}

// DefaultAPIKeyCacheTTL is the CacheTTL of a zero APIKeys: as long as a
// credential read from Vault is reused.
const DefaultAPIKeyCacheTTL = 5 * time.Second

// maxCachedKeys bounds the cache; beyond it, it starts over.
const maxCachedKeys = 100_000

type cachedKey struct {
	rec     apiKeyRecord
	fetched time.Time
}

// NewAPIKeys returns API keys kept in store.
func NewAPIKeys(store KeyStore) *APIKeys {
	return &APIKeys{store: store, now: time.Now}
}

// cached returns id's record if it was read within CacheTTL.
func (k *APIKeys) cached(id string) (apiKeyRecord, bool) {
	ttl := k.CacheTTL
	if ttl == 0 {
		ttl = DefaultAPIKeyCacheTTL
	}
	if ttl < 0 {
		return apiKeyRecord{}, false
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	c, ok := k.cache[id]
	if !ok || k.now().Sub(c.fetched) >= ttl || k.now().Before(c.fetched) {
		return apiKeyRecord{}, false
	}
	return c.rec, true
}

func (k *APIKeys) remember(id string, rec apiKeyRecord) {
	if k.CacheTTL < 0 {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.cache == nil || len(k.cache) >= maxCachedKeys {
		k.cache = map[string]cachedKey{}
	}
	k.cache[id] = cachedKey{rec: rec, fetched: k.now()}
}

// Forget drops the cached record of key id, if any: the key was revoked
// elsewhere (another replica, an operator command), and the next request
// with it reads the store.
func (k *APIKeys) Forget(id string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.cache, id)
}

// ForgetTenant drops the cached records of every key of tenant (its keys
// were revoked elsewhere, as an off-boarding does).
func (k *APIKeys) ForgetTenant(tenant string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for id, c := range k.cache {
		if c.rec.Tenant == tenant {
			delete(k.cache, id)
		}
	}
}

// Create makes a new key for tenant, admin or not, and returns it with its
// ID. The key is shown only now: the store keeps its hash.
func (k *APIKeys) Create(ctx context.Context, tenant string, admin bool) (key, id string, err error) {
	if err := ValidateID(tenant); err != nil {
		return "", "", fmt.Errorf("creating API key for tenant %q: %w", tenant, err)
	}
	// An ID collision is a 2^-64 event; retrying once or twice covers it.
	for range 3 {
		var idBytes [apiKeyIDBytes]byte
		var secretBytes [apiKeySecretLen]byte
		_, _ = rand.Read(idBytes[:]) // crypto/rand.Read never fails
		_, _ = rand.Read(secretBytes[:])
		id = hex.EncodeToString(idBytes[:])
		secret := base64.RawURLEncoding.EncodeToString(secretBytes[:])
		hash := sha256.Sum256([]byte(secret))
		rec := apiKeyRecord{
			APIKey: APIKey{ID: id, Tenant: tenant, Admin: admin, CreatedAt: k.now().UTC()},
			Hash:   hash[:],
		}
		raw, err := json.Marshal(rec)
		if err != nil {
			return "", "", fmt.Errorf("encoding API key record: %w", err)
		}
		err = k.store.PutAPIKey(ctx, id, raw)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return "", "", fmt.Errorf("storing API key for tenant %s: %w", tenant, err)
		}
		return apiKeyPrefix + id + "_" + secret, id, nil
	}
	return "", "", fmt.Errorf("creating API key for tenant %s: no free ID after 3 tries", tenant)
}

// Revoke deletes the key with id; an unknown id is ErrKeyNotFound.
func (k *APIKeys) Revoke(ctx context.Context, id string) error {
	if !validAPIKeyID(id) {
		return fmt.Errorf("revoking API key %q: %w", id, ErrKeyNotFound)
	}
	k.Forget(id)
	err := k.store.DeleteAPIKey(ctx, id)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("revoking API key %s: %w", id, ErrKeyNotFound)
	}
	if err != nil {
		return fmt.Errorf("revoking API key %s: %w", id, err)
	}
	return nil
}

// List returns every stored key, sorted by ID. A key revoked while List runs
// is left out.
func (k *APIKeys) List(ctx context.Context) ([]APIKey, error) {
	ids, err := k.store.ListAPIKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing API keys: %w", err)
	}
	keys := make([]APIKey, 0, len(ids))
	for _, id := range ids {
		rec, err := k.load(ctx, id)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		keys = append(keys, rec.APIKey)
	}
	return keys, nil
}

// Verify returns the identity key authenticates: its tenant, the subject
// "apikey:<id>" and its admin flag. A key that is malformed, unknown or has
// the wrong secret is ErrInvalidAPIKey; a store failure is another error.
func (k *APIKeys) Verify(ctx context.Context, key string) (Identity, error) {
	id, secret, ok := parseAPIKey(key)
	if !ok {
		return Identity{}, ErrInvalidAPIKey
	}
	rec, hit := k.cached(id)
	if !hit {
		var err error
		rec, err = k.load(ctx, id)
		if errors.Is(err, fs.ErrNotExist) {
			return Identity{}, ErrInvalidAPIKey
		}
		if err != nil {
			return Identity{}, fmt.Errorf("verifying API key: %w", err)
		}
	}
	hash := sha256.Sum256([]byte(secret))
	if subtle.ConstantTimeCompare(hash[:], rec.Hash) != 1 {
		return Identity{}, ErrInvalidAPIKey
	}
	if !hit {
		k.remember(id, rec) // only a record that verified a key: guessed IDs fill nothing
	}
	return Identity{Tenant: rec.Tenant, Subject: "apikey:" + id, Admin: rec.Admin}, nil
}

// load reads and checks the record of id. A missing record is an error
// wrapping fs.ErrNotExist.
func (k *APIKeys) load(ctx context.Context, id string) (apiKeyRecord, error) {
	raw, err := k.store.GetAPIKey(ctx, id)
	if err != nil {
		return apiKeyRecord{}, fmt.Errorf("reading API key %s: %w", id, err)
	}
	var rec apiKeyRecord
	if err := json.Unmarshal(raw, &rec); err != nil {
		return apiKeyRecord{}, fmt.Errorf("decoding API key %s: %w", id, err)
	}
	// A record that does not describe itself is corrupt, not a bad key.
	if rec.ID != id || ValidateID(rec.Tenant) != nil || len(rec.Hash) != sha256.Size {
		return apiKeyRecord{}, fmt.Errorf("API key record %s is corrupt", id)
	}
	return rec, nil
}

// parseAPIKey splits a key into its ID and secret, reporting whether it is
// well formed.
func parseAPIKey(key string) (id, secret string, ok bool) {
	if len(key) != apiKeyLen || !strings.HasPrefix(key, apiKeyPrefix) {
		return "", "", false
	}
	rest := key[len(apiKeyPrefix):]
	id, secret = rest[:apiKeyIDLen], rest[apiKeyIDLen+1:]
	if rest[apiKeyIDLen] != '_' || !validAPIKeyID(id) {
		return "", "", false
	}
	if b, err := base64.RawURLEncoding.Strict().DecodeString(secret); err != nil || len(b) != apiKeySecretLen {
		return "", "", false
	}
	return id, secret, true
}

// validAPIKeyID reports whether id is 16 lowercase hex digits.
func validAPIKeyID(id string) bool {
	if len(id) != apiKeyIDLen {
		return false
	}
	for _, c := range []byte(id) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
