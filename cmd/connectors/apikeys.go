package main

import (
	"context"
	"errors"

	"github.com/connectors-gateway/connectors/cluster"
	"github.com/connectors-gateway/connectors/tenants"
	"github.com/connectors-gateway/connectors/transport"
)

// apiKeyManager serves the API-key routes (transport.HTTPOptions.APIKeys)
// from the API keys this replica verifies, so that a key revoked here is
// refused here at once, and tells the other replicas of each revocation
// (cluster.KindAPIKeyRevoked, as "connectors apikey revoke" does), so that
// theirs forget it at once too rather than within their cache's TTL.
type apiKeyManager struct {
	*tenants.APIKeys
	peers *peers
}

// apiKeyRoutes is the value of transport.HTTPOptions.APIKeys: keys, whose
// revocations changes tells the other replicas of.
func apiKeyRoutes(keys *tenants.APIKeys, changes *credentialChanges) transport.APIKeyManager {
	return apiKeyManager{APIKeys: keys, peers: &changes.peers}
}

// RevokeTenant revokes tenant's key id and tells the other replicas. They
// are told of a store failure too (the key may be gone: a needless cache
// miss costs one read), never of a refusal (no such key of the tenant, or
// an admin key the caller may not revoke), which changed nothing.
func (k apiKeyManager) RevokeTenant(ctx context.Context, tenant, id string, mayRevokeAdmin bool) error {
	err := k.APIKeys.RevokeTenant(ctx, tenant, id, mayRevokeAdmin)
	if !errors.Is(err, tenants.ErrKeyNotFound) && !errors.Is(err, tenants.ErrAdminKey) {
		k.peers.tell(cluster.Change{Kind: cluster.KindAPIKeyRevoked, Key: id})
	}
	return err
}
