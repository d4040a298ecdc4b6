package embedded

import (
	"bytes"
	"context"
	"encoding/binary"

	bolt "go.etcd.io/bbolt"

	"github.com/connectors-gateway/connectors/vault"
)

// bucketRecords holds the tenant records: tenant -> name -> version (8
// bytes, big endian) + record. It is made by the first write, so a file
// written before records existed opens as it is.
var bucketRecords = []byte("records")

// GetTenantRecord returns tenant's record name and its version; a record
// never written gets nil and version 0.
func (e *Store) GetTenantRecord(ctx context.Context, tenant, name string) ([]byte, int64, error) {
	if err := validThen(ctx, vault.ValidateTenantRecord(tenant, name, nil)); err != nil {
		return nil, 0, err
	}
	var rec []byte
	var version int64
	err := e.view(func(tx *bolt.Tx) error {
		if b := tenantRecords(tx, tenant); b != nil {
			rec, version = getVersioned(b, []byte(name))
		}
		return nil
	})
	return rec, version, err
}

// PutTenantRecord stores tenant's record name if it is at version (0: none
// yet) and returns the new version, or vault.ErrRecordChanged.
func (e *Store) PutTenantRecord(ctx context.Context, tenant, name string, rec []byte, version int64) (int64, error) {
	if err := validThen(ctx, vault.ValidateTenantRecord(tenant, name, rec)); err != nil {
		return 0, err
	}
	var next int64
	err := e.update(func(tx *bolt.Tx) error {
		all, err := tx.CreateBucketIfNotExists(bucketRecords)
		if err != nil {
			return err
		}
		b, err := all.CreateBucketIfNotExists([]byte(tenant))
		if err != nil {
			return err
		}
		next, err = putVersioned(b, []byte(name), rec, version, vault.ErrRecordChanged)
		return err
	})
	return next, err
}

// getVersioned reads a record stored by putVersioned: nil and 0 if none.
func getVersioned(b *bolt.Bucket, key []byte) ([]byte, int64) {
	v := b.Get(key)
	if len(v) < 8 {
		return nil, 0
	}
	return bytes.Clone(v[8:]), int64(binary.BigEndian.Uint64(v[:8]))
}

// putVersioned stores rec under key, prefixed by its version (8 bytes, big
// endian), if the record is at version (0: none yet), and returns the new
// version, or changed.
func putVersioned(b *bolt.Bucket, key, rec []byte, version int64, changed error) (int64, error) {
	_, current := getVersioned(b, key)
	if current != version {
		return 0, changed
	}
	next := current + 1
	return next, b.Put(key, append(binary.BigEndian.AppendUint64(nil, uint64(next)), rec...))
}

// validThen is invalid, or else ctx's error: a record's checks before the
// store is touched.
func validThen(ctx context.Context, invalid error) error {
	if invalid != nil {
		return invalid
	}
	return ctx.Err()
}

// tenantRecords is tenant's bucket of records in tx, nil when it has none.
func tenantRecords(tx *bolt.Tx, tenant string) *bolt.Bucket {
	if all := tx.Bucket(bucketRecords); all != nil {
		return all.Bucket([]byte(tenant))
	}
	return nil
}

// deleteRecords deletes tenant's records in tx: part of off-boarding.
func deleteRecords(tx *bolt.Tx, tenant string) error {
	if tenantRecords(tx, tenant) == nil {
		return nil
	}
	return tx.Bucket(bucketRecords).DeleteBucket([]byte(tenant))
}
