package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/connectors-gateway/connectors/internal/testidp"
)

const resource = "https://gateway.test/mcp"

// newOIDCGateway is newGateway with a real OpenID provider on loopback:
// clients "agent-a" and "agent-b" get tokens for tenant-a and tenant-b
// with the mcp scope; "agent-noscope" gets tenant-a's without it.
func newOIDCGateway(t *testing.T) (*gateway, *testidp.IDP) {
	t.Helper()
	idp := testidp.Start(t)
	for id, tenant := range map[string]string{"agent-a": "tenant-a", "agent-b": "tenant-b", "agent-noscope": "tenant-a"} {
		scopes := []string{"mcp"}
		if id == "agent-noscope" {
			scopes = nil
		}
		idp.AddClient(testidp.Client{ID: id, Secret: "s3cret-" + id, Audience: []string{resource},
			Claims: map[string]any{"tenant_id": tenant}, Scopes: scopes})
	}
	g := newGateway(t)
	g.env["CONNECTORS_OIDC_ISSUER"] = idp.Issuer
	g.env["CONNECTORS_RESOURCE"] = resource
	g.env["CONNECTORS_OIDC_SCOPES"] = "mcp"
	g.serve()
	return g, idp
}

// bearer is an Authorization header for token (none for "").
func bearerHeader(token string) http.Header {
	if token == "" {
		return nil
	}
	return http.Header{"Authorization": {"Bearer " + token}}
}

// TestOIDCTokens: an agent signs in at the OpenID provider and uses the
// gateway with the access token; the tenant comes from the token, the
// upstream sees the tenant's stored credential and never the token.
func TestOIDCTokens(t *testing.T) {
	g, idp := newOIDCGateway(t)
	token := idp.Token(t, "agent-a", "mcp")

	c, err := client.NewStreamableHttpClient("http://"+g.addr+"/mcp",
		transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + token}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if err := c.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Initialize(t.Context(), mcp.InitializeRequest{}); err != nil {
		t.Fatal(err)
	}
	res, err := c.CallTool(t.Context(), mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "notion_API-get-self"}})
	if err != nil || !strings.Contains(toolText(t, res), "Acme Bot") {
		t.Fatalf("call with tenant-a's OIDC token: %v, %v", res, err)
	}
	for _, r := range g.notion.Requests() {
		if r.Token != tokenA {
			t.Errorf("Notion saw a token other than tenant-a's stored credential")
		}
	}

	// API keys keep working beside OIDC.
	if _, err := g.client("tenant-b").ListTools(t.Context(), mcp.ListToolsRequest{}); err != nil {
		t.Errorf("API key beside OIDC: %v", err)
	}

	// The MCP Inspector CLI connects with the provider's token.
	out := inspector(t, g, "http://"+g.addr+"/mcp", "--transport", "http",
		"--header", "Authorization: Bearer "+idp.Token(t, "agent-b", "mcp"), "--method", "tools/list")
	if !strings.Contains(out, "notion_API-get-self") {
		t.Errorf("Inspector tools/list with an OIDC token: %.300s", out)
	}
	g.assertNoSecretsIn(token)
}

// TestOIDCChallenges: what an MCP client that follows the authorization
// specification sees before and after signing in.
func TestOIDCChallenges(t *testing.T) {
	g, idp := newOIDCGateway(t)
	metadata := `resource_metadata="https://gateway.test/.well-known/oauth-protected-resource/mcp"`
	tests := []struct {
		name       string
		token      string
		wantStatus int
		wantHeader []string
	}{
		{"no token", "", 401, []string{"Bearer ", metadata, `scope="mcp"`}},
		{"garbage", "not-a-jwt", 401, []string{`error="invalid_token"`, metadata}},
		{"tampered", idp.Token(t, "agent-a", "mcp") + "x", 401, []string{`error="invalid_token"`}},
		{"lacks the mcp scope", idp.Token(t, "agent-noscope"), 403, []string{`error="insufficient_scope"`, `scope="mcp"`, metadata}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := post(t, g, http.MethodPost, initializeBody, bearerHeader(tt.token))
			got := resp.Header.Get("WWW-Authenticate")
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("status %d (%s), want %d", resp.StatusCode, body, tt.wantStatus)
			}
			for _, want := range tt.wantHeader {
				if !strings.Contains(got, want) {
					t.Errorf("WWW-Authenticate %q lacks %s", got, want)
				}
			}
		})
	}

	for _, path := range []string{"/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp"} {
		resp, err := http.Get("http://" + g.addr + path)
		if err != nil {
			t.Fatal(err)
		}
		var meta struct {
			Resource             string   `json:"resource"`
			AuthorizationServers []string `json:"authorization_servers"`
			Scopes               []string `json:"scopes_supported"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&meta)
		resp.Body.Close()
		if meta.Resource != resource || len(meta.AuthorizationServers) != 1 || meta.AuthorizationServers[0] != idp.Issuer || len(meta.Scopes) != 1 {
			t.Errorf("%s = %+v", path, meta)
		}
	}
}

// TestOIDCCrossTenant: tenant-a's token cannot use a session tenant-b
// opened, and never sees tenant-b's tools or data.
func TestOIDCCrossTenant(t *testing.T) {
	g, idp := newOIDCGateway(t)
	resp, _ := post(t, g, http.MethodPost, initializeBody, bearerHeader(idp.Token(t, "agent-b", "mcp")))
	session := resp.Header.Get("Mcp-Session-Id")
	if resp.StatusCode != 200 || session == "" {
		t.Fatalf("tenant-b initialize: %d, session %q", resp.StatusCode, session)
	}
	h := bearerHeader(idp.Token(t, "agent-a", "mcp"))
	h.Set("Mcp-Session-Id", session)
	h.Set("MCP-Protocol-Version", "2025-11-25")
	r2, _ := post(t, g, http.MethodPost, `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`, h)
	if r2.StatusCode != http.StatusNotFound {
		t.Errorf("tenant-a's token on tenant-b's session: %d, want 404", r2.StatusCode)
	}
}

// TestOIDCRoutes: the credential routes with OAuth tokens from the
// provider. A tenant's token reaches only its own tenant; an admin's
// needs the admin role and, for admin routes, the admin scope.
func TestOIDCRoutes(t *testing.T) {
	idp := testidp.Start(t)
	clients := map[string]testidp.Client{
		"agent-a":         {Claims: map[string]any{"tenant_id": "tenant-a"}, Scopes: []string{"mcp"}},
		"ops-noscope":     {Claims: map[string]any{"tenant_id": "ops", "roles": []string{"connectors-admin"}}, Scopes: []string{"mcp"}},
		"ops":             {Claims: map[string]any{"tenant_id": "ops", "roles": []string{"connectors-admin"}}, Scopes: []string{"mcp", "connectors:admin"}},
		"agent-a-pretend": {Claims: map[string]any{"tenant_id": "tenant-a"}, Scopes: []string{"mcp", "connectors:admin"}},
	}
	for id, c := range clients {
		c.ID, c.Secret, c.Audience = id, "s3cret-"+id, []string{resource}
		idp.AddClient(c)
	}
	g := newGatewayWithEnv(t, map[string]string{
		"CONNECTORS_OIDC_ISSUER":       idp.Issuer,
		"CONNECTORS_RESOURCE":          resource,
		"CONNECTORS_OIDC_SCOPES":       "mcp",
		"CONNECTORS_OIDC_ADMIN_ROLE":   "connectors-admin",
		"CONNECTORS_OIDC_ADMIN_SCOPES": "connectors:admin",
	})
	g.serve()
	request := func(client, method, path string) (int, string, string) {
		t.Helper()
		req, _ := http.NewRequest(method, "http://"+g.addr+path, nil)
		req.Header.Set("Authorization", "Bearer "+idp.Token(t, client, clients[client].Scopes...))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header.Get("WWW-Authenticate")
	}
	for _, tc := range []struct {
		client, method, path string
		status               int
		contains             string
	}{
		{"agent-a", "GET", "/tenants/tenant-a/integrations", 200, `"tenantId":"tenant-a"`},
		{"agent-a", "GET", "/tenants/tenant-b/integrations", 403, "Forbidden"},
		{"agent-a", "DELETE", "/tenants/tenant-b/integrations/notion/credentials", 403, "Forbidden"},
		{"agent-a-pretend", "GET", "/tenants/tenant-b/integrations", 403, "Forbidden"}, // the scope without the role
		{"agent-a-pretend", "GET", "/admin/tenants/health", 403, "Forbidden"},
		{"ops-noscope", "GET", "/admin/tenants/health", 403, "InsufficientScope"},
		{"ops-noscope", "GET", "/tenants/tenant-b/integrations", 403, "InsufficientScope"},
		{"ops", "GET", "/admin/tenants/health", 200, `"totalTenants":2`},
		{"ops", "GET", "/tenants/tenant-b/integrations", 200, `"tenantId":"tenant-b"`},
	} {
		status, body, challenge := request(tc.client, tc.method, tc.path)
		if status != tc.status || !strings.Contains(body, tc.contains) {
			t.Errorf("%s %s %s: %d %s, want %d %s", tc.client, tc.method, tc.path, status, body, tc.status, tc.contains)
		}
		if tc.contains == "InsufficientScope" && !strings.Contains(challenge, `error="insufficient_scope"`) || tc.contains == "InsufficientScope" && !strings.Contains(challenge, "connectors:admin") {
			t.Errorf("%s %s: WWW-Authenticate %q, want insufficient_scope naming connectors:admin", tc.client, tc.path, challenge)
		}
	}
	// tenant-b's data is untouched by the refused attempts.
	status, body, _ := request("ops", "GET", "/tenants/tenant-b/integrations/notion")
	if status != 200 || !strings.Contains(body, `"hasCredentials":true`) {
		t.Errorf("tenant-b's notion after the refused attempts: %d %s", status, body)
	}
}
