package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/connectors-gateway/connectors/internal/testenv"
)

// api sends method path with tenant's API key ("" for none; "admin" for
// the admin key) and returns the status and the decoded JSON body.
func (g *gateway) api(tenant, method, path, body string) (int, map[string]any, string) {
	g.t.Helper()
	code, _, out, raw := g.apiHeader(tenant, method, path, body)
	return code, out, raw
}

// apiHeader is api with the answer's headers.
func (g *gateway) apiHeader(tenant, method, path, body string) (int, http.Header, map[string]any, string) {
	g.t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, "http://"+g.addr+path, r)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if tenant != "" {
		req.Header.Set("Authorization", "Bearer "+g.keys[tenant])
	}
	resp, err := noRedirects.Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	return resp.StatusCode, resp.Header, out, string(raw)
}

// withAdmin creates an admin API key, as g.keys["admin"] (tenant ops), and
// a key for tenant-c, which has no credential yet.
func (g *gateway) withAdmin() {
	g.t.Helper()
	g.keys["admin"] = strings.TrimSpace(g.mustRun("", "apikey", "create", "--tenant", "ops", "--admin"))
	g.keys["tenant-c"] = strings.TrimSpace(g.mustRun("", "apikey", "create", "--tenant", "tenant-c"))
}

// seedCredential is the seed's example body (Option A, step 3).
const seedCredential = `{
  "accessToken": "secret_abc123_planted_9f8e7d",
  "tokenType": "bearer",
  "expiresIn": 0,
  "scopes": ["read:pages", "write:pages"]
}`

func TestCredentialRoutes(t *testing.T) {
	g := newGateway(t)
	g.withAdmin()
	g.serve()
	testCredentialRoutes(t, g)
}

// TestCredentialRoutesOnVault runs the same against a real Vault server,
// with only the shipped gateway policy.
func TestCredentialRoutesOnVault(t *testing.T) {
	addr, rootClient, token := gatewayVault(t)
	g := newGatewayWithEnv(t, map[string]string{"VAULT_ADDR": addr, "VAULT_TOKEN": token})
	g.withAdmin()
	g.serve()
	testCredentialRoutes(t, g)
	rec, err := rootClient.KVv2("secret").Get(t.Context(), "tenant-c/github")
	if err != nil {
		t.Fatal(err)
	}
	if at, _ := rec.Data["access_token"].(string); !strings.HasPrefix(at, "vault:v") {
		t.Errorf("secret/tenant-c/github access_token = %q, want Transit ciphertext", at)
	}
}

func testCredentialRoutes(t *testing.T, g *gateway) {
	const base = "/tenants/tenant-a/integrations"

	// Store (seed step 3): the seed's response, field by field.
	before := time.Now().UTC().Truncate(time.Second)
	status, out, raw := g.api("tenant-a", "POST", base+"/github/credentials", seedCredential)
	if status != http.StatusCreated {
		t.Fatalf("POST credentials: %d %s", status, raw)
	}
	encryptedAt, _ := time.Parse(time.RFC3339, out["encryptedAt"].(string))
	if encryptedAt.Before(before) || encryptedAt.After(time.Now().Add(time.Second)) {
		t.Errorf("encryptedAt = %v", out["encryptedAt"])
	}
	delete(out, "encryptedAt")
	if diff := cmp.Diff(map[string]any{"success": true, "tenantId": "tenant-a", "integration": "github", "expiresAt": nil}, out); diff != "" {
		t.Errorf("POST credentials response (-seed +got):\n%s", diff)
	}
	// With an expiry: expiresAt is when.
	_, out, _ = g.api("tenant-a", "POST", "/tenants/tenant-a/integrations/slack/credentials",
		`{"accessToken": "xoxb-planted-1", "refreshToken": "xoxe-planted-2", "expiresIn": 3600, "tokenType": "bearer", "scopes": ["chat:write"], "team_id": "T123"}`)
	if exp, err := time.Parse(time.RFC3339, out["expiresAt"].(string)); err != nil || exp.Sub(before) < 59*time.Minute || exp.Sub(before) > 61*time.Minute {
		t.Errorf("expiresAt for expiresIn 3600 = %v", out["expiresAt"])
	}

	// List (seed step 4).
	status, out, raw = g.api("tenant-a", "GET", base, "")
	if status != http.StatusOK || out["tenantId"] != "tenant-a" {
		t.Fatalf("GET integrations: %d %s", status, raw)
	}
	byName := map[string]map[string]any{}
	for _, item := range out["integrations"].([]any) {
		m := item.(map[string]any)
		byName[m["name"].(string)] = m
	}
	gh := byName["github"]
	if gh["category"] != "code" || gh["hasCredentials"] != true || gh["createdAt"] == nil || gh["expiresAt"] != nil || gh["status"] != "active" {
		t.Errorf("github in the list = %v", gh)
	}
	if _, present := gh["expiresAt"]; !present {
		t.Error("a never-expiring credential lists no expiresAt: the seed shows null")
	}
	if sl := byName["slack"]; sl["status"] != "active" || sl["expiresAt"] == nil {
		t.Errorf("slack in the list = %v", sl)
	}
	for _, name := range []string{"notion", "everything"} { // stored by newGateway
		if byName[name]["hasCredentials"] != true {
			t.Errorf("%s: %v", name, byName[name])
		}
	}
	// Every registered integration is listed; one without a credential
	// carries no dates (the seed's github example).
	status, out, raw = g.api("tenant-c", "GET", "/tenants/tenant-c/integrations", "")
	if status != http.StatusOK {
		t.Fatalf("GET integrations as tenant-c: %d %s", status, raw)
	}
	for _, item := range out["integrations"].([]any) {
		m := item.(map[string]any)
		_, created := m["createdAt"]
		_, expires := m["expiresAt"]
		if m["hasCredentials"] != false || created || expires {
			t.Errorf("tenant-c (no credentials) lists %v", m)
		}
	}

	// One integration: never a secret.
	status, out, raw = g.api("tenant-a", "GET", base+"/github", "")
	if status != http.StatusOK || out["name"] != "github" || out["hasCredentials"] != true || out["tenantId"] != "tenant-a" {
		t.Errorf("GET one: %d %s", status, raw)
	}
	for _, secret := range []string{"secret_abc123_planted_9f8e7d", "xoxb-planted-1", "xoxe-planted-2"} {
		if strings.Contains(raw, secret) {
			t.Errorf("GET one shows a token")
		}
	}

	// An admin acts for any tenant; tenant-c gets a credential that way.
	status, _, raw = g.api("admin", "POST", "/tenants/tenant-c/integrations/github/credentials", `{"accessToken": "ghp_planted_admin_put"}`)
	if status != http.StatusCreated {
		t.Errorf("admin POST for tenant-c: %d %s", status, raw)
	}

	// Revoke (seed step 5); open sessions hear that their tools changed.
	c := g.client("tenant-a")
	changed := collect(c, mcp.MethodNotificationToolsListChanged)
	status, out, raw = g.api("tenant-a", "DELETE", base+"/github/credentials", "")
	if status != http.StatusOK || out["success"] != true || out["tenantId"] != "tenant-a" || out["integration"] != "github" || out["revokedAt"] == nil {
		t.Errorf("DELETE credentials: %d %s", status, raw)
	}
	changed.waitFor(10*time.Second, func(n []map[string]any) bool { return len(n) > 0 })
	if _, out, _ = g.api("tenant-a", "GET", base+"/github", ""); out["hasCredentials"] != false {
		t.Errorf("after DELETE: %v", out)
	}
	status, out, _ = g.api("tenant-a", "DELETE", base+"/github/credentials", "")
	if status != http.StatusNotFound || out["error"] != "CredentialNotFoundError" {
		t.Errorf("DELETE again: %d %v, want 404 CredentialNotFoundError", status, out)
	}

	// Validation: each error names its field, nothing is stored.
	for _, tc := range []struct{ name, body, want string }{
		{"malformed JSON", `{"accessToken": `, "JSON object"},
		{"an array", `[{"accessToken": "x"}]`, "JSON object"},
		{"no accessToken", `{"tokenType": "bearer"}`, "accessToken"},
		{"accessToken a number", `{"accessToken": 12}`, "accessToken"},
		{"negative expiresIn", `{"accessToken": "x", "expiresIn": -1}`, "expiresIn"},
		{"expiresIn a string", `{"accessToken": "x", "expiresIn": "soon"}`, "expiresIn"},
		{"fractional expiresIn", `{"accessToken": "x", "expiresIn": 1.5}`, "expiresIn"},
		{"scopes a string", `{"accessToken": "x", "scopes": "repo"}`, "scopes"},
		{"an object extra", `{"accessToken": "x", "workspace": {"id": 1}}`, "workspace"},
		{"an extra named like a record field", `{"accessToken": "x", "access_token": "y"}`, "access_token"},
		{"two objects", `{"accessToken": "x"} {"accessToken": "y"}`, "one JSON object"},
	} {
		status, out, raw = g.api("tenant-a", "POST", base+"/github/credentials", tc.body)
		msg, _ := out["message"].(string)
		if status != http.StatusBadRequest || out["error"] != "ValidationError" || !strings.Contains(msg, tc.want) {
			t.Errorf("%s: %d %s, want 400 ValidationError naming %s", tc.name, status, raw, tc.want)
		}
	}
	status, out, _ = g.api("tenant-a", "POST", base+"/github/credentials", `{"accessToken": "`+strings.Repeat("x", 5<<20)+`"}`)
	if status != http.StatusRequestEntityTooLarge || out["error"] != "PayloadTooLarge" {
		t.Errorf("oversized body: %d %v", status, out)
	}
	status, out, _ = g.api("tenant-a", "POST", base+"/nope/credentials", `{"accessToken": "x"}`)
	if status != http.StatusNotFound || out["error"] != "IntegrationNotFound" {
		t.Errorf("unknown integration: %d %v", status, out)
	}
	if _, out, _ = g.api("tenant-a", "GET", base+"/github", ""); out["hasCredentials"] != false {
		t.Error("a refused POST stored a credential")
	}

	// Another tenant: every route refused, tenant-a's data untouched.
	for _, r := range []struct{ method, path, body string }{
		{"GET", "/tenants/tenant-a/integrations", ""},
		{"GET", "/tenants/tenant-a/integrations/notion", ""},
		{"POST", "/tenants/tenant-a/integrations/notion/credentials", `{"accessToken": "ntn_attacker"}`},
		{"DELETE", "/tenants/tenant-a/integrations/notion/credentials", ""},
		{"POST", "/api/v1/tools/invoke", `{"toolId": "notion.API-get-self", "tenantId": "tenant-a"}`},
		{"GET", "/admin/tenants/health", ""},
	} {
		status, out, _ = g.api("tenant-b", r.method, r.path, r.body)
		if status != http.StatusForbidden || out["error"] != "Forbidden" {
			t.Errorf("tenant-b %s %s: %d %v, want 403", r.method, r.path, status, out)
		}
		if status, _, _ = g.api("", r.method, r.path, r.body); status != http.StatusUnauthorized {
			t.Errorf("no credentials %s %s: %d, want 401", r.method, r.path, status)
		}
	}
	if !strings.Contains(g.stderr.String(), "tenant_access_denied") {
		t.Error("refused cross-tenant attempts are not recorded")
	}
	res, err := g.client("tenant-a").CallTool(t.Context(), mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "notion_API-get-self"}})
	if err != nil || !strings.Contains(toolText(t, res), "Acme Bot") {
		t.Errorf("tenant-a's notion after tenant-b's attempts: %v %v", res, err)
	}
	// Hostile tenant IDs in the path: refused before the store is asked.
	for _, id := range []string{"..%2Ftenant-a", "tenant-a%2F..%2Ftenant-b", "%2e%2e", "TENANT-A", "t%D0%B5nant-a", "tenant-a%00", strings.Repeat("a", 65)} {
		status, _, raw = g.api("tenant-a", "GET", "/tenants/"+id+"/integrations", "")
		if status != http.StatusBadRequest && status != http.StatusMovedPermanently {
			t.Errorf("GET /tenants/%s/integrations: %d %s, want 400", id, status, raw)
		}
	}

	// Invoke (seed step 6): the same path as tools/call.
	status, out, raw = g.api("tenant-a", "POST", "/api/v1/tools/invoke",
		`{"toolId": "notion.API-get-self", "integration": "notion", "tenantId": "tenant-a", "parameters": {}}`)
	if status != http.StatusOK || out["success"] != true || !strings.Contains(raw, "Acme Bot") {
		t.Errorf("invoke as tenant-a: %d %s", status, raw)
	}
	status, _, raw = g.api("tenant-b", "POST", "/api/v1/tools/invoke", `{"toolId": "notion.API-get-self"}`)
	if status != http.StatusOK || !strings.Contains(raw, "Beta Bot") {
		t.Errorf("invoke as tenant-b (tenantId left out): %d %s", status, raw)
	}
	for _, tc := range []struct {
		body   string
		status int
		name   string
	}{
		{`{"toolId": "notion"}`, 400, "ValidationError"},
		{`{"toolId": "notion.API-get-self", "integration": "github"}`, 400, "ValidationError"},
		{`{"toolId": "notion.API-get-self", "parameters": "x"}`, 400, "ValidationError"},
		{`{"toolId": "notion.API-get-self", "tenant": "tenant-b"}`, 400, "ValidationError"},
		{`{"toolId": "nope.tool"}`, 404, "IntegrationNotFound"},
		{`{"toolId": "notion.no-such-tool"}`, 404, "ToolNotFound"},
		{`{"toolId": "github.get_me"}`, 404, "CredentialNotFoundError"},
		{`{"toolId": "notion.API-get-self", "tenantId": "../tenant-b"}`, 400, "InvalidTenantId"},
	} {
		status, out, raw = g.api("tenant-a", "POST", "/api/v1/tools/invoke", tc.body)
		if status != tc.status || out["error"] != tc.name {
			t.Errorf("invoke %s: %d %s, want %d %s", tc.body, status, raw, tc.status, tc.name)
		}
	}

	// Per-tenant integration management: an admin narrows notion to one
	// tool, then turns it off, then on again; the tenant's session hears
	// each change, and tools/list, tools/call and invoke obey.
	c = g.client("tenant-a")
	changed = collect(c, mcp.MethodNotificationToolsListChanged)
	notionTools := func() []string {
		var out []string
		for _, n := range toolNames(t, c) {
			if strings.HasPrefix(n, "notion_") {
				out = append(out, n)
			}
		}
		return out
	}
	if len(notionTools()) < 2 {
		t.Fatalf("notion tools before any change: %v", notionTools())
	}
	status, out, raw = g.api("tenant-a", "PUT", base+"/notion", `{"tools": ["API-get-self"]}`)
	if status != http.StatusForbidden {
		t.Errorf("a tenant changing its own integrations: %d %s, want 403 (admins only)", status, raw)
	}
	status, out, raw = g.api("admin", "PUT", base+"/notion", `{"tools": ["API-get-self"]}`)
	if status != http.StatusOK || out["enabled"] != true || out["hasCredentials"] != true || !strings.Contains(raw, `"tools":["API-get-self"]`) {
		t.Fatalf("admin PUT notion tools: %d %s", status, raw)
	}
	changed.waitFor(10*time.Second, func(n []map[string]any) bool { return len(n) > 0 })
	if got := notionTools(); !cmp.Equal(got, []string{"notion_API-get-self"}) {
		t.Errorf("notion tools narrowed to API-get-self: %v", got)
	}
	if res, err := call(t.Context(), c, "notion_API-post-search", map[string]any{"query": "x"}); err == nil && !res.IsError {
		t.Error("a tool outside the allowlist could be called")
	}
	if status, out, _ = g.api("tenant-a", "POST", "/api/v1/tools/invoke", `{"toolId": "notion.API-post-search"}`); status != http.StatusNotFound {
		t.Errorf("invoke outside the allowlist: %d %v, want 404", status, out)
	}
	status, out, raw = g.api("admin", "DELETE", base+"/notion", "")
	if status != http.StatusOK || out["enabled"] != false || out["hasCredentials"] != true {
		t.Fatalf("admin DELETE notion: %d %s", status, raw)
	}
	if got := notionTools(); len(got) != 0 {
		t.Errorf("notion tools while turned off: %v", got)
	}
	if status, out, _ = g.api("tenant-a", "POST", "/api/v1/tools/invoke", `{"toolId": "notion.API-get-self"}`); status != http.StatusForbidden || out["error"] != "IntegrationDisabled" {
		t.Errorf("invoke while turned off: %d %v, want 403 IntegrationDisabled", status, out)
	}
	for _, body := range []string{`{"enabled": "yes"}`, `{"tools": "API-get-self"}`, `{"tools": [""]}`, `{"tool": []}`} {
		if status, out, raw = g.api("admin", "PUT", base+"/notion", body); status != http.StatusBadRequest {
			t.Errorf("PUT %s: %d %s, want 400", body, status, raw)
		}
	}
	if status, _, raw = g.api("admin", "PUT", base+"/notion", ""); status != http.StatusOK {
		t.Fatalf("admin PUT notion (on again, every tool): %d %s", status, raw)
	}
	if got := notionTools(); len(got) < 2 {
		t.Errorf("notion tools after turning it on again: %v", got)
	}

	// Admin health: the seed's shape, admins only.
	status, out, raw = g.api("admin", "GET", "/admin/tenants/health", "")
	if status != http.StatusOK {
		t.Fatalf("admin health: %d %s", status, raw)
	}
	for _, k := range []string{"totalTenants", "totalIntegrations", "healthy", "unhealthy", "details"} {
		if _, ok := out[k]; !ok {
			t.Errorf("admin health has no %s: %s", k, raw)
		}
	}
	if out["totalTenants"] != float64(3) || out["unhealthy"] != float64(0) {
		t.Errorf("admin health = %s", raw)
	}
	if !strings.Contains(raw, `{"tenantId":"tenant-a","integrations":{"everything":"healthy","notion":"healthy","slack":"healthy"}}`) {
		t.Errorf("admin health details = %s", raw)
	}
	status, out, _ = g.api("admin", "GET", "/admin/tenants/health?limit=1&after=tenant-a", "")
	if d := out["details"].([]any); status != http.StatusOK || len(d) != 1 || d[0].(map[string]any)["tenantId"] != "tenant-b" || out["nextAfter"] != "tenant-b" {
		t.Errorf("admin health page 2: %v", out)
	}
	status, out, raw = g.api("admin", "GET", "/admin/tenants/health?q=nt-b", "")
	if d, _ := out["details"].([]any); status != http.StatusOK || len(d) != 1 || d[0].(map[string]any)["tenantId"] != "tenant-b" || out["totalTenants"] != float64(1) {
		t.Errorf("admin health searched for nt-b: %d %s", status, raw)
	}
	for _, q := range []string{"A", "x%20y", "%3Cscript%3E", strings.Repeat("a", 65), "..%2F"} {
		if status, out, raw := g.api("admin", "GET", "/admin/tenants/health?q="+q, ""); status != http.StatusBadRequest || out["error"] != "ValidationError" || !strings.Contains(raw, "q:") {
			t.Errorf("admin health ?q=%s: %d %s, want 400 ValidationError naming q", q, status, raw)
		}
	}
	g.assertNoSecretsIn(raw)
	for _, secret := range []string{"secret_abc123_planted_9f8e7d", "xoxb-planted-1", "xoxe-planted-2", "ghp_planted_admin_put"} {
		if strings.Contains(g.stderr.String(), secret) {
			t.Errorf("a stored token appears in the log")
		}
	}
}

// TestCredentialRoutesVaultDown: with Vault unreachable the routes answer
// 503 with the seed's error name and no secret, and recover with it.
func TestCredentialRoutesVaultDown(t *testing.T) {
	addr, root := testenv.Vault(t)
	proxy := testenv.NewSwitchProxy(t, strings.TrimPrefix(addr, "http://"))
	g := newGatewayWithEnv(t, map[string]string{"VAULT_ADDR": proxy.URL(), "VAULT_TOKEN": root, "CONNECTORS_VAULT_CACHE_TTL": "0s"})
	g.serve()
	if status, _, raw := g.api("tenant-a", "GET", "/tenants/tenant-a/integrations", ""); status != http.StatusOK {
		t.Fatalf("with Vault up: %d %s", status, raw)
	}
	proxy.Cut(true)
	for _, r := range []struct{ method, path, body string }{
		{"GET", "/tenants/tenant-a/integrations", ""},
		{"GET", "/tenants/tenant-a/integrations/notion", ""},
		{"POST", "/tenants/tenant-a/integrations/notion/credentials", `{"accessToken": "ntn_while_down_planted"}`},
		{"DELETE", "/tenants/tenant-a/integrations/notion/credentials", ""},
	} {
		status, out, raw := g.api("tenant-a", r.method, r.path, r.body)
		// The API key itself lives in Vault: with Vault down the caller
		// cannot be authenticated either, which is a 503 too, not a 401.
		if status != http.StatusServiceUnavailable || out["error"] != "VaultError" || strings.Contains(raw, root) {
			t.Errorf("%s %s with Vault down: %d %s, want 503 VaultError", r.method, r.path, status, raw)
		}
	}
	if status, _, _ := g.api("", "GET", "/readyz", ""); status != http.StatusServiceUnavailable {
		t.Errorf("/readyz with Vault down: %d, want 503", status)
	}
	proxy.Cut(false)
	if status, out, raw := g.api("tenant-a", "GET", "/tenants/tenant-a/integrations/notion", ""); status != http.StatusOK || out["hasCredentials"] != true {
		t.Errorf("after Vault returned: %d %s", status, raw)
	}
	g.assertNoSecretsIn(root)
}
