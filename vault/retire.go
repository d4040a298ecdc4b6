package vault

import (
	"context"
	"fmt"
	"strings"
)

// RetireOldKeyVersions raises the tenant's Transit key's
// min_decryption_version to its latest version, so ciphertext sealed under
// an older version (a copy taken before a rotation, a backup) no longer
// decrypts. It first checks that every record of the tenant is sealed under
// the latest version — run it after RotateTenantKey — and refuses
// otherwise, since those records would become unreadable.
func (h *HashiCorp) RetireOldKeyVersions(ctx context.Context, tenant string) error {
	if err := validateTenant(tenant); err != nil {
		return err
	}
	s, err := h.client.Logical().ReadWithContext(ctx, h.transitPath("keys", tenant))
	if err != nil {
		return h.vaultErr(ctx, "reading the tenant's transit key", err)
	}
	if s == nil {
		return fmt.Errorf("vault: tenant %s has no transit key", tenant)
	}
	latest, ok := jsonInt(s, "latest_version")
	if !ok || latest < 1 {
		return fmt.Errorf("vault: tenant %s: the transit key has no latest_version", tenant)
	}
	prefix := fmt.Sprintf("vault:v%d:", latest)
	integrations, err := h.Integrations(ctx, tenant)
	if err != nil {
		return err
	}
	for _, integration := range integrations {
		r, err := h.read(ctx, tenant, integration, 0)
		if err != nil {
			return err
		}
		for _, field := range []string{fieldAccessToken, fieldRefreshToken} {
			if v, _ := r.data[field].(string); v != "" && !strings.HasPrefix(v, prefix) {
				return fmt.Errorf("vault: tenant %s: %s/%s is not sealed under key version %d: rotate first", tenant, integration, field, latest)
			}
		}
	}
	if _, err := h.client.Logical().WriteWithContext(ctx, h.transitPath("keys", tenant)+"/config",
		map[string]any{"min_decryption_version": latest}); err != nil {
		return h.vaultErr(ctx, "raising the key's min_decryption_version", err)
	}
	h.log.Info("vault_key_versions_retired", "tenantId", tenant, "min_decryption_version", latest)
	return nil
}

// RetireOldKeyVersions is a no-op for the embedded store: its rotation
// already deletes the old data-key versions.
func (e *Embedded) RetireOldKeyVersions(ctx context.Context, tenant string) error {
	return validateTenant(tenant)
}
