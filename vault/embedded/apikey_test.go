package embedded_test

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/connectors-gateway/connectors/tenants"
	"github.com/connectors-gateway/connectors/vault/embedded"
	"github.com/connectors-gateway/connectors/vault/storetest"
)

func TestEmbeddedAPIKeys(t *testing.T) {
	storetest.RunAPIKeys(t, openEmbedded(t, filepath.Join(t.TempDir(), "creds.db"), &embedded.Options{MasterKey: newMasterKey(t)}))
}

func TestTenantsAPIKeysOnEmbedded(t *testing.T) {
	path := filepath.Join(t.TempDir(), "creds.db")
	opts := &embedded.Options{MasterKey: newMasterKey(t)}
	s := openEmbedded(t, path, opts)
	ctx := t.Context()

	keys := tenants.NewAPIKeys(s)
	key, id, err := keys.Create(ctx, "tenant-1", true)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	other, _, err := keys.Create(ctx, "tenant-2", false)
	if err != nil {
		t.Fatal(err)
	}
	mustClose(t, s)

	s = openEmbedded(t, path, opts)
	keys = tenants.NewAPIKeys(s)
	got, err := keys.Verify(ctx, key)
	if err != nil {
		t.Fatalf("Verify after reopen: %v", err)
	}
	if diff := cmp.Diff(tenants.Identity{Tenant: "tenant-1", Subject: "apikey:" + id, Admin: true}, got); diff != "" {
		t.Errorf("Verify mismatch (-want +got):\n%s", diff)
	}
	list, err := keys.List(ctx)
	if err != nil || len(list) != 2 {
		t.Errorf("List = %+v, %v; want 2 keys", list, err)
	}

	if err := keys.Revoke(ctx, id); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	if _, err := keys.Verify(ctx, key); err != tenants.ErrInvalidAPIKey {
		t.Errorf("Verify(revoked) error = %v, want ErrInvalidAPIKey", err)
	}
	if err := keys.Revoke(ctx, id); !errors.Is(err, tenants.ErrKeyNotFound) {
		t.Errorf("second Revoke error = %v, want ErrKeyNotFound", err)
	}
	if _, err := keys.Verify(ctx, other); err != nil {
		t.Errorf("Verify(other key) after revoking the first: %v", err)
	}

	// A store failure is not an invalid key (read past the cache of
	// verified keys).
	mustClose(t, s)
	uncached := tenants.NewAPIKeys(s)
	uncached.CacheTTL = -1
	if _, err := uncached.Verify(ctx, other); err == nil || errors.Is(err, tenants.ErrInvalidAPIKey) {
		t.Errorf("Verify on a closed store: error = %v, want a store error", err)
	}
}
