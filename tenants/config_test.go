package tenants_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/connectors-gateway/connectors/tenants"
)

func TestLoadConfigExample(t *testing.T) {
	path := filepath.Join("..", "testdata", "tenants.example.json")
	cfg, err := tenants.LoadConfig(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	ref := func(tenant, integration, field string) tenants.Value {
		return tenants.Value{Ref: &tenants.Reference{Tenant: tenant, Integration: integration, Field: field}}
	}
	want := &tenants.Config{Path: path, Tenants: []tenants.TenantConfig{
		{ID: "tenant-001", Name: "Acme Corporation", Integrations: []tenants.IntegrationConfig{
			{Name: "notion", Credentials: tenants.CredentialValues{
				AccessToken: ref("tenant-001", "notion", "access_token"), TokenType: tenants.Value{Literal: "bearer"}}},
			{Name: "github", Credentials: tenants.CredentialValues{
				AccessToken:  ref("tenant-001", "github", "access_token"),
				RefreshToken: ref("tenant-001", "github", "refresh_token"),
				ExpiresAt:    ref("tenant-001", "github", "expires_at"),
				TokenType:    tenants.Value{Literal: "bearer"}}},
		}},
		{ID: "tenant-002", Name: "Beta Industries", Integrations: []tenants.IntegrationConfig{
			{Name: "notion", Credentials: tenants.CredentialValues{
				AccessToken: ref("tenant-002", "notion", "access_token"), TokenType: tenants.Value{Literal: "bearer"}}},
		}},
	}}
	if diff := cmp.Diff(want, cfg); diff != "" {
		t.Errorf("LoadConfig (-want +got):\n%s", diff)
	}
}

func TestParseConfigErrors(t *testing.T) {
	one := func(id, integration, creds string) string {
		return `{"tenants":[{"id":"` + id + `","name":"x","integrations":[{"name":"` + integration + `","credentials":` + creds + `}]}]}`
	}
	tests := []struct {
		name, file string
		want       tenants.ConfigError // Err is matched by wantText
		wantText   string
	}{
		{"not JSON", `{"tenants": [`, tenants.ConfigError{}, "malformed JSON"},
		{"trailing data", `{"tenants": []} {}`, tenants.ConfigError{}, "after the top-level value"},
		{"unknown top-level field", `{"tenants": [], "extra": 1}`, tenants.ConfigError{}, `unknown field "extra"`},
		{"no tenants", `{}`, tenants.ConfigError{}, "tenants"},
		{"unknown tenant field", `{"tenants":[{"id":"tenant-001","owner":"x"}]}`, tenants.ConfigError{Tenant: "#1"}, `unknown field "owner"`},
		{"bad tenant ID", one("../tenant-002", "notion", `{"accessToken":"a"}`), tenants.ConfigError{Tenant: `"../tenant-002"`, Field: "id"}, "invalid tenant ID"},
		{"duplicate tenant", `{"tenants":[{"id":"t1"},{"id":"t1"}]}`, tenants.ConfigError{Tenant: "t1", Field: "id"}, "twice"},
		{"bad integration", one("t1", "no/tion", `{"accessToken":"a"}`), tenants.ConfigError{Tenant: "t1", Integration: `"no/tion"`, Field: "name"}, "invalid"},
		{"unknown credential field", one("t1", "notion", `{"accessToken":"a","password":"p"}`), tenants.ConfigError{Tenant: "t1", Integration: "notion", Field: "credentials"}, `unknown field "password"`},
		{"no credentials", one("t1", "notion", `null`), tenants.ConfigError{Tenant: "t1", Integration: "notion", Field: "credentials"}, "missing"},
		{"no access token", one("t1", "notion", `{"tokenType":"bearer"}`), tenants.ConfigError{Tenant: "t1", Integration: "notion", Field: "accessToken"}, "missing"},
		{"bad expiry", one("t1", "notion", `{"accessToken":"a","expiresAt":"tomorrow"}`), tenants.ConfigError{Tenant: "t1", Integration: "notion", Field: "expiresAt"}, "RFC 3339"},
		{"other tenant's record", one("t1", "notion", `{"accessToken":"${VAULT:secret/data/t2/notion:access_token}"}`), tenants.ConfigError{Tenant: "t1", Integration: "notion", Field: "accessToken"}, "own record secret/data/t1/notion"},
		{"traversal", one("t1", "notion", `{"accessToken":"${VAULT:secret/data/t1/../t2/notion:access_token}"}`), tenants.ConfigError{Tenant: "t1", Integration: "notion", Field: "accessToken"}, "own record"},
		{"other integration", one("t1", "notion", `{"accessToken":"${VAULT:secret/data/t1/github:access_token}"}`), tenants.ConfigError{Tenant: "t1", Integration: "notion", Field: "accessToken"}, "own record"},
		{"other mount", one("t1", "notion", `{"accessToken":"${VAULT:kv/data/t1/notion:access_token}"}`), tenants.ConfigError{Tenant: "t1", Integration: "notion", Field: "accessToken"}, "own record"},
		{"other field", one("t1", "notion", `{"accessToken":"${VAULT:secret/data/t1/notion:refresh_token}"}`), tenants.ConfigError{Tenant: "t1", Integration: "notion", Field: "accessToken"}, "field access_token"},
		{"malformed reference", one("t1", "notion", `{"accessToken":"${VAULT:secret/data/t1/notion"}`), tenants.ConfigError{Tenant: "t1", Integration: "notion", Field: "accessToken"}, "malformed reference"},
		{"other scheme", one("t1", "notion", `{"accessToken":"${ENV:TOKEN}"}`), tenants.ConfigError{Tenant: "t1", Integration: "notion", Field: "accessToken"}, "malformed reference"},
		{"literal beside references", one("t1", "notion", `{"accessToken":"${VAULT:secret/data/t1/notion:access_token}","refreshToken":"r"}`), tenants.ConfigError{Tenant: "t1", Integration: "notion", Field: "refreshToken"}, "literal value beside references"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tenants.ParseConfig("tenants.json", []byte(tt.file), nil)
			var ce *tenants.ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v (%T), want *tenants.ConfigError", err, err)
			}
			tt.want.File = "tenants.json"
			got := *ce
			got.Err = nil
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("where (-want +got):\n%s", diff)
			}
			if !strings.Contains(err.Error(), tt.wantText) || !strings.HasPrefix(err.Error(), "tenant config tenants.json") {
				t.Errorf("err = %q, want it to name the file and mention %q", err, tt.wantText)
			}
		})
	}
}

func TestParseConfigUnknownIntegration(t *testing.T) {
	file := `{"tenants":[{"id":"t1","integrations":[{"name":"jira","credentials":{"accessToken":"a"}}]}]}`
	_, err := tenants.ParseConfig("f.json", []byte(file), &tenants.ConfigOptions{
		CheckIntegration: func(name string) error { return errors.New("unknown integration " + name) },
	})
	if err == nil || !strings.Contains(err.Error(), "tenant t1: integration \"jira\": field name: unknown integration jira") {
		t.Errorf("err = %v", err)
	}
}
