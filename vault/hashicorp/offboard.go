package hashicorp

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/connectors-gateway/connectors/vault"
)

// offboardDepth bounds how deep OffboardTenant follows folders written by
// hand under a tenant's folder.
const offboardDepth = 8

// OffboardTenant deletes every record of the tenant (metadata delete: every
// version, including records written by hand under the tenant's folder) and
// then the tenant's Transit key, which makes every copy of the tenant's
// ciphertext (backups, snapshots, logs) undecryptable: crypto-shredding.
//
// It lists the tenant's folder again after deleting, and refuses with an
// *vault.OffboardError to delete the key while any record remains. Deleting the
// key needs more than the gateway-service policy grants (see
// policies/gateway-admin-policy.hcl). A tenant with no records and no key
// is off-boarded already: that is not an error.
//
// A write for the tenant that races with OffboardTenant can create a new
// record and key after it: stop the tenant's traffic first.
func (h *Store) OffboardTenant(ctx context.Context, tenant string) (err error) {
	defer vault.Observe(h.obs, ctx, vault.OpOffboard, tenant, "", time.Now(), &err)
	if err := vault.ValidateTenant(tenant); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	h.uncacheTenant(tenant)
	paths, err := h.listTenant(ctx, tenant)
	if err != nil {
		return err
	}
	var deleteErrs []error
	for _, p := range paths {
		if _, err := h.client.Logical().DeleteWithContext(ctx, h.kv.tenantDir(tenant)+p); err != nil {
			deleteErrs = append(deleteErrs, h.vaultErr(ctx, "deleting the credential record "+tenant+"/"+p, err))
			if ctx.Err() != nil {
				break
			}
		}
	}
	deleteErr := errors.Join(deleteErrs...)
	h.uncacheTenant(tenant)
	left, err := h.listTenant(ctx, tenant)
	if err != nil {
		return err
	}
	if len(left) > 0 || deleteErr != nil {
		return &vault.OffboardError{Tenant: tenant, Remaining: left, Err: deleteErr}
	}

	if _, err := h.client.Logical().DeleteWithContext(ctx, h.kv.metadata(settingsDir, tenant)); err != nil {
		return h.vaultErr(ctx, "deleting the tenant's settings", err)
	}
	// Its records (health, usage) hold no secret, but off-boarding leaves
	// nothing of the tenant.
	if left, err := h.deleteRecords(ctx, tenant); err != nil || len(left) > 0 {
		return &vault.OffboardError{Tenant: tenant, Remaining: left, Err: err}
	}
	key := h.transitPath("keys", tenant)
	s, err := h.client.Logical().ReadWithContext(ctx, key)
	if err != nil {
		return h.vaultErr(ctx, "reading the tenant's transit key", err)
	}
	if s != nil {
		if _, err := h.client.Logical().WriteWithContext(ctx, key+"/config", map[string]any{"deletion_allowed": true}); err != nil {
			return h.vaultErr(ctx, "allowing deletion of the tenant's transit key", err)
		}
		if _, err := h.client.Logical().DeleteWithContext(ctx, key); err != nil {
			return h.vaultErr(ctx, "deleting the tenant's transit key", err)
		}
	}
	h.forgetKey(tenant)
	if after, err := h.client.Logical().ReadWithContext(ctx, key); err != nil {
		return h.vaultErr(ctx, "checking the tenant's transit key is gone", err)
	} else if after != nil {
		return &vault.VaultError{Err: fmt.Errorf("off-boarding tenant %s: the transit key still exists after deletion", tenant)}
	}
	h.log.Info("vault_tenant_offboarded", "tenantId", tenant, "records_deleted", len(paths), "key_deleted", s != nil)
	return nil
}

// listTenant lists every record under the tenant's KV folder, following
// sub-folders, as paths relative to it, sorted.
func (h *Store) listTenant(ctx context.Context, tenant string) ([]string, error) {
	return h.listTree(ctx, h.kv.tenantDir(tenant))
}

// listTree lists every record under the KV metadata folder dir (ending in
// '/'), following sub-folders, as paths relative to it, sorted.
func (h *Store) listTree(ctx context.Context, dir string) ([]string, error) {
	var out []string
	var walk func(prefix string, depth int) error
	walk = func(prefix string, depth int) error {
		keys, err := h.list(ctx, dir+prefix)
		if err != nil {
			return err
		}
		for _, k := range keys {
			if strings.HasSuffix(k, "/") {
				if depth >= offboardDepth {
					out = append(out, prefix+k) // reported as left behind
					continue
				}
				if err := walk(prefix+k, depth+1); err != nil {
					return err
				}
				continue
			}
			out = append(out, prefix+k)
		}
		return nil
	}
	if err := walk("", 0); err != nil {
		return nil, err
	}
	slices.Sort(out)
	return out, nil
}

// uncacheTenant drops every cached credential of the tenant.
func (h *Store) uncacheTenant(tenant string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ref := range h.cache {
		if ref.tenant == tenant {
			delete(h.cache, ref)
		}
	}
}
