package transport

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"

	"github.com/connectors-gateway/connectors/internal/testidp"
	"github.com/connectors-gateway/connectors/server"
	"github.com/connectors-gateway/connectors/tenants"
)

const oidcResource = "https://gateway.test/mcp"

// apiKeyTable stands in for tenants.APIKeys and records the keys it was
// asked about.
type apiKeyTable struct {
	keys map[string]tenants.Identity

	mu    sync.Mutex
	asked []string // guarded by mu
}

func (k *apiKeyTable) Verify(_ context.Context, key string) (tenants.Identity, error) {
	k.mu.Lock()
	k.asked = append(k.asked, key)
	k.mu.Unlock()
	if id, ok := k.keys[key]; ok {
		return id, nil
	}
	return tenants.Identity{}, tenants.ErrInvalidAPIKey
}

// oidcSetup starts a provider with service clients of tenants a and b and
// returns it with a verifier of its tokens.
func oidcSetup(t *testing.T) (*testidp.IDP, *tenants.OIDCVerifier) {
	t.Helper()
	idp := testidp.Start(t)
	for _, tenant := range []string{"tenant-a", "tenant-b"} {
		idp.AddClient(testidp.Client{ID: "svc-" + tenant, Secret: "s", Audience: []string{oidcResource},
			Claims: map[string]any{"tenant_id": tenant}, Scopes: []string{"mcp"}})
	}
	idp.AddClient(testidp.Client{ID: "svc-no-tenant", Secret: "s", Audience: []string{oidcResource}, Scopes: []string{"mcp"}})
	v, err := tenants.NewOIDCVerifier(t.Context(), tenants.OIDCConfig{Issuer: idp.Issuer, Audience: oidcResource})
	if err != nil {
		t.Fatal(err)
	}
	return idp, v
}

const testAPIKey = "cgw_0123456789abcdef_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

func TestChainRoutes(t *testing.T) {
	idp, v := oidcSetup(t)
	keys := &apiKeyTable{keys: map[string]tenants.Identity{
		testAPIKey: {Tenant: "tenant-k", Subject: "apikey:0123456789abcdef"},
	}}
	chain := Chain{OIDCAuth{Verifier: v}, APIKeyAuth{Keys: keys}}
	token := idp.Token(t, "svc-tenant-a", "mcp")

	tests := []struct {
		name      string
		header    map[string]string
		want      tenants.Identity
		wantErr   error
		wantAsked []string // keys APIKeyAuth was asked about
	}{
		{"OIDC token", map[string]string{"Authorization": "Bearer " + token},
			tenants.Identity{Tenant: "tenant-a", Subject: "oidc:svc-tenant-a", Scopes: []string{"mcp"}}, nil, nil},
		{"API key as bearer", map[string]string{"Authorization": "Bearer " + testAPIKey},
			tenants.Identity{Tenant: "tenant-k", Subject: "apikey:0123456789abcdef"}, nil, []string{testAPIKey}},
		{"API key in X-API-Key", map[string]string{"X-API-Key": testAPIKey},
			tenants.Identity{Tenant: "tenant-k", Subject: "apikey:0123456789abcdef"}, nil, []string{testAPIKey}},
		{"unknown API key", map[string]string{"Authorization": "Bearer cgw_nope"},
			tenants.Identity{}, tenants.ErrInvalidAPIKey, []string{"cgw_nope"}},
		{"bad JWT is not tried as an API key", map[string]string{"Authorization": "Bearer " + token + "x"},
			tenants.Identity{}, tenants.ErrInvalidSignature, nil},
		{"opaque token", map[string]string{"Authorization": "Bearer opaque"},
			tenants.Identity{}, tenants.ErrMalformed, nil},
		{"no credentials", nil, tenants.Identity{}, ErrNoCredentials, nil},
		{"basic auth", map[string]string{"Authorization": "Basic dTpw"}, tenants.Identity{}, ErrNoCredentials, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys.mu.Lock()
			keys.asked = nil
			keys.mu.Unlock()
			r := httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/mcp", nil)
			for k, v := range tt.header {
				r.Header.Set(k, v)
			}
			got, err := chain.Authenticate(r)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("Authenticate error = %v, want %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("identity (-want +got):\n%s", diff)
			}
			keys.mu.Lock()
			defer keys.mu.Unlock()
			if diff := cmp.Diff(tt.wantAsked, keys.asked); diff != "" {
				t.Errorf("keys APIKeyAuth was asked about (-want +got):\n%s", diff)
			}
		})
	}
}

// TestOIDCOverHTTP runs the gateway's HTTP handler with the chain: a
// provider's token opens a session bound to its tenant, the tool never sees
// the token, and tokens the verifier refuses get 401.
func TestOIDCOverHTTP(t *testing.T) {
	idp, v := oidcSetup(t)
	srv := mcpserver.NewMCPServer("test", "1")
	srv.AddTool(mcp.NewTool("whoami"), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		id, _ := tenants.FromContext(ctx)
		return mcp.NewToolResultText(id.Tenant + "|" + id.Subject + "|" + req.Header.Get("Authorization")), nil
	})
	h := NewHTTP(HTTPOptions{MCP: server.NewHandler(srv, nil, server.HTTPOptions{}), Auth: Chain{OIDCAuth{Verifier: v}, APIKeyAuth{Keys: &apiKeyTable{}}}})
	ts := httptest.NewServer(h)
	t.Cleanup(func() { ts.Close(); _ = h.Close(context.Background()) })

	tokenA := idp.Token(t, "svc-tenant-a", "mcp")
	tokenB := idp.Token(t, "svc-tenant-b", "mcp")
	session := initialize(t, ts, tokenA)
	resp, body := do(t, ts, req{Body: callWhoami, Key: tokenA, Session: session})
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `tenant-a|oidc:svc-tenant-a|`) {
		t.Fatalf("whoami with tenant A's token: %d %s", resp.StatusCode, body)
	}
	if strings.Contains(body, tokenA) {
		t.Fatalf("the agent's token reached the tool: %s", body)
	}

	tests := []struct {
		name  string
		token string
		want  int
	}{
		{"tenant B's token on A's session", tokenB, http.StatusNotFound},
		{"tampered token", tokenA[:len(tokenA)-4] + "AAAA", http.StatusUnauthorized},
		{"token without tenant", idp.Token(t, "svc-no-tenant", "mcp"), http.StatusUnauthorized},
		{"no token", "", http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := do(t, ts, req{Body: callWhoami, Key: tt.token, Session: session})
			if resp.StatusCode != tt.want {
				t.Errorf("got %d %s, want %d", resp.StatusCode, body, tt.want)
			}
			if tt.want == http.StatusUnauthorized && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("401 without a Bearer challenge: %q", resp.Header.Get("WWW-Authenticate"))
			}
		})
	}
}
