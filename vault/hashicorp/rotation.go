package hashicorp

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/connectors-gateway/connectors/vault"
)

// rewrapAttempts bounds the retries of one record's rewrap when a
// concurrent writer wins its check-and-set.
const rewrapAttempts = 5

// RotateTenantKey rotates the tenant's Transit key and rewraps every one of
// the tenant's credentials under the new key version, with Transit's rewrap
// (the plaintext stays in Vault). Each record is rewritten with a
// check-and-set, so a concurrent update is never overwritten: the record is
// read again and rewrapped, and a record written meanwhile is already under
// the new version. Reads go on throughout: old key versions still decrypt
// until an operator raises the key's min_decryption_version.
//
// Keys this store creates are derived, and their ciphertexts are bound by
// the derivation context, which Transit's rewrap takes: the plaintext never
// leaves Vault. A key created by hand without derivation binds them with
// associated data instead, which a Vault's rewrap may ignore (Vault
// 1.19.5's does: it decrypts without it, so every item fails
// authentication); for such a key the store then decrypts and encrypts each
// record again in two batch calls, as a Get and a Put would, logs
// vault_rewrap_fallback, and remembers not to try rewrap again.
func (h *Store) RotateTenantKey(ctx context.Context, tenant string) (err error) {
	defer vault.Observe(h.obs, ctx, vault.OpRotate, tenant, "", time.Now(), &err)
	if err := vault.ValidateTenant(tenant); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	mode, err := h.ensureKey(ctx, tenant)
	if err != nil {
		return err
	}
	if _, err := h.client.Logical().WriteWithContext(ctx, h.transitPath("keys", tenant)+"/rotate", nil); err != nil {
		return h.vaultErr(ctx, "rotating the tenant's transit key", err)
	}
	integrations, err := h.Integrations(ctx, tenant)
	if err != nil {
		return err
	}
	rewrapped := 0
	for _, integration := range integrations {
		done, err := h.rewrapRecord(ctx, mode, tenant, integration)
		if err != nil {
			return fmt.Errorf("vault: rotating the key of tenant %s: rewrapping %s: %w", tenant, integration, err)
		}
		if done {
			rewrapped++
		}
	}
	h.log.Info("vault_tenant_key_rotated", "tenantId", tenant, "records_rewrapped", rewrapped)
	return nil
}

// rewrapRecord rewraps one record's ciphertexts; a plaintext secret written
// by hand is sealed. It reports whether it rewrote the record.
func (h *Store) rewrapRecord(ctx context.Context, mode keyMode, tenant, integration string) (bool, error) {
	for range rewrapAttempts {
		rec, err := h.read(ctx, tenant, integration, 0)
		if err != nil {
			return false, err
		}
		if !rec.exists() {
			return false, nil // deleted meanwhile
		}
		data := make(map[string]any, len(rec.data))
		var items []sealItem
		for k, v := range rec.data {
			data[k] = v
			if s, ok := v.(string); ok && s != "" && (k == fieldAccessToken || k == fieldRefreshToken) {
				items = append(items, sealItem{field: k, value: s})
			}
		}
		if len(items) == 0 {
			return false, nil
		}
		sealed, err := h.rewrap(ctx, mode, tenant, integration, items)
		if err != nil {
			return false, err
		}
		for f, ct := range sealed {
			data[f] = ct
		}
		_, err = h.casWrite(ctx, "writing the rewrapped record", h.kv.data(tenant, integration), rec.version, data,
			sameFields(data, fieldAccessToken, fieldRefreshToken))
		if err == nil {
			h.uncache(recordRef{tenant, integration})
			return true, nil
		}
		if ctxErr := ctx.Err(); ctxErr != nil {
			return false, fmt.Errorf("vault: writing the rewrapped record: %w", ctxErr)
		}
		if !isCASMismatch(err) {
			h.uncache(recordRef{tenant, integration})
			return false, err
		}
	}
	return false, &vault.ConflictError{Tenant: tenant, Integration: integration, Expected: vault.AnyVersion}
}

// rewrap returns field -> ciphertext under the key's latest version for
// items (ciphertext or hand-written plaintext).
func (h *Store) rewrap(ctx context.Context, mode keyMode, tenant, integration string, items []sealItem) (map[string]string, error) {
	var wrapped []sealItem
	var plain vault.Credential // hand-written plaintext, and what the fallback opens
	for _, it := range items {
		if isCiphertext(it.value) {
			wrapped = append(wrapped, it)
		} else {
			setSecret(&plain, it.field, it.value)
		}
	}
	out := make(map[string]string, len(items))
	if len(wrapped) > 0 && mode == modeDerived {
		// Derived key: rewrap with the context, inside Vault; never fall
		// back to decrypting here.
		if err := h.rewrapDerived(ctx, tenant, integration, wrapped, out); err != nil {
			return nil, err
		}
		wrapped = nil
	}
	if len(wrapped) > 0 && !h.rewrapIgnoresAD.Load() {
		ok, err := h.rewrapBatch(ctx, tenant, integration, wrapped, out)
		if err != nil {
			return nil, err
		}
		if ok {
			wrapped = nil
		} else {
			h.rewrapIgnoresAD.Store(true)
			h.log.Warn("vault_rewrap_fallback", "tenantId", tenant, "integration", integration,
				"reason", "this Vault's transit rewrap ignores associated_data: decrypting and encrypting again instead")
		}
	}
	if len(wrapped) > 0 {
		var c vault.Credential
		for _, it := range wrapped {
			setSecret(&c, it.field, it.value)
		}
		if err := h.decrypt(ctx, tenant, integration, &c); err != nil {
			return nil, err
		}
		for _, it := range wrapped {
			setSecret(&plain, it.field, secret(c, it.field))
		}
	}
	if plain.AccessToken != "" || plain.RefreshToken != "" {
		sealed, err := h.encrypt(ctx, tenant, integration, plain)
		if err != nil {
			return nil, err
		}
		for _, f := range secretFields {
			if sealed[f] != "" {
				out[f] = sealed[f]
			}
		}
	}
	return out, nil
}

// rewrapBatch rewraps items with Transit's rewrap into out. It reports false
// when Vault could not rewrap them with their associated data.
func (h *Store) rewrapBatch(ctx context.Context, tenant, integration string, items []sealItem, out map[string]string) (bool, error) {
	input := make([]map[string]any, len(items))
	for i, it := range items {
		input[i] = bind(map[string]any{"ciphertext": it.value}, modeAAD, tenant, integration, it.field)
	}
	results, err := h.batch(ctx, "rewrap", tenant, input)
	var ee *vault.VaultEncryptionError
	if errors.As(err, &ee) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	for i, it := range items {
		if results[i].Error != "" || !isCiphertext(results[i].Ciphertext) {
			return false, nil
		}
		out[it.field] = results[i].Ciphertext
	}
	return true, nil
}

// rewrapDerived rewraps items under a derived key with Transit's rewrap,
// each with its derivation context, into out. An item Vault cannot rewrap
// (a ciphertext copied from elsewhere) is a *vault.VaultEncryptionError.
func (h *Store) rewrapDerived(ctx context.Context, tenant, integration string, items []sealItem, out map[string]string) error {
	input := make([]map[string]any, len(items))
	for i, it := range items {
		input[i] = bind(map[string]any{"ciphertext": it.value}, modeDerived, tenant, integration, it.field)
	}
	results, err := h.batch(ctx, "rewrap", tenant, input)
	if err != nil {
		return err
	}
	for i, it := range items {
		r := results[i]
		if r.Error != "" || !isCiphertext(r.Ciphertext) {
			return &vault.VaultEncryptionError{Err: fmt.Errorf("rewrapping %s/%s %s: %s", tenant, integration, it.field, r.Error)}
		}
		out[it.field] = r.Ciphertext
	}
	return nil
}

func setSecret(c *vault.Credential, field, value string) {
	if field == fieldAccessToken {
		c.AccessToken = value
	} else {
		c.RefreshToken = value
	}
}

func secret(c vault.Credential, field string) string {
	if field == fieldAccessToken {
		return c.AccessToken
	}
	return c.RefreshToken
}
