// Package vault stores tenants' integration credentials.
//
// # Overview
//
// A [Store] keeps one [Credential] per (tenant, integration). Two backends
// satisfy it: the embedded store (one local file, AES-256-GCM envelope
// encryption, for development and single-node use) and HashiCorp Vault (KV v2
// records whose secrets are Transit ciphertext under one key per tenant).
//
// Every write is a check-and-set against the record's version, so two writers
// racing on one record never silently overwrite each other: the loser gets a
// [*ConflictError].
package vault

import (
	"context"
	"time"
)

// Credential is one tenant's credential for one integration. Field names
// follow the seed document's Vault record (access_token, refresh_token, ...).
type Credential struct {
	AccessToken  string            `json:"access_token"`
	RefreshToken string            `json:"refresh_token,omitempty"`
	TokenType    string            `json:"token_type,omitempty"`
	ExpiresAt    time.Time         `json:"expires_at,omitzero"` // zero: never expires
	Scopes       []string          `json:"scopes,omitempty"`
	CreatedAt    time.Time         `json:"created_at,omitzero"`
	UpdatedAt    time.Time         `json:"updated_at,omitzero"`
	Extra        map[string]string `json:"extra,omitempty"` // provider extras: bot_id, workspace_id, ...
	// Status is empty for a usable credential, or StatusNeedsReauth once
	// its refresh token is dead and the tenant must link again.
	Status string `json:"status,omitempty"`
}

// StatusNeedsReauth marks a credential whose refresh has failed for good.
const StatusNeedsReauth = "needs_reauth"

// AnyVersion, passed as the expected version to [Store.Put], writes whatever
// version is current. The write is still a check-and-set against the version
// read just before it, so a concurrent writer still causes a ConflictError.
const AnyVersion int64 = -1

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
