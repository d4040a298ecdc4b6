package hashicorp

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/connectors-gateway/connectors/vault"
)

// RetireOldKeyVersions raises the tenant's Transit key's
// min_decryption_version to its latest version, so ciphertext sealed under
// an older version (a copy taken before a rotation, a backup) no longer
// decrypts. It first checks that every record of the tenant is sealed under
// the latest version — run it after RotateTenantKey — and refuses
// otherwise, since those records would become unreadable.
func (h *Store) RetireOldKeyVersions(ctx context.Context, tenant string) (err error) {
	defer vault.Observe(h.obs, ctx, vault.OpRotate, tenant, "", time.Now(), &err)
	if err := vault.ValidateTenant(tenant); err != nil {
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
