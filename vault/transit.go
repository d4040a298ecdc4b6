package vault

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"

	"github.com/hashicorp/vault/api"
)

// transitKeyType is the type of every tenant's Transit key: AES-256-GCM, an
// AEAD, so associated data binds each ciphertext to its place.
const transitKeyType = "aes256-gcm96"

// secretFields are the record fields that hold Transit ciphertext, in the
// order of a batch call's items.
var secretFields = [...]string{fieldAccessToken, fieldRefreshToken}

// associatedData binds a ciphertext to the tenant, integration and field it
// was written for: the same ciphertext pasted into another record or field
// fails to decrypt.
func associatedData(tenant, integration, field string) string {
	return base64.StdEncoding.EncodeToString([]byte(tenant + "/" + integration + "/" + field))
}

// sealItem is one secret of a record in a batch call.
type sealItem struct {
	field string
	value string // plaintext for encrypt, ciphertext for decrypt
}

// batchResult is one item of a Transit batch response.
type batchResult struct {
	Ciphertext string `json:"ciphertext"`
	Plaintext  string `json:"plaintext"`
	Error      string `json:"error"`
}

func (h *HashiCorp) transitPath(op, tenant string) string {
	return h.transitMount + "/" + op + "/" + tenant
}

// ensureKey creates the tenant's Transit key on its first write, unless this
// store already knows it exists. Reading first keeps the gateway's policy to
// "create" and "read" on keys (no "update", which would allow changing a
// key's configuration).
func (h *HashiCorp) ensureKey(ctx context.Context, tenant string) error {
	h.mu.Lock()
	known := h.keys[tenant]
	h.mu.Unlock()
	if known {
		return nil
	}
	path := h.transitPath("keys", tenant)
	s, err := h.client.Logical().ReadWithContext(ctx, path)
	if err != nil {
		return h.vaultErr(ctx, "reading the tenant's transit key", err)
	}
	if s == nil {
		_, err := h.client.Logical().WriteWithContext(ctx, path, map[string]any{
			"type":       transitKeyType,
			"exportable": false,
		})
		if err != nil {
			// Another gateway may have created it meanwhile.
			if s2, err2 := h.client.Logical().ReadWithContext(ctx, path); err2 != nil || s2 == nil {
				return h.vaultErr(ctx, "creating the tenant's transit key", err)
			}
		} else {
			h.log.Info("vault_transit_key_created", "tenant_id", tenant, "type", transitKeyType)
		}
	}
	h.mu.Lock()
	h.keys[tenant] = true
	h.mu.Unlock()
	return nil
}

// forgetKey drops what this store knows about the tenant's key, after an
// error that may mean it was deleted.
func (h *HashiCorp) forgetKey(tenant string) {
	h.mu.Lock()
	delete(h.keys, tenant)
	h.mu.Unlock()
}

// encrypt seals a record's non-empty secrets in one batch call and returns
// field -> ciphertext ("" for an empty secret).
func (h *HashiCorp) encrypt(ctx context.Context, tenant, integration string, cred Credential) (map[string]string, error) {
	plain := map[string]string{fieldAccessToken: cred.AccessToken, fieldRefreshToken: cred.RefreshToken}
	sealed := map[string]string{fieldAccessToken: "", fieldRefreshToken: ""}
	var items []sealItem
	for _, f := range secretFields {
		if plain[f] != "" {
			items = append(items, sealItem{field: f, value: plain[f]})
		}
	}
	if len(items) == 0 {
		return sealed, nil
	}
	if err := h.ensureKey(ctx, tenant); err != nil {
		return nil, err
	}
	input := make([]map[string]any, len(items))
	for i, it := range items {
		input[i] = map[string]any{
			"plaintext":       base64.StdEncoding.EncodeToString([]byte(it.value)),
			"associated_data": associatedData(tenant, integration, it.field),
		}
	}
	results, err := h.batch(ctx, "encrypt", tenant, input)
	if err != nil {
		h.forgetKey(tenant)
		return nil, err
	}
	for i, it := range items {
		r := results[i]
		if r.Error != "" || !isCiphertext(r.Ciphertext) {
			return nil, &VaultEncryptionError{Err: fmt.Errorf("encrypting %s/%s %s: %s", tenant, integration, it.field, r.Error)}
		}
		sealed[it.field] = r.Ciphertext
	}
	return sealed, nil
}

// decrypt opens the secrets of cred that are Transit ciphertext in one batch
// call; a secret written by hand in plaintext is kept as it is.
func (h *HashiCorp) decrypt(ctx context.Context, tenant, integration string, cred *Credential) error {
	ptrs := map[string]*string{fieldAccessToken: &cred.AccessToken, fieldRefreshToken: &cred.RefreshToken}
	var items []sealItem
	for _, f := range secretFields {
		if isCiphertext(*ptrs[f]) {
			items = append(items, sealItem{field: f, value: *ptrs[f]})
		}
	}
	if len(items) == 0 {
		return nil
	}
	input := make([]map[string]any, len(items))
	for i, it := range items {
		input[i] = map[string]any{
			"ciphertext":      it.value,
			"associated_data": associatedData(tenant, integration, it.field),
		}
	}
	results, err := h.batch(ctx, "decrypt", tenant, input)
	if err != nil {
		return err
	}
	for i, it := range items {
		r := results[i]
		if r.Error != "" {
			return &VaultEncryptionError{Err: fmt.Errorf("%s/%s %s: %s", tenant, integration, it.field, r.Error)}
		}
		plain, err := base64.StdEncoding.DecodeString(r.Plaintext)
		if err != nil {
			return &VaultEncryptionError{Err: fmt.Errorf("%s/%s %s: plaintext is not base64", tenant, integration, it.field)}
		}
		*ptrs[it.field] = string(plain)
	}
	return nil
}

// batch makes one Transit batch call (encrypt, decrypt, rewrap). Items that
// fail come back with their error; a 400 (Transit's answer when every item
// fails, or the key is missing) is a *VaultEncryptionError, any other failure
// a *VaultError.
func (h *HashiCorp) batch(ctx context.Context, op, tenant string, input []map[string]any) ([]batchResult, error) {
	s, err := h.client.Logical().WriteWithContext(ctx, h.transitPath(op, tenant), map[string]any{
		"batch_input": input,
		// Partial failures come back as 200 with per-item errors.
		"partial_failure_response_code": http.StatusOK,
	})
	if err != nil {
		var re *api.ResponseError
		if errors.As(err, &re) && re.StatusCode == http.StatusBadRequest && ctx.Err() == nil {
			msg := vaultMessages(re.Errors)
			if msg == "" {
				msg = "every item failed"
			}
			return nil, &VaultEncryptionError{Err: fmt.Errorf("transit %s for tenant %s: %s", op, tenant, msg)}
		}
		return nil, h.vaultErr(ctx, "transit "+op, err)
	}
	var out struct {
		Results []batchResult `json:"batch_results"`
	}
	if s == nil || decodeData(s.Data, &out) != nil || len(out.Results) != len(input) {
		return nil, &VaultError{Err: fmt.Errorf("transit %s for tenant %s: unexpected response", op, tenant)}
	}
	return out.Results, nil
}
