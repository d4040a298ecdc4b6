package hashicorp_test

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/connectors-gateway/connectors/vault"
)

// TestRetireOldKeyVersions: after a rotation, raising the key's
// min_decryption_version keeps every record readable and makes a copy of
// the old ciphertext unreadable, even to Vault's root token; before the
// rotation it is refused.
func TestRetireOldKeyVersions(t *testing.T) {
	v := startVault(t)
	s := v.open(t, adminToken(t, v))
	ctx := t.Context()
	want := vault.Credential{AccessToken: "ntn_retire_secret", TokenType: "bearer"}
	if _, err := s.Put(ctx, "tenant-1", "notion", want, 0); err != nil {
		t.Fatal(err)
	}
	old, _ := v.kvGet(t, "tenant-1/notion")["access_token"].(string)

	if err := s.RetireOldKeyVersions(ctx, "tenant-1"); err != nil {
		t.Fatalf("retiring with every record at the latest version: %v", err)
	}
	if err := s.RotateTenantKey(ctx, "tenant-1"); err != nil {
		t.Fatal(err)
	}
	if err := s.RetireOldKeyVersions(ctx, "tenant-1"); err != nil {
		t.Fatalf("retiring after rotation: %v", err)
	}
	got, _, err := s.Get(ctx, "tenant-1", "notion")
	if err != nil || got.AccessToken != want.AccessToken {
		t.Fatalf("Get after retiring = %q, %v", got.AccessToken, err)
	}
	context := base64.StdEncoding.EncodeToString([]byte("tenant-1/notion/access_token"))
	_, err = v.client.Logical().WriteWithContext(ctx, "transit/decrypt/tenant-1",
		map[string]any{"ciphertext": old, "context": context})
	if err == nil || !strings.Contains(err.Error(), "too old") {
		t.Errorf("decrypting a pre-rotation copy after retiring: err = %v, want a refusal", err)
	}

	// A record still under an old version blocks retiring.
	v.kvPut(t, "tenant-1/github", map[string]any{"access_token": old, "token_type": "bearer"})
	if err := s.RetireOldKeyVersions(ctx, "tenant-1"); err == nil {
		t.Error("retired key versions while a record was sealed under an old one")
	}
}
