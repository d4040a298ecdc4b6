package embedded

import (
	"context"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/connectors-gateway/connectors/vault"
)

// OffboardTenant deletes every record of the tenant and all of its data-key
// versions in one transaction, so the tenant's ciphertext in any copy of
// the file (a backup) can no longer be opened: crypto-shredding. The
// transaction is all or nothing, so nothing is left behind; it checks so
// before committing and returns an *vault.OffboardError otherwise. A tenant with
// nothing stored is not an error.
func (e *Store) OffboardTenant(ctx context.Context, tenant string) (err error) {
	defer vault.Observe(e.obs, ctx, vault.OpOffboard, tenant, "", time.Now(), &err)
	if err := vault.ValidateTenant(tenant); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	var records int
	err = e.update(func(tx *bolt.Tx) error {
		name := []byte(tenant)
		creds, keys := tx.Bucket(bucketCredentials), tx.Bucket(bucketDataKeys)
		if tb := creds.Bucket(name); tb != nil {
			_ = tb.ForEach(func(_, _ []byte) error { records++; return nil })
			if err := creds.DeleteBucket(name); err != nil {
				return fmt.Errorf("deleting the records of tenant %s: %w", tenant, err)
			}
		}
		if keys.Bucket(name) != nil {
			if err := keys.DeleteBucket(name); err != nil {
				return fmt.Errorf("deleting the data keys of tenant %s: %w", tenant, err)
			}
		}
		if err := tx.Bucket(bucketSettings).Delete(name); err != nil {
			return fmt.Errorf("deleting the settings of tenant %s: %w", tenant, err)
		}
		if err := deleteRecords(tx, tenant); err != nil {
			return fmt.Errorf("deleting the records of tenant %s: %w", tenant, err)
		}
		if creds.Bucket(name) != nil || keys.Bucket(name) != nil || tenantRecords(tx, tenant) != nil {
			return &vault.OffboardError{Tenant: tenant, Remaining: []string{"(embedded store bucket)"}}
		}
		return nil
	})
	if err != nil {
		return err
	}
	e.mu.Lock()
	for ref := range e.dataKeys {
		if ref.tenant == tenant {
			delete(e.dataKeys, ref)
		}
	}
	e.mu.Unlock()
	e.log.Info("vault_tenant_offboarded", "tenantId", tenant, "records_deleted", records)
	return nil
}

// RetireOldKeyVersions is a no-op for the embedded store: its rotation
// already deletes the old data-key versions.
func (e *Store) RetireOldKeyVersions(ctx context.Context, tenant string) (err error) {
	defer vault.Observe(e.obs, ctx, vault.OpRotate, tenant, "", time.Now(), &err)
	return vault.ValidateTenant(tenant)
}
