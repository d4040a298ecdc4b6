package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/connectors-gateway/connectors/internal/testidp"
)

// auditRecords returns the audit records in the gateway's stderr (the
// default audit log) of one request.
func (g *gateway) auditRecords(requestID string) []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(g.stderr.String()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var rec map[string]any
		if json.Unmarshal(sc.Bytes(), &rec) != nil || rec["msg"] != "tenant_credential_access" || rec["requestId"] != requestID {
			continue
		}
		out = append(out, rec)
	}
	return out
}

// send sends one request as tenant with its content type and headers,
// and returns the status, the error name and the request's ID.
func (g *gateway) send(tenant, method, path, contentType, body string, header map[string]string) (status int, errName, requestID string) {
	g.t.Helper()
	req, _ := http.NewRequest(method, "http://"+g.addr+path, strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Authorization", "Bearer "+g.keys[tenant])
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := noRedirects.Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var e struct{ Error any }
	_ = json.Unmarshal(raw, &e)
	name, _ := e.Error.(string)
	return resp.StatusCode, name, resp.Header.Get("X-Request-Id")
}

func TestRefusedAttemptsAudited(t *testing.T) {
	testRefusedAttemptsAudited(t, nil)
}

func TestRefusedAttemptsAuditedOnVault(t *testing.T) {
	addr, _, token := gatewayVault(t)
	testRefusedAttemptsAudited(t, map[string]string{"VAULT_ADDR": addr, "VAULT_TOKEN": token})
}

// testRefusedAttemptsAudited: every attempt of tenant-a on tenant-b (a
// path, a query, a body naming it; an admin-only route; tenant-b's MCP
// session) is refused and leaves exactly one audit record naming the
// caller, the tenant the attempt was on, and why; and tenant-b's session
// still serves tenant-b.
func testRefusedAttemptsAudited(t *testing.T, env map[string]string) {
	idp := testidp.Start(t)
	const public = "http://gateway.test"
	if env == nil {
		env = map[string]string{}
	}
	env["CONNECTORS_PUBLIC_URL"] = public
	env["CONNECTORS_OAUTH_REDIRECT_URIS"] = appCallback
	env["CONNECTORS_BROWSER_SESSION_KEY"] = strings.Repeat("cd", 32)
	env["LINKED_CLIENT_ID"] = "linker"
	env["LINKED_CLIENT_SECRET"] = "linker-s3cret"
	g := newGatewayWithEnv(t, env, linkedIntegration(t, idp, public, "cgw-denied"))
	g.serve()
	sessionB := g.oldSession("tenant-b", "/mcp", "{}")
	inSessionB := map[string]string{"Mcp-Session-Id": sessionB, "Mcp-Protocol-Version": "2025-11-25", "Accept": "application/json, text/event-stream"}
	const ping = `{"jsonrpc":"2.0","id":9,"method":"ping"}`

	cases := []struct {
		method, path, body string
		header             map[string]string
		status             int
		target, reason     string
	}{
		{"GET", "/tenants/tenant-b/integrations", "", nil, 403, "tenant-b", "cross_tenant"},
		{"GET", "/tenants/tenant-b/integrations/notion", "", nil, 403, "tenant-b", "cross_tenant"},
		{"PUT", "/tenants/tenant-b/integrations/notion", `{"enabled": true}`, nil, 403, "tenant-b", "admin_only"},
		{"DELETE", "/tenants/tenant-b/integrations/notion", "", nil, 403, "tenant-b", "admin_only"},
		{"POST", "/tenants/tenant-b/integrations/notion/credentials", `{"accessToken": "ntn_attacker"}`, nil, 403, "tenant-b", "cross_tenant"},
		{"DELETE", "/tenants/tenant-b/integrations/notion/credentials", "", nil, 403, "tenant-b", "cross_tenant"},
		{"POST", "/api/v1/tools/invoke", `{"toolId": "notion.API-get-self", "tenantId": "tenant-b"}`, nil, 403, "tenant-b", "cross_tenant"},
		{"GET", "/oauth/authorize/linked?tenant_id=tenant-b", "", nil, 403, "tenant-b", "cross_tenant"},
		{"POST", "/admin/tenants/tenant-b/rotate-key", "", nil, 403, "tenant-b", "admin_only"},
		{"POST", "/admin/tenants/tenant-b/offboard", `{"confirm": "tenant-b"}`, nil, 403, "tenant-b", "admin_only"},
		{"GET", "/admin/tenants/tenant-b/usage", "", nil, 403, "tenant-b", "admin_only"},
		{"GET", "/tenants/tenant-b/usage/daily?days=7", "", nil, 403, "tenant-b", "cross_tenant"},
		{"GET", "/admin/tenants/health", "", nil, 403, "tenant-a", "admin_only"},
		{"GET", "/admin/usage", "", nil, 403, "tenant-a", "admin_only"},
		{"GET", "/metrics", "", nil, 403, "tenant-a", "admin_only"},
		{"POST", "/mcp", ping, inSessionB, 404, "tenant-b", "foreign_session"},
		{"GET", "/mcp", "", inSessionB, 404, "tenant-b", "foreign_session"},
		{"DELETE", "/mcp", "", inSessionB, 404, "tenant-b", "foreign_session"},
	}
	for _, c := range cases {
		status, _, requestID := g.send("tenant-a", c.method, c.path, "application/json", c.body, c.header)
		if status != c.status {
			t.Errorf("tenant-a %s %s: %d, want %d", c.method, c.path, status, c.status)
		}
		recs := g.auditRecords(requestID)
		if len(recs) != 1 {
			t.Errorf("tenant-a %s %s: %d audit records, want 1: %v", c.method, c.path, len(recs), recs)
			continue
		}
		rec := recs[0]
		got := map[string]any{"tenantId": rec["tenantId"], "callerTenantId": rec["callerTenantId"], "reason": rec["reason"],
			"subject": rec["subject"], "operation": rec["operation"], "success": rec["success"]}
		want := map[string]any{"tenantId": c.target, "callerTenantId": "tenant-a", "reason": c.reason,
			"subject": "apikey:" + keyID(g.keys["tenant-a"]), "operation": "access_denied", "success": false}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("tenant-a %s %s: audit record (-want +got):\n%s", c.method, c.path, diff)
		}
		if msg, _ := rec["error"].(string); strings.Count(msg, c.method+" ") != 1 {
			t.Errorf("tenant-a %s %s: audit error %q, want the method once", c.method, c.path, msg)
		}
	}
	// tenant-b's session and credential are as they were.
	if status, _, body := g.postOld("tenant-b", "/mcp", sessionB, ping); status != http.StatusOK || !strings.Contains(body, `"result"`) {
		t.Errorf("tenant-b's session after tenant-a's attempts: %d %s", status, body)
	}
	if _, out, _ := g.api("tenant-b", "GET", "/tenants/tenant-b/integrations/notion", ""); out["hasCredentials"] != true {
		t.Errorf("tenant-b's notion after tenant-a's attempts: %v", out)
	}
	g.assertNoSecrets()
}

// TestInvokeNeedsJSON: POST /api/v1/tools/invoke takes only a JSON body
// (415 otherwise, in the API's error shape); the tool is not run.
func TestInvokeNeedsJSON(t *testing.T) {
	g := newGateway(t)
	g.serve()
	const body = `{"toolId": "notion.API-get-self"}`
	for _, ct := range []string{"", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/jsonx"} {
		status, name, _ := g.send("tenant-a", "POST", "/api/v1/tools/invoke", ct, body, nil)
		if status != http.StatusUnsupportedMediaType || name != "UnsupportedMediaType" {
			t.Errorf("Content-Type %q: %d %q, want 415 UnsupportedMediaType", ct, status, name)
		}
	}
	if n := len(g.notion.Requests()); n != 0 {
		t.Errorf("the Notion API was called %d times", n)
	}
	if status, name, _ := g.send("tenant-a", "POST", "/api/v1/tools/invoke", "application/json; charset=utf-8", body, nil); status != http.StatusOK {
		t.Errorf("application/json; charset=utf-8: %d %q", status, name)
	}
}

// TestInsufficientScopeAudited: an admin's OAuth token without the admin
// scope is refused on another tenant and on admin routes, each attempt
// with one audit record naming the tenant it was on and the reason.
func TestInsufficientScopeAudited(t *testing.T) {
	idp := testidp.Start(t)
	idp.AddClient(testidp.Client{ID: "ops-noscope", Secret: "s3cret-ops", Audience: []string{resource},
		Claims: map[string]any{"tenant_id": "ops", "roles": []string{"connectors-admin"}}, Scopes: []string{"mcp"}})
	g := newGatewayWithEnv(t, map[string]string{
		"CONNECTORS_OIDC_ISSUER":       idp.Issuer,
		"CONNECTORS_RESOURCE":          resource,
		"CONNECTORS_OIDC_SCOPES":       "mcp",
		"CONNECTORS_OIDC_ADMIN_ROLE":   "connectors-admin",
		"CONNECTORS_OIDC_ADMIN_SCOPES": "connectors:admin",
	})
	g.serve()
	g.keys["ops-noscope"] = idp.Token(t, "ops-noscope", "mcp")
	for _, c := range []struct{ method, path, target string }{
		{"GET", "/tenants/tenant-b/integrations", "tenant-b"},
		{"PUT", "/tenants/tenant-b/integrations/notion", "tenant-b"},
		{"GET", "/admin/tenants/health", "ops"},
	} {
		status, name, requestID := g.send("ops-noscope", c.method, c.path, "application/json", "", nil)
		if status != http.StatusForbidden || name != "InsufficientScope" {
			t.Errorf("%s %s: %d %s, want 403 InsufficientScope", c.method, c.path, status, name)
		}
		recs := g.auditRecords(requestID)
		if len(recs) != 1 {
			t.Errorf("%s %s: %d audit records, want 1", c.method, c.path, len(recs))
			continue
		}
		got := map[string]any{"tenantId": recs[0]["tenantId"], "callerTenantId": recs[0]["callerTenantId"], "reason": recs[0]["reason"]}
		if diff := cmp.Diff(map[string]any{"tenantId": c.target, "callerTenantId": "ops", "reason": "insufficient_scope"}, got); diff != "" {
			t.Errorf("%s %s: audit record (-want +got):\n%s", c.method, c.path, diff)
		}
	}
}
