package hashicorp_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/connectors-gateway/connectors/vault"
)

// adminToken returns a token with the gateway-service and gateway-admin
// policies, plus any extra policies.
func adminToken(t *testing.T, v *devVault, extra ...string) string {
	t.Helper()
	rules, err := os.ReadFile(filepath.Join("policies", "gateway-admin-policy.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	if err := v.client.Sys().PutPolicy("gateway-admin", string(rules)); err != nil {
		t.Fatal(err)
	}
	return v.token(t, append([]string{"gateway-service", "gateway-admin"}, extra...)...)
}

// TestOffboardTenantHashiCorp off-boards a tenant with a token holding only
// the shipped policies, and checks with plain Vault API calls that its
// records and key are gone, another tenant is untouched and a ciphertext
// copied beforehand no longer decrypts, not even with the root token.
func TestOffboardTenantHashiCorp(t *testing.T) {
	v := startVault(t)
	s := v.open(t, adminToken(t, v))
	ctx := t.Context()
	for _, r := range []struct{ tenant, integration string }{
		{"tenant-001", "notion"}, {"tenant-001", "github"}, {"tenant-002", "notion"},
	} {
		cred := vault.Credential{AccessToken: "at_" + r.tenant + r.integration, RefreshToken: "rt_" + r.tenant}
		if _, err := s.Put(ctx, r.tenant, r.integration, cred, 0); err != nil {
			t.Fatal(err)
		}
	}
	// Written by hand, in a folder the store itself never uses.
	v.kvPut(t, "tenant-001/old/notion", map[string]any{"access_token": "plain"})
	copied, _ := v.kvGet(t, "tenant-001/notion")["access_token"].(string)
	if copied == "" {
		t.Fatal("no ciphertext to copy")
	}
	if _, _, err := s.Get(ctx, "tenant-001", "notion"); err != nil { // warm the cache
		t.Fatal(err)
	}

	if err := s.OffboardTenant(ctx, "tenant-001"); err != nil {
		t.Fatalf("OffboardTenant: %v", err)
	}

	if l, err := v.client.Logical().List("secret/metadata/tenant-001/"); err != nil || l != nil {
		t.Errorf("LIST secret/metadata/tenant-001/ after off-boarding = %v, %v; want nothing", l, err)
	}
	for _, p := range []string{"secret/metadata/tenant-001/notion", "secret/metadata/tenant-001/github",
		"secret/metadata/tenant-001/old/notion", "secret/data/tenant-001/notion", "transit/keys/tenant-001"} {
		if s, err := v.client.Logical().Read(p); err != nil || s != nil {
			t.Errorf("GET %s after off-boarding = %v, %v; want nothing", p, s, err)
		}
	}
	if _, _, err := s.Get(ctx, "tenant-001", "notion"); !vault.IsNotFound(err) {
		t.Errorf("Get(tenant-001/notion) after off-boarding: err = %v, want not found (no stale cache)", err)
	}
	got, _, err := s.Get(ctx, "tenant-002", "notion")
	if err != nil || got.AccessToken != "at_tenant-002notion" {
		t.Errorf("tenant-002 after off-boarding tenant-001: %q, %v", got.AccessToken, err)
	}
	if k, err := v.client.Logical().Read("transit/keys/tenant-002"); err != nil || k == nil {
		t.Errorf("tenant-002's key after off-boarding tenant-001: %v, %v", k, err)
	}

	decrypt := func() error {
		_, err := v.client.Logical().Write("transit/decrypt/tenant-001", map[string]any{
			"ciphertext":      copied,
			"associated_data": "dGVuYW50LTAwMS9ub3Rpb24vYWNjZXNzX3Rva2Vu", // tenant-001/notion/access_token
		})
		return err
	}
	if err := decrypt(); err == nil {
		t.Error("a ciphertext copied before off-boarding still decrypts with the root token")
	}
	// A tenant with the same ID on-boarded again gets a new key, which does
	// not open the old ciphertext either.
	if _, err := s.Put(ctx, "tenant-001", "notion", vault.Credential{AccessToken: "new"}, 0); err != nil {
		t.Fatalf("on-boarding tenant-001 again: %v", err)
	}
	if err := decrypt(); err == nil {
		t.Error("a ciphertext copied before off-boarding decrypts under the tenant's new key")
	}
	if got, _, err := s.Get(ctx, "tenant-001", "notion"); err != nil || got.AccessToken != "new" {
		t.Errorf("Get after on-boarding again = %q, %v", got.AccessToken, err)
	}

	// Off-boarding again (and a tenant never seen) is not an error.
	for _, tenant := range []string{"tenant-001", "tenant-003"} {
		if err := s.OffboardTenant(ctx, tenant); err != nil {
			t.Errorf("OffboardTenant(%s): %v", tenant, err)
		}
	}
	if err := s.OffboardTenant(ctx, "../tenant-002"); err == nil {
		t.Error("OffboardTenant accepted a hostile tenant ID")
	}
}

// TestOffboardTenantLeftBehind shows OffboardTenant keeps the key while a
// record it could not delete remains.
func TestOffboardTenantLeftBehind(t *testing.T) {
	v := startVault(t)
	if err := v.client.Sys().PutPolicy("deny-locked", `path "secret/metadata/tenant-001/locked" { capabilities = ["deny"] }`); err != nil {
		t.Fatal(err)
	}
	s := v.open(t, adminToken(t, v, "deny-locked"))
	ctx := t.Context()
	for _, integration := range []string{"locked", "notion"} {
		if _, err := s.Put(ctx, "tenant-001", integration, vault.Credential{AccessToken: "at"}, 0); err != nil {
			t.Fatal(err)
		}
	}
	err := s.OffboardTenant(ctx, "tenant-001")
	var oe *vault.OffboardError
	if !errors.As(err, &oe) {
		t.Fatalf("OffboardTenant with an undeletable record: err = %v (%T), want *vault.OffboardError", err, err)
	}
	if diff := cmp.Diff([]string{"locked"}, oe.Remaining); diff != "" {
		t.Errorf("Remaining (-want +got):\n%s", diff)
	}
	if k, err := v.client.Logical().Read("transit/keys/tenant-001"); err != nil || k == nil {
		t.Fatalf("the tenant's key was deleted although a record remains: %v, %v", k, err)
	}
	if c, _, err := s.Get(ctx, "tenant-001", "locked"); err != nil || c.AccessToken != "at" {
		t.Errorf("the record left behind no longer reads: %q, %v", c.AccessToken, err)
	}
}

// TestOffboardTenantGatewayPolicy shows the serving gateway's own policy
// cannot destroy a key.
func TestOffboardTenantGatewayPolicy(t *testing.T) {
	v := startVault(t)
	s := v.open(t, v.token(t, "gateway-service"))
	if _, err := s.Put(t.Context(), "tenant-001", "notion", vault.Credential{AccessToken: "at"}, 0); err != nil {
		t.Fatal(err)
	}
	wantVaultError(t, s.OffboardTenant(t.Context(), "tenant-001"), "permission denied", "")
	if k, err := v.client.Logical().Read("transit/keys/tenant-001"); err != nil || k == nil {
		t.Errorf("gateway-service token deleted the key: %v, %v", k, err)
	}
}
