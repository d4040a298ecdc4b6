package embedded

import (
	"bytes"
	"context"
	"crypto/cipher"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/connectors-gateway/connectors/vault"
)

// versionKey is the bbolt key of data-key version v; big endian, so the
// bucket's last key is the current version.
func versionKey(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

// currentDataKey returns the tenant's newest data key, creating version 1 if
// the tenant has none. tx must be writable.
func (e *Store) currentDataKey(tx *bolt.Tx, tenant string) (uint64, cipher.AEAD, error) {
	kb, err := tx.Bucket(bucketDataKeys).CreateBucketIfNotExists([]byte(tenant))
	if err != nil {
		return 0, nil, fmt.Errorf("creating data-key bucket for tenant %s: %w", tenant, err)
	}
	if k, _ := kb.Cursor().Last(); k != nil {
		v := binary.BigEndian.Uint64(k)
		aead, err := e.dataKey(tx, tenant, v)
		return v, aead, err
	}
	aead, err := e.addDataKey(tx, kb, tenant, 1)
	return 1, aead, err
}

// addDataKey generates the tenant's data key version, stores it wrapped by
// the master key, and caches it once tx commits.
func (e *Store) addDataKey(tx *bolt.Tx, kb *bolt.Bucket, tenant string, version uint64) (cipher.AEAD, error) {
	key := newDataKey()
	defer clear(key)
	aead, err := newAEAD(key)
	if err != nil {
		return nil, err
	}
	wrapped := e.master.Seal(nil, nil, key, dataKeyAD(tenant, version))
	if err := kb.Put(versionKey(version), wrapped); err != nil {
		return nil, fmt.Errorf("writing data key version %d of tenant %s: %w", version, tenant, err)
	}
	ref := dataKeyRef{tenant: tenant, version: version}
	tx.OnCommit(func() { e.cacheDataKey(ref, aead) })
	return aead, nil
}

// dataKey returns the tenant's data key version, from the cache or else
// unwrapped from tx.
func (e *Store) dataKey(tx *bolt.Tx, tenant string, version uint64) (cipher.AEAD, error) {
	ref := dataKeyRef{tenant: tenant, version: version}
	e.mu.RLock()
	aead, ok := e.dataKeys[ref]
	e.mu.RUnlock()
	if ok {
		return aead, nil
	}
	var wrapped []byte
	if kb := tx.Bucket(bucketDataKeys).Bucket([]byte(tenant)); kb != nil {
		wrapped = kb.Get(versionKey(version))
	}
	if wrapped == nil {
		return nil, &vault.VaultEncryptionError{Err: fmt.Errorf("data key version %d of tenant %s is missing", version, tenant)}
	}
	key, err := e.master.Open(nil, nil, wrapped, dataKeyAD(tenant, version))
	if err != nil {
		return nil, &vault.VaultEncryptionError{Err: fmt.Errorf("unwrapping data key version %d of tenant %s: %w", version, tenant, err)}
	}
	defer clear(key)
	if aead, err = newAEAD(key); err != nil {
		return nil, &vault.VaultEncryptionError{Err: fmt.Errorf("data key version %d of tenant %s: %w", version, tenant, err)}
	}
	if tx.Writable() {
		// It may have been created by this very transaction.
		tx.OnCommit(func() { e.cacheDataKey(ref, aead) })
	} else {
		e.cacheDataKey(ref, aead)
	}
	return aead, nil
}

func (e *Store) cacheDataKey(ref dataKeyRef, aead cipher.AEAD) {
	e.mu.Lock()
	e.dataKeys[ref] = aead
	e.mu.Unlock()
}

// RotateTenantKey gives the tenant a new data-key version and re-encrypts
// all of the tenant's records under it, in one transaction: until it
// commits, readers see the old records and old keys; after, the old key
// versions are gone. Record versions do not change, since the credentials
// do not.
func (e *Store) RotateTenantKey(ctx context.Context, tenant string) (err error) {
	defer vault.Observe(e.obs, ctx, vault.OpRotate, tenant, "", time.Now(), &err)
	if err := vault.ValidateTenant(tenant); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	var (
		newVersion uint64
		retired    []uint64
		rewrapped  int
	)
	err = e.update(func(tx *bolt.Tx) error {
		kb, err := tx.Bucket(bucketDataKeys).CreateBucketIfNotExists([]byte(tenant))
		if err != nil {
			return fmt.Errorf("creating data-key bucket for tenant %s: %w", tenant, err)
		}
		if k, _ := kb.Cursor().Last(); k != nil {
			newVersion = binary.BigEndian.Uint64(k)
		}
		newVersion++
		newKey, err := e.addDataKey(tx, kb, tenant, newVersion)
		if err != nil {
			return err
		}
		if rewrapped, err = e.rewrap(tx, tenant, newVersion, newKey); err != nil {
			return err
		}
		// Nothing refers to the older versions any more.
		var old [][]byte
		c := kb.Cursor()
		for k, _ := c.First(); k != nil && binary.BigEndian.Uint64(k) < newVersion; k, _ = c.Next() {
			old = append(old, bytes.Clone(k))
		}
		for _, k := range old {
			if err := kb.Delete(k); err != nil {
				return fmt.Errorf("retiring data key of tenant %s: %w", tenant, err)
			}
			retired = append(retired, binary.BigEndian.Uint64(k))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("rotating data key of tenant %s: %w", tenant, err)
	}
	e.mu.Lock()
	for _, v := range retired {
		delete(e.dataKeys, dataKeyRef{tenant: tenant, version: v})
	}
	e.mu.Unlock()
	e.log.Info("vault_data_key_rotated", "tenantId", tenant, "key_version", newVersion, "records", rewrapped)
	return nil
}

// rewrap re-encrypts every record of tenant under newKey, which is
// data-key version newVersion. tx must be writable.
func (e *Store) rewrap(tx *bolt.Tx, tenant string, newVersion uint64, newKey cipher.AEAD) (int, error) {
	tb := tx.Bucket(bucketCredentials).Bucket([]byte(tenant))
	if tb == nil {
		return 0, nil
	}
	// bbolt cursors are not stable under writes: collect, then write.
	type entry struct{ integration, raw []byte }
	var entries []entry
	err := tb.ForEach(func(k, v []byte) error {
		entries = append(entries, entry{bytes.Clone(k), bytes.Clone(v)})
		return nil
	})
	if err != nil {
		return 0, err
	}
	for _, en := range entries {
		integration := string(en.integration)
		rec, err := decodeRecord(tenant, integration, en.raw)
		if err != nil {
			return 0, err
		}
		oldKey, err := e.dataKey(tx, tenant, rec.KeyVersion)
		if err != nil {
			return 0, err
		}
		cred, err := rec.open(oldKey, tenant, integration)
		if err != nil {
			return 0, err
		}
		sealed := sealRecord(newKey, newVersion, tenant, integration, cred)
		sealed.Version = rec.Version
		raw, err := json.Marshal(sealed)
		if err != nil {
			return 0, fmt.Errorf("encoding credential record %s/%s: %w", tenant, integration, err)
		}
		if err := tb.Put(en.integration, raw); err != nil {
			return 0, fmt.Errorf("writing credential record %s/%s: %w", tenant, integration, err)
		}
	}
	return len(entries), nil
}
