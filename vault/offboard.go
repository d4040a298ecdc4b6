package vault

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// OffboardError reports that off-boarding a tenant stopped because
// something of the tenant would have been left behind. The tenant's key is
// then kept, so whatever remains can still be read and deleted by an
// operator before off-boarding again.
type OffboardError struct {
	Tenant    string
	Remaining []string // record paths still present, relative to the tenant
	Err       error    // why they could not be deleted, if known
}

func (e *OffboardError) Error() string {
	msg := fmt.Sprintf("vault: off-boarding tenant %s: %d record(s) left behind (%s); the tenant's key was not deleted",
		e.Tenant, len(e.Remaining), strings.Join(e.Remaining, ", "))
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *OffboardError) Unwrap() error { return e.Err }

// offboardDepth bounds how deep OffboardTenant follows folders written by
// hand under a tenant's folder.
const offboardDepth = 8

// OffboardTenant deletes every record of the tenant (metadata delete: every
// version, including records written by hand under the tenant's folder) and
// then the tenant's Transit key, which makes every copy of the tenant's
// ciphertext (backups, snapshots, logs) undecryptable: crypto-shredding.
//
// It lists the tenant's folder again after deleting, and refuses with an
// *OffboardError to delete the key while any record remains. Deleting the
// key needs more than the gateway-service policy grants (see
// policies/gateway-admin-policy.hcl). A tenant with no records and no key
// is off-boarded already: that is not an error.
//
// A write for the tenant that races with OffboardTenant can create a new
// record and key after it: stop the tenant's traffic first.
func (h *HashiCorp) OffboardTenant(ctx context.Context, tenant string) error {
	if err := validateTenant(tenant); err != nil {
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
		return &OffboardError{Tenant: tenant, Remaining: left, Err: deleteErr}
	}

	if _, err := h.client.Logical().DeleteWithContext(ctx, h.kv.metadata(settingsDir, tenant)); err != nil {
		return h.vaultErr(ctx, "deleting the tenant's settings", err)
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
		return &VaultError{Err: fmt.Errorf("off-boarding tenant %s: the transit key still exists after deletion", tenant)}
	}
	h.log.Info("vault_tenant_offboarded", "tenantId", tenant, "records_deleted", len(paths), "key_deleted", s != nil)
	return nil
}

// listTenant lists every record under the tenant's KV folder, following
// sub-folders, as paths relative to it, sorted.
func (h *HashiCorp) listTenant(ctx context.Context, tenant string) ([]string, error) {
	var out []string
	var walk func(prefix string, depth int) error
	walk = func(prefix string, depth int) error {
		keys, err := h.list(ctx, h.kv.tenantDir(tenant)+prefix)
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
func (h *HashiCorp) uncacheTenant(tenant string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ref := range h.cache {
		if ref.tenant == tenant {
			delete(h.cache, ref)
		}
	}
}

// OffboardTenant deletes every record of the tenant and all of its data-key
// versions in one transaction, so the tenant's ciphertext in any copy of
// the file (a backup) can no longer be opened: crypto-shredding. The
// transaction is all or nothing, so nothing is left behind; it checks so
// before committing and returns an *OffboardError otherwise. A tenant with
// nothing stored is not an error.
func (e *Embedded) OffboardTenant(ctx context.Context, tenant string) error {
	if err := validateTenant(tenant); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	var records int
	err := e.update(func(tx *bolt.Tx) error {
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
		if creds.Bucket(name) != nil || keys.Bucket(name) != nil {
			return &OffboardError{Tenant: tenant, Remaining: []string{"(embedded store bucket)"}}
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
