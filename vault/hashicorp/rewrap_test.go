package hashicorp_test

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/vault/api"

	"github.com/connectors-gateway/connectors/vault"
	"github.com/connectors-gateway/connectors/vault/hashicorp"
)

// recordingStore opens a store on v through a proxy that records the path
// of every request, with logs into the returned buffer.
func recordingStore(t *testing.T, v *devVault) (s *hashicorp.Store, paths func(reset bool) []string, logs func() string) {
	t.Helper()
	target, _ := url.Parse(v.addr)
	var mu sync.Mutex
	var seen []string
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Method+" "+r.URL.Path)
		mu.Unlock()
		httputil.NewSingleHostReverseProxy(target).ServeHTTP(w, r)
	}))
	t.Cleanup(proxy.Close)
	var buf bytes.Buffer
	var logMu sync.Mutex
	s, err := hashicorp.Open(hashicorp.Config{
		Addr: proxy.URL, Token: v.root, API: &api.Config{MaxRetries: 0}, CacheTTL: -1,
		Logger: slog.New(slog.NewJSONHandler(&syncWriter{mu: &logMu, w: &buf}, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	paths = func(reset bool) []string {
		mu.Lock()
		defer mu.Unlock()
		out := seen
		if reset {
			seen = nil
		}
		return out
	}
	logs = func() string {
		logMu.Lock()
		defer logMu.Unlock()
		return buf.String()
	}
	return s, paths, logs
}

func countPrefix(paths []string, prefix string) int {
	n := 0
	for _, p := range paths {
		if strings.HasPrefix(p, prefix) {
			n++
		}
	}
	return n
}

// TestHashiCorpRotateStaysInVault: rotating a tenant whose key the store
// created (derived) rewraps every record with Transit's rewrap; a recording
// proxy in front of Vault sees no decrypt and no encrypt call, so no
// plaintext leaves Vault.
func TestHashiCorpRotateStaysInVault(t *testing.T) {
	v := startVault(t)
	s, paths, logs := recordingStore(t, v)
	ctx := t.Context()
	integrations := []string{"notion", "github", "slack"}
	for _, i := range integrations {
		if _, err := s.Put(ctx, "tenant-1", i, vault.Credential{AccessToken: "at-" + i, RefreshToken: "rt-" + i}, 0); err != nil {
			t.Fatal(err)
		}
	}
	if countPrefix(paths(true), "PUT /v1/transit/encrypt/tenant-1") == 0 {
		t.Fatal("the proxy saw no encrypt call: it is not in the way")
	}

	if err := s.RotateTenantKey(ctx, "tenant-1"); err != nil {
		t.Fatalf("RotateTenantKey: %v", err)
	}
	during := paths(true)
	for _, op := range []string{"decrypt", "encrypt"} {
		if n := countPrefix(during, "PUT /v1/transit/"+op+"/"); n > 0 {
			t.Errorf("RotateTenantKey made %d transit/%s calls (plaintext left Vault): %q", n, op, during)
		}
	}
	if n := countPrefix(during, "PUT /v1/transit/rewrap/tenant-1"); n != len(integrations) {
		t.Errorf("RotateTenantKey made %d transit/rewrap calls, want %d (one per record): %q", n, len(integrations), during)
	}
	if strings.Contains(logs(), "vault_rewrap_fallback") {
		t.Errorf("rotation of a derived key fell back:\n%s", logs())
	}
	for _, i := range integrations {
		rec := v.kvGet(t, "tenant-1/"+i)
		for _, f := range []string{"access_token", "refresh_token"} {
			if ct := rec[f].(string); !strings.HasPrefix(ct, "vault:v2:") {
				t.Errorf("tenant-1/%s %s = %.12s..., want it rewrapped under key version 2", i, f, ct)
			}
		}
		if got, _, err := s.Get(ctx, "tenant-1", i); err != nil || got.AccessToken != "at-"+i || got.RefreshToken != "rt-"+i {
			t.Errorf("Get(tenant-1/%s) after rotation = %+v, %v", i, got, err)
		}
	}
}

// TestHashiCorpHandMadeKey: a tenant key created by hand as the seed does
// (`vault write transit/keys/tenant-new type=aes256-gcm96`, not derived)
// keeps working: writes bind with associated data, reads open them, and
// rotation falls back to decrypting and encrypting again, logged.
func TestHashiCorpHandMadeKey(t *testing.T) {
	v := startVault(t)
	if _, err := v.client.Logical().Write("transit/keys/tenant-new", map[string]any{"type": "aes256-gcm96"}); err != nil {
		t.Fatal(err)
	}
	s, _, logs := recordingStore(t, v)
	ctx := t.Context()
	if _, err := s.Put(ctx, "tenant-new", "github", vault.Credential{AccessToken: "ghu_a", RefreshToken: "ghr_r"}, 0); err != nil {
		t.Fatalf("Put with a hand-made key: %v", err)
	}
	rec := v.kvGet(t, "tenant-new/github")
	if plain := transitDecrypt(t, v.client, "tenant-new", rec["access_token"].(string), "associated_data", "tenant-new/github/access_token"); plain != "ghu_a" {
		t.Errorf("decrypting by hand with the associated data = %q, want ghu_a", plain)
	}
	if got, _, err := s.Get(ctx, "tenant-new", "github"); err != nil || got.AccessToken != "ghu_a" || got.RefreshToken != "ghr_r" {
		t.Fatalf("Get with a hand-made key = %+v, %v", got, err)
	}
	// Another store, which has not learnt the key's mode from a write.
	other := v.open(t, v.token(t, "gateway-service"), func(c *hashicorp.Config) { c.CacheTTL = -1 })
	if got, _, err := other.Get(ctx, "tenant-new", "github"); err != nil || got.AccessToken != "ghu_a" {
		t.Fatalf("a second store: Get with a hand-made key = %+v, %v", got, err)
	}

	if err := s.RotateTenantKey(ctx, "tenant-new"); err != nil {
		t.Fatalf("RotateTenantKey with a hand-made key: %v", err)
	}
	rec = v.kvGet(t, "tenant-new/github")
	if ct := rec["access_token"].(string); !strings.HasPrefix(ct, "vault:v2:") {
		t.Errorf("access_token = %.12s..., want it under key version 2", ct)
	}
	if got, _, err := other.Get(ctx, "tenant-new", "github"); err != nil || got.AccessToken != "ghu_a" || got.RefreshToken != "ghr_r" {
		t.Errorf("Get after rotating a hand-made key = %+v, %v", got, err)
	}
	key, err := v.client.Logical().Read("transit/keys/tenant-new")
	if err != nil || key == nil || key.Data["derived"] != false {
		t.Errorf("the store changed the hand-made key: %v, %v", key, err)
	}
	t.Logf("rewrap fallback logged: %v", strings.Contains(logs(), "vault_rewrap_fallback"))
}
