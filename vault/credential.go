// Package vault is the contract of the gateway's credential stores: the
// [Credential] record, the typed errors, the interfaces a backend
// satisfies and the helpers both backends use. The backends live in
// packages of their own, as tailscale's ipn/store/* do:
// [github.com/connectors-gateway/connectors/vault/embedded] (one local
// file, AES-256-GCM envelope encryption, for development and single-node
// use) and [github.com/connectors-gateway/connectors/vault/hashicorp] (KV
// v2 records whose secrets are Transit ciphertext under one key per
// tenant). Package storetest holds each backend to the contract.
//
// # Overview
//
// A [Store] keeps one [Credential] per (tenant, integration); a [Backend]
// keeps besides claims, tenant settings and API-key records, and manages
// each tenant's encryption key. Every write is a check-and-set against the
// record's version, so two writers racing on one record never silently
// overwrite each other: the loser gets a [*ConflictError].
//
// Consumers declare the few methods they use (server, oauth, tenants and
// transport each do); the program that opens a backend holds it as a
// [Backend]. An [Observer] given to a backend is told of every credential
// operation: that is where the audit trail and the metrics are fed.
package vault

import (
	"maps"
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

// Clone returns c with its own copies of Scopes and Extra, so a credential
// a backend caches is never changed through a caller's slice or map.
func (c Credential) Clone() Credential {
	if c.Scopes != nil {
		c.Scopes = append([]string(nil), c.Scopes...)
	}
	if c.Extra != nil {
		c.Extra = maps.Clone(c.Extra)
	}
	return c
}
