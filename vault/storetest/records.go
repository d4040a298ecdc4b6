package storetest

import (
	"errors"
	"strings"
	"testing"

	"github.com/connectors-gateway/connectors/tenants"
	"github.com/connectors-gateway/connectors/vault"
)

// The contract of tenant records (vault.TenantRecords), run by Run:
// check-and-set versions, names kept apart by tenant and by name, hostile
// tenants and names refused, records never listed as tenants, and
// off-boarding leaving none behind.

func mustRecords(t *testing.T, s vault.Store) vault.TenantRecords {
	t.Helper()
	r, ok := s.(vault.TenantRecords)
	if !ok {
		t.Fatalf("%T keeps no tenant records", s)
	}
	return r
}

// wantRecord checks tenant's record name is rec at version.
func wantRecord(t *testing.T, r vault.TenantRecords, tenant, name, rec string, version int64) {
	t.Helper()
	got, v, err := r.GetTenantRecord(t.Context(), tenant, name)
	if err != nil {
		t.Fatalf("GetTenantRecord(%s, %s): %v", tenant, name, err)
	}
	if string(got) != rec || v != version || (rec == "" && got != nil) {
		t.Errorf("GetTenantRecord(%s, %s) = %q version %d; want %q version %d", tenant, name, got, v, rec, version)
	}
}

func testTenantRecords(t *testing.T, s vault.Store) {
	r := mustRecords(t, s)
	ctx := t.Context()
	wantRecord(t, r, "tenant-a", "usage", "", 0)
	v1, err := r.PutTenantRecord(ctx, "tenant-a", "usage", []byte(`{"apiCalls":1}`), 0)
	if err != nil || v1 != 1 {
		t.Fatalf("first PutTenantRecord = %d, %v; want version 1", v1, err)
	}
	if _, err := r.PutTenantRecord(ctx, "tenant-a", "usage", []byte(`{}`), 0); !errors.Is(err, vault.ErrRecordChanged) {
		t.Errorf("create over an existing record: %v, want ErrRecordChanged", err)
	}
	v2, err := r.PutTenantRecord(ctx, "tenant-a", "usage", []byte(`{"apiCalls":2}`), v1)
	if err != nil || v2 != v1+1 {
		t.Fatalf("update at the current version = %d, %v; want %d", v2, err, v1+1)
	}
	if _, err := r.PutTenantRecord(ctx, "tenant-a", "usage", []byte(`{}`), v1); !errors.Is(err, vault.ErrRecordChanged) {
		t.Errorf("update at a stale version: %v, want ErrRecordChanged", err)
	}
	wantRecord(t, r, "tenant-a", "usage", `{"apiCalls":2}`, v2)

	// Names are apart from each other, and tenants from each other.
	if _, err := r.PutTenantRecord(ctx, "tenant-a", "health/notion", []byte(`{"status":"refresh_failed"}`), 0); err != nil {
		t.Fatal(err)
	}
	wantRecord(t, r, "tenant-a", "health/notion", `{"status":"refresh_failed"}`, 1)
	wantRecord(t, r, "tenant-a", "health/slack", "", 0)
	wantRecord(t, r, "tenant-b", "usage", "", 0)
	wantRecord(t, r, "tenant-b", "health/notion", "", 0)
	if _, err := r.PutTenantRecord(ctx, "tenant-b", "usage", []byte(`{"apiCalls":9}`), 0); err != nil {
		t.Fatal(err)
	}
	wantRecord(t, r, "tenant-a", "usage", `{"apiCalls":2}`, v2)

	// Records are not credentials: no tenant appears.
	if got, err := s.Tenants(ctx); err != nil || len(got) != 0 {
		t.Errorf("Tenants with only records stored = %q, %v; want none", got, err)
	}
	testHostileRecords(t, r)
	testOffboardRecords(t, s, r)
}

// testHostileRecords: tenant IDs and names outside their grammars, and
// records over the size bound, are refused before storage is touched.
func testHostileRecords(t *testing.T, r vault.TenantRecords) {
	ctx := t.Context()
	for _, id := range []string{"../tenant-a", "tenant-a/x", "", "_records", "Tenant-A"} {
		if _, _, err := r.GetTenantRecord(ctx, id, "usage"); !errors.Is(err, tenants.ErrInvalidID) {
			t.Errorf("GetTenantRecord(tenant %q): %v, want ErrInvalidID", id, err)
		}
		if _, err := r.PutTenantRecord(ctx, id, "usage", []byte(`{}`), 0); !errors.Is(err, tenants.ErrInvalidID) {
			t.Errorf("PutTenantRecord(tenant %q): %v, want ErrInvalidID", id, err)
		}
	}
	for _, name := range []string{"", "/", "health/", "/usage", "health//notion", "health/../usage", "../usage",
		"a/b/c", "Usage", "usage.json", "health/no%2ftion", "health/" + strings.Repeat("x", 33), "health/notion\x00"} {
		if _, _, err := r.GetTenantRecord(ctx, "tenant-a", name); !errors.Is(err, vault.ErrInvalidRecordName) {
			t.Errorf("GetTenantRecord(name %q): %v, want ErrInvalidRecordName", name, err)
		}
		if _, err := r.PutTenantRecord(ctx, "tenant-a", name, []byte(`{}`), 0); !errors.Is(err, vault.ErrInvalidRecordName) {
			t.Errorf("PutTenantRecord(name %q): %v, want ErrInvalidRecordName", name, err)
		}
	}
	big := make([]byte, vault.MaxRecordSize+1)
	if _, err := r.PutTenantRecord(ctx, "tenant-a", "big", big, 0); err == nil {
		t.Errorf("PutTenantRecord of %d bytes: accepted, want refused", len(big))
	}
	if _, err := r.PutTenantRecord(ctx, "tenant-a", "big", big[:vault.MaxRecordSize], 0); err != nil {
		t.Errorf("PutTenantRecord of %d bytes (the bound): %v", vault.MaxRecordSize, err)
	}
}

// testOffboardRecords: off-boarding a tenant deletes its records, and only
// its own. A tenant holding only records has no key, so the gateway's own
// policy may off-board it.
func testOffboardRecords(t *testing.T, s vault.Store, r vault.TenantRecords) {
	keys, ok := s.(vault.TenantKeys)
	if !ok {
		return
	}
	if err := keys.OffboardTenant(t.Context(), "tenant-a"); err != nil {
		t.Fatalf("OffboardTenant: %v", err)
	}
	for _, name := range []string{"usage", "health/notion", "big"} {
		wantRecord(t, r, "tenant-a", name, "", 0)
	}
	wantRecord(t, r, "tenant-b", "usage", `{"apiCalls":9}`, 1)
	// A new record after off-boarding starts over at version 1.
	if v, err := r.PutTenantRecord(t.Context(), "tenant-a", "usage", []byte(`{}`), 0); err != nil || v != 1 {
		t.Errorf("PutTenantRecord after off-boarding = %d, %v; want version 1", v, err)
	}
}

func testConcurrentRecords(t *testing.T, s vault.Store) {
	r := mustRecords(t, s)
	if _, err := r.PutTenantRecord(t.Context(), "tenant-a", "usage", []byte(`{"n":0}`), 0); err != nil {
		t.Fatal(err)
	}
	_, errs := race(racers, func(i int) (int64, error) {
		return r.PutTenantRecord(t.Context(), "tenant-a", "usage", []byte(`{"n":1}`), 1)
	})
	won := 0
	for i, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, vault.ErrRecordChanged):
			t.Errorf("writer %d: %v, want ErrRecordChanged", i, err)
		}
	}
	if won != 1 {
		t.Errorf("%d writers won a check-and-set on version 1, want exactly 1", won)
	}
	wantRecord(t, r, "tenant-a", "usage", `{"n":1}`, 2)
}
