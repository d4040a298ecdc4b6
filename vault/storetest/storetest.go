// Package storetest is the conformance suite of the [vault.Backend]
// contract, run against every backend so that they behave alike.
//
// # Usage
//
//	func TestEmbedded(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) vault.Store {
//			s, err := embedded.Open(filepath.Join(t.TempDir(), "creds.db"), opts)
//			if err != nil {
//				t.Fatal(err)
//			}
//			return s
//		})
//	}
package storetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/connectors-gateway/connectors/tenants"
	"github.com/connectors-gateway/connectors/vault"
)

// Run runs the Store contract as subtests. newStore must return a new, empty
// store each time it is called (one per subtest); Run closes it when the
// subtest ends. Only the Store interface is exercised.
func Run(t *testing.T, newStore func(t *testing.T) vault.Store) {
	open := func(t *testing.T) vault.Store {
		t.Helper()
		s := newStore(t)
		t.Cleanup(func() {
			if err := s.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
		return s
	}
	tests := []struct {
		name string
		fn   func(t *testing.T, s vault.Store)
	}{
		{"GetMissing", testGetMissing},
		{"PutGet", testPutGet},
		{"RoundTrip", testRoundTrip},
		{"PutDoesNotAlias", testPutDoesNotAlias},
		{"CreateOnlyIfAbsent", testCreateOnlyIfAbsent},
		{"CheckAndSet", testCheckAndSet},
		{"AnyVersion", testAnyVersion},
		{"Delete", testDelete},
		{"Integrations", testIntegrations},
		{"Tenants", testTenants},
		{"TenantIsolation", testTenantIsolation},
		{"HostileTenantIDs", testHostileTenantIDs},
		{"HostileIntegrations", testHostileIntegrations},
		{"LongestNames", testLongestNames},
		{"ConcurrentCreate", testConcurrentCreate},
		{"ConcurrentCheckAndSet", testConcurrentCheckAndSet},
		{"ConcurrentAnyVersion", testConcurrentAnyVersion},
		{"Timestamps", testTimestamps},
		{"CancelledContext", testCancelledContext},
		{"Claim", testClaim},
		{"ConcurrentClaim", testConcurrentClaim},
		{"TenantSettings", testTenantSettings},
		{"TenantRecords", testTenantRecords}, {"ConcurrentTenantRecords", testConcurrentRecords},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, open(t)) })
	}
}

// credOpts compares credentials by meaning: times by instant, nil and empty
// slices and maps alike.
var credOpts = cmp.Options{cmpopts.EquateEmpty()}

// tokenCred returns a small credential whose tokens are unique to label.
func tokenCred(label string) vault.Credential {
	return vault.Credential{
		AccessToken:  "access-" + label,
		RefreshToken: "refresh-" + label,
		TokenType:    "Bearer",
	}
}

// mustPut writes cred and returns the new version, failing t on error.
func mustPut(t *testing.T, s vault.Store, tenant, integration string, cred vault.Credential, version int64) int64 {
	t.Helper()
	v, err := s.Put(t.Context(), tenant, integration, cred, version)
	if err != nil {
		t.Fatalf("Put(%s/%s, version %d): %v", tenant, integration, version, err)
	}
	return v
}

// mustGet reads a credential, failing t on error.
func mustGet(t *testing.T, s vault.Store, tenant, integration string) (vault.Credential, int64) {
	t.Helper()
	c, v, err := s.Get(t.Context(), tenant, integration)
	if err != nil {
		t.Fatalf("Get(%s/%s): %v", tenant, integration, err)
	}
	return c, v
}

// withoutStamps clears the timestamps a store may fill in.
func withoutStamps(c vault.Credential) vault.Credential {
	c.CreatedAt, c.UpdatedAt = time.Time{}, time.Time{}
	return c
}

// wantNotFound checks err is the seed's *CredentialNotFoundError for
// tenant/integration, message included.
func wantNotFound(t *testing.T, op string, err error, tenant, integration string) {
	t.Helper()
	var nf *vault.CredentialNotFoundError
	if !errors.As(err, &nf) {
		t.Fatalf("%s error = %v (%T), want *vault.CredentialNotFoundError", op, err, err)
	}
	if nf.Tenant != tenant || nf.Integration != integration {
		t.Errorf("%s: CredentialNotFoundError names %s/%s, want %s/%s", op, nf.Tenant, nf.Integration, tenant, integration)
	}
	if want := fmt.Sprintf("Credentials not found for %s/%s", tenant, integration); err.Error() != want {
		t.Errorf("%s error message = %q, want %q", op, err.Error(), want)
	}
	if !vault.IsNotFound(err) {
		t.Errorf("vault.IsNotFound(%v) = false", err)
	}
}

// wantConflict checks err is a *ConflictError for tenant/integration that
// expected the given version.
func wantConflict(t *testing.T, op string, err error, tenant, integration string, expected int64) {
	t.Helper()
	var ce *vault.ConflictError
	if !errors.As(err, &ce) {
		t.Fatalf("%s error = %v (%T), want *vault.ConflictError", op, err, err)
	}
	if ce.Tenant != tenant || ce.Integration != integration || ce.Expected != expected {
		t.Errorf("%s: ConflictError = %+v, want tenant %s, integration %s, expected %d", op, *ce, tenant, integration, expected)
	}
}

func testGetMissing(t *testing.T, s vault.Store) {
	_, _, err := s.Get(t.Context(), "tenant-123", "notion")
	wantNotFound(t, "Get", err, "tenant-123", "notion")

	// A tenant that exists does not make its missing integrations found.
	mustPut(t, s, "tenant-123", "github", tokenCred("gh"), 0)
	_, _, err = s.Get(t.Context(), "tenant-123", "notion")
	wantNotFound(t, "Get", err, "tenant-123", "notion")
}

func testPutGet(t *testing.T, s vault.Store) {
	want := tokenCred("1")
	if v := mustPut(t, s, "tenant-1", "notion", want, 0); v != 1 {
		t.Errorf("first Put returned version %d, want 1", v)
	}
	got, v := mustGet(t, s, "tenant-1", "notion")
	if v != 1 {
		t.Errorf("Get version = %d, want 1", v)
	}
	if diff := cmp.Diff(want, withoutStamps(got), credOpts); diff != "" {
		t.Errorf("Get mismatch (-want +got):\n%s", diff)
	}
}

func testRoundTrip(t *testing.T, s vault.Store) {
	created := time.Date(2024, 1, 2, 3, 4, 5, 6000, time.UTC)
	updated := time.Date(2024, 6, 7, 8, 9, 10, 11000, time.UTC)
	tests := []struct {
		name string
		cred vault.Credential
	}{
		{"access token only", vault.Credential{AccessToken: "at-only"}},
		{"every field", vault.Credential{
			AccessToken:  "ya29.a0AfH6SMB-access",
			RefreshToken: "1//0g-refresh",
			TokenType:    "Bearer",
			ExpiresAt:    time.Date(2030, 12, 31, 23, 59, 59, 123456000, time.UTC),
			Scopes:       []string{"read", "write", "admin:org"},
			CreatedAt:    created,
			UpdatedAt:    updated,
			Extra:        map[string]string{"bot_id": "b-1", "workspace_id": "w-2", "workspace_name": "Acme, Inc."},
			Status:       vault.StatusNeedsReauth,
		}},
		{"expiry in another zone", vault.Credential{
			AccessToken: "zoned",
			ExpiresAt:   time.Date(2031, 5, 6, 7, 8, 9, 0, time.FixedZone("UTC+5:30", 5*3600+1800)),
		}},
		{"unicode and punctuation", vault.Credential{
			AccessToken:  "tøkén/with+chars=\"quoted\"\n\t✓",
			RefreshToken: "{\"json\":true}",
			Extra:        map[string]string{"name": "Zoë's workspace ✓", "empty": ""},
		}},
		{"large token", vault.Credential{AccessToken: strings.Repeat("x", 16<<10), RefreshToken: strings.Repeat("y", 4<<10)}},
		{"empty access token", vault.Credential{RefreshToken: "refresh-only"}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			integration := fmt.Sprintf("integration-%d", i)
			mustPut(t, s, "tenant-rt", integration, tt.cred, 0)
			got, _ := mustGet(t, s, "tenant-rt", integration)
			want := tt.cred
			if want.CreatedAt.IsZero() {
				got.CreatedAt = time.Time{}
			}
			if want.UpdatedAt.IsZero() {
				got.UpdatedAt = time.Time{}
			}
			if diff := cmp.Diff(want, got, credOpts); diff != "" {
				t.Errorf("round trip mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func testPutDoesNotAlias(t *testing.T, s vault.Store) {
	cred := vault.Credential{AccessToken: "a", Scopes: []string{"read"}, Extra: map[string]string{"k": "v"}}
	mustPut(t, s, "tenant-1", "notion", cred, 0)
	cred.Scopes[0] = "changed"
	cred.Extra["k"] = "changed"

	got, _ := mustGet(t, s, "tenant-1", "notion")
	got.Scopes[0] = "changed-again"
	got.Extra["k"] = "changed-again"

	got, _ = mustGet(t, s, "tenant-1", "notion")
	want := vault.Credential{AccessToken: "a", Scopes: []string{"read"}, Extra: map[string]string{"k": "v"}}
	if diff := cmp.Diff(want, withoutStamps(got), credOpts); diff != "" {
		t.Errorf("stored credential changed through a caller's slice or map (-want +got):\n%s", diff)
	}
}

func testCreateOnlyIfAbsent(t *testing.T, s vault.Store) {
	mustPut(t, s, "tenant-1", "notion", tokenCred("first"), 0)
	_, err := s.Put(t.Context(), "tenant-1", "notion", tokenCred("second"), 0)
	wantConflict(t, "second create", err, "tenant-1", "notion", 0)

	got, v := mustGet(t, s, "tenant-1", "notion")
	if v != 1 || got.AccessToken != "access-first" {
		t.Errorf("after losing create: Get = %q version %d, want access-first version 1", got.AccessToken, v)
	}
}

func testCheckAndSet(t *testing.T, s vault.Store) {
	v1 := mustPut(t, s, "tenant-1", "notion", tokenCred("v1"), 0)
	v2 := mustPut(t, s, "tenant-1", "notion", tokenCred("v2"), v1)
	if v2 != v1+1 {
		t.Errorf("update returned version %d, want %d", v2, v1+1)
	}

	tests := []struct {
		name        string
		integration string
		version     int64
	}{
		{"stale version", "notion", v1},
		{"future version", "notion", v2 + 5},
		{"create over existing", "notion", 0},
		{"update of missing record", "github", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.Put(t.Context(), "tenant-1", tt.integration, tokenCred("loser"), tt.version)
			wantConflict(t, "Put", err, "tenant-1", tt.integration, tt.version)
		})
	}

	got, v := mustGet(t, s, "tenant-1", "notion")
	if v != v2 || got.AccessToken != "access-v2" {
		t.Errorf("after conflicts: Get = %q version %d, want access-v2 version %d", got.AccessToken, v, v2)
	}
	_, _, err := s.Get(t.Context(), "tenant-1", "github")
	wantNotFound(t, "Get after failed update", err, "tenant-1", "github")

	if v3 := mustPut(t, s, "tenant-1", "notion", tokenCred("v3"), v2); v3 != v2+1 {
		t.Errorf("update returned version %d, want %d", v3, v2+1)
	}
}

func testAnyVersion(t *testing.T, s vault.Store) {
	if v := mustPut(t, s, "tenant-1", "notion", tokenCred("a"), vault.AnyVersion); v != 1 {
		t.Errorf("AnyVersion on a missing record returned version %d, want 1", v)
	}
	if v := mustPut(t, s, "tenant-1", "notion", tokenCred("b"), vault.AnyVersion); v != 2 {
		t.Errorf("AnyVersion on version 1 returned version %d, want 2", v)
	}
	mustPut(t, s, "tenant-1", "notion", tokenCred("c"), 2)
	if v := mustPut(t, s, "tenant-1", "notion", tokenCred("d"), vault.AnyVersion); v != 4 {
		t.Errorf("AnyVersion on version 3 returned version %d, want 4", v)
	}
	got, v := mustGet(t, s, "tenant-1", "notion")
	if v != 4 || got.AccessToken != "access-d" {
		t.Errorf("Get = %q version %d, want access-d version 4", got.AccessToken, v)
	}
}

func testDelete(t *testing.T, s vault.Store) {
	mustPut(t, s, "tenant-1", "notion", tokenCred("n"), 0)
	mustPut(t, s, "tenant-1", "github", tokenCred("g"), 0)

	if err := s.Delete(t.Context(), "tenant-1", "notion"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	_, _, err := s.Get(t.Context(), "tenant-1", "notion")
	wantNotFound(t, "Get after Delete", err, "tenant-1", "notion")
	wantNotFound(t, "second Delete", s.Delete(t.Context(), "tenant-1", "notion"), "tenant-1", "notion")
	wantNotFound(t, "Delete of never-written", s.Delete(t.Context(), "tenant-2", "notion"), "tenant-2", "notion")

	if got, _ := mustGet(t, s, "tenant-1", "github"); got.AccessToken != "access-g" {
		t.Errorf("sibling record after Delete: AccessToken = %q, want access-g", got.AccessToken)
	}

	// A deleted record can be created afresh.
	v := mustPut(t, s, "tenant-1", "notion", tokenCred("again"), 0)
	got, gv := mustGet(t, s, "tenant-1", "notion")
	if gv != v || got.AccessToken != "access-again" {
		t.Errorf("recreated record: Get = %q version %d, want access-again version %d", got.AccessToken, gv, v)
	}
}

func testIntegrations(t *testing.T, s vault.Store) {
	ctx := t.Context()
	got, err := s.Integrations(ctx, "tenant-1")
	if err != nil {
		t.Fatalf("Integrations of an unknown tenant: %v", err)
	}
	if len(got) != 0 {
		t.Errorf("Integrations of an unknown tenant = %q, want none", got)
	}
	for _, name := range []string{"zoom", "github", "notion", "a", "github-enterprise", "gitlab"} {
		mustPut(t, s, "tenant-1", name, tokenCred(name), 0)
	}
	got, err = s.Integrations(ctx, "tenant-1")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"a", "github", "github-enterprise", "gitlab", "notion", "zoom"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Integrations mismatch (-want +got):\n%s", diff)
	}

	for _, name := range want {
		if err := s.Delete(ctx, "tenant-1", name); err != nil {
			t.Fatal(err)
		}
	}
	got, err = s.Integrations(ctx, "tenant-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Errorf("Integrations after deleting all = %q, want none", got)
	}
}

func testTenants(t *testing.T, s vault.Store) {
	ctx := t.Context()
	got, err := s.Tenants(ctx)
	if err != nil {
		t.Fatalf("Tenants of an empty store: %v", err)
	}
	if len(got) != 0 {
		t.Errorf("Tenants of an empty store = %q, want none", got)
	}
	for _, id := range []string{"zeta", "tenant-10", "tenant-2", "0-digit-first", "acme_corp", "acme-corp"} {
		mustPut(t, s, id, "notion", tokenCred(id), 0)
	}
	mustPut(t, s, "zeta", "github", tokenCred("zeta-gh"), 0)

	got, err = s.Tenants(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"0-digit-first", "acme-corp", "acme_corp", "tenant-10", "tenant-2", "zeta"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Tenants mismatch (-want +got):\n%s", diff)
	}

	// A tenant whose last credential is deleted is no longer listed.
	if err := s.Delete(ctx, "tenant-2", "notion"); err != nil {
		t.Fatal(err)
	}
	got, err = s.Tenants(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want = []string{"0-digit-first", "acme-corp", "acme_corp", "tenant-10", "zeta"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Tenants after deleting tenant-2's only credential (-want +got):\n%s", diff)
	}
}

func testTenantIsolation(t *testing.T, s vault.Store) {
	ctx := t.Context()
	mustPut(t, s, "tenant-a", "notion", tokenCred("a-notion"), 0)
	mustPut(t, s, "tenant-a", "slack", tokenCred("a-slack"), 0)
	mustPut(t, s, "tenant-b", "github", tokenCred("b-github"), 0)
	mustPut(t, s, "tenant-b", "notion", tokenCred("b-notion"), 0)
	mustPut(t, s, "tenant-b", "notion", tokenCred("b-notion-2"), 1)
	// A tenant ID that is a prefix of another must not see the other's records.
	mustPut(t, s, "tenant", "jira", tokenCred("prefix"), 0)

	lists := []struct {
		tenant string
		want   []string
	}{
		{"tenant-a", []string{"notion", "slack"}},
		{"tenant-b", []string{"github", "notion"}},
		{"tenant", []string{"jira"}},
		{"tenant-c", nil},
	}
	for _, l := range lists {
		got, err := s.Integrations(ctx, l.tenant)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(l.want, got, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("Integrations(%s) mismatch (-want +got):\n%s", l.tenant, diff)
		}
	}

	gets := []struct {
		tenant, integration string
		access              string
		version             int64
	}{
		{"tenant-a", "notion", "access-a-notion", 1},
		{"tenant-b", "notion", "access-b-notion-2", 2},
	}
	for _, g := range gets {
		got, v := mustGet(t, s, g.tenant, g.integration)
		if got.AccessToken != g.access || v != g.version {
			t.Errorf("Get(%s/%s) = %q version %d, want %q version %d", g.tenant, g.integration, got.AccessToken, v, g.access, g.version)
		}
	}
	for _, miss := range [][2]string{{"tenant-a", "github"}, {"tenant-b", "slack"}, {"tenant", "notion"}, {"tenant-c", "notion"}} {
		_, _, err := s.Get(ctx, miss[0], miss[1])
		wantNotFound(t, "Get across tenants", err, miss[0], miss[1])
	}

	// Writing or deleting one tenant's record leaves the other's alone.
	_, err := s.Put(ctx, "tenant-a", "notion", tokenCred("x"), 2) // tenant-b's notion is at 2, tenant-a's at 1
	wantConflict(t, "Put with another tenant's version", err, "tenant-a", "notion", 2)
	if err := s.Delete(ctx, "tenant-a", "notion"); err != nil {
		t.Fatal(err)
	}
	if got, _ := mustGet(t, s, "tenant-b", "notion"); got.AccessToken != "access-b-notion-2" {
		t.Errorf("tenant-b/notion after deleting tenant-a/notion = %q", got.AccessToken)
	}
}

// hostileTenantIDs are tenant IDs every backend must refuse before touching
// storage.
var hostileTenantIDs = []string{
	"", "../x", "..", ".", "a/b", "/abs", `a\b`, "%2F", "%2e%2e", "tenant%2Fx",
	strings.Repeat("a", 65), "Tenant", "ténant", "tenant\x00", "tеnant", // Cyrillic е
	" tenant", "tenant ", "tenant\n", "-x", "_x", "a.b", "a:b", "*",
}

// hostileIntegrations are integration names every backend must refuse.
var hostileIntegrations = []string{
	"", "../x", "..", "a/b", "%2F", "notion%2F..", strings.Repeat("a", 33), "Notion", "nötion",
	"notion\x00", "nоtion", // Cyrillic о
	" notion", "-notion", "1notion", "_notion", "no_tion", "no.tion", "notion/",
}

func testHostileTenantIDs(t *testing.T, s vault.Store) {
	ctx := t.Context()
	mustPut(t, s, "tenant-1", "notion", tokenCred("good"), 0)
	for _, id := range hostileTenantIDs {
		t.Run(fmt.Sprintf("%q", id), func(t *testing.T) {
			_, _, err := s.Get(ctx, id, "notion")
			wantInvalidID(t, "Get", err)
			_, err = s.Put(ctx, id, "notion", tokenCred("evil"), vault.AnyVersion)
			wantInvalidID(t, "Put", err)
			wantInvalidID(t, "Delete", s.Delete(ctx, id, "notion"))
			_, err = s.Integrations(ctx, id)
			wantInvalidID(t, "Integrations", err)
		})
	}
	got, err := s.Tenants(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"tenant-1"}, got); diff != "" {
		t.Errorf("Tenants after hostile writes (-want +got):\n%s", diff)
	}
}

func wantInvalidID(t *testing.T, op string, err error) {
	t.Helper()
	if !errors.Is(err, tenants.ErrInvalidID) {
		t.Errorf("%s error = %v, want one wrapping tenants.ErrInvalidID", op, err)
	}
}

func testHostileIntegrations(t *testing.T, s vault.Store) {
	ctx := t.Context()
	mustPut(t, s, "tenant-1", "notion", tokenCred("good"), 0)
	for _, name := range hostileIntegrations {
		t.Run(fmt.Sprintf("%q", name), func(t *testing.T) {
			_, _, err := s.Get(ctx, "tenant-1", name)
			wantInvalidIntegration(t, "Get", err)
			_, err = s.Put(ctx, "tenant-1", name, tokenCred("evil"), vault.AnyVersion)
			wantInvalidIntegration(t, "Put", err)
			wantInvalidIntegration(t, "Delete", s.Delete(ctx, "tenant-1", name))
		})
	}
	got, err := s.Integrations(ctx, "tenant-1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"notion"}, got); diff != "" {
		t.Errorf("Integrations after hostile writes (-want +got):\n%s", diff)
	}
}

func wantInvalidIntegration(t *testing.T, op string, err error) {
	t.Helper()
	if !errors.Is(err, vault.ErrInvalidIntegration) {
		t.Errorf("%s error = %v, want one wrapping vault.ErrInvalidIntegration", op, err)
	}
}

func testLongestNames(t *testing.T, s vault.Store) {
	tenant, integration := strings.Repeat("t", 64), "i"+strings.Repeat("-", 31)
	mustPut(t, s, tenant, integration, tokenCred("long"), 0)
	if got, _ := mustGet(t, s, tenant, integration); got.AccessToken != "access-long" {
		t.Errorf("Get = %q, want access-long", got.AccessToken)
	}
}

// race runs fn(i) for i in [0, n) concurrently, as close to together as it
// can, and returns the versions and errors.
func race(n int, fn func(i int) (int64, error)) ([]int64, []error) {
	versions, errs := make([]int64, n), make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			versions[i], errs[i] = fn(i)
		})
	}
	close(start)
	wg.Wait()
	return versions, errs
}

const racers = 16

func testConcurrentCreate(t *testing.T, s vault.Store) {
	ctx := t.Context()
	versions, errs := race(racers, func(i int) (int64, error) {
		return s.Put(ctx, "tenant-1", "notion", tokenCred(fmt.Sprint(i)), 0)
	})
	winner := exactlyOneWinner(t, "tenant-1", "notion", 0, versions, errs)
	got, v := mustGet(t, s, "tenant-1", "notion")
	if want := tokenCred(fmt.Sprint(winner)).AccessToken; got.AccessToken != want || v != 1 {
		t.Errorf("Get = %q version %d, want the winner's %q version 1", got.AccessToken, v, want)
	}
}

func testConcurrentCheckAndSet(t *testing.T, s vault.Store) {
	ctx := t.Context()
	mustPut(t, s, "tenant-1", "notion", tokenCred("base"), 0)
	versions, errs := race(racers, func(i int) (int64, error) {
		return s.Put(ctx, "tenant-1", "notion", tokenCred(fmt.Sprint(i)), 1)
	})
	winner := exactlyOneWinner(t, "tenant-1", "notion", 1, versions, errs)
	got, v := mustGet(t, s, "tenant-1", "notion")
	if want := tokenCred(fmt.Sprint(winner)).AccessToken; got.AccessToken != want || v != 2 {
		t.Errorf("Get = %q version %d, want the winner's %q version 2", got.AccessToken, v, want)
	}
}

// exactlyOneWinner checks that one Put succeeded with version expected+1 and
// every other lost with a ConflictError, and returns the winner's index.
func exactlyOneWinner(t *testing.T, tenant, integration string, expected int64, versions []int64, errs []error) int {
	t.Helper()
	winner := -1
	for i, err := range errs {
		if err == nil {
			if winner >= 0 {
				t.Fatalf("writers %d and %d both won a check-and-set on version %d", winner, i, expected)
			}
			winner = i
			if versions[i] != expected+1 {
				t.Errorf("winner got version %d, want %d", versions[i], expected+1)
			}
			continue
		}
		wantConflict(t, fmt.Sprintf("writer %d", i), err, tenant, integration, expected)
	}
	if winner < 0 {
		t.Fatalf("no writer won a check-and-set on version %d", expected)
	}
	return winner
}

func testConcurrentAnyVersion(t *testing.T, s vault.Store) {
	ctx := t.Context()
	mustPut(t, s, "tenant-1", "notion", tokenCred("base"), 0)
	versions, errs := race(racers, func(i int) (int64, error) {
		return s.Put(ctx, "tenant-1", "notion", tokenCred(fmt.Sprint(i)), vault.AnyVersion)
	})
	// Some writers may lose to a concurrent one, but none may be lost
	// silently: each success has its own version, and the last is current.
	seen := map[int64]int{}
	var last int64
	lastWriter := -1
	for i, err := range errs {
		if err != nil {
			var ce *vault.ConflictError
			if !errors.As(err, &ce) {
				t.Errorf("writer %d: error = %v (%T), want *vault.ConflictError", i, err, err)
			}
			continue
		}
		if j, dup := seen[versions[i]]; dup {
			t.Errorf("writers %d and %d both got version %d", j, i, versions[i])
		}
		seen[versions[i]] = i
		if versions[i] > last {
			last, lastWriter = versions[i], i
		}
	}
	if len(seen) == 0 {
		t.Fatal("every AnyVersion writer lost")
	}
	got, v := mustGet(t, s, "tenant-1", "notion")
	if v != last || v != int64(1+len(seen)) {
		t.Errorf("Get version = %d, want %d (1 + %d successful writes)", v, last, len(seen))
	}
	if want := tokenCred(fmt.Sprint(lastWriter)).AccessToken; got.AccessToken != want {
		t.Errorf("Get = %q, want the last writer's %q", got.AccessToken, want)
	}
}

func testTimestamps(t *testing.T, s vault.Store) {
	// Backends may store times at second precision; allow for it.
	window := func() (time.Time, func() time.Time) {
		before := time.Now().Add(-time.Second)
		return before, func() time.Time { return time.Now().Add(time.Second) }
	}
	inWindow := func(what string, ts, before, after time.Time) {
		t.Helper()
		if ts.Before(before) || ts.After(after) {
			t.Errorf("%s = %v, want between %v and %v", what, ts, before, after)
		}
	}

	before, after := window()
	mustPut(t, s, "tenant-1", "notion", tokenCred("1"), 0)
	end := after()
	first, _ := mustGet(t, s, "tenant-1", "notion")
	inWindow("first write: CreatedAt", first.CreatedAt, before, end)
	inWindow("first write: UpdatedAt", first.UpdatedAt, before, end)

	// Times the caller sets are kept.
	created := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	updated := time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC)
	cred := tokenCred("2")
	cred.CreatedAt, cred.UpdatedAt = created, updated
	mustPut(t, s, "tenant-1", "notion", cred, 1)
	second, _ := mustGet(t, s, "tenant-1", "notion")
	if !second.CreatedAt.Equal(created) || !second.UpdatedAt.Equal(updated) {
		t.Errorf("caller's times: CreatedAt, UpdatedAt = %v, %v; want %v, %v", second.CreatedAt, second.UpdatedAt, created, updated)
	}

	// An update that leaves them zero keeps CreatedAt and stamps UpdatedAt.
	before, after = window()
	mustPut(t, s, "tenant-1", "notion", tokenCred("3"), vault.AnyVersion)
	end = after()
	third, _ := mustGet(t, s, "tenant-1", "notion")
	if !third.CreatedAt.Equal(created) {
		t.Errorf("update changed CreatedAt from %v to %v", created, third.CreatedAt)
	}
	inWindow("update: UpdatedAt", third.UpdatedAt, before, end)
}

func testCancelledContext(t *testing.T, s vault.Store) {
	mustPut(t, s, "tenant-1", "notion", tokenCred("1"), 0)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()

	_, _, err := s.Get(ctx, "tenant-1", "notion")
	wantCanceled(t, "Get", err)
	_, err = s.Put(ctx, "tenant-1", "notion", tokenCred("2"), vault.AnyVersion)
	wantCanceled(t, "Put", err)
	wantCanceled(t, "Delete", s.Delete(ctx, "tenant-1", "notion"))

	got, v := mustGet(t, s, "tenant-1", "notion")
	if got.AccessToken != "access-1" || v != 1 {
		t.Errorf("after cancelled writes: Get = %q version %d, want access-1 version 1", got.AccessToken, v)
	}
}

func wantCanceled(t *testing.T, op string, err error) {
	t.Helper()
	if !errors.Is(err, context.Canceled) {
		t.Errorf("%s with a cancelled context: error = %v, want one wrapping context.Canceled", op, err)
	}
}
