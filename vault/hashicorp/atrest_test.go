package hashicorp_test

import (
	"crypto/rand"
	"encoding/base64"
	"testing"

	"github.com/connectors-gateway/connectors/vault"
	"github.com/connectors-gateway/connectors/vault/hashicorp"
	"github.com/connectors-gateway/connectors/vault/storetest"
)

// Records that no longer decrypt, on both backends (storetest.RunAtRest).

func TestHashiCorpAtRest(t *testing.T) {
	v := startVault(t)
	storetest.RunAtRest(t, func(t *testing.T) (vault.Store, storetest.AtRest) {
		v.reset(t)
		return v.open(t, v.root, func(c *hashicorp.Config) { c.CacheTTL = -1 }), hashiCorpAtRest{v}
	})
}

// embeddedAtRest tampers with the embedded store's file, which it must
// close to do (bbolt locks it) and reopens after.
// hashiCorpAtRest writes Vault's KV records by hand with the root token.
type hashiCorpAtRest struct{ v *devVault }

func (at hashiCorpAtRest) CopySecret(t *testing.T, s vault.Store, tenant, integration, fromTenant string) vault.Store {
	rec := at.v.kvGet(t, tenant+"/"+integration)
	rec["access_token"] = at.v.kvGet(t, fromTenant+"/"+integration)["access_token"]
	at.v.kvPut(t, tenant+"/"+integration, rec)
	return s
}

func (at hashiCorpAtRest) RetireKey(t *testing.T, s vault.Store, tenant, integration string) vault.Store {
	saved := at.v.kvGet(t, tenant+"/"+integration)
	h := s.(*hashicorp.Store)
	if err := h.RotateTenantKey(t.Context(), tenant); err != nil {
		t.Fatal(err)
	}
	if err := h.RetireOldKeyVersions(t.Context(), tenant); err != nil {
		t.Fatal(err)
	}
	at.v.kvPut(t, tenant+"/"+integration, saved)
	return s
}

func (at hashiCorpAtRest) CorruptSecret(t *testing.T, s vault.Store, tenant, integration string) vault.Store {
	rec := at.v.kvGet(t, tenant+"/"+integration)
	garbage := make([]byte, 44)
	rand.Read(garbage)
	rec["access_token"] = "vault:v1:" + base64.StdEncoding.EncodeToString(garbage)
	at.v.kvPut(t, tenant+"/"+integration, rec)
	return s
}
