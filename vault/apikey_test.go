package vault_test

import (
	"context"
	"errors"
	"io/fs"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/connectors-gateway/connectors/tenants"
	"github.com/connectors-gateway/connectors/vault"
)

// apiKeyStore is what both backends offer for API keys, and Tenants, which
// must never list them.
type apiKeyStore interface {
	PutAPIKey(ctx context.Context, id string, record []byte) error
	GetAPIKey(ctx context.Context, id string) ([]byte, error)
	DeleteAPIKey(ctx context.Context, id string) error
	ListAPIKeys(ctx context.Context) ([]string, error)
	Tenants(ctx context.Context) ([]string, error)
}

func TestEmbeddedAPIKeys(t *testing.T) {
	testAPIKeyStore(t, openEmbedded(t, filepath.Join(t.TempDir(), "creds.db"), &vault.EmbeddedOptions{MasterKey: newMasterKey(t)}))
}

func TestHashiCorpAPIKeys(t *testing.T) {
	v := startVault(t)
	testAPIKeyStore(t, v.open(t, v.token(t, "gateway-service")))
}

func testAPIKeyStore(t *testing.T, s apiKeyStore) {
	ctx := t.Context()

	ids, err := s.ListAPIKeys(ctx)
	if err != nil || len(ids) != 0 {
		t.Fatalf("ListAPIKeys of an empty store = %q, %v; want none", ids, err)
	}
	for _, id := range []string{"ffff000000000000", "0000aaaa00000000", "00000000bbbbbbbb"} {
		if err := s.PutAPIKey(ctx, id, []byte("record-"+id)); err != nil {
			t.Fatalf("PutAPIKey(%s): %v", id, err)
		}
	}
	err = s.PutAPIKey(ctx, "ffff000000000000", []byte("other"))
	if !errors.Is(err, vault.ErrAPIKeyExists) || !errors.Is(err, fs.ErrExist) {
		t.Errorf("PutAPIKey of a taken ID: error = %v, want ErrAPIKeyExists wrapping fs.ErrExist", err)
	}
	for _, bad := range []string{"", "../x", "a/b", "a b", string(make([]byte, 65))} {
		if err := s.PutAPIKey(ctx, bad, []byte("r")); !errors.Is(err, vault.ErrInvalidAPIKeyID) {
			t.Errorf("PutAPIKey(%q) error = %v, want ErrInvalidAPIKeyID", bad, err)
		}
	}

	rec, err := s.GetAPIKey(ctx, "ffff000000000000")
	if err != nil || string(rec) != "record-ffff000000000000" {
		t.Errorf("GetAPIKey = %q, %v; want the first record", rec, err)
	}
	ids, err = s.ListAPIKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"00000000bbbbbbbb", "0000aaaa00000000", "ffff000000000000"}, ids); diff != "" {
		t.Errorf("ListAPIKeys mismatch (-want +got):\n%s", diff)
	}

	if err := s.DeleteAPIKey(ctx, "ffff000000000000"); err != nil {
		t.Fatalf("DeleteAPIKey: %v", err)
	}
	for _, id := range []string{"ffff000000000000", "1234", "../x", ""} {
		if _, err := s.GetAPIKey(ctx, id); !errors.Is(err, vault.ErrAPIKeyNotFound) || !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("GetAPIKey(%q) error = %v, want ErrAPIKeyNotFound wrapping fs.ErrNotExist", id, err)
		}
		if err := s.DeleteAPIKey(ctx, id); !errors.Is(err, vault.ErrAPIKeyNotFound) {
			t.Errorf("DeleteAPIKey(%q) error = %v, want ErrAPIKeyNotFound", id, err)
		}
	}

	// API keys are not credentials: they never show up as tenants.
	if got, err := s.Tenants(ctx); err != nil || len(got) != 0 {
		t.Errorf("Tenants with only API keys stored = %q, %v; want none", got, err)
	}
}

func TestTenantsAPIKeysOnEmbedded(t *testing.T) {
	path := filepath.Join(t.TempDir(), "creds.db")
	opts := &vault.EmbeddedOptions{MasterKey: newMasterKey(t)}
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
