package hashicorp

import (
	"context"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"

	"github.com/connectors-gateway/connectors/vault"
)

// apiKeysDir is the KV v2 folder of API-key records. Its leading '_' is
// outside the tenant-ID grammar, so it can never be a tenant's folder, and
// Tenants leaves it out.
const apiKeysDir = "_apikeys"

// PutAPIKey stores an API-key record under id at {kv}/data/_apikeys/{id},
// failing with vault.ErrAPIKeyExists if id is taken (check-and-set 0). The record
// holds no secret (tenants keeps only a hash of the key).
func (h *Store) PutAPIKey(ctx context.Context, id string, record []byte) error {
	if !vault.ValidAPIKeyID(id) {
		return fmt.Errorf("vault: putting API key %q: %w", id, vault.ErrInvalidAPIKeyID)
	}
	if len(record) == 0 {
		return fmt.Errorf("vault: putting API key %s: empty record", id)
	}
	data := map[string]any{"record": base64.StdEncoding.EncodeToString(record)}
	// The record holds the key's hash: found after a lost answer, it is ours.
	_, err := h.casWrite(ctx, "putting an API key", h.kv.data(apiKeysDir, id), 0, data, sameFields(data, "record"))
	if err != nil {
		if isCASMismatch(err) {
			return fmt.Errorf("vault: putting API key %s: %w", id, vault.ErrAPIKeyExists)
		}
		return err
	}
	return nil
}

// GetAPIKey returns the record stored under id, or vault.ErrAPIKeyNotFound.
func (h *Store) GetAPIKey(ctx context.Context, id string) ([]byte, error) {
	if !vault.ValidAPIKeyID(id) {
		return nil, fmt.Errorf("vault: getting API key %q: %w", id, vault.ErrAPIKeyNotFound)
	}
	s, err := h.client.Logical().ReadWithContext(ctx, h.kv.data(apiKeysDir, id))
	if err != nil {
		return nil, h.vaultErr(ctx, "reading an API key", err)
	}
	if s == nil || s.Data == nil {
		return nil, fmt.Errorf("vault: API key %s: %w", id, vault.ErrAPIKeyNotFound)
	}
	data, _ := s.Data["data"].(map[string]any)
	enc, _ := data["record"].(string)
	record, err := base64.StdEncoding.DecodeString(enc)
	if err != nil || len(record) == 0 {
		return nil, fmt.Errorf("vault: API key %s: malformed record", id)
	}
	return record, nil
}

// DeleteAPIKey removes the record under id (every version), or returns
// vault.ErrAPIKeyNotFound.
func (h *Store) DeleteAPIKey(ctx context.Context, id string) error {
	if _, err := h.GetAPIKey(ctx, id); err != nil {
		return err
	}
	if _, err := h.client.Logical().DeleteWithContext(ctx, h.kv.metadata(apiKeysDir, id)); err != nil {
		return h.vaultErr(ctx, "deleting an API key", err)
	}
	return nil
}

// ListAPIKeys returns the IDs of every stored API key, sorted.
func (h *Store) ListAPIKeys(ctx context.Context) ([]string, error) {
	keys, err := h.list(ctx, h.kv.tenantDir(apiKeysDir))
	if err != nil {
		return nil, err
	}
	keys = slices.DeleteFunc(keys, func(k string) bool { return strings.HasSuffix(k, "/") })
	slices.Sort(keys)
	return keys, nil
}
