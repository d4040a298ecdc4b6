package hashicorp

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/connectors-gateway/connectors/vault"
)

// Field names of a credential record in HashiCorp Vault's KV v2, as the seed
// document writes them (`vault kv put secret/tenant-001/notion
// access_token=... token_type=bearer bot_id=...`). Every other top-level
// field is a provider extra.
const (
	fieldAccessToken  = "access_token"
	fieldRefreshToken = "refresh_token"
	fieldTokenType    = "token_type"
	fieldExpiresAt    = "expires_at"
	fieldScopes       = "scopes"
	fieldCreatedAt    = "created_at"
	fieldUpdatedAt    = "updated_at"
	fieldStatus       = "status"
)

// reservedFields are the record's own fields; an extra may not use them.
var reservedFields = map[string]bool{
	fieldAccessToken: true, fieldRefreshToken: true, fieldTokenType: true, fieldExpiresAt: true,
	fieldScopes: true, fieldCreatedAt: true, fieldUpdatedAt: true, fieldStatus: true,
}

// ciphertextPrefix starts every Transit ciphertext ("vault:v1:..."). A secret
// field without it was written by hand in plaintext (the seed's "Option B").
const ciphertextPrefix = "vault:v"

// isCiphertext reports whether a secret field holds Transit ciphertext.
func isCiphertext(s string) bool { return strings.HasPrefix(s, ciphertextPrefix) }

// kvPaths names a credential record's KV v2 paths under one mount.
type kvPaths struct{ mount string }

func (p kvPaths) data(tenant, integration string) string {
	return p.mount + "/data/" + tenant + "/" + integration
}

func (p kvPaths) metadata(tenant, integration string) string {
	return p.mount + "/metadata/" + tenant + "/" + integration
}

func (p kvPaths) tenantDir(tenant string) string { return p.mount + "/metadata/" + tenant + "/" }
func (p kvPaths) root() string                   { return p.mount + "/metadata/" }

// kvRecord builds a record's KV v2 data from cred, with the secret fields
// replaced by sealed (ciphertext, or "" for an empty secret). Times are RFC
// 3339 in UTC with as much precision as they have; a zero ExpiresAt (never
// expires) is left out, as the seed's Notion records do.
func kvRecord(cred vault.Credential, sealed map[string]string) (map[string]any, error) {
	rec := make(map[string]any, 7+len(cred.Extra))
	for k, v := range cred.Extra {
		if reservedFields[k] {
			return nil, fmt.Errorf("vault: extra field %q is one of the record's own fields", k)
		}
		rec[k] = v
	}
	rec[fieldAccessToken] = sealed[fieldAccessToken]
	if cred.RefreshToken != "" {
		rec[fieldRefreshToken] = sealed[fieldRefreshToken]
	}
	if cred.TokenType != "" {
		rec[fieldTokenType] = cred.TokenType
	}
	if !cred.ExpiresAt.IsZero() {
		rec[fieldExpiresAt] = formatTime(cred.ExpiresAt)
	}
	if len(cred.Scopes) > 0 {
		rec[fieldScopes] = append([]string(nil), cred.Scopes...)
	}
	rec[fieldCreatedAt] = formatTime(cred.CreatedAt)
	rec[fieldUpdatedAt] = formatTime(cred.UpdatedAt)
	if cred.Status != "" {
		rec[fieldStatus] = cred.Status
	}
	return rec, nil
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// credentialFromKV reads a record's KV v2 data. The secret fields are
// returned as stored (ciphertext or hand-written plaintext) for the caller
// to open. It accepts what an operator may write by hand: scopes as a
// comma- or space-separated string, numbers or booleans as extras.
func credentialFromKV(tenant, integration string, data map[string]any) (vault.Credential, error) {
	var c vault.Credential
	bad := func(field string, v any) error {
		return fmt.Errorf("vault: credential record %s/%s: field %s: unexpected value of type %T", tenant, integration, field, v)
	}
	for k, v := range data {
		switch k {
		case fieldAccessToken, fieldRefreshToken, fieldTokenType, fieldStatus:
			s, ok := v.(string)
			if !ok && v != nil {
				return vault.Credential{}, bad(k, v)
			}
			switch k {
			case fieldAccessToken:
				c.AccessToken = s
			case fieldRefreshToken:
				c.RefreshToken = s
			case fieldStatus:
				c.Status = s
			default:
				c.TokenType = s
			}
		case fieldExpiresAt, fieldCreatedAt, fieldUpdatedAt:
			s, ok := v.(string)
			if !ok && v != nil {
				return vault.Credential{}, bad(k, v)
			}
			if s == "" {
				continue
			}
			t, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				return vault.Credential{}, fmt.Errorf("vault: credential record %s/%s: field %s is not an RFC 3339 time", tenant, integration, k)
			}
			switch k {
			case fieldExpiresAt:
				c.ExpiresAt = t
			case fieldCreatedAt:
				c.CreatedAt = t
			default:
				c.UpdatedAt = t
			}
		case fieldScopes:
			switch s := v.(type) {
			case nil:
			case string:
				c.Scopes = strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' })
			case []any:
				for _, e := range s {
					str, ok := e.(string)
					if !ok {
						return vault.Credential{}, bad(k, e)
					}
					c.Scopes = append(c.Scopes, str)
				}
			default:
				return vault.Credential{}, bad(k, v)
			}
		default:
			if c.Extra == nil {
				c.Extra = make(map[string]string)
			}
			switch s := v.(type) {
			case string:
				c.Extra[k] = s
			case json.Number, bool:
				c.Extra[k] = fmt.Sprint(s)
			default:
				raw, err := json.Marshal(v)
				if err != nil {
					return vault.Credential{}, bad(k, v)
				}
				c.Extra[k] = string(raw)
			}
		}
	}
	return c, nil
}
