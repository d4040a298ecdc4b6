package vault

import (
	"context"
	"time"

	"github.com/connectors-gateway/connectors/tenants"
)

// Store is the credential-store contract both backends satisfy.
//
// Versions start at 1 for a record's first write. Put with version 0 creates
// a record that must not exist yet; with version N it replaces version N only.
type Store interface {
	// Get returns the credential and its version, or *CredentialNotFoundError.
	Get(ctx context.Context, tenant, integration string) (Credential, int64, error)
	// Put writes cred if the record is at version (see AnyVersion) and
	// returns the new version, or *ConflictError.
	Put(ctx context.Context, tenant, integration string, cred Credential, version int64) (int64, error)
	// Delete removes the record; deleting a missing record is *CredentialNotFoundError.
	Delete(ctx context.Context, tenant, integration string) error
	// Integrations lists the integrations a tenant has a credential for, sorted.
	Integrations(ctx context.Context, tenant string) ([]string, error)
	// Tenants lists every tenant with at least one credential, sorted.
	Tenants(ctx context.Context) ([]string, error)
	// Close releases the backend.
	Close() error
}

// Claims are single-use markers shared by every gateway replica on one
// store: a used OAuth state, or the one replica refreshing a token. A claim
// holds until its expiry; after that the key may be claimed again (its
// holder is gone, or what it protected has expired anyway). Keys are hashed
// before they are stored (see [ClaimID]), so a key may hold anything.
type Claims interface {
	// Claim takes key until the given time, or returns ErrClaimed if
	// another claim of key has not expired.
	Claim(ctx context.Context, key string, until time.Time) error
	// ReleaseClaim gives key up before its expiry; releasing a key nobody
	// holds is not an error.
	ReleaseClaim(ctx context.Context, key string) error
}

// Settings keeps one opaque record per tenant (which integrations it may
// use, narrowed to which tools): the format belongs to the caller, the
// store keeps it with a version for check-and-set, like a credential. It
// holds no secret.
type Settings interface {
	// GetTenantSettings returns the tenant's record and its version; a
	// tenant without one gets nil and version 0.
	GetTenantSettings(ctx context.Context, tenant string) ([]byte, int64, error)
	// PutTenantSettings stores the record if it is at version (0: none
	// yet) and returns the new version, or ErrSettingsChanged.
	PutTenantSettings(ctx context.Context, tenant string, rec []byte, version int64) (int64, error)
}

// TenantRecords keeps small opaque records per tenant by name, which every
// replica on one store shares: what a replica learned of a credential's
// health ("health/notion"), a tenant's usage figures ("usage"). Like
// Settings, the format belongs to the caller, each record has a version for
// check-and-set, and none holds a secret. Names follow [ValidateRecordName];
// off-boarding a tenant deletes its records.
type TenantRecords interface {
	// GetTenantRecord returns the tenant's record name and its version; a
	// record never written gets nil and version 0.
	GetTenantRecord(ctx context.Context, tenant, name string) ([]byte, int64, error)
	// PutTenantRecord stores rec if the record is at version (0: none yet)
	// and returns the new version, or ErrRecordChanged.
	PutTenantRecord(ctx context.Context, tenant, name string, rec []byte, version int64) (int64, error)
}

// TenantKeys manages each tenant's encryption key.
type TenantKeys interface {
	// RotateTenantKey gives the tenant a new key version and seals every
	// credential of the tenant under it.
	RotateTenantKey(ctx context.Context, tenant string) error
	// RetireOldKeyVersions makes ciphertext sealed under older versions
	// undecryptable; it refuses while a record is still sealed under one.
	RetireOldKeyVersions(ctx context.Context, tenant string) error
	// OffboardTenant deletes every record of the tenant and then its key
	// (crypto-shredding), or returns an *OffboardError if something would
	// be left behind.
	OffboardTenant(ctx context.Context, tenant string) error
}

// Backend is everything a credential-store backend offers, the contract
// both backends satisfy: the program that opens one holds it as a Backend
// and hands each consumer the role it needs. Besides credentials, claims,
// settings, tenant records and tenant keys, a backend keeps API-key records by ID, as
// package tenants needs them ([tenants.KeyStore]): opaque, holding no
// secret, with IDs that follow [ValidAPIKeyID].
type Backend interface {
	Store
	Claims
	Settings
	TenantRecords
	tenants.KeyStore
	TenantKeys
	// Ping checks that the store answers, cheaply, for readiness probes.
	Ping(ctx context.Context) error
}
