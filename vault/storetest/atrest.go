package storetest

import (
	"errors"
	"strings"
	"testing"

	"github.com/connectors-gateway/connectors/vault"
)

// AtRest reaches beneath the Store interface to what a backend keeps at
// rest, to spoil one record as a hostile copy, a retired key or plain
// corruption would. Each method changes the record of (tenant,
// integration), which the suite wrote through the Store, and returns the
// store to go on with (a backend that must be closed to be tampered with
// returns a reopened one; the suite closes neither).
type AtRest interface {
	// CopySecret puts the access token ciphertext of fromTenant's record
	// of integration into tenant's.
	CopySecret(t *testing.T, s vault.Store, tenant, integration, fromTenant string) vault.Store
	// RetireKey leaves the record as it is now, sealed under a key
	// version that is then retired: the record is saved, the tenant's key
	// rotated and its old versions retired, and the saved record written
	// back (a restored backup, say).
	RetireKey(t *testing.T, s vault.Store, tenant, integration string) vault.Store
	// CorruptSecret replaces the access token's ciphertext with garbage
	// in the backend's own ciphertext format.
	CorruptSecret(t *testing.T, s vault.Store, tenant, integration string) vault.Store
}

// RunAtRest runs the contract for records that no longer decrypt: Get
// answers *vault.VaultEncryptionError (never "not found", never
// *vault.VaultError, which says the store could not be reached, and never
// a token), the record is still listed, the other tenant's record is
// intact, and a new link (Put at AnyVersion) replaces it. newStore
// returns a new, empty store (closed by the caller's cleanup) that does
// not serve Get from a cache older than the record.
func RunAtRest(t *testing.T, newStore func(t *testing.T) (vault.Store, AtRest)) {
	tests := []struct {
		name  string
		spoil func(t *testing.T, s vault.Store, at AtRest) vault.Store
	}{
		{"ciphertext of another tenant", func(t *testing.T, s vault.Store, at AtRest) vault.Store {
			return at.CopySecret(t, s, "tenant-a", "notion", "tenant-b")
		}},
		{"retired key version", func(t *testing.T, s vault.Store, at AtRest) vault.Store {
			return at.RetireKey(t, s, "tenant-a", "notion")
		}},
		{"garbage ciphertext", func(t *testing.T, s vault.Store, at AtRest) vault.Store {
			return at.CorruptSecret(t, s, "tenant-a", "notion")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, at := newStore(t)
			for _, tenant := range []string{"tenant-a", "tenant-b"} {
				mustPut(t, s, tenant, "notion", tokenCred(tenant), 0)
				mustGet(t, s, tenant, "notion") // cached, if the store caches
			}
			s = tt.spoil(t, s, at)

			got, _, err := s.Get(t.Context(), "tenant-a", "notion")
			if _, ok := errors.AsType[*vault.VaultEncryptionError](err); !ok {
				t.Fatalf("Get of the spoilt record = %+v, %v (%T); want *vault.VaultEncryptionError", got, err, err)
			}
			if _, ok := errors.AsType[*vault.VaultError](err); ok || vault.IsNotFound(err) {
				t.Errorf("Get of the spoilt record: %v is also a VaultError or a not-found", err)
			}
			if !strings.HasPrefix(err.Error(), "Failed to decrypt data") {
				t.Errorf("error = %q, want the seed's %q", err, "Failed to decrypt data")
			}
			for _, secret := range []string{"access-tenant-a", "refresh-tenant-a", "access-tenant-b", "refresh-tenant-b"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q reveals a token", err)
				}
			}
			if names, err := s.Integrations(t.Context(), "tenant-a"); err != nil || len(names) != 1 || names[0] != "notion" {
				t.Errorf("Integrations(tenant-a) = %v, %v; want [notion]: the record is there, unreadable", names, err)
			}
			if got, _ := mustGet(t, s, "tenant-b", "notion"); got.AccessToken != "access-tenant-b" {
				t.Errorf("Get(tenant-b/notion) = %q, want it intact", got.AccessToken)
			}
			// Linking again mends it.
			mustPut(t, s, "tenant-a", "notion", tokenCred("relinked"), vault.AnyVersion)
			if got, _ := mustGet(t, s, "tenant-a", "notion"); got.AccessToken != "access-relinked" {
				t.Errorf("Get after a new link = %q, want access-relinked", got.AccessToken)
			}
		})
	}
}
