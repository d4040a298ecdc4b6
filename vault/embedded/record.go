package embedded

import (
	"crypto/cipher"
	"encoding/json"
	"fmt"
	"time"

	"github.com/connectors-gateway/connectors/vault"
)

// record is a credential as the embedded store keeps it: the secrets sealed
// under the tenant's data key KeyVersion, everything else in clear.
type record struct {
	Version      int64             `json:"version"`
	KeyVersion   uint64            `json:"key_version"`
	AccessToken  []byte            `json:"access_token"`  // sealed
	RefreshToken []byte            `json:"refresh_token"` // sealed, even when empty
	TokenType    string            `json:"token_type,omitempty"`
	ExpiresAt    time.Time         `json:"expires_at,omitzero"`
	Scopes       []string          `json:"scopes,omitempty"`
	CreatedAt    time.Time         `json:"created_at,omitzero"`
	UpdatedAt    time.Time         `json:"updated_at,omitzero"`
	Extra        map[string]string `json:"extra,omitempty"`
	Status       string            `json:"status,omitempty"`
}

// sealRecord returns cred as a record whose secrets are sealed under aead,
// the tenant's data key keyVersion.
func sealRecord(aead cipher.AEAD, keyVersion uint64, tenant, integration string, cred vault.Credential) record {
	return record{
		KeyVersion:   keyVersion,
		AccessToken:  sealSecret(aead, tenant, integration, fieldAccessToken, cred.AccessToken),
		RefreshToken: sealSecret(aead, tenant, integration, fieldRefreshToken, cred.RefreshToken),
		TokenType:    cred.TokenType,
		ExpiresAt:    cred.ExpiresAt,
		Scopes:       cred.Scopes,
		CreatedAt:    cred.CreatedAt,
		UpdatedAt:    cred.UpdatedAt,
		Extra:        cred.Extra,
		Status:       cred.Status,
	}
}

// open returns the credential in rec, decrypting its secrets with aead.
func (rec *record) open(aead cipher.AEAD, tenant, integration string) (vault.Credential, error) {
	access, err := openSecret(aead, tenant, integration, fieldAccessToken, rec.AccessToken)
	if err != nil {
		return vault.Credential{}, err
	}
	refresh, err := openSecret(aead, tenant, integration, fieldRefreshToken, rec.RefreshToken)
	if err != nil {
		return vault.Credential{}, err
	}
	return vault.Credential{
		AccessToken:  access,
		RefreshToken: refresh,
		TokenType:    rec.TokenType,
		ExpiresAt:    rec.ExpiresAt,
		Scopes:       rec.Scopes,
		CreatedAt:    rec.CreatedAt,
		UpdatedAt:    rec.UpdatedAt,
		Extra:        rec.Extra,
		Status:       rec.Status,
	}, nil
}

// decodeRecord parses a stored record. The result shares no memory with raw,
// which bbolt only lends for the length of a transaction.
func decodeRecord(tenant, integration string, raw []byte) (*record, error) {
	var rec record
	if err := json.Unmarshal(raw, &rec); err != nil {
		return nil, fmt.Errorf("decoding credential record %s/%s: %w", tenant, integration, err)
	}
	return &rec, nil
}
