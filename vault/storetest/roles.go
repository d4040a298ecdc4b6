package storetest

import (
	"context"
	"errors"
	"io/fs"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/connectors-gateway/connectors/tenants"
	"github.com/connectors-gateway/connectors/vault"
)

// The roles of a [vault.Backend] beside its credentials: claims and tenant
// settings (run by Run) and API-key records (RunAPIKeys).

func mustClaimer(t *testing.T, s vault.Store) vault.Claims {
	t.Helper()
	c, ok := s.(vault.Claims)
	if !ok {
		t.Fatalf("%T has no Claim method", s)
	}
	return c
}

func testClaim(t *testing.T, s vault.Store) {
	c := mustClaimer(t, s)
	ctx := context.Background()
	live := time.Now().Add(time.Hour)
	if err := c.Claim(ctx, "state/abc", live); err != nil {
		t.Fatalf("first Claim: %v", err)
	}
	if err := c.Claim(ctx, "state/abc", live); !errors.Is(err, vault.ErrClaimed) {
		t.Fatalf("second Claim of a live key: got %v, want ErrClaimed", err)
	}
	// Keys are opaque: anything, including path tricks, is just a key.
	for _, key := range []string{"state/abd", "../../secret/data/tenant-a/notion", "", strings.Repeat("k", 4096)} {
		if err := c.Claim(ctx, key, live); err != nil {
			t.Errorf("Claim(%.40q): %v", key, err)
		}
	}
	// An expired claim may be taken again (its holder is gone).
	if err := c.Claim(ctx, "lease/1", time.Now().Add(-time.Second)); err != nil {
		t.Fatalf("Claim: %v", err)
	}
	if err := c.Claim(ctx, "lease/1", live); err != nil {
		t.Fatalf("Claim over an expired claim: %v", err)
	}
	if err := c.Claim(ctx, "lease/1", live); !errors.Is(err, vault.ErrClaimed) {
		t.Fatalf("Claim after the takeover: got %v, want ErrClaimed", err)
	}
	// A released claim may be taken at once; releasing twice is fine.
	if err := c.ReleaseClaim(ctx, "lease/1"); err != nil {
		t.Fatalf("ReleaseClaim: %v", err)
	}
	if err := c.ReleaseClaim(ctx, "lease/1"); err != nil {
		t.Fatalf("ReleaseClaim of a free key: %v", err)
	}
	if err := c.Claim(ctx, "lease/1", live); err != nil {
		t.Fatalf("Claim after release: %v", err)
	}
	// Claims are not credentials: no tenant appears.
	if got, err := s.Tenants(ctx); err != nil || len(got) != 0 {
		t.Errorf("Tenants after claims = %v, %v; want none", got, err)
	}
}

func testConcurrentClaim(t *testing.T, s vault.Store) {
	c := mustClaimer(t, s)
	until := time.Now().Add(time.Hour)
	_, errs := race(8, func(int) (int64, error) {
		return 0, c.Claim(context.Background(), "refresh/tenant-a/notion/7", until)
	})
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, vault.ErrClaimed):
			t.Errorf("Claim: %v", err)
		}
	}
	if won != 1 {
		t.Errorf("%d of 8 racing claims won, want exactly 1", won)
	}
}

func testTenantSettings(t *testing.T, s vault.Store) {
	st, ok := s.(vault.Settings)
	if !ok {
		t.Fatalf("%T keeps no tenant settings", s)
	}
	ctx := context.Background()
	rec, v, err := st.GetTenantSettings(ctx, "tenant-a")
	if err != nil || rec != nil || v != 0 {
		t.Fatalf("settings of a new tenant = %q, %d, %v; want none", rec, v, err)
	}
	v1, err := st.PutTenantSettings(ctx, "tenant-a", []byte(`{"disabled":["slack"]}`), 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.PutTenantSettings(ctx, "tenant-a", []byte(`{}`), 0); !errors.Is(err, vault.ErrSettingsChanged) {
		t.Errorf("create over existing settings: %v, want ErrSettingsChanged", err)
	}
	v2, err := st.PutTenantSettings(ctx, "tenant-a", []byte(`{"disabled":[]}`), v1)
	if err != nil || v2 <= v1 {
		t.Fatalf("update at the current version: %d, %v", v2, err)
	}
	if _, err := st.PutTenantSettings(ctx, "tenant-a", []byte(`{}`), v1); !errors.Is(err, vault.ErrSettingsChanged) {
		t.Errorf("update at a stale version: %v, want ErrSettingsChanged", err)
	}
	rec, v, err = st.GetTenantSettings(ctx, "tenant-a")
	if err != nil || string(rec) != `{"disabled":[]}` || v != v2 {
		t.Errorf("settings = %q, %d, %v", rec, v, err)
	}
	if rec, _, _ := st.GetTenantSettings(ctx, "tenant-b"); rec != nil {
		t.Errorf("tenant-b sees tenant-a's settings: %q", rec)
	}
	for _, id := range []string{"../tenant-a", "tenant-a/x", ""} {
		if _, _, err := st.GetTenantSettings(ctx, id); !errors.Is(err, tenants.ErrInvalidID) {
			t.Errorf("GetTenantSettings(%q): %v, want ErrInvalidID", id, err)
		}
		if _, err := st.PutTenantSettings(ctx, id, []byte(`{}`), 0); !errors.Is(err, tenants.ErrInvalidID) {
			t.Errorf("PutTenantSettings(%q): %v, want ErrInvalidID", id, err)
		}
	}
	if got, err := s.Tenants(ctx); err != nil || len(got) != 0 {
		t.Errorf("Tenants after settings only = %v, %v; want none", got, err)
	}
}

// RunAPIKeys runs the contract of API-key records on s, a new, empty
// store: IDs are checked, taken IDs refused, missing ones reported as
// fs.ErrNotExist, and no API key is ever listed as a tenant.
func RunAPIKeys(t *testing.T, s interface {
	vault.Store
	tenants.KeyStore
}) {
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
