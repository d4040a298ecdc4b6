package server

import (
	"errors"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/connectors-gateway/connectors/tenants"
	"github.com/connectors-gateway/connectors/tools"
	"github.com/connectors-gateway/connectors/vault"
	"github.com/connectors-gateway/connectors/vault/embedded"
)

// TestSettingsFailClosed: with the store gone (a real embedded store,
// closed), settings read before are served however old, and a tenant
// whose settings were never read gets the store's error, never the zero
// Settings that allow everything.
func TestSettingsFailClosed(t *testing.T) {
	st, err := embedded.Open(filepath.Join(t.TempDir(), "s.db"), &embedded.Options{MasterKey: make([]byte, 32)})
	if err != nil {
		t.Fatal(err)
	}
	var off tenants.Settings
	off.Set("notion", false, nil)
	if _, err := st.PutTenantSettings(t.Context(), "tenant-a", off.Marshal(), 0); err != nil {
		t.Fatal(err)
	}
	reg, err := tools.NewRegistry()
	if err != nil {
		t.Fatal(err)
	}
	synctest.Test(t, func(t *testing.T) {
		g := New(Options{Registry: reg, Store: st, Settings: st})
		got, err := g.settings(t.Context(), "tenant-a")
		if err != nil || got.Enabled("notion") {
			t.Fatalf("settings while the store is up = %+v, %v", got, err)
		}
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * settingsTTL) // stale: the store is asked, and fails
		got, err = g.settings(t.Context(), "tenant-a")
		if err != nil {
			t.Fatalf("stale settings during the outage: %v, want them served", err)
		}
		if diff := cmp.Diff(off, got); diff != "" {
			t.Errorf("stale settings (-want +got):\n%s", diff)
		}
		got, err = g.settings(t.Context(), "tenant-b")
		if _, ok := errors.AsType[*vault.VaultError](err); !ok {
			t.Errorf("settings never read, store down = %+v, %v (%T); want a *vault.VaultError", got, err, err)
		}
		if err != nil && !storeFailure(err) {
			t.Errorf("%v is not a store failure: the callers would not fail closed", err)
		}
	})
}
