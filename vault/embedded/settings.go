package embedded

import (
	"context"

	bolt "go.etcd.io/bbolt"

	"github.com/connectors-gateway/connectors/tenants"
	"github.com/connectors-gateway/connectors/vault"
)

// GetTenantSettings returns tenant's settings record and its version; a
// tenant without one gets nil and version 0.
func (e *Store) GetTenantSettings(ctx context.Context, tenant string) ([]byte, int64, error) {
	if err := tenants.ValidateID(tenant); err != nil {
		return nil, 0, err
	}
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	var rec []byte
	var version int64
	err := e.view(func(tx *bolt.Tx) error {
		rec, version = getVersioned(tx.Bucket(bucketSettings), []byte(tenant))
		return nil
	})
	return rec, version, err
}

// PutTenantSettings stores tenant's settings if they are at version (0:
// none yet) and returns the new version, or vault.ErrSettingsChanged.
func (e *Store) PutTenantSettings(ctx context.Context, tenant string, rec []byte, version int64) (int64, error) {
	if err := tenants.ValidateID(tenant); err != nil {
		return 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	var next int64
	err := e.update(func(tx *bolt.Tx) error {
		var err error
		next, err = putVersioned(tx.Bucket(bucketSettings), []byte(tenant), rec, version, vault.ErrSettingsChanged)
		return err
	})
	return next, err
}

// Ping checks that the store answers, cheaply, for readiness probes: a
// read of one small record, however many tenants there are (listing them
// would cost a scan at 100,000 tenants).
func (e *Store) Ping(ctx context.Context) error {
	_, _, err := e.GetTenantSettings(ctx, "readyz")
	return err
}
