package main

import (
	"context"
	"errors"
	"time"

	"github.com/connectors-gateway/connectors/audit"
	"github.com/connectors-gateway/connectors/cluster"
	"github.com/connectors-gateway/connectors/server"
	"github.com/connectors-gateway/connectors/tenants"
	"github.com/connectors-gateway/connectors/transport"
	"github.com/connectors-gateway/connectors/vault"
)

// offboardTenant off-boards tenant: the one implementation of "connectors
// tenant offboard" and of POST /admin/tenants/{tenantId}/offboard. It
// revokes the tenant's API keys through keys (which forgets them at once),
// each revocation recorded in trail (apikey_revoke, naming the key's ID),
// then has the store delete every credential and record of the tenant and
// destroy its key (crypto-shredding; the store records it as offboard).
// The keys go first: a tenant whose records could not all be deleted can
// no longer call. A tenant with nothing stored is off-boarded already:
// zeros, not an error. CredentialsDeleted counts the credentials the store
// held when it began.
//
// The caller tells the other replicas (cluster.KindOffboarded), whatever
// the error: some keys or records may be gone.
func offboardTenant(ctx context.Context, st vault.Backend, keys *tenants.APIKeys, trail *audit.Logger, tenant string) (transport.OffboardResult, []string, error) {
	var res transport.OffboardResult
	if err := tenants.ValidateID(tenant); err != nil {
		return res, nil, err
	}
	held, err := st.Integrations(ctx, tenant)
	if err != nil {
		return res, nil, err
	}
	list, err := keys.ListTenant(ctx, tenant)
	if err != nil {
		return res, held, err
	}
	for _, k := range list {
		start := time.Now()
		err := keys.Revoke(ctx, k.ID)
		if errors.Is(err, tenants.ErrKeyNotFound) {
			continue // revoked meanwhile
		}
		trail.Record(ctx, audit.Record{TenantID: tenant, Operation: audit.OpAPIKeyRevoke, APIKeyID: k.ID,
			Duration: time.Since(start), Success: err == nil, Err: err})
		if err != nil {
			return res, held, err
		}
		res.APIKeysRevoked++
	}
	if err := st.OffboardTenant(ctx, tenant); err != nil {
		return res, held, err
	}
	res.CredentialsDeleted = len(held)
	return res, held, nil
}

// offboard is the credential routes' Offboard: offboardTenant with the
// API keys this replica verifies, then on this replica what an
// off-boarding heard from another does there (replicaChanges.apply):
// the tenant's keys forgotten, its refreshes forgotten, its settings read
// again and its sessions told; and the other replicas told. It runs
// these even when the off-boarding failed part way.
func (c *credentialChanges) offboard(st vault.Backend, keys *tenants.APIKeys, g *server.Gateway) func(context.Context, string) (transport.OffboardResult, error) {
	return func(ctx context.Context, tenant string) (transport.OffboardResult, error) {
		res, held, err := offboardTenant(ctx, st, keys, c.trail, tenant)
		if tenants.ValidateID(tenant) != nil {
			return res, err
		}
		keys.ForgetTenant(tenant)
		if c.refresher != nil {
			for _, integration := range held {
				c.refresher.Forget(tenant, integration)
			}
		}
		g.InvalidateSettings(tenant)
		c.peers.tell(cluster.Change{Kind: cluster.KindOffboarded, Tenant: tenant})
		return res, err
	}
}
