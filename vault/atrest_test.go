package vault_test

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/connectors-gateway/connectors/vault"
	"github.com/connectors-gateway/connectors/vault/storetest"
)

// Records that no longer decrypt, on both backends (storetest.RunAtRest).

func TestEmbeddedAtRest(t *testing.T) {
	storetest.RunAtRest(t, func(t *testing.T) (vault.Store, storetest.AtRest) {
		at := &embeddedAtRest{path: filepath.Join(t.TempDir(), "creds.db"), opts: &vault.EmbeddedOptions{MasterKey: newMasterKey(t)}}
		return openEmbedded(t, at.path, at.opts), at
	})
}

func TestHashiCorpAtRest(t *testing.T) {
	v := startVault(t)
	storetest.RunAtRest(t, func(t *testing.T) (vault.Store, storetest.AtRest) {
		v.reset(t)
		return v.open(t, v.root, func(c *vault.HashiCorpConfig) { c.CacheTTL = -1 }), hashiCorpAtRest{v}
	})
}

// embeddedAtRest tampers with the embedded store's file, which it must
// close to do (bbolt locks it) and reopens after.
type embeddedAtRest struct {
	path string
	opts *vault.EmbeddedOptions
}

func (at *embeddedAtRest) reopen(t *testing.T, s vault.Store, fn func(tx *bolt.Tx) error) vault.Store {
	t.Helper()
	mustClose(t, s.(*vault.Embedded))
	tamper(t, at.path, fn)
	return openEmbedded(t, at.path, at.opts)
}

func (at *embeddedAtRest) CopySecret(t *testing.T, s vault.Store, tenant, integration, fromTenant string) vault.Store {
	return at.reopen(t, s, func(tx *bolt.Tx) error {
		dst := rawRecord(t, tx, tenant, integration)
		dst["access_token"] = rawRecord(t, tx, fromTenant, integration)["access_token"]
		return putRawRecord(t, tx, tenant, integration, dst)
	})
}

func (at *embeddedAtRest) RetireKey(t *testing.T, s vault.Store, tenant, integration string) vault.Store {
	var saved []byte
	s = at.reopen(t, s, func(tx *bolt.Tx) error {
		saved = append([]byte(nil), tx.Bucket(vault.BucketCredentials).Bucket([]byte(tenant)).Get([]byte(integration))...)
		return nil
	})
	// The embedded store's rotation deletes the old data-key versions.
	if err := s.(*vault.Embedded).RotateTenantKey(t.Context(), tenant); err != nil {
		t.Fatal(err)
	}
	return at.reopen(t, s, func(tx *bolt.Tx) error {
		return tx.Bucket(vault.BucketCredentials).Bucket([]byte(tenant)).Put([]byte(integration), saved)
	})
}

func (at *embeddedAtRest) CorruptSecret(t *testing.T, s vault.Store, tenant, integration string) vault.Store {
	return at.reopen(t, s, func(tx *bolt.Tx) error {
		rec := rawRecord(t, tx, tenant, integration)
		var ct []byte
		if err := json.Unmarshal(rec["access_token"], &ct); err != nil {
			return err
		}
		rand.Read(ct)
		rec["access_token"], _ = json.Marshal(ct)
		return putRawRecord(t, tx, tenant, integration, rec)
	})
}

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
	h := s.(*vault.HashiCorp)
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
