package tenants

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// memKeyStore is a KeyStore in memory, following the contract's error
// conventions (fs.ErrNotExist, fs.ErrExist).
type memKeyStore struct {
	mu      sync.Mutex
	records map[string][]byte // guarded by mu
	getErr  error             // returned by GetAPIKey when set
	gets    int               // GetAPIKey calls
	putErrs []error           // returned by successive PutAPIKey calls first
	onGet   func()            // if set, called by GetAPIKey after reading, unlocked
}

func newMemKeyStore() *memKeyStore { return &memKeyStore{records: map[string][]byte{}} }

func (s *memKeyStore) PutAPIKey(_ context.Context, id string, record []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.putErrs) > 0 {
		err := s.putErrs[0]
		s.putErrs = s.putErrs[1:]
		return err
	}
	if _, ok := s.records[id]; ok {
		return fmt.Errorf("key %s: %w", id, fs.ErrExist)
	}
	s.records[id] = bytes.Clone(record)
	return nil
}

func (s *memKeyStore) GetAPIKey(_ context.Context, id string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gets++
	if s.getErr != nil {
		return nil, s.getErr
	}
	rec, ok := s.records[id]
	if !ok {
		return nil, fmt.Errorf("key %s: %w", id, fs.ErrNotExist)
	}
	rec = bytes.Clone(rec)
	if hook := s.onGet; hook != nil {
		s.mu.Unlock()
		hook()
		s.mu.Lock()
	}
	return rec, nil
}

func (s *memKeyStore) DeleteAPIKey(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.records[id]; !ok {
		return fmt.Errorf("key %s: %w", id, fs.ErrNotExist)
	}
	delete(s.records, id)
	return nil
}

func (s *memKeyStore) ListAPIKeys(context.Context) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]string, 0, len(s.records))
	for id := range s.records {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids, nil
}

var apiKeyFormat = regexp.MustCompile(`^cgw_([0-9a-f]{16})_[A-Za-z0-9_-]{43}$`)

func TestAPIKeysCreateVerify(t *testing.T) {
	tests := []struct {
		tenant string
		admin  bool
	}{
		{"tenant-1", false},
		{"tenant-1", true},
		{"acme_corp", false},
		{strings.Repeat("a", 64), true},
	}
	ctx := t.Context()
	keys := NewAPIKeys(newMemKeyStore())
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/admin=%t", tt.tenant, tt.admin), func(t *testing.T) {
			key, id, err := keys.Create(ctx, tt.tenant, tt.admin)
			if err != nil {
				t.Fatalf("Create: %v", err)
			}
			m := apiKeyFormat.FindStringSubmatch(key)
			if m == nil {
				t.Fatalf("Create returned key %q, not of the form cgw_<16 hex>_<43 base64url>", key)
			}
			if m[1] != id {
				t.Errorf("key's ID part = %q, returned id = %q", m[1], id)
			}
			got, err := keys.Verify(ctx, key)
			if err != nil {
				t.Fatalf("Verify(new key): %v", err)
			}
			want := Identity{Tenant: tt.tenant, Subject: "apikey:" + id, Admin: tt.admin}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Verify identity mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAPIKeysCreateUniqueKeys(t *testing.T) {
	keys := NewAPIKeys(newMemKeyStore())
	seen := map[string]bool{}
	for range 50 {
		key, id, err := keys.Create(t.Context(), "tenant-1", false)
		if err != nil {
			t.Fatal(err)
		}
		if seen[key] || seen[id] {
			t.Fatalf("Create returned a repeated key or id %q", id)
		}
		seen[key], seen[id] = true, true
	}
}

func TestAPIKeysCreateRejectsInvalidTenant(t *testing.T) {
	store := newMemKeyStore()
	keys := NewAPIKeys(store)
	for _, tenant := range []string{"", "../x", "a/b", "%2F", "Tenant", "tеnant", strings.Repeat("a", 65)} {
		_, _, err := keys.Create(t.Context(), tenant, true)
		if !errors.Is(err, ErrInvalidID) {
			t.Errorf("Create(%q) error = %v, want ErrInvalidID", tenant, err)
		}
	}
	if len(store.records) != 0 {
		t.Errorf("store holds %d records after refused creates, want 0", len(store.records))
	}
}

func TestAPIKeysCreateRetriesTakenID(t *testing.T) {
	store := newMemKeyStore()
	store.putErrs = []error{fmt.Errorf("taken: %w", fs.ErrExist)}
	keys := NewAPIKeys(store)
	key, _, err := keys.Create(t.Context(), "tenant-1", false)
	if err != nil {
		t.Fatalf("Create after one ID collision: %v", err)
	}
	if _, err := keys.Verify(t.Context(), key); err != nil {
		t.Errorf("Verify: %v", err)
	}
}

func TestAPIKeysVerifyRejects(t *testing.T) {
	ctx := t.Context()
	store := newMemKeyStore()
	keys := NewAPIKeys(store)
	// A key whose ID has a letter, so that upper-casing it changes it (an
	// ID of 16 random hex digits is all decimal digits once in ~1800).
	var key, id string
	for !strings.ContainsAny(id, "abcdef") {
		var err error
		if key, id, err = keys.Create(ctx, "tenant-1", true); err != nil {
			t.Fatal(err)
		}
	}
	revokedKey, revokedID, err := keys.Create(ctx, "tenant-1", false)
	if err != nil {
		t.Fatal(err)
	}
	if err := keys.Revoke(ctx, revokedID); err != nil {
		t.Fatal(err)
	}
	secret := key[len("cgw_")+16+1:]
	otherSecret := strings.Repeat("A", 43)
	unknownID := "0123456789abcdef"
	if unknownID == id {
		unknownID = "fedcba9876543210"
	}

	tests := []struct {
		name string
		key  string
	}{
		{"empty", ""},
		{"prefix only", "cgw_"},
		{"wrong prefix", "xyz_" + id + "_" + secret},
		{"upper-case prefix", "CGW_" + id + "_" + secret},
		{"upper-case id", "cgw_" + strings.ToUpper(id) + "_" + secret},
		{"short id", "cgw_" + id[:15] + "_" + secret},
		{"missing separator", "cgw_" + id + secret},
		{"wrong separator", "cgw_" + id + "-" + secret},
		{"truncated secret", key[:len(key)-1]},
		{"extra character", key + "A"},
		{"padded secret", key + "="},
		{"secret with invalid character", key[:len(key)-1] + "*"},
		{"trailing space", key + " "},
		{"leading space", " " + key},
		{"Bearer prefix kept", "Bearer " + key},
		{"wrong secret", "cgw_" + id + "_" + otherSecret},
		{"unknown id", "cgw_" + unknownID + "_" + secret},
		{"revoked", revokedKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := keys.Verify(ctx, tt.key)
			if err != ErrInvalidAPIKey { // the very same error, so callers can't tell which
				t.Errorf("Verify(%q) error = %v, want ErrInvalidAPIKey", tt.key, err)
			}
			if !reflect.DeepEqual(got, Identity{}) {
				t.Errorf("Verify(%q) identity = %+v, want zero", tt.key, got)
			}
		})
	}
	if _, err := keys.Verify(ctx, key); err != nil {
		t.Errorf("Verify(valid key) after the rejections: %v", err)
	}
}

func TestAPIKeysVerifyStoreFailure(t *testing.T) {
	ctx := t.Context()
	store := newMemKeyStore()
	keys := NewAPIKeys(store)
	key, id, err := keys.Create(ctx, "tenant-1", false)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("store error", func(t *testing.T) {
		storeErr := errors.New("disk on fire")
		store.mu.Lock()
		store.getErr = storeErr
		store.mu.Unlock()
		t.Cleanup(func() {
			store.mu.Lock()
			store.getErr = nil
			store.mu.Unlock()
		})
		_, err := keys.Verify(ctx, key)
		if errors.Is(err, ErrInvalidAPIKey) || !errors.Is(err, storeErr) {
			t.Errorf("Verify with failing store: error = %v, want one wrapping the store's error", err)
		}
	})
	t.Run("corrupt record", func(t *testing.T) {
		store.mu.Lock()
		good := store.records[id]
		store.records[id] = []byte(`{"id":"` + id + `","tenant":"../x","hash":"AAAA"}`)
		store.mu.Unlock()
		t.Cleanup(func() {
			store.mu.Lock()
			store.records[id] = good
			store.mu.Unlock()
		})
		_, err := keys.Verify(ctx, key)
		if err == nil || errors.Is(err, ErrInvalidAPIKey) {
			t.Errorf("Verify with corrupt record: error = %v, want a store error", err)
		}
	})
}

func TestAPIKeysRevoke(t *testing.T) {
	ctx := t.Context()
	keys := NewAPIKeys(newMemKeyStore())
	key, id, err := keys.Create(ctx, "tenant-1", false)
	if err != nil {
		t.Fatal(err)
	}
	if err := keys.Revoke(ctx, id); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	if _, err := keys.Verify(ctx, key); err != ErrInvalidAPIKey {
		t.Errorf("Verify(revoked) error = %v, want ErrInvalidAPIKey", err)
	}
	for _, bad := range []string{id, "", "../x", "0123456789ABCDEF"} {
		if err := keys.Revoke(ctx, bad); !errors.Is(err, ErrKeyNotFound) {
			t.Errorf("Revoke(%q) error = %v, want ErrKeyNotFound", bad, err)
		}
	}
}

func TestAPIKeysList(t *testing.T) {
	ctx := t.Context()
	store := newMemKeyStore()
	keys := NewAPIKeys(store)
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	keys.now = func() time.Time { return now }

	var want []APIKey
	var secrets []string
	for _, c := range []struct {
		tenant string
		admin  bool
	}{{"tenant-a", false}, {"tenant-b", true}, {"tenant-a", true}} {
		key, id, err := keys.Create(ctx, c.tenant, c.admin)
		if err != nil {
			t.Fatal(err)
		}
		secrets = append(secrets, key[len("cgw_")+16+1:])
		want = append(want, APIKey{ID: id, Tenant: c.tenant, Admin: c.admin, CreatedAt: now})
	}
	slices.SortFunc(want, func(a, b APIKey) int { return strings.Compare(a.ID, b.ID) })

	got, err := keys.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("List mismatch (-want +got):\n%s", diff)
	}

	// The store keeps hashes only: no secret appears in any record.
	for id, rec := range store.records {
		for _, s := range secrets {
			if bytes.Contains(rec, []byte(s)) {
				t.Errorf("record %s contains a key's secret", id)
			}
		}
	}
}

func TestParseAPIKeySecretWithSeparators(t *testing.T) {
	// base64url secrets may contain '_' and '-'; the fixed layout still parses.
	secret := "_-" + strings.Repeat("a", 40) + "A"
	id, got, ok := parseAPIKey("cgw_0123456789abcdef_" + secret)
	if !ok || id != "0123456789abcdef" || got != secret {
		t.Errorf("parseAPIKey = %q, %q, %t; want 0123456789abcdef, %q, true", id, got, ok, secret)
	}
}

// TestAPIKeysCache: a verified key's record is reused for CacheTTL (no
// store read per request); revocation through the same APIKeys is
// immediate; one made elsewhere takes effect within CacheTTL; a wrong
// secret never verifies, cached record or not.
func TestAPIKeysCache(t *testing.T) {
	st := newMemKeyStore()
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	k := NewAPIKeys(st)
	k.now = func() time.Time { return now }
	other := NewAPIKeys(st) // another replica on the same store
	key, id, err := k.Create(t.Context(), "tenant-a", false)
	if err != nil {
		t.Fatal(err)
	}
	for range 10 {
		if _, err := k.Verify(t.Context(), key); err != nil {
			t.Fatal(err)
		}
	}
	if st.gets != 1 {
		t.Errorf("10 verifications read the store %d times, want 1", st.gets)
	}
	if _, err := k.Verify(t.Context(), key[:len(key)-1]+"x"); !errors.Is(err, ErrInvalidAPIKey) {
		t.Errorf("a wrong secret with the record cached: %v", err)
	}
	if err := other.Revoke(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Verify(t.Context(), key); err != nil {
		t.Errorf("within the cache TTL of a revocation elsewhere: %v (allowed to still work)", err)
	}
	now = now.Add(DefaultAPIKeyCacheTTL)
	if _, err := k.Verify(t.Context(), key); !errors.Is(err, ErrInvalidAPIKey) {
		t.Errorf("after the cache TTL, a key revoked elsewhere: %v, want ErrInvalidAPIKey", err)
	}

	key2, id2, _ := k.Create(t.Context(), "tenant-a", false)
	if _, err := k.Verify(t.Context(), key2); err != nil {
		t.Fatal(err)
	}
	if err := k.Revoke(t.Context(), id2); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Verify(t.Context(), key2); !errors.Is(err, ErrInvalidAPIKey) {
		t.Errorf("right after revoking through the same APIKeys: %v, want ErrInvalidAPIKey", err)
	}
}

// TestAPIKeysForget: a key revoked elsewhere is refused at once once
// Forget (that key) or ForgetTenant (all of its tenant's) is told, and the
// other tenants' cached keys stay cached.
func TestAPIKeysForget(t *testing.T) {
	st := newMemKeyStore()
	k, other := NewAPIKeys(st), NewAPIKeys(st)
	a1, id1, _ := k.Create(t.Context(), "tenant-a", false)
	a2, id2, _ := k.Create(t.Context(), "tenant-a", false)
	b, _, _ := k.Create(t.Context(), "tenant-b", false)
	for _, key := range []string{a1, a2, b} {
		if _, err := k.Verify(t.Context(), key); err != nil {
			t.Fatal(err)
		}
	}
	_ = other.Revoke(t.Context(), id1)
	_ = other.Revoke(t.Context(), id2)
	k.Forget(id1)
	if _, err := k.Verify(t.Context(), a1); !errors.Is(err, ErrInvalidAPIKey) {
		t.Errorf("a key revoked elsewhere, after Forget: %v, want ErrInvalidAPIKey", err)
	}
	gets := st.gets
	k.ForgetTenant("tenant-a")
	if _, err := k.Verify(t.Context(), a2); !errors.Is(err, ErrInvalidAPIKey) {
		t.Errorf("a key of a tenant off-boarded elsewhere, after ForgetTenant: %v, want ErrInvalidAPIKey", err)
	}
	if _, err := k.Verify(t.Context(), b); err != nil || st.gets != gets+1 {
		t.Errorf("tenant-b's key after ForgetTenant(tenant-a): %v, %d store reads, want its record still cached", err, st.gets-gets-1)
	}
}

// TestValidateKeyName: a key's name is at most 64 printable characters;
// a refusal names the field and never repeats the name.
func TestValidateKeyName(t *testing.T) {
	for _, ok := range []string{
		"", "claude-desktop", "CI (nightly) #3", "Zoë's laptop", "日本語のキー", "🔑 key",
		strings.Repeat("a", MaxKeyNameLen), strings.Repeat("é", MaxKeyNameLen),
	} {
		if err := ValidateKeyName(ok); err != nil {
			t.Errorf("ValidateKeyName(%q) = %v, want nil", ok, err)
		}
	}
	for _, bad := range []string{
		strings.Repeat("a", MaxKeyNameLen+1), strings.Repeat("é", MaxKeyNameLen+1),
		"line\nbreak", "tab\there", "nul\x00", "esc\x1b[31m", "del\x7f", "c1\u0085",
		"bidi\u202eoverride", "zero\u200bwidth", "bom\ufeff", "nbsp\u00a0", "bad\xffutf8",
	} {
		err := ValidateKeyName(bad)
		var ne *KeyNameError
		if !errors.As(err, &ne) {
			t.Errorf("ValidateKeyName(%q) = %v, want a *KeyNameError", bad, err)
			continue
		}
		if msg := err.Error(); !strings.HasPrefix(msg, "name: ") || strings.Contains(msg, bad) {
			t.Errorf("ValidateKeyName(%q) = %q, want a message naming the field, not the name", bad, msg)
		}
	}
}

// TestAPIKeysCreateWith: a key's name and admin flag are kept, returned
// and listed; a refused name stores nothing; a key made without a name
// stores none (the record of a key made before names were kept).
func TestAPIKeysCreateWith(t *testing.T) {
	ctx := t.Context()
	st := newMemKeyStore()
	keys := NewAPIKeys(st)
	now := time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
	keys.now = func() time.Time { return now }

	key, info, err := keys.CreateWith(ctx, "tenant-a", CreateOptions{Name: "claude-desktop"})
	if err != nil {
		t.Fatal(err)
	}
	want := APIKey{ID: info.ID, Tenant: "tenant-a", CreatedAt: now, Name: "claude-desktop"}
	if diff := cmp.Diff(want, info); diff != "" || !strings.HasPrefix(key, "cgw_"+info.ID+"_") {
		t.Errorf("CreateWith = %q, %+v (-want +got):\n%s", key, info, diff)
	}
	if id, err := keys.Verify(ctx, key); err != nil || !cmp.Equal(id, Identity{Tenant: "tenant-a", Subject: "apikey:" + info.ID}) {
		t.Errorf("Verify(named key) = %+v, %v", id, err)
	}
	_, admin, err := keys.CreateWith(ctx, "tenant-a", CreateOptions{Admin: true})
	if err != nil || !admin.Admin || admin.Name != "" {
		t.Errorf("CreateWith(admin) = %+v, %v", admin, err)
	}
	if bytes.Contains(st.records[admin.ID], []byte(`"name"`)) {
		t.Errorf("a key without a name stores one: %s", st.records[admin.ID])
	}
	list, err := keys.List(ctx)
	if err != nil || !slices.Contains(list, info) {
		t.Errorf("List = %+v, %v; want the named key among them", list, err)
	}

	n := len(st.records)
	_, _, err = keys.CreateWith(ctx, "tenant-a", CreateOptions{Name: "evil\nname"})
	if ne := (*KeyNameError)(nil); !errors.As(err, &ne) {
		t.Errorf("CreateWith(bad name) = %v, want a *KeyNameError", err)
	}
	if len(st.records) != n {
		t.Error("CreateWith(bad name) stored a key")
	}
}

// TestAPIKeysListTenant: only the tenant's keys, newest first (the same
// instant by ID); a tenant ID outside the grammar is refused.
func TestAPIKeysListTenant(t *testing.T) {
	ctx := t.Context()
	keys := NewAPIKeys(newMemKeyStore())
	now := time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
	keys.now = func() time.Time { return now }
	var want []string // tenant-a's IDs, newest first
	for i, tenant := range []string{"tenant-a", "tenant-b", "tenant-a", "tenant-a", "tenant-b", "tenant-a"} {
		if i != 3 { // the third and fourth tenant-a keys share an instant
			now = now.Add(time.Minute)
		}
		_, info, err := keys.CreateWith(ctx, tenant, CreateOptions{Name: fmt.Sprint("key ", i)})
		if err != nil {
			t.Fatal(err)
		}
		if tenant == "tenant-a" {
			want = append(want, info.ID)
		}
	}
	slices.Reverse(want)
	if want[1] > want[2] { // the two of one instant: by ID
		want[1], want[2] = want[2], want[1]
	}
	got, err := keys.ListTenant(ctx, "tenant-a")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, k := range got {
		if k.Tenant != "tenant-a" {
			t.Errorf("ListTenant(tenant-a) lists %+v", k)
		}
		ids = append(ids, k.ID)
	}
	if diff := cmp.Diff(want, ids); diff != "" {
		t.Errorf("ListTenant(tenant-a) IDs (-want +got):\n%s", diff)
	}
	if got, err := keys.ListTenant(ctx, "tenant-c"); err != nil || got == nil || len(got) != 0 {
		t.Errorf("ListTenant(tenant-c) = %#v, %v; want an empty list", got, err)
	}
	if _, err := keys.ListTenant(ctx, "../tenant-a"); !errors.Is(err, ErrInvalidID) {
		t.Errorf("ListTenant(../tenant-a) error = %v, want ErrInvalidID", err)
	}
}

// TestAPIKeysRevokeTenant: a tenant revokes its own keys only; another
// tenant's is ErrKeyNotFound with the very message of one that does not
// exist, and keeps working; an admin key stays unless the caller may
// revoke one.
func TestAPIKeysRevokeTenant(t *testing.T) {
	ctx := t.Context()
	keys := NewAPIKeys(newMemKeyStore())
	keyA, infoA, _ := keys.CreateWith(ctx, "tenant-a", CreateOptions{})
	keyB, infoB, _ := keys.CreateWith(ctx, "tenant-b", CreateOptions{})
	adminA, infoAdmin, _ := keys.CreateWith(ctx, "tenant-a", CreateOptions{Admin: true})

	foreign := keys.RevokeTenant(ctx, "tenant-a", infoB.ID, true)
	if !errors.Is(foreign, ErrKeyNotFound) {
		t.Fatalf("RevokeTenant(tenant-a, tenant-b's key) = %v, want ErrKeyNotFound", foreign)
	}
	if _, err := keys.Verify(ctx, keyB); err != nil {
		t.Errorf("tenant-b's key after tenant-a tried to revoke it: %v", err)
	}
	// A well-formed ID no key has: the same answer, word for word but the ID.
	const unknown = "0123456789abcdef"
	missing := keys.RevokeTenant(ctx, "tenant-a", unknown, true)
	if !errors.Is(missing, ErrKeyNotFound) || strings.ReplaceAll(foreign.Error(), infoB.ID, unknown) != missing.Error() {
		t.Errorf("RevokeTenant of an unknown key = %q, of another tenant's = %q: want the same", missing, foreign)
	}
	for _, bad := range []string{"", "../x", "0123456789ABCDEF", strings.Repeat("a", 17)} {
		if err := keys.RevokeTenant(ctx, "tenant-a", bad, true); !errors.Is(err, ErrKeyNotFound) {
			t.Errorf("RevokeTenant(%q) = %v, want ErrKeyNotFound", bad, err)
		}
	}

	if err := keys.RevokeTenant(ctx, "tenant-a", infoAdmin.ID, false); !errors.Is(err, ErrAdminKey) {
		t.Errorf("RevokeTenant(admin key, may not) = %v, want ErrAdminKey", err)
	}
	if _, err := keys.Verify(ctx, adminA); err != nil {
		t.Errorf("the admin key after a refused revocation: %v", err)
	}
	if err := keys.RevokeTenant(ctx, "tenant-a", infoAdmin.ID, true); err != nil {
		t.Errorf("RevokeTenant(admin key, may) = %v", err)
	}
	if err := keys.RevokeTenant(ctx, "tenant-a", infoA.ID, false); err != nil {
		t.Fatalf("RevokeTenant(own key) = %v", err)
	}
	for _, key := range []string{keyA, adminA} {
		if _, err := keys.Verify(ctx, key); !errors.Is(err, ErrInvalidAPIKey) {
			t.Errorf("a revoked key verifies: %v", err)
		}
	}
	if err := keys.RevokeTenant(ctx, "tenant-a", infoA.ID, false); !errors.Is(err, ErrKeyNotFound) {
		t.Errorf("RevokeTenant again = %v, want ErrKeyNotFound", err)
	}
}

// TestAPIKeysRevokeDuringVerify: a Verify that read a key's record just
// before the key was revoked through the same APIKeys succeeds (it read a
// live key) but does not cache the record: the next request with the key
// is refused, not for another CacheTTL.
func TestAPIKeysRevokeDuringVerify(t *testing.T) {
	st := newMemKeyStore()
	keys := NewAPIKeys(st)
	key, id, err := keys.Create(t.Context(), "tenant-a", false)
	if err != nil {
		t.Fatal(err)
	}
	read, release := make(chan struct{}), make(chan struct{})
	st.onGet = func() { close(read); <-release }
	done := make(chan error)
	go func() { _, err := keys.Verify(t.Context(), key); done <- err }()
	<-read // the record is read, not yet cached
	st.mu.Lock()
	st.onGet = nil
	st.mu.Unlock()
	if err := keys.Revoke(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("the Verify under way: %v", err)
	}
	if _, err := keys.Verify(t.Context(), key); !errors.Is(err, ErrInvalidAPIKey) {
		t.Errorf("the revoked key's next Verify: %v, want ErrInvalidAPIKey (not cached)", err)
	}
}
