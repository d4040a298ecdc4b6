// Package embedded is a credential store in one local file: a
// [vault.Backend] for development and single-node use. Secrets are sealed
// with envelope encryption: AES-256-GCM under a random data key per tenant
// and key version, itself sealed under the master key (envelope.go,
// datakey.go, masterkey.go).
package embedded

import (
	"bytes"
	"context"
	"crypto/cipher"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/connectors-gateway/connectors/vault"
)

// Buckets of the embedded store's file.
var (
	bucketMeta        = []byte("meta")        // formatKey, keyCheckKey
	bucketDataKeys    = []byte("data_keys")   // tenant -> version (8 bytes, big endian) -> wrapped data key
	bucketCredentials = []byte("credentials") // tenant -> integration -> record JSON
	bucketAPIKeys     = []byte("api_keys")    // id -> record, as given
	bucketClaims      = []byte("claims")      // sha256(key) hex -> expiry (Unix ns, 8 bytes, big endian)
	bucketSettings    = []byte("settings")    // tenant -> version (8 bytes, big endian) + record
)

// Keys of the meta bucket.
var (
	formatKey   = []byte("format")
	keyCheckKey = []byte("key_check")
)

const formatVersion = "1"

// lockTimeout bounds the wait for another process's lock on the file.
const lockTimeout = 2 * time.Second

// ErrLocked is returned by [Open] when another process (a serving gateway)
// holds the store's file for longer than the two seconds Open waits.
var ErrLocked = errors.New("locked by another process")

// Options configures [Open]. A nil *Options is the zero value.
type Options struct {
	// MasterKey is the 32-byte key that wraps the tenants' data keys (cmd
	// reads it from CONNECTORS_MASTER_KEY; see ParseMasterKey). Nil: read it
	// from KeyFile.
	MasterKey []byte
	// KeyFile holds the master key when MasterKey is nil. It is created with
	// mode 0600 and a random key on first start, and refused if its group or
	// others can access it. Empty: the store's path plus ".key".
	KeyFile string
	// Logger receives the store's few events; it never sees a secret.
	// Nil: logs are discarded.
	Logger *slog.Logger
	// NoSync skips the fsync after each write: for loading many records
	// at once (benchmarks, migrations), never for serving, since a crash
	// may then lose acknowledged writes.
	NoSync bool
	// Now stamps CreatedAt and UpdatedAt. Nil: time.Now.
	Now func() time.Time
	// Observer, if set, is told of every credential operation (see
	// [vault.Observer]).
	Observer vault.Observer
}

// Store is a [vault.Backend] in one local bbolt file, with envelope
// encryption: each tenant's secrets are sealed (AES-256-GCM) under that
// tenant's random data key, itself sealed under the master key. It is for
// development and single-node use.
//
// A Store is safe for concurrent use. Unwrapped data keys and
// decrypted credentials are cached in memory only: Get of a credential
// read before costs no transaction while nothing was written since, one
// read transaction otherwise, and two AES-GCM opens when its stored bytes
// changed.
type Store struct {
	db     *bolt.DB
	master cipher.AEAD
	log    *slog.Logger
	now    func() time.Time
	obs    vault.Observer
	// committed is the newest transaction ID this process knows committed:
	// published by each write once it has, and by each read transaction
	// that saw a newer one. bbolt locks the file to this process, so
	// every change to it is a write here. A credential opened from the
	// state as of committed is current (see Get).
	committed atomic.Uint64
	// created is set when Open made the store: the file held none.
	created bool

	mu          sync.RWMutex
	dataKeys    map[dataKeyRef]cipher.AEAD // unwrapped data keys; guarded by mu
	claimsSwept time.Time                  // last purge of expired claims; guarded by mu
	openedRecs  map[recordRef]openedRecord // decrypted credentials by their stored bytes; guarded by mu
}

// openedRecord is a credential decrypted from exactly the bytes raw,
// which were the stored ones as of transaction seen.
type openedRecord struct {
	raw     []byte
	cred    vault.Credential
	version int64
	seen    uint64
}

// publish records that transaction id committed.
func (e *Store) publish(id uint64) {
	for {
		cur := e.committed.Load()
		if id <= cur || e.committed.CompareAndSwap(cur, id) {
			return
		}
	}
}

// maxOpened bounds the decrypted-credential cache; beyond it, it starts over.
const maxOpened = 100_000

// opened returns the credential decrypted earlier from the same stored
// bytes, if any: any write changes the bytes (version, nonces), so a hit is
// never stale. seen is the transaction the bytes were read in; the record
// is marked current as of it.
func (e *Store) opened(tenant, integration string, raw []byte, seen uint64) (vault.Credential, int64, bool) {
	ref := recordRef{tenant, integration}
	e.mu.RLock()
	o, ok := e.openedRecs[ref]
	e.mu.RUnlock()
	if !ok || !bytes.Equal(o.raw, raw) {
		return vault.Credential{}, 0, false
	}
	if o.seen < seen {
		e.mu.Lock()
		if cur, ok := e.openedRecs[ref]; ok && bytes.Equal(cur.raw, raw) && cur.seen < seen {
			cur.seen = seen
			e.openedRecs[ref] = cur
		}
		e.mu.Unlock()
	}
	return o.cred.Clone(), o.version, true
}

// current returns the credential opened as of transaction committed, the
// newest known to have committed: nothing changed it since, and no Get
// has answered from a newer state.
func (e *Store) current(tenant, integration string, committed uint64) (vault.Credential, int64, bool) {
	e.mu.RLock()
	o, ok := e.openedRecs[recordRef{tenant, integration}]
	e.mu.RUnlock()
	if !ok || o.seen != committed {
		return vault.Credential{}, 0, false
	}
	return o.cred.Clone(), o.version, true
}

// keepOpened records cred, opened from raw as of transaction seen, unless
// what is recorded is newer (a read transaction that began earlier can
// end later).
func (e *Store) keepOpened(tenant, integration string, raw []byte, cred vault.Credential, version int64, seen uint64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.openedRecs == nil || len(e.openedRecs) >= maxOpened {
		e.openedRecs = make(map[recordRef]openedRecord)
	}
	ref := recordRef{tenant, integration}
	if cur, ok := e.openedRecs[ref]; ok && cur.seen > seen {
		return
	}
	e.openedRecs[ref] = openedRecord{raw: bytes.Clone(raw), cred: cred.Clone(), version: version, seen: seen}
}

// recordRef names one credential record.
type recordRef struct{ tenant, integration string }

// dataKeyRef names one version of one tenant's data key. Versions are never
// reused within a file, so what a ref names never changes and a cached key
// is never stale.
type dataKeyRef struct {
	tenant  string
	version uint64
}

var _ vault.Backend = (*Store)(nil)

// Open opens the embedded store at path, creating it (mode 0600) if
// it does not exist. It fails with ErrMasterKeyMismatch if the store was
// created under another master key.
func Open(path string, opts *Options) (*Store, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MasterKey != nil && len(o.MasterKey) != keySize {
		return nil, fmt.Errorf("opening embedded store %s: %w", path, ErrInvalidMasterKey)
	}
	if o.KeyFile == "" {
		o.KeyFile = path + ".key"
	}

	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: lockTimeout})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("opening embedded store %s: %w (a running gateway holds it: stop it first)", path, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("opening embedded store %s: %w", path, err)
	}
	db.NoSync = o.NoSync
	e := &Store{db: db, log: o.Logger, now: o.Now, obs: o.Observer, dataKeys: make(map[dataKeyRef]cipher.AEAD)}
	if err := e.init(path, &o); err != nil {
		db.Close()
		return nil, err
	}
	if info, err := os.Stat(path); err == nil && info.Mode().Perm()&0o077 != 0 {
		e.log.Warn("vault_embedded_file_mode", "path", path, "mode", fmt.Sprintf("%04o", info.Mode().Perm()))
	}
	if e.created {
		// A relative CONNECTORS_DATA_DIR run from another directory makes
		// a new store there: say where, so that it is noticed.
		abs, _ := filepath.Abs(path)
		e.log.Warn("created a new empty credential store", "event", "vault_embedded_created", "path", abs)
	}
	e.log.Warn("the embedded credential store is for development and single-node use; use HashiCorp Vault in production",
		"event", "vault_embedded_open", "path", path)
	return e, nil
}

// init sets the master key and, for a new file, creates the buckets and the
// key-check value; for an existing one it verifies the master key.
func (e *Store) init(path string, o *Options) error {
	var check []byte
	err := e.db.View(func(tx *bolt.Tx) error {
		if meta := tx.Bucket(bucketMeta); meta != nil {
			check = bytes.Clone(meta.Get(keyCheckKey)) // bbolt only lends values
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("opening embedded store %s: %w", path, err)
	}

	masterKey := o.MasterKey
	if masterKey == nil {
		var created bool
		masterKey, created, err = loadOrCreateKeyFile(o.KeyFile, check == nil)
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("opening embedded store %s: it was created under a master key but the key file %s is missing: %w",
				path, o.KeyFile, ErrMasterKeyMismatch)
		}
		if err != nil {
			return fmt.Errorf("opening embedded store %s: %w", path, err)
		}
		if created {
			e.log.Info("vault_master_key_created", "key_file", o.KeyFile)
		}
	}
	if e.master, err = newAEAD(masterKey); err != nil {
		return fmt.Errorf("opening embedded store %s: %w", path, err)
	}

	if check != nil {
		plain, err := e.master.Open(nil, nil, check, keyCheckAD)
		if err != nil || subtle.ConstantTimeCompare(plain, []byte(keyCheckPlaintext)) != 1 {
			return fmt.Errorf("opening embedded store %s: %w", path, ErrMasterKeyMismatch)
		}
	}
	e.created = check == nil
	err = e.db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketMeta, bucketDataKeys, bucketCredentials, bucketAPIKeys, bucketClaims, bucketSettings} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		if meta.Get(keyCheckKey) != nil {
			return nil
		}
		if err := meta.Put(formatKey, []byte(formatVersion)); err != nil {
			return err
		}
		return meta.Put(keyCheckKey, e.master.Seal(nil, nil, []byte(keyCheckPlaintext), keyCheckAD))
	})
	if err != nil {
		return fmt.Errorf("initialising embedded store %s: %w", path, err)
	}
	return nil
}

// Get implements [vault.Store].
func (e *Store) Get(ctx context.Context, tenant, integration string) (_ vault.Credential, _ int64, err error) {
	defer vault.Observe(e.obs, ctx, vault.OpGet, tenant, integration, time.Now(), &err)
	if err := vault.ValidateRecord(tenant, integration); err != nil {
		return vault.Credential{}, 0, err
	}
	if err := ctx.Err(); err != nil {
		return vault.Credential{}, 0, err
	}
	// Opened as of the newest state known to have committed: current. A
	// write publishes its transaction once committed, and a Get that read
	// a newer state than the one published publishes it before it answers,
	// so no later Get answers from an older one.
	if c, v, ok := e.current(tenant, integration, e.committed.Load()); ok {
		return c, v, nil
	}
	var (
		cred    vault.Credential
		version int64
	)
	err = e.view(func(tx *bolt.Tx) error {
		seen := uint64(tx.ID())
		e.publish(seen)
		tb := tx.Bucket(bucketCredentials).Bucket([]byte(tenant))
		if tb == nil {
			return &vault.CredentialNotFoundError{Tenant: tenant, Integration: integration}
		}
		raw := tb.Get([]byte(integration))
		if raw == nil {
			return &vault.CredentialNotFoundError{Tenant: tenant, Integration: integration}
		}
		// The same stored bytes as last time: the same credential, without
		// decoding and decrypting it again.
		if c, v, ok := e.opened(tenant, integration, raw, seen); ok {
			cred, version = c, v
			return nil
		}
		rec, err := decodeRecord(tenant, integration, raw)
		if err != nil {
			return err
		}
		aead, err := e.dataKey(tx, tenant, rec.KeyVersion)
		if err != nil {
			return err
		}
		cred, err = rec.open(aead, tenant, integration)
		version = rec.Version
		if err == nil {
			e.keepOpened(tenant, integration, raw, cred, version, seen)
		}
		return err
	})
	if err != nil {
		return vault.Credential{}, 0, err
	}
	return cred, version, nil
}

// Put implements [vault.Store]. A zero CreatedAt is stamped on the first write and
// kept afterwards; a zero UpdatedAt is stamped on every write.
func (e *Store) Put(ctx context.Context, tenant, integration string, cred vault.Credential, version int64) (_ int64, err error) {
	defer vault.Observe(e.obs, ctx, vault.OpPut, tenant, integration, time.Now(), &err)
	if err := vault.ValidateRecord(tenant, integration); err != nil {
		return 0, err
	}
	if version < vault.AnyVersion {
		return 0, fmt.Errorf("vault: putting %s/%s: invalid expected version %d", tenant, integration, version)
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	now := e.now().UTC()
	var written int64
	err = e.update(func(tx *bolt.Tx) error {
		tb, err := tx.Bucket(bucketCredentials).CreateBucketIfNotExists([]byte(tenant))
		if err != nil {
			return fmt.Errorf("creating bucket for tenant %s: %w", tenant, err)
		}
		var current int64
		var createdAt time.Time
		if raw := tb.Get([]byte(integration)); raw != nil {
			old, err := decodeRecord(tenant, integration, raw)
			if err != nil {
				return err
			}
			current, createdAt = old.Version, old.CreatedAt
		}
		if version != vault.AnyVersion && version != current {
			return &vault.ConflictError{Tenant: tenant, Integration: integration, Expected: version, Actual: current}
		}
		keyVersion, aead, err := e.currentDataKey(tx, tenant)
		if err != nil {
			return err
		}
		if cred.CreatedAt.IsZero() {
			cred.CreatedAt = createdAt
			if cred.CreatedAt.IsZero() {
				cred.CreatedAt = now
			}
		}
		if cred.UpdatedAt.IsZero() {
			cred.UpdatedAt = now
		}
		rec := sealRecord(aead, keyVersion, tenant, integration, cred)
		rec.Version = current + 1
		raw, err := json.Marshal(rec)
		if err != nil {
			return fmt.Errorf("encoding credential record %s/%s: %w", tenant, integration, err)
		}
		if err := tb.Put([]byte(integration), raw); err != nil {
			return fmt.Errorf("writing credential record %s/%s: %w", tenant, integration, err)
		}
		written = rec.Version
		return nil
	})
	if err != nil {
		return 0, err
	}
	return written, nil
}

// Delete implements [vault.Store].
func (e *Store) Delete(ctx context.Context, tenant, integration string) (err error) {
	defer vault.Observe(e.obs, ctx, vault.OpDelete, tenant, integration, time.Now(), &err)
	if err := vault.ValidateRecord(tenant, integration); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return e.update(func(tx *bolt.Tx) error {
		creds := tx.Bucket(bucketCredentials)
		tb := creds.Bucket([]byte(tenant))
		if tb == nil || tb.Get([]byte(integration)) == nil {
			return &vault.CredentialNotFoundError{Tenant: tenant, Integration: integration}
		}
		if err := tb.Delete([]byte(integration)); err != nil {
			return fmt.Errorf("deleting credential record %s/%s: %w", tenant, integration, err)
		}
		// The tenant's data keys stay: versions must never be reused.
		if k, _ := tb.Cursor().First(); k == nil {
			if err := creds.DeleteBucket([]byte(tenant)); err != nil {
				return fmt.Errorf("deleting bucket for tenant %s: %w", tenant, err)
			}
		}
		return nil
	})
}

// Integrations implements [vault.Store].
func (e *Store) Integrations(ctx context.Context, tenant string) ([]string, error) {
	if err := vault.ValidateTenant(tenant); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	names := []string{}
	err := e.view(func(tx *bolt.Tx) error {
		tb := tx.Bucket(bucketCredentials).Bucket([]byte(tenant))
		if tb == nil {
			return nil
		}
		return tb.ForEach(func(k, _ []byte) error {
			names = append(names, string(k)) // bbolt's byte order is sorted order
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return names, nil
}

// Tenants implements [vault.Store].
func (e *Store) Tenants(ctx context.Context) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ids := []string{}
	err := e.view(func(tx *bolt.Tx) error {
		creds := tx.Bucket(bucketCredentials)
		return creds.ForEachBucket(func(k []byte) error {
			if first, _ := creds.Bucket(k).Cursor().First(); first != nil {
				ids = append(ids, string(k))
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return ids, nil
}

// Created reports whether Open created the store: its file held no store
// before (a new, empty one).
func (e *Store) Created() bool { return e.created }

// Close implements [vault.Store]. It drops the cached data keys.
func (e *Store) Close() error {
	e.mu.Lock()
	clear(e.dataKeys)
	e.mu.Unlock()
	if err := e.db.Close(); err != nil {
		return &vault.VaultError{Err: fmt.Errorf("closing embedded store: %w", err)}
	}
	return nil
}

// view runs fn in a read transaction. Errors fn returns are returned as they
// are; a failure of the transaction itself is a *vault.VaultError.
func (e *Store) view(fn func(tx *bolt.Tx) error) error {
	var fnErr error
	err := e.db.View(func(tx *bolt.Tx) error {
		fnErr = fn(tx)
		return fnErr
	})
	if err != nil && err != fnErr {
		return &vault.VaultError{Err: fmt.Errorf("embedded store: %w", err)}
	}
	return err
}

// update runs fn in a write transaction, which commits only if fn returns
// nil. Errors fn returns are returned as they are; a failure of the
// transaction itself (including its commit) is a *vault.VaultError.
func (e *Store) update(fn func(tx *bolt.Tx) error) error {
	var (
		fnErr error
		id    uint64
	)
	err := e.db.Update(func(tx *bolt.Tx) error {
		id = uint64(tx.ID())
		fnErr = fn(tx)
		return fnErr
	})
	if err == nil {
		// Committed: a Get that begins now sees it. (One running beside
		// the write may still answer as it would have just before it.)
		e.publish(id)
	}
	if err != nil && err != fnErr {
		return &vault.VaultError{Err: fmt.Errorf("embedded store: %w", err)}
	}
	return err
}
