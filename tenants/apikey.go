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
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"
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

// ErrKeyNotFound is returned by Revoke for an ID with no key, and by
// RevokeTenant for one that is not the tenant's.
var ErrKeyNotFound = errors.New("API key not found")

// ErrAdminKey is returned by RevokeTenant for an admin key when the caller
// may not revoke one; the key stays.
var ErrAdminKey = errors.New("API key is an admin key")

// MaxKeyNameLen is the most characters (runes) a key's name may have.
const MaxKeyNameLen = 64

// KeyNameError is a key name ValidateKeyName refuses. Its message names
// the field ("name") and why, never the name itself.
type KeyNameError struct{ Reason string }

func (e *KeyNameError) Error() string { return "name: " + e.Reason }

// ValidateKeyName returns a *KeyNameError unless name may label a key: at
// most MaxKeyNameLen characters of valid UTF-8, each printable (letters,
// marks, numbers, punctuation, symbols and the ASCII space: no control or
// format character, so no bidirectional override and no line break). The
// empty name is valid: a key need not have one.
func ValidateKeyName(name string) error {
	if !utf8.ValidString(name) {
		return &KeyNameError{Reason: "must be valid UTF-8"}
	}
	if utf8.RuneCountInString(name) > MaxKeyNameLen {
		return &KeyNameError{Reason: fmt.Sprintf("must be at most %d characters", MaxKeyNameLen)}
	}
	for _, r := range name {
		if !unicode.IsPrint(r) {
			return &KeyNameError{Reason: "must hold printable characters only (no control or format characters)"}
		}
	}
	return nil
}

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
	// Name is a label for people ("claude-desktop"), if the key was given
	// one; see ValidateKeyName. Keys made before names were kept have none.
	Name string `json:"name,omitempty"`
}

// CreateOptions are a new key's optional parts.
type CreateOptions struct {
	Admin bool   // the key may administer every tenant
	Name  string // a label for people; see ValidateKeyName
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
	// forgets counts Forget and ForgetTenant calls; guarded by mu. A
	// record read before one is not remembered (see remember).
	forgets uint64
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

// cached returns id's record if it was read within CacheTTL, and the
// forget count for remember.
func (k *APIKeys) cached(id string) (rec apiKeyRecord, hit bool, forgets uint64) {
	ttl := k.CacheTTL
	if ttl == 0 {
		ttl = DefaultAPIKeyCacheTTL
	}
	if ttl < 0 {
		return apiKeyRecord{}, false, 0
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	c, ok := k.cache[id]
	if !ok || k.now().Sub(c.fetched) >= ttl || k.now().Before(c.fetched) {
		return apiKeyRecord{}, false, k.forgets
	}
	return c.rec, true, k.forgets
}

// remember caches id's record, read when the forget count was forgets
// (cached's), unless a Forget came since: it may have been of this very
// key, and a record read just before its revocation must not outlive it
// here.
func (k *APIKeys) remember(id string, rec apiKeyRecord, forgets uint64) {
	if k.CacheTTL < 0 {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.forgets != forgets {
		return
	}
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
	k.forgets++
	delete(k.cache, id)
}

// ForgetTenant drops the cached records of every key of tenant (its keys
// were revoked elsewhere, as an off-boarding does).
func (k *APIKeys) ForgetTenant(tenant string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.forgets++
	for id, c := range k.cache {
		if c.rec.Tenant == tenant {
			delete(k.cache, id)
		}
	}
}

// Create makes a new key for tenant, admin or not, and returns it with its
// ID. The key is shown only now: the store keeps its hash.
func (k *APIKeys) Create(ctx context.Context, tenant string, admin bool) (key, id string, err error) {
	key, info, err := k.CreateWith(ctx, tenant, CreateOptions{Admin: admin})
	return key, info.ID, err
}

// CreateWith is Create with options: it makes a new key for tenant and
// returns it with its description. The key is shown only now: the store
// keeps its hash. A name ValidateKeyName refuses is a *KeyNameError.
func (k *APIKeys) CreateWith(ctx context.Context, tenant string, opts CreateOptions) (key string, info APIKey, err error) {
	if err := ValidateID(tenant); err != nil {
		return "", APIKey{}, fmt.Errorf("creating API key for tenant %q: %w", tenant, err)
	}
	if err := ValidateKeyName(opts.Name); err != nil {
		return "", APIKey{}, fmt.Errorf("creating API key for tenant %s: %w", tenant, err)
	}
	// An ID collision is a 2^-64 event; retrying once or twice covers it.
	for range 3 {
		var idBytes [apiKeyIDBytes]byte
		var secretBytes [apiKeySecretLen]byte
		_, _ = rand.Read(idBytes[:]) // crypto/rand.Read never fails
		_, _ = rand.Read(secretBytes[:])
		id := hex.EncodeToString(idBytes[:])
		secret := base64.RawURLEncoding.EncodeToString(secretBytes[:])
		hash := sha256.Sum256([]byte(secret))
		rec := apiKeyRecord{
			APIKey: APIKey{ID: id, Tenant: tenant, Admin: opts.Admin, CreatedAt: k.now().UTC(), Name: opts.Name},
			Hash:   hash[:],
		}
		raw, err := json.Marshal(rec)
		if err != nil {
			return "", APIKey{}, fmt.Errorf("encoding API key record: %w", err)
		}
		err = k.store.PutAPIKey(ctx, id, raw)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return "", APIKey{}, fmt.Errorf("storing API key for tenant %s: %w", tenant, err)
		}
		return apiKeyPrefix + id + "_" + secret, rec.APIKey, nil
	}
	return "", APIKey{}, fmt.Errorf("creating API key for tenant %s: no free ID after 3 tries", tenant)
}

// Revoke deletes the key with id; an unknown id is ErrKeyNotFound. This
// APIKeys forgets the key once the store answered (whatever it answered:
// the key may be gone), so that a Verify that read its record just before
// does not keep it cached.
func (k *APIKeys) Revoke(ctx context.Context, id string) error {
	if !validAPIKeyID(id) {
		return fmt.Errorf("revoking API key %q: %w", id, ErrKeyNotFound)
	}
	defer k.Forget(id)
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

// RevokeTenant deletes tenant's key id. A key of another tenant is
// ErrKeyNotFound, exactly as one that does not exist, and stays. Unless
// mayRevokeAdmin, an admin key is ErrAdminKey and stays.
func (k *APIKeys) RevokeTenant(ctx context.Context, tenant, id string, mayRevokeAdmin bool) error {
	if !validAPIKeyID(id) {
		return fmt.Errorf("revoking API key %q: %w", id, ErrKeyNotFound)
	}
	rec, err := k.load(ctx, id)
	switch {
	case errors.Is(err, fs.ErrNotExist), err == nil && rec.Tenant != tenant:
		return fmt.Errorf("revoking API key %s: %w", id, ErrKeyNotFound)
	case err != nil:
		return fmt.Errorf("revoking API key %s: %w", id, err)
	case rec.Admin && !mayRevokeAdmin:
		return fmt.Errorf("revoking API key %s: %w", id, ErrAdminKey)
	}
	// A key's record is never rewritten (PutAPIKey only creates), so the
	// key deleted is the one just checked.
	return k.Revoke(ctx, id)
}

// ListTenant returns tenant's keys, newest first (by CreatedAt, then ID).
// It reads every key's record, as List does.
func (k *APIKeys) ListTenant(ctx context.Context, tenant string) ([]APIKey, error) {
	if err := ValidateID(tenant); err != nil {
		return nil, fmt.Errorf("listing API keys of tenant %q: %w", tenant, err)
	}
	all, err := k.List(ctx)
	if err != nil {
		return nil, err
	}
	keys := slices.DeleteFunc(all, func(key APIKey) bool { return key.Tenant != tenant })
	slices.SortFunc(keys, func(a, b APIKey) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
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
	rec, hit, forgets := k.cached(id)
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
		k.remember(id, rec, forgets) // only a record that verified a key: guessed IDs fill nothing
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

// ValidKeyID reports whether id is of the form of a key's ID (16
// lowercase hex digits); whether a key has it is another matter.
func ValidKeyID(id string) bool { return validAPIKeyID(id) }

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
