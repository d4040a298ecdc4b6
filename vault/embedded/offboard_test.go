package embedded_test

import (
	"path/filepath"
	"slices"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/connectors-gateway/connectors/vault"
	"github.com/connectors-gateway/connectors/vault/embedded"
)

// TestOffboardTenantEmbedded off-boards a tenant of the embedded store: its
// records and data keys are gone from the file, another tenant is
// untouched, and the tenant can be on-boarded again.
func TestOffboardTenantEmbedded(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	opts := &embedded.Options{MasterKey: newMasterKey(t)}
	s, err := embedded.Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	for _, tenant := range []string{"tenant-001", "tenant-002"} {
		for _, integration := range []string{"github", "notion"} {
			if _, err := s.Put(ctx, tenant, integration, vault.Credential{AccessToken: "at_" + tenant}, 0); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := s.RotateTenantKey(ctx, "tenant-001"); err != nil {
		t.Fatal(err)
	}
	if err := s.OffboardTenant(ctx, "tenant-001"); err != nil {
		t.Fatalf("OffboardTenant: %v", err)
	}
	if _, _, err := s.Get(ctx, "tenant-001", "notion"); !vault.IsNotFound(err) {
		t.Errorf("Get after off-boarding: %v, want not found", err)
	}
	if ids, err := s.Tenants(ctx); err != nil || !slices.Equal(ids, []string{"tenant-002"}) {
		t.Errorf("Tenants after off-boarding = %v, %v", ids, err)
	}
	if c, _, err := s.Get(ctx, "tenant-002", "notion"); err != nil || c.AccessToken != "at_tenant-002" {
		t.Errorf("tenant-002 after off-boarding tenant-001: %q, %v", c.AccessToken, err)
	}
	if err := s.OffboardTenant(ctx, "tenant-001"); err != nil {
		t.Errorf("off-boarding twice: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	err = db.View(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{embedded.BucketCredentials, embedded.BucketDataKeys} {
			if tx.Bucket(b).Bucket([]byte("tenant-001")) != nil {
				t.Errorf("bucket %s still holds tenant-001", b)
			}
			if tx.Bucket(b).Bucket([]byte("tenant-002")) == nil {
				t.Errorf("bucket %s lost tenant-002", b)
			}
		}
		return nil
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}

	s = openEmbedded(t, path, opts)
	if _, err := s.Put(ctx, "tenant-001", "notion", vault.Credential{AccessToken: "again"}, 0); err != nil {
		t.Fatalf("on-boarding again: %v", err)
	}
	if c, _, err := s.Get(ctx, "tenant-001", "notion"); err != nil || c.AccessToken != "again" {
		t.Errorf("Get after on-boarding again = %q, %v", c.AccessToken, err)
	}
}
