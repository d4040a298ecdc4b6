package main

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/connectors-gateway/connectors/internal/testenv"
	"github.com/connectors-gateway/connectors/tenants"
	"github.com/connectors-gateway/connectors/tools"
	"github.com/connectors-gateway/connectors/vault/embedded"
	"github.com/connectors-gateway/connectors/vault/hashicorp"
)

func presetRegistry(t *testing.T) *tools.Registry {
	t.Helper()
	reg, err := tools.NewRegistry(tools.Presets()...)
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

func writeTenantConfig(t *testing.T, body string) Config {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tenants.json")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return Config{TenantConfigFile: true, TenantConfigPath: path}
}

func TestTenantConfigEnv(t *testing.T) {
	c, err := configFromEnv(func(k string) string { return map[string]string{"ENABLE_TENANT_CONFIG_FILE": "true"}[k] })
	if err != nil || !c.TenantConfigFile || c.TenantConfigPath != filepath.Join("config", "tenants.json") {
		t.Errorf("configFromEnv = %v, %q, %v", c.TenantConfigFile, c.TenantConfigPath, err)
	}
	if _, err := configFromEnv(func(k string) string { return map[string]string{"ENABLE_TENANT_CONFIG_FILE": "yes please"}[k] }); err == nil {
		t.Error("ENABLE_TENANT_CONFIG_FILE=yes please accepted")
	}
}

// TestTenantConfigSyncEmbedded syncs literal credentials into the embedded
// store, leaves an identical record alone, and stops on a reference that
// does not resolve or an unknown integration.
func TestTenantConfigSyncEmbedded(t *testing.T) {
	st, err := embedded.Open(filepath.Join(t.TempDir(), "s.db"), &embedded.Options{MasterKey: make([]byte, 32)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ctx, log, reg := t.Context(), slog.New(slog.DiscardHandler), presetRegistry(t)

	cfg := writeTenantConfig(t, `{"tenants":[{"id":"tenant-001","name":"Acme","integrations":[
		{"name":"github","credentials":{"accessToken":"ghp_lit","refreshToken":"ghr_lit","expiresAt":"2030-01-02T03:04:05Z","tokenType":"bearer"}}]}]}`)
	for range 2 {
		if err := syncTenantConfig(ctx, cfg, st, reg, log); err != nil {
			t.Fatal(err)
		}
	}
	c, version, err := st.Get(ctx, "tenant-001", "github")
	if err != nil || c.AccessToken != "ghp_lit" || c.RefreshToken != "ghr_lit" || c.TokenType != "bearer" ||
		!c.ExpiresAt.Equal(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)) {
		t.Errorf("synced credential = %+v, %v", c, err)
	}
	if version != 1 {
		t.Errorf("version after syncing twice = %d, want 1 (an identical record is not rewritten)", version)
	}
	// The file's tenant starts with the integrations it lists, and no other.
	rec, _, err := st.GetTenantSettings(ctx, "tenant-001")
	settings, perr := tenants.ParseSettings(rec)
	if err != nil || perr != nil || !settings.Enabled("github") || settings.Enabled("notion") || settings.Enabled("slack") {
		t.Errorf("settings of the file's tenant = %+v (%v, %v), want github only", settings, err, perr)
	}
	// An admin's later change survives the next start.
	settings.Set("notion", true, nil)
	if _, err := st.PutTenantSettings(ctx, "tenant-001", settings.Marshal(), 1); err != nil {
		t.Fatal(err)
	}
	if err := syncTenantConfig(ctx, cfg, st, reg, log); err != nil {
		t.Fatal(err)
	}
	rec, _, _ = st.GetTenantSettings(ctx, "tenant-001")
	if settings, _ = tenants.ParseSettings(rec); !settings.Enabled("notion") {
		t.Error("a restart undid an admin's change to a file tenant's integrations")
	}

	for _, tt := range []struct{ name, body, want string }{
		{"unresolved reference", `{"tenants":[{"id":"tenant-001","integrations":[{"name":"notion","credentials":{"accessToken":"${VAULT:secret/data/tenant-001/notion:access_token}"}}]}]}`,
			"tenant tenant-001: integration notion: field accessToken: reference does not resolve"},
		{"missing field", `{"tenants":[{"id":"tenant-001","integrations":[{"name":"github","credentials":{"accessToken":"${VAULT:secret/data/tenant-001/github:access_token}","refreshToken":"${VAULT:secret/data/tenant-001/github:refresh_token}","expiresAt":"${VAULT:secret/data/tenant-001/github:expires_at}"}}]}]}`,
			""},
		{"unknown integration", `{"tenants":[{"id":"tenant-001","integrations":[{"name":"jira","credentials":{"accessToken":"a"}}]}]}`,
			`tenant tenant-001: integration "jira": field name: unknown integration "jira"`},
		{"other tenant", `{"tenants":[{"id":"tenant-002","integrations":[{"name":"github","credentials":{"accessToken":"${VAULT:secret/data/tenant-001/github:access_token}"}}]}]}`,
			"tenant tenant-002: integration github: field accessToken: reference must name the tenant's own record"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := syncTenantConfig(ctx, writeTenantConfig(t, tt.body), st, reg, log)
			if tt.want == "" {
				if err != nil {
					t.Errorf("references to the synced record: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

// TestTenantConfigVault loads the seed's example against a real Vault whose
// records were written by hand as the seed's "vault kv put" commands do.
func TestTenantConfigVault(t *testing.T) {
	addr, root := testenv.Vault(t)
	c, err := api.NewClient(&api.Config{Address: addr})
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken(root)
	st, err := hashicorp.Open(hashicorp.Config{Addr: addr, Token: root, API: &api.Config{MaxRetries: 0}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ctx, log, reg := t.Context(), slog.New(slog.DiscardHandler), presetRegistry(t)
	cfg := Config{TenantConfigFile: true, TenantConfigPath: filepath.Join(testenv.Root(), "testdata", "tenants.example.json")}

	put := func(path string, data map[string]any) {
		if _, err := c.KVv2("secret").Put(ctx, path, data); err != nil {
			t.Fatal(err)
		}
	}
	put("tenant-001/notion", map[string]any{"access_token": "secret_notion_token_abc123", "token_type": "bearer", "bot_id": "bot-123"})
	put("tenant-001/github", map[string]any{"access_token": "ghp_abc123", "refresh_token": "ghr_xyz789",
		"expires_at": "2030-01-01T00:00:00Z", "token_type": "bearer"})
	err = syncTenantConfig(ctx, cfg, st, reg, log)
	if err == nil || !strings.Contains(err.Error(), "tenant tenant-002: integration notion: field accessToken") {
		t.Fatalf("sync without tenant-002's record: err = %v", err)
	}
	if strings.Contains(err.Error(), root) {
		t.Error("the error contains the Vault token")
	}
	put("tenant-002/notion", map[string]any{"access_token": "secret_notion_token_def456", "token_type": "bearer"})
	if err := syncTenantConfig(ctx, cfg, st, reg, log); err != nil {
		t.Fatalf("sync of the seed's example: %v", err)
	}
	// Literal credentials are sealed with the tenant's Transit key.
	lit := writeTenantConfig(t, `{"tenants":[{"id":"tenant-003","integrations":[{"name":"notion","credentials":{"accessToken":"ntn_literal"}}]}]}`)
	lit.VaultKVEngine = "secret"
	if err := syncTenantConfig(ctx, lit, st, reg, log); err != nil {
		t.Fatal(err)
	}
	rec, err := c.KVv2("secret").Get(ctx, "tenant-003/notion")
	if err != nil {
		t.Fatal(err)
	}
	if at, _ := rec.Data["access_token"].(string); !strings.HasPrefix(at, "vault:v1:") {
		t.Errorf("literal credential stored as %q, want Transit ciphertext", at)
	}
}
