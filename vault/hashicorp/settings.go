package hashicorp

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/connectors-gateway/connectors/tenants"
	"github.com/connectors-gateway/connectors/vault"
)

// settingsDir is the KV v2 folder of tenant settings; its leading '_'
// keeps it out of the tenant-ID grammar.
const settingsDir = "_settings"

// GetTenantSettings returns tenant's settings record and its KV version,
// from {kv}/data/_settings/{tenant}; nil and 0 when there is none.
func (h *Store) GetTenantSettings(ctx context.Context, tenant string) ([]byte, int64, error) {
	if err := tenants.ValidateID(tenant); err != nil {
		return nil, 0, err
	}
	rec, version, err := h.readBlob(ctx, "reading tenant settings", h.kv.data(settingsDir, tenant), "settings")
	if errors.Is(err, errMalformedBlob) {
		return nil, 0, fmt.Errorf("vault: tenant settings of %s: malformed record", tenant)
	}
	return rec, version, err
}

// PutTenantSettings writes tenant's settings with check-and-set on
// version and returns the new version, or vault.ErrSettingsChanged.
func (h *Store) PutTenantSettings(ctx context.Context, tenant string, rec []byte, version int64) (int64, error) {
	if err := tenants.ValidateID(tenant); err != nil {
		return 0, err
	}
	data := map[string]any{"settings": base64.StdEncoding.EncodeToString(rec)}
	// The same settings found at version+1 after a lost answer are as good
	// as ours: whoever wrote them, the tenant has what was asked for.
	next, err := h.casWrite(ctx, "writing tenant settings", h.kv.data(settingsDir, tenant), version, data, sameFields(data, "settings"))
	if err != nil {
		if isCASMismatch(err) {
			return 0, vault.ErrSettingsChanged
		}
		return 0, err
	}
	return next, nil
}

// Ping checks that Vault answers and the gateway's token may read the KV
// mount: one read of a small record.
func (h *Store) Ping(ctx context.Context) error {
	_, _, err := h.GetTenantSettings(ctx, "readyz")
	return err
}
