package hashicorp_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/hashicorp/vault/api"

	"github.com/connectors-gateway/connectors/internal/testenv"
	"github.com/connectors-gateway/connectors/vault"
	"github.com/connectors-gateway/connectors/vault/hashicorp"
	"github.com/connectors-gateway/connectors/vault/storetest"
)

// devVault is one development Vault server and a root client of it.
type devVault struct {
	addr, root string
	client     *api.Client
}

// startVault starts a development Vault server for t, with the gateway's
// policies written as "gateway-service" and "tenant-001".
func startVault(t *testing.T) *devVault {
	t.Helper()
	addr, root := testenv.Vault(t,
		"-policy", "gateway-service="+filepath.Join("policies", "gateway-service-policy.hcl"))
	v := &devVault{addr: addr, root: root, client: newClient(t, addr, root)}
	tenantPolicy(t, v, "tenant-001")
	return v
}

func newClient(t *testing.T, addr, token string) *api.Client {
	t.Helper()
	cfg := api.DefaultConfig()
	cfg.Address = addr
	cfg.MaxRetries = 0
	c, err := api.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken(token)
	return c
}

// tenantPolicy writes the per-tenant policy from its template.
func tenantPolicy(t *testing.T, v *devVault, tenant string) {
	t.Helper()
	tmpl, err := os.ReadFile(filepath.Join("policies", "tenant-policy.hcl.tmpl"))
	if err != nil {
		t.Fatal(err)
	}
	rules := strings.ReplaceAll(string(tmpl), "{{tenant_id}}", tenant)
	if err := v.client.Sys().PutPolicy(tenant, rules); err != nil {
		t.Fatal(err)
	}
}

// token creates a token holding only the given policies.
func (v *devVault) token(t *testing.T, policies ...string) string {
	t.Helper()
	s, err := v.client.Auth().Token().Create(&api.TokenCreateRequest{Policies: policies, NoDefaultPolicy: true})
	if err != nil {
		t.Fatal(err)
	}
	return s.Auth.ClientToken
}

// reset empties the server: secret/ and transit/ are mounted afresh.
func (v *devVault) reset(t *testing.T) {
	t.Helper()
	sys := v.client.Sys()
	for _, m := range []struct{ path, typ string }{{"secret", "kv"}, {"transit", "transit"}} {
		if err := sys.Unmount(m.path); err != nil {
			t.Fatal(err)
		}
		in := &api.MountInput{Type: m.typ}
		if m.typ == "kv" {
			in.Options = map[string]string{"version": "2"}
		}
		if err := sys.Mount(m.path, in); err != nil {
			t.Fatal(err)
		}
	}
}

// open opens a HashiCorp store on v with token and closes it when t ends.
func (v *devVault) open(t *testing.T, token string, mod ...func(*hashicorp.Config)) *hashicorp.Store {
	t.Helper()
	cfg := hashicorp.Config{Addr: v.addr, Token: token, API: &api.Config{MaxRetries: 0}}
	for _, m := range mod {
		m(&cfg)
	}
	s, err := hashicorp.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// kvPut writes a record by hand, as an operator's `vault kv put` does.
func (v *devVault) kvPut(t *testing.T, path string, data map[string]any) {
	t.Helper()
	if _, err := v.client.KVv2("secret").Put(t.Context(), path, data); err != nil {
		t.Fatal(err)
	}
}

// kvGet reads a record by hand, as `vault kv get` does.
func (v *devVault) kvGet(t *testing.T, path string) map[string]any {
	t.Helper()
	s, err := v.client.KVv2("secret").Get(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	return s.Data
}

func TestHashiCorp(t *testing.T) {
	v := startVault(t)
	storetest.Run(t, func(t *testing.T) vault.Store {
		v.reset(t)
		return v.open(t, v.root)
	})
}

func TestHashiCorpObserver(t *testing.T) {
	v := startVault(t)
	storetest.RunObserver(t, func(t *testing.T, obs vault.Observer) vault.Backend {
		return v.open(t, v.root, func(c *hashicorp.Config) { c.Observer = obs })
	})
}

// TestHashiCorpGatewayPolicy runs the contract with a token that holds only
// the shipped gateway-service policy: it grants all the backend uses.
func TestHashiCorpGatewayPolicy(t *testing.T) {
	v := startVault(t)
	token := v.token(t, "gateway-service")
	storetest.Run(t, func(t *testing.T) vault.Store {
		v.reset(t)
		return v.open(t, token)
	})
	t.Run("Rotate", func(t *testing.T) {
		v.reset(t)
		s := v.open(t, token)
		if _, err := s.Put(t.Context(), "tenant-001", "notion", vault.Credential{AccessToken: "a", RefreshToken: "r"}, 0); err != nil {
			t.Fatal(err)
		}
		if err := s.RotateTenantKey(t.Context(), "tenant-001"); err != nil {
			t.Fatalf("RotateTenantKey with the gateway policy: %v", err)
		}
	})
}

// TestHashiCorpTenantPolicy shows the per-tenant policy confines a token to
// its tenant.
func TestHashiCorpTenantPolicy(t *testing.T) {
	v := startVault(t)
	admin := v.open(t, v.root)
	for _, tenant := range []string{"tenant-001", "tenant-002"} {
		if _, err := admin.Put(t.Context(), tenant, "notion", vault.Credential{AccessToken: "secret_" + tenant}, 0); err != nil {
			t.Fatal(err)
		}
	}
	token := v.token(t, "tenant-001")
	s := v.open(t, token, func(c *hashicorp.Config) { c.CacheTTL = -1 })

	got, _, err := s.Get(t.Context(), "tenant-001", "notion")
	if err != nil || got.AccessToken != "secret_tenant-001" {
		t.Fatalf("tenant-001 token: Get(tenant-001/notion) = %q, %v; want its own token", got.AccessToken, err)
	}
	_, _, err = s.Get(t.Context(), "tenant-002", "notion")
	wantVaultError(t, err, "permission denied", token)

	// Plain API calls, as an operator with that token would make them.
	c := newClient(t, v.addr, token)
	if _, err := c.Logical().Read("secret/data/tenant-002/notion"); !isStatus(err, http.StatusForbidden) {
		t.Errorf("tenant-001 token reading secret/data/tenant-002/notion: err = %v, want 403", err)
	}
	if _, err := c.Logical().Write("transit/decrypt/tenant-002", map[string]any{"ciphertext": "vault:v1:AAAA"}); !isStatus(err, http.StatusForbidden) {
		t.Errorf("tenant-001 token decrypting with tenant-002's key: err = %v, want 403", err)
	}
}

func isStatus(err error, code int) bool {
	var re *api.ResponseError
	return errors.As(err, &re) && re.StatusCode == code
}

// wantVaultError checks err is a *vault.VaultError with the seed's message,
// mentioning want, and never the token.
func wantVaultError(t *testing.T, err error, want, token string) {
	t.Helper()
	var ve *vault.VaultError
	if !errors.As(err, &ve) {
		t.Fatalf("error = %v (%T), want *vault.VaultError", err, err)
	}
	if msg := err.Error(); !strings.HasPrefix(msg, "Failed to connect to Vault") || !strings.Contains(msg, want) {
		t.Errorf("error = %q, want it to start with %q and mention %q", msg, "Failed to connect to Vault", want)
	}
	if token != "" && strings.Contains(err.Error(), token) {
		t.Errorf("error %q contains the token", err)
	}
}

// TestHashiCorpRecordLayout reads a record back with plain Vault API calls:
// the seed's field names, Transit ciphertext for the secrets, and the
// tenant's key as the seed describes it.
func TestHashiCorpRecordLayout(t *testing.T) {
	v := startVault(t)
	s := v.open(t, v.root)
	created := time.Date(2025, 11, 12, 10, 30, 0, 0, time.UTC)
	cred := vault.Credential{
		AccessToken:  "ghu_access",
		RefreshToken: "ghr_refresh",
		TokenType:    "bearer",
		ExpiresAt:    time.Date(2025, 11, 12, 11, 30, 0, 0, time.UTC),
		Scopes:       []string{"repo", "user"},
		CreatedAt:    created,
		UpdatedAt:    created,
		Extra:        map[string]string{"bot_id": "bot-123", "workspace_id": "ws-456"},
	}
	if _, err := s.Put(t.Context(), "tenant-123", "github", cred, 0); err != nil {
		t.Fatal(err)
	}

	got := v.kvGet(t, "tenant-123/github")
	for _, f := range []string{"access_token", "refresh_token"} {
		ct, _ := got[f].(string)
		if !strings.HasPrefix(ct, "vault:v1:") {
			t.Errorf("%s = %q, want Transit ciphertext starting with vault:v1:", f, ct)
		}
		if strings.Contains(ct, "ghu_") || strings.Contains(ct, "ghr_") {
			t.Errorf("%s holds the plaintext: %q", f, ct)
		}
		// The key is derived: only with the record's context does it decrypt.
		plain := transitDecrypt(t, v.client, "tenant-123", ct, "context", "tenant-123/github/"+f)
		if want := map[string]string{"access_token": "ghu_access", "refresh_token": "ghr_refresh"}[f]; plain != want {
			t.Errorf("decrypting %s by hand = %q, want %q", f, plain, want)
		}
	}
	accessCT := got["access_token"].(string)
	got["access_token"], got["refresh_token"] = "<ct>", "<ct>"
	want := map[string]any{
		"access_token":  "<ct>",
		"refresh_token": "<ct>",
		"token_type":    "bearer",
		"expires_at":    "2025-11-12T11:30:00Z",
		"scopes":        []any{"repo", "user"},
		"created_at":    "2025-11-12T10:30:00Z",
		"updated_at":    "2025-11-12T10:30:00Z",
		"bot_id":        "bot-123",
		"workspace_id":  "ws-456",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("record at secret/data/tenant-123/github (-want +got):\n%s", diff)
	}

	key, err := v.client.Logical().Read("transit/keys/tenant-123")
	if err != nil || key == nil {
		t.Fatalf("reading transit/keys/tenant-123: %v", err)
	}
	if key.Data["type"] != "aes256-gcm96" || key.Data["exportable"] != false || key.Data["derived"] != true {
		t.Errorf("transit/keys/tenant-123: type %v, exportable %v, derived %v; want aes256-gcm96, false, true",
			key.Data["type"], key.Data["exportable"], key.Data["derived"])
	}
	// Another record's context derives another key: the ciphertext does not
	// open.
	for _, wrong := range []string{"tenant-123/github/refresh_token", "tenant-123/notion/access_token", ""} {
		in := map[string]any{"ciphertext": accessCT}
		if wrong != "" {
			in["context"] = base64.StdEncoding.EncodeToString([]byte(wrong))
		}
		if _, err := v.client.Logical().Write("transit/decrypt/tenant-123", in); err == nil {
			t.Errorf("access_token decrypted with context %q", wrong)
		}
	}

	// A record with no expiry and no refresh token leaves those fields out.
	if _, err := s.Put(t.Context(), "tenant-123", "notion", vault.Credential{AccessToken: "secret_n", TokenType: "bearer"}, 0); err != nil {
		t.Fatal(err)
	}
	notion := v.kvGet(t, "tenant-123/notion")
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range notion {
			if !yield(k) {
				return
			}
		}
	})
	if diff := cmp.Diff([]string{"access_token", "created_at", "token_type", "updated_at"}, keys); diff != "" {
		t.Errorf("fields of a Notion record (-want +got):\n%s", diff)
	}
}

// transitDecrypt decrypts by hand, binding with param ("context" for a
// derived key, "associated_data" for another) set to bound.
func transitDecrypt(t *testing.T, c *api.Client, tenant, ciphertext, param, bound string) string {
	t.Helper()
	s, err := c.Logical().Write("transit/decrypt/"+tenant, map[string]any{
		"ciphertext": ciphertext,
		param:        base64.StdEncoding.EncodeToString([]byte(bound)),
	})
	if err != nil {
		t.Fatalf("transit/decrypt/%s: %v", tenant, err)
	}
	plain, err := base64.StdEncoding.DecodeString(s.Data["plaintext"].(string))
	if err != nil {
		t.Fatal(err)
	}
	return string(plain)
}

// TestHashiCorpAssociatedData copies a ciphertext where it does not belong:
// into another record of the tenant, another field, another tenant. The
// binding holds both for the derived keys the store creates (context) and
// for keys created by hand without derivation (associated data).
func TestHashiCorpAssociatedData(t *testing.T) {
	v := startVault(t)
	for _, kind := range []string{"derived", "hand-made"} {
		t.Run(kind, func(t *testing.T) {
			v.reset(t)
			if kind == "hand-made" {
				// As the seed does: vault write transit/keys/tenant-a type=aes256-gcm96
				for _, tenant := range []string{"tenant-a", "tenant-b"} {
					if _, err := v.client.Logical().Write("transit/keys/"+tenant, map[string]any{"type": "aes256-gcm96"}); err != nil {
						t.Fatal(err)
					}
				}
			}
			testBinding(t, v, v.open(t, v.root, func(c *hashicorp.Config) { c.CacheTTL = -1 }))
			// A token that may not read the keys' configuration (the
			// per-tenant policy) still opens what belongs and refuses the rest.
			tenantPolicy(t, v, "tenant-a")
			tenantPolicy(t, v, "tenant-b")
			tok := v.token(t, "tenant-a", "tenant-b")
			s := v.open(t, tok, func(c *hashicorp.Config) { c.CacheTTL = -1 })
			for _, r := range [][2]string{{"tenant-a", "slack"}, {"tenant-b", "slack"}} {
				if got, _, err := s.Get(t.Context(), r[0], r[1]); err != nil || got.AccessToken != "at-"+r[0]+r[1] {
					t.Errorf("tenant token: Get(%s/%s) = %q, %v", r[0], r[1], got.AccessToken, err)
				}
			}
			_, _, err := s.Get(t.Context(), "tenant-b", "notion") // holds tenant-a's ciphertext
			var ee *vault.VaultEncryptionError
			if !errors.As(err, &ee) {
				t.Errorf("tenant token: Get of a copied ciphertext = %v (%T), want *vault.VaultEncryptionError", err, err)
			}
			key, err := v.client.Logical().Read("transit/keys/tenant-a")
			if err != nil || key == nil {
				t.Fatalf("reading transit/keys/tenant-a: %v", err)
			}
			if want := kind == "derived"; key.Data["derived"] != want {
				t.Errorf("transit/keys/tenant-a: derived %v, want %v", key.Data["derived"], want)
			}
		})
	}
}

func testBinding(t *testing.T, v *devVault, s *hashicorp.Store) {
	t.Helper()
	for _, r := range [][2]string{{"tenant-a", "notion"}, {"tenant-a", "github"}, {"tenant-b", "notion"}, {"tenant-a", "slack"}, {"tenant-b", "slack"}} {
		if _, err := s.Put(t.Context(), r[0], r[1], vault.Credential{AccessToken: "at-" + r[0] + r[1], RefreshToken: "rt-" + r[0] + r[1]}, 0); err != nil {
			t.Fatal(err)
		}
		if got, _, err := s.Get(t.Context(), r[0], r[1]); err != nil || got.AccessToken != "at-"+r[0]+r[1] {
			t.Fatalf("Get(%s/%s) before tampering = %q, %v", r[0], r[1], got.AccessToken, err)
		}
	}
	stolen := v.kvGet(t, "tenant-a/notion")["access_token"].(string)

	tests := []struct {
		name, tenant, integration, field string
	}{
		{"another record of the tenant", "tenant-a", "github", "access_token"},
		{"another field of the record", "tenant-a", "notion", "refresh_token"},
		{"another tenant", "tenant-b", "notion", "access_token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := tt.tenant + "/" + tt.integration
			rec := v.kvGet(t, path)
			rec[tt.field] = stolen
			v.kvPut(t, path, rec)
			_, _, err := s.Get(t.Context(), tt.tenant, tt.integration)
			var ee *vault.VaultEncryptionError
			if !errors.As(err, &ee) {
				t.Fatalf("Get = %v (%T), want *vault.VaultEncryptionError", err, err)
			}
			if !strings.HasPrefix(err.Error(), "Failed to decrypt data") {
				t.Errorf("error = %q, want the seed's %q", err, "Failed to decrypt data")
			}
			if strings.Contains(err.Error(), "at-tenant-a") {
				t.Errorf("error %q contains a secret", err)
			}
		})
	}
}

// TestHashiCorpPlaintextMigration reads records an operator wrote by hand
// with the seed's `vault kv put` commands, and seals them on the next write.
func TestHashiCorpPlaintextMigration(t *testing.T) {
	v := startVault(t)
	s := v.open(t, v.root)
	v.kvPut(t, "tenant-001/notion", map[string]any{
		"access_token": "secret_notion_token_abc123",
		"token_type":   "bearer",
		"bot_id":       "bot-123",
		"workspace_id": "ws-456",
		"created_at":   "2025-11-12T10:30:00Z",
	})
	v.kvPut(t, "tenant-001/github", map[string]any{
		"access_token":  "ghp_abc123",
		"refresh_token": "ghr_xyz789",
		"expires_at":    "2025-11-12T11:30:00Z",
		"token_type":    "bearer",
		"scopes":        "repo,user",
	})

	want := map[string]vault.Credential{
		"notion": {
			AccessToken: "secret_notion_token_abc123", TokenType: "bearer",
			CreatedAt: time.Date(2025, 11, 12, 10, 30, 0, 0, time.UTC),
			Extra:     map[string]string{"bot_id": "bot-123", "workspace_id": "ws-456"},
		},
		"github": {
			AccessToken: "ghp_abc123", RefreshToken: "ghr_xyz789", TokenType: "bearer",
			ExpiresAt: time.Date(2025, 11, 12, 11, 30, 0, 0, time.UTC),
			Scopes:    []string{"repo", "user"},
		},
	}
	for integration, w := range want {
		got, version, err := s.Get(t.Context(), "tenant-001", integration)
		if err != nil {
			t.Fatalf("Get(tenant-001/%s) of a hand-written record: %v", integration, err)
		}
		if version != 1 {
			t.Errorf("version = %d, want 1", version)
		}
		if diff := cmp.Diff(w, got, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("hand-written %s (-want +got):\n%s", integration, diff)
		}
		// The next write seals it, keeping created_at.
		if _, err := s.Put(t.Context(), "tenant-001", integration, got, version); err != nil {
			t.Fatal(err)
		}
		rec := v.kvGet(t, "tenant-001/"+integration)
		for _, f := range []string{"access_token", "refresh_token"} {
			if val, ok := rec[f].(string); ok && !strings.HasPrefix(val, "vault:v1:") {
				t.Errorf("after the next write, %s = %q, want ciphertext", f, val)
			}
		}
		again, _, err := s.Get(t.Context(), "tenant-001", integration)
		if err != nil {
			t.Fatal(err)
		}
		// created_at is kept when the record had one, else stamped;
		// updated_at is stamped.
		if !w.CreatedAt.IsZero() && !again.CreatedAt.Equal(w.CreatedAt) {
			t.Errorf("%s: sealing changed created_at from %v to %v", integration, w.CreatedAt, again.CreatedAt)
		}
		if again.CreatedAt.IsZero() || again.UpdatedAt.IsZero() {
			t.Errorf("%s: after sealing created_at %v, updated_at %v; want both set", integration, again.CreatedAt, again.UpdatedAt)
		}
		w.CreatedAt, w.UpdatedAt = again.CreatedAt, again.UpdatedAt
		if diff := cmp.Diff(w, again, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("%s after sealing (-want +got):\n%s", integration, diff)
		}
	}
}

// TestHashiCorpConcurrentWriters runs read-modify-write loops from many
// goroutines on several stores (gateways) sharing one Vault: every
// increment lands, and every lost race is a *ConflictError.
func TestHashiCorpConcurrentWriters(t *testing.T) {
	v := startVault(t)
	stores := []*hashicorp.Store{v.open(t, v.root), v.open(t, v.root), v.open(t, v.root)}
	if _, err := stores[0].Put(t.Context(), "tenant-1", "github", vault.Credential{AccessToken: "a", Extra: map[string]string{"n": "0"}}, 0); err != nil {
		t.Fatal(err)
	}
	const writers, increments = 12, 5
	var conflicts atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		s := stores[w%len(stores)]
		wg.Go(func() {
			for range increments {
				for {
					c, version, err := s.Get(t.Context(), "tenant-1", "github")
					if err != nil {
						errs <- err
						return
					}
					n, _ := strconv.Atoi(c.Extra["n"])
					c.Extra["n"] = strconv.Itoa(n + 1)
					c.AccessToken = fmt.Sprintf("a-%d-%d", w, n+1)
					c.UpdatedAt = time.Time{}
					_, err = s.Put(t.Context(), "tenant-1", "github", c, version)
					var ce *vault.ConflictError
					if errors.As(err, &ce) {
						conflicts.Add(1)
						continue
					}
					if err != nil {
						errs <- err
						return
					}
					break
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("writer: %v", err)
	}
	// A store of its own: the others may serve what they cached for up to
	// CacheTTL.
	fresh := v.open(t, v.root, func(c *hashicorp.Config) { c.CacheTTL = -1 })
	got, version, err := fresh.Get(t.Context(), "tenant-1", "github")
	if err != nil {
		t.Fatal(err)
	}
	if got.Extra["n"] != strconv.Itoa(writers*increments) || version != writers*increments+1 {
		t.Errorf("after %d increments: n = %s at version %d, want %d at version %d (lost updates)",
			writers*increments, got.Extra["n"], version, writers*increments, writers*increments+1)
	}
	t.Logf("%d conflicts resolved by retrying", conflicts.Load())
}

// TestHashiCorpHostileNamesNeverReachVault puts a recording proxy in front
// of Vault: refused names cause no request at all.
func TestHashiCorpHostileNamesNeverReachVault(t *testing.T) {
	v := startVault(t)
	target, _ := url.Parse(v.addr)
	var mu sync.Mutex
	var paths []string
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.URL.Path)
		mu.Unlock()
		httputil.NewSingleHostReverseProxy(target).ServeHTTP(w, r)
	}))
	t.Cleanup(proxy.Close)
	s, err := hashicorp.Open(hashicorp.Config{Addr: proxy.URL, Token: v.root, API: &api.Config{MaxRetries: 0}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := s.Put(t.Context(), "tenant-1", "notion", vault.Credential{AccessToken: "x"}, 0); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if len(paths) == 0 {
		t.Fatal("the proxy saw no request: it is not in the way")
	}
	paths = nil
	mu.Unlock()

	ctx := t.Context()
	hostile := []string{"../transit", "..", "a/b", "%2F", "tenant-1/../tenant-2", "Tenant", "t\x00", "x?list=true", "x#y"}
	for _, h := range hostile {
		s.Get(ctx, h, "notion")
		s.Put(ctx, h, "notion", vault.Credential{AccessToken: "evil"}, vault.AnyVersion)
		s.Delete(ctx, h, "notion")
		s.Integrations(ctx, h)
		s.Get(ctx, "tenant-1", h)
		s.Put(ctx, "tenant-1", h, vault.Credential{AccessToken: "evil"}, vault.AnyVersion)
		s.Delete(ctx, "tenant-1", h)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(paths) > 0 {
		t.Errorf("hostile names reached Vault: %q", paths)
	}
}

// TestHashiCorpPermissionDenied uses a token without the gateway's policy.
func TestHashiCorpPermissionDenied(t *testing.T) {
	v := startVault(t)
	token := v.token(t, "default")
	s := v.open(t, token)
	_, _, err := s.Get(t.Context(), "tenant-1", "notion")
	wantVaultError(t, err, "permission denied", token)
	_, err = s.Put(t.Context(), "tenant-1", "notion", vault.Credential{AccessToken: "secret_plant"}, 0)
	wantVaultError(t, err, "permission denied", token)
	if strings.Contains(err.Error(), "secret_plant") {
		t.Errorf("error %q contains the secret", err)
	}
	_, err = s.Tenants(t.Context())
	wantVaultError(t, err, "permission denied", token)
}

// TestHashiCorpUnreachable points the store at a port where nothing listens.
func TestHashiCorpUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := "http://" + ln.Addr().String()
	ln.Close()
	s, err := hashicorp.Open(hashicorp.Config{Addr: addr, Token: "hvs.planted-token", API: &api.Config{MaxRetries: 0}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, _, err = s.Get(t.Context(), "tenant-1", "notion")
	wantVaultError(t, err, "connection refused", "hvs.planted-token")
}

// TestHashiCorpCache: a read costs one KV read when the record is unchanged,
// and none within CacheTTL; a change made through another store is seen
// once CacheTTL has passed, one made through this store at once.
func TestHashiCorpCache(t *testing.T) {
	v := startVault(t)
	ttl := 300 * time.Millisecond
	a := v.open(t, v.root, func(c *hashicorp.Config) { c.CacheTTL = ttl })
	b := v.open(t, v.root, func(c *hashicorp.Config) { c.CacheTTL = ttl })
	ctx := t.Context()
	if _, err := a.Put(ctx, "tenant-1", "notion", vault.Credential{AccessToken: "one"}, 0); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := b.Get(ctx, "tenant-1", "notion"); got.AccessToken != "one" {
		t.Fatalf("b: Get = %q, want one", got.AccessToken)
	}
	if _, err := a.Put(ctx, "tenant-1", "notion", vault.Credential{AccessToken: "two"}, 1); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := a.Get(ctx, "tenant-1", "notion"); got.AccessToken != "two" {
		t.Errorf("a, right after its own Put: Get = %q, want two", got.AccessToken)
	}
	deadline := time.Now().Add(ttl + 2*time.Second)
	for {
		got, _, err := b.Get(ctx, "tenant-1", "notion")
		if err != nil {
			t.Fatal(err)
		}
		if got.AccessToken == "two" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("b still reads %q %v after a's update, CacheTTL %v", got.AccessToken, time.Since(deadline.Add(-ttl-2*time.Second)), ttl)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A delete through a is seen by a at once, by b within CacheTTL.
	if err := a.Delete(ctx, "tenant-1", "notion"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.Get(ctx, "tenant-1", "notion"); !vault.IsNotFound(err) {
		t.Errorf("a, right after its own Delete: Get error = %v, want not found", err)
	}
	time.Sleep(ttl)
	if _, _, err := b.Get(ctx, "tenant-1", "notion"); !vault.IsNotFound(err) {
		t.Errorf("b, CacheTTL after a's Delete: Get error = %v, want not found", err)
	}
}

// TestHashiCorpAppRole logs in with AppRole, with a token that expires
// quickly: the store keeps working past the token's max TTL.
func TestHashiCorpAppRole(t *testing.T) {
	v := startVault(t)
	if _, err := v.client.Logical().Write("auth/approle/role/gateway", map[string]any{
		"token_policies": "gateway-service",
		"token_ttl":      "2s",
		"token_max_ttl":  "4s",
	}); err != nil {
		t.Fatal(err)
	}
	rid, err := v.client.Logical().Read("auth/approle/role/gateway/role-id")
	if err != nil {
		t.Fatal(err)
	}
	sid, err := v.client.Logical().Write("auth/approle/role/gateway/secret-id", nil)
	if err != nil {
		t.Fatal(err)
	}
	roleID, secretID := rid.Data["role_id"].(string), sid.Data["secret_id"].(string)
	var logs bytes.Buffer
	var logMu sync.Mutex
	s := v.open(t, "", func(c *hashicorp.Config) {
		c.AppRole = &hashicorp.AppRole{RoleID: roleID, SecretID: secretID}
		c.CacheTTL = -1
		c.Logger = slog.New(slog.NewJSONHandler(&syncWriter{mu: &logMu, w: &logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	ctx := t.Context()
	version := int64(0)
	for i := range 14 { // 7s: past the 4s max TTL
		n, err := s.Put(ctx, "tenant-1", "notion", vault.Credential{AccessToken: fmt.Sprint("token-", i)}, version)
		if err != nil {
			t.Fatalf("Put after %v: %v", time.Duration(i)*500*time.Millisecond, err)
		}
		version = n
		time.Sleep(500 * time.Millisecond)
	}
	logMu.Lock()
	defer logMu.Unlock()
	if n := strings.Count(logs.String(), "vault_approle_login"); n < 2 {
		t.Errorf("logged in %d times over 7s with a 4s max TTL, want a re-login:\n%s", n, logs.String())
	}
	for _, secret := range []string{roleID, secretID, "token-1"} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("the logs contain a secret %q", secret)
		}
	}
}

type syncWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// TestHashiCorpRotate rotates a tenant's key while reads go on: every read
// succeeds, the records are rewrapped under the new key version, and the old
// version can be retired.
func TestHashiCorpRotate(t *testing.T) {
	v := startVault(t)
	s := v.open(t, v.root)
	reader := v.open(t, v.root, func(c *hashicorp.Config) { c.CacheTTL = -1 })
	ctx := t.Context()
	for _, i := range []string{"notion", "github", "slack"} {
		if _, err := s.Put(ctx, "tenant-1", i, vault.Credential{AccessToken: "at-" + i, RefreshToken: "rt-" + i}, 0); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Put(ctx, "tenant-2", "notion", vault.Credential{AccessToken: "other"}, 0); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var reads atomic.Int64
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				got, _, err := reader.Get(ctx, "tenant-1", "github")
				if err != nil || got.AccessToken != "at-github" {
					t.Errorf("Get during rotation = %q, %v", got.AccessToken, err)
					return
				}
				reads.Add(1)
			}
		})
	}
	for range 2 {
		if err := s.RotateTenantKey(ctx, "tenant-1"); err != nil {
			t.Fatalf("RotateTenantKey: %v", err)
		}
	}
	close(stop)
	wg.Wait()
	t.Logf("%d reads during rotation", reads.Load())

	for _, i := range []string{"notion", "github", "slack"} {
		rec := v.kvGet(t, "tenant-1/"+i)
		for _, f := range []string{"access_token", "refresh_token"} {
			if ct := rec[f].(string); !strings.HasPrefix(ct, "vault:v3:") {
				t.Errorf("tenant-1/%s %s = %.12s..., want it rewrapped under key version 3", i, f, ct)
			}
		}
	}
	// Retire the old versions: everything still opens.
	if _, err := v.client.Logical().Write("transit/keys/tenant-1/config", map[string]any{"min_decryption_version": 3}); err != nil {
		t.Fatal(err)
	}
	for _, i := range []string{"notion", "github", "slack"} {
		if got, _, err := reader.Get(ctx, "tenant-1", i); err != nil || got.AccessToken != "at-"+i || got.RefreshToken != "rt-"+i {
			t.Errorf("Get(tenant-1/%s) after retiring old key versions = %+v, %v", i, got, err)
		}
	}
	if rec := v.kvGet(t, "tenant-2/notion"); !strings.HasPrefix(rec["access_token"].(string), "vault:v1:") {
		t.Errorf("rotating tenant-1 touched tenant-2's record")
	}
}
