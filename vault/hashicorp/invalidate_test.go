package hashicorp_test

import (
	"testing"
	"time"

	"github.com/connectors-gateway/connectors/vault"
	"github.com/connectors-gateway/connectors/vault/hashicorp"
)

// TestHashiCorpInvalidate: two stores on one Vault, as two replicas, with
// caches of a minute. What one deletes the other serves from its cache
// until told (Invalidate), and then reads Vault: one credential, or every
// credential of the tenant, and no other tenant's.
func TestHashiCorpInvalidate(t *testing.T) {
	v := startVault(t)
	token := v.token(t, "gateway-service")
	minute := func(c *hashicorp.Config) { c.CacheTTL = time.Minute }
	a, b := v.open(t, token, minute), v.open(t, token, minute)
	ctx := t.Context()
	for _, ref := range [][2]string{{"tenant-001", "notion"}, {"tenant-001", "github"}, {"tenant-002", "notion"}} {
		if _, err := a.Put(ctx, ref[0], ref[1], vault.Credential{AccessToken: "tok-" + ref[0] + "-" + ref[1]}, vault.AnyVersion); err != nil {
			t.Fatal(err)
		}
		if _, _, err := b.Get(ctx, ref[0], ref[1]); err != nil { // b caches it
			t.Fatal(err)
		}
		if err := a.Delete(ctx, ref[0], ref[1]); err != nil {
			t.Fatal(err)
		}
	}
	gone := func(tenant, integration string) bool {
		_, _, err := b.Get(ctx, tenant, integration)
		if err != nil && !vault.IsNotFound(err) {
			t.Fatal(err)
		}
		return err != nil
	}
	if gone("tenant-001", "notion") {
		t.Fatal("b read Vault within its cache TTL: nothing here tests Invalidate")
	}
	b.Invalidate("tenant-001", "notion")
	if !gone("tenant-001", "notion") {
		t.Error("after Invalidate(tenant-001, notion), b still serves the deleted credential")
	}
	if gone("tenant-001", "github") {
		t.Error("Invalidate(tenant-001, notion) dropped tenant-001/github too")
	}
	b.Invalidate("tenant-001", "")
	if !gone("tenant-001", "github") {
		t.Error("after Invalidate(tenant-001, \"\"), b still serves tenant-001/github")
	}
	if gone("tenant-002", "notion") {
		t.Error("Invalidate(tenant-001, \"\") dropped tenant-002's credential")
	}
}
