package embedded_test

import (
	"crypto/rand"
	"encoding/json"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/connectors-gateway/connectors/vault"
	"github.com/connectors-gateway/connectors/vault/embedded"
	"github.com/connectors-gateway/connectors/vault/storetest"
)

// Records that no longer decrypt, on both backends (storetest.RunAtRest).

func TestEmbeddedAtRest(t *testing.T) {
	storetest.RunAtRest(t, func(t *testing.T) (vault.Store, storetest.AtRest) {
		at := &embeddedAtRest{path: filepath.Join(t.TempDir(), "creds.db"), opts: &embedded.Options{MasterKey: newMasterKey(t)}}
		return openEmbedded(t, at.path, at.opts), at
	})
}

// embeddedAtRest tampers with the embedded store's file, which it must
// close to do (bbolt locks it) and reopens after.
type embeddedAtRest struct {
	path string
	opts *embedded.Options
}

func (at *embeddedAtRest) reopen(t *testing.T, s vault.Store, fn func(tx *bolt.Tx) error) vault.Store {
	t.Helper()
	mustClose(t, s.(*embedded.Store))
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
		saved = append([]byte(nil), tx.Bucket(embedded.BucketCredentials).Bucket([]byte(tenant)).Get([]byte(integration))...)
		return nil
	})
	// The embedded store's rotation deletes the old data-key versions.
	if err := s.(*embedded.Store).RotateTenantKey(t.Context(), tenant); err != nil {
		t.Fatal(err)
	}
	return at.reopen(t, s, func(tx *bolt.Tx) error {
		return tx.Bucket(embedded.BucketCredentials).Bucket([]byte(tenant)).Put([]byte(integration), saved)
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
