package hashicorp_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/connectors-gateway/connectors/internal/testenv"
	"github.com/connectors-gateway/connectors/vault"
	"github.com/connectors-gateway/connectors/vault/hashicorp"
)

// TestVaultOutage: with Vault unreachable, reads and writes fail with a
// clear VaultError that holds no token; when Vault returns, the store
// recovers on its own and nothing was lost.
func TestVaultOutage(t *testing.T) {
	v := startVault(t)
	token := v.token(t, "gateway-service")
	target := strings.TrimPrefix(v.addr, "http://")
	proxy := testenv.NewSwitchProxy(t, target)
	s := v.open(t, token, func(c *hashicorp.Config) { c.Addr = proxy.URL(); c.CacheTTL = -1 })
	cached := v.open(t, token, func(c *hashicorp.Config) { c.Addr = proxy.URL(); c.CacheTTL = time.Minute })
	ctx := t.Context()

	want := vault.Credential{AccessToken: "ntn_outage_secret_1", TokenType: "bearer", Scopes: []string{"read"}}
	if _, err := s.Put(ctx, "tenant-1", "notion", want, 0); err != nil {
		t.Fatal(err)
	}
	if _, _, err := cached.Get(ctx, "tenant-1", "notion"); err != nil {
		t.Fatal(err)
	}

	proxy.Cut(true)
	_, _, err := s.Get(ctx, "tenant-1", "notion")
	var ve *vault.VaultError
	if !errors.As(err, &ve) || !strings.HasPrefix(err.Error(), "Failed to connect to Vault") {
		t.Fatalf("Get with Vault down: error = %v, want a VaultError saying it failed to connect", err)
	}
	for _, secret := range []string{token, v.root, want.AccessToken} {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("the error names a secret: %v", err)
		}
	}
	changed := want
	changed.AccessToken = "ntn_outage_secret_2"
	if _, err := s.Put(ctx, "tenant-1", "notion", changed, vault.AnyVersion); !errors.As(err, &ve) {
		t.Errorf("Put with Vault down: error = %v, want a VaultError", err)
	}
	if _, err := s.Integrations(ctx, "tenant-1"); !errors.As(err, &ve) {
		t.Errorf("Integrations with Vault down: error = %v, want a VaultError", err)
	}
	// A store with a cache keeps serving what it read, for up to its TTL.
	if got, _, err := cached.Get(ctx, "tenant-1", "notion"); err != nil || got.AccessToken != want.AccessToken {
		t.Errorf("cached Get with Vault down = %v, %v; want the cached credential", got.AccessToken, err)
	}

	proxy.Cut(false)
	got, version, err := s.Get(ctx, "tenant-1", "notion")
	if err != nil {
		t.Fatalf("Get after Vault returned: %v", err)
	}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(vault.Credential{}, "CreatedAt", "UpdatedAt")); diff != "" || version != 1 {
		t.Errorf("after the outage (version %d), mismatch (-want +got):\n%s", version, diff)
	}
	if _, err := s.Put(ctx, "tenant-1", "notion", changed, version); err != nil {
		t.Errorf("Put after Vault returned: %v", err)
	}
}
