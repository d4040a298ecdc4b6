package hashicorp

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"

	"github.com/hashicorp/vault/api"

	"github.com/connectors-gateway/connectors/vault"
)

// transitKeyType is the type of every tenant's Transit key: AES-256-GCM, an
// AEAD.
const transitKeyType = "aes256-gcm96"

// secretFields are the record fields that hold Transit ciphertext, in the
// order of a batch call's items.
var secretFields = [...]string{fieldAccessToken, fieldRefreshToken}

// keyMode is how a tenant's Transit key binds each ciphertext to the tenant,
// integration and field it was written for, so that the same ciphertext
// pasted into another record or field fails to decrypt.
type keyMode uint8

const (
	// modeUnknown: the key's configuration could not be read (a token
	// without read on transit/keys, or no key yet).
	modeUnknown keyMode = iota
	// modeDerived: a key created with derived=true (every key this store
	// creates). The binding is the key derivation context: each place has
	// its own derived key. Transit's rewrap takes the context, so rotation
	// rewraps inside Vault.
	modeDerived
	// modeAAD: a key created without derivation (by hand, as the seed
	// document does). The binding is AES-GCM associated data.
	modeAAD
)

// binding is the base64 "tenant/integration/field" that binds a ciphertext
// to its place.
func binding(tenant, integration, field string) string {
	return base64.StdEncoding.EncodeToString([]byte(tenant + "/" + integration + "/" + field))
}

// bind sets the binding of one batch item for a key of the given mode:
// "context" for a derived key, "associated_data" for any other.
func bind(item map[string]any, mode keyMode, tenant, integration, field string) map[string]any {
	if mode == modeDerived {
		item["context"] = binding(tenant, integration, field)
	} else {
		item["associated_data"] = binding(tenant, integration, field)
	}
	return item
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

func (h *Store) transitPath(op, tenant string) string {
	return h.transitMount + "/" + op + "/" + tenant
}

// knownKey returns what this store knows of the tenant's key: its mode, and
// whether it is known to exist.
func (h *Store) knownKey(tenant string) (keyMode, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	m, ok := h.keys[tenant]
	return m, ok
}

func (h *Store) rememberKey(tenant string, mode keyMode) {
	h.mu.Lock()
	h.keys[tenant] = mode
	h.mu.Unlock()
}

// keyModeOf reads the mode of an existing key from its configuration.
func keyModeOf(s *api.Secret) keyMode {
	if d, _ := s.Data["derived"].(bool); d {
		return modeDerived
	}
	return modeAAD
}

// ensureKey creates the tenant's Transit key on its first write (derived,
// aes256-gcm96, not exportable), unless this store already knows it exists,
// and returns its mode. Reading first keeps the gateway's policy from
// needing to change an existing key's configuration.
func (h *Store) ensureKey(ctx context.Context, tenant string) (keyMode, error) {
	if m, ok := h.knownKey(tenant); ok {
		return m, nil
	}
	path := h.transitPath("keys", tenant)
	s, err := h.client.Logical().ReadWithContext(ctx, path)
	if err != nil {
		return modeUnknown, h.vaultErr(ctx, "reading the tenant's transit key", err)
	}
	mode := modeDerived
	if s != nil {
		mode = keyModeOf(s)
	} else {
		_, err := h.client.Logical().WriteWithContext(ctx, path, map[string]any{
			"type":       transitKeyType,
			"derived":    true,
			"exportable": false,
		})
		if err != nil {
			// Another gateway may have created it meanwhile.
			s2, err2 := h.client.Logical().ReadWithContext(ctx, path)
			if err2 != nil || s2 == nil {
				return modeUnknown, h.vaultErr(ctx, "creating the tenant's transit key", err)
			}
			mode = keyModeOf(s2)
		} else {
			h.log.Info("vault_transit_key_created", "tenantId", tenant, "type", transitKeyType, "derived", true)
		}
	}
	h.rememberKey(tenant, mode)
	return mode, nil
}

// lookupKey returns the mode of the tenant's key for a read, without
// creating it: modeUnknown when the key does not exist or this token may not
// read its configuration (the per-tenant policy grants only encrypt and
// decrypt).
func (h *Store) lookupKey(ctx context.Context, tenant string) (keyMode, error) {
	if m, ok := h.knownKey(tenant); ok {
		return m, nil
	}
	s, err := h.client.Logical().ReadWithContext(ctx, h.transitPath("keys", tenant))
	if err != nil {
		var re *api.ResponseError
		if errors.As(err, &re) && re.StatusCode == http.StatusForbidden && ctx.Err() == nil {
			return modeUnknown, nil
		}
		return modeUnknown, h.vaultErr(ctx, "reading the tenant's transit key", err)
	}
	if s == nil {
		return modeUnknown, nil
	}
	m := keyModeOf(s)
	h.rememberKey(tenant, m)
	return m, nil
}

// forgetKey drops what this store knows about the tenant's key, after an
// error that may mean it was deleted.
func (h *Store) forgetKey(tenant string) {
	h.mu.Lock()
	delete(h.keys, tenant)
	h.mu.Unlock()
}

// encrypt seals a record's non-empty secrets in one batch call and returns
// field -> ciphertext ("" for an empty secret).
func (h *Store) encrypt(ctx context.Context, tenant, integration string, cred vault.Credential) (map[string]string, error) {
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
	mode, err := h.ensureKey(ctx, tenant)
	if err != nil {
		return nil, err
	}
	input := make([]map[string]any, len(items))
	for i, it := range items {
		input[i] = bind(map[string]any{
			"plaintext": base64.StdEncoding.EncodeToString([]byte(it.value)),
		}, mode, tenant, integration, it.field)
	}
	results, err := h.batch(ctx, "encrypt", tenant, input)
	if err != nil {
		h.forgetKey(tenant)
		return nil, err
	}
	for i, it := range items {
		r := results[i]
		if r.Error != "" || !isCiphertext(r.Ciphertext) {
			return nil, &vault.VaultEncryptionError{Err: fmt.Errorf("encrypting %s/%s %s: %s", tenant, integration, it.field, r.Error)}
		}
		sealed[it.field] = r.Ciphertext
	}
	return sealed, nil
}

// decrypt opens the secrets of cred that are Transit ciphertext in one batch
// call; a secret written by hand in plaintext is kept as it is.
func (h *Store) decrypt(ctx context.Context, tenant, integration string, cred *vault.Credential) error {
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
	mode, err := h.lookupKey(ctx, tenant)
	if err != nil {
		return err
	}
	var results []batchResult
	if mode != modeUnknown {
		results, err = h.decryptBatch(ctx, mode, tenant, integration, items)
		if err != nil {
			var ee *vault.VaultEncryptionError
			if errors.As(err, &ee) {
				h.forgetKey(tenant) // the key may have been deleted or replaced
			}
			return err
		}
	} else {
		// Unknown key: try a derived key's context, then associated data.
		// Either binds the ciphertext to its place, so trying both lets
		// nothing copied elsewhere through.
		for _, m := range []keyMode{modeDerived, modeAAD} {
			results, err = h.decryptBatch(ctx, m, tenant, integration, items)
			var ee *vault.VaultEncryptionError
			if errors.As(err, &ee) || (err == nil && anyFailed(results)) {
				continue
			}
			if err != nil {
				return err
			}
			h.rememberKey(tenant, m)
			break
		}
		if err != nil {
			return err
		}
	}
	for i, it := range items {
		r := results[i]
		if r.Error != "" {
			return &vault.VaultEncryptionError{Err: fmt.Errorf("%s/%s %s: %s", tenant, integration, it.field, r.Error)}
		}
		plain, err := base64.StdEncoding.DecodeString(r.Plaintext)
		if err != nil {
			return &vault.VaultEncryptionError{Err: fmt.Errorf("%s/%s %s: plaintext is not base64", tenant, integration, it.field)}
		}
		*ptrs[it.field] = string(plain)
	}
	return nil
}

func (h *Store) decryptBatch(ctx context.Context, mode keyMode, tenant, integration string, items []sealItem) ([]batchResult, error) {
	input := make([]map[string]any, len(items))
	for i, it := range items {
		input[i] = bind(map[string]any{"ciphertext": it.value}, mode, tenant, integration, it.field)
	}
	return h.batch(ctx, "decrypt", tenant, input)
}

func anyFailed(results []batchResult) bool {
	for _, r := range results {
		if r.Error != "" {
			return true
		}
	}
	return false
}

// batch makes one Transit batch call (encrypt, decrypt, rewrap). Items that
// fail come back with their error; a 400 (Transit's answer when every item
// fails, or the key is missing) is a *vault.VaultEncryptionError, any other failure
// a *vault.VaultError.
func (h *Store) batch(ctx context.Context, op, tenant string, input []map[string]any) ([]batchResult, error) {
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
			return nil, &vault.VaultEncryptionError{Err: fmt.Errorf("transit %s for tenant %s: %s", op, tenant, msg)}
		}
		return nil, h.vaultErr(ctx, "transit "+op, err)
	}
	var out struct {
		Results []batchResult `json:"batch_results"`
	}
	if s == nil || decodeData(s.Data, &out) != nil || len(out.Results) != len(input) {
		return nil, &vault.VaultError{Err: fmt.Errorf("transit %s for tenant %s: unexpected response", op, tenant)}
	}
	return out.Results, nil
}
