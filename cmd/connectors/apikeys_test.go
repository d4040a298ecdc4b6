package main

import (
	"context"
	"encoding/json"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
)

// initializeAs is an initialize-era initialize request with key, and its
// status.
func (g *gateway) initializeAs(key string) int {
	g.t.Helper()
	v := *g
	v.keys = map[string]string{"key": key}
	status, _, _ := v.postOld("key", "/mcp", "", `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`)
	return status
}

// auditOf returns the audit records of g's log with operation op.
func (g *gateway) auditOf(op string) []map[string]any {
	var out []map[string]any
	for line := range strings.Lines(g.stderr.String()) {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == "tenant_credential_access" && rec["operation"] == op {
			out = append(out, rec)
		}
	}
	return out
}

// TestAPIKeysOverHTTP: through the gateway as it serves, a tenant creates
// an API key for its agent over HTTP, the agent lists its tools over MCP
// with it, the tenant revokes it over HTTP, and the agent is refused (401)
// at once. The key is shown in the creation's answer only, and neither
// logged nor audited; its creation and revocation are audited.
func TestAPIKeysOverHTTP(t *testing.T) {
	g := newGateway(t)
	g.serve()

	status, out, raw := g.api("tenant-a", "POST", "/tenants/tenant-a/api-keys", `{"name": "claude-desktop"}`)
	if status != 201 {
		t.Fatalf("POST /tenants/tenant-a/api-keys: %d %s", status, raw)
	}
	id, _ := out["id"].(string)
	key, _ := out["key"].(string)
	if !strings.HasPrefix(key, "cgw_"+id+"_") || out["name"] != "claude-desktop" || out["tenantId"] != "tenant-a" {
		t.Fatalf("POST answer: %s", raw)
	}
	g.keys["agent"] = key // a planted secret from now on: assertNoSecrets looks for it

	_, _, listed := g.api("tenant-a", "GET", "/tenants/tenant-a/api-keys", "")
	if !strings.Contains(listed, `"id":"`+id+`"`) || !strings.Contains(listed, `"name":"claude-desktop"`) || strings.Contains(listed, key[len("cgw_"+id+"_"):]) {
		t.Errorf("the listing: %s, want the key's ID and name, never its secret", listed)
	}

	// The agent, with its new key: tenant-a's tools.
	agent := g.client("agent")
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	tools, err := agent.ListTools(ctx, mcp.ListToolsRequest{})
	if err != nil {
		t.Fatalf("tools/list with the new key: %v", err)
	}
	seen := map[string]bool{}
	for _, tool := range tools.Tools {
		integration, _, _ := strings.Cut(tool.Name, "_")
		seen[integration] = true
	}
	if !seen["notion"] || !seen["everything"] {
		t.Errorf("tools/list with tenant-a's new key: integrations %v, want notion and everything", seen)
	}

	// tenant-b can neither revoke it nor tell it from a key that does not exist.
	if status, _, raw := g.api("tenant-b", "DELETE", "/tenants/tenant-a/api-keys/"+id, ""); status != 403 {
		t.Errorf("tenant-b revoking tenant-a's key on tenant-a's path: %d %s, want 403", status, raw)
	}
	_, foreign, _ := g.api("tenant-b", "DELETE", "/tenants/tenant-b/api-keys/"+id, "")
	_, unknown, _ := g.api("tenant-b", "DELETE", "/tenants/tenant-b/api-keys/0123456789abcdef", "")
	delete(foreign, "requestId")
	delete(unknown, "requestId")
	if foreign["error"] != "APIKeyNotFound" || !maps.Equal(foreign, unknown) {
		t.Errorf("tenant-a's key ID on tenant-b's path: %v; an unknown ID: %v; want the same 404", foreign, unknown)
	}
	if _, err := agent.ListTools(ctx, mcp.ListToolsRequest{}); err != nil {
		t.Fatalf("tools/list after tenant-b's attempts: %v", err)
	}

	status, out, raw = g.api("tenant-a", "DELETE", "/tenants/tenant-a/api-keys/"+id, "")
	if status != 200 || out["success"] != true || out["id"] != id {
		t.Fatalf("DELETE /tenants/tenant-a/api-keys/%s: %d %s", id, status, raw)
	}
	if status := g.initializeAs(key); status != 401 {
		t.Errorf("initialize with the revoked key: %d, want 401", status)
	}
	if _, err := agent.ListTools(ctx, mcp.ListToolsRequest{}); err == nil {
		t.Error("tools/list in the revoked key's session succeeded")
	}
	if status := g.initializeAs(g.keys["tenant-a"]); status != 200 {
		t.Errorf("tenant-a's own key after the revocation: %d, want 200", status)
	}

	created, revoked := g.auditOf("apikey_create"), g.auditOf("apikey_revoke")
	if len(created) != 1 || created[0]["apiKeyId"] != id || created[0]["tenantId"] != "tenant-a" || created[0]["success"] != true {
		t.Errorf("apikey_create audit records: %v, want one of %s", created, id)
	}
	// tenant-b's two attempts on its own path failed alike; then tenant-a's.
	if len(revoked) != 3 || revoked[0]["tenantId"] != "tenant-b" || revoked[0]["success"] != false || revoked[1]["success"] != false ||
		revoked[2]["apiKeyId"] != id || revoked[2]["tenantId"] != "tenant-a" || revoked[2]["success"] != true {
		t.Errorf("apikey_revoke audit records: %v, want tenant-b's two failures, then tenant-a's revocation of %s", revoked, id)
	}
	if len(revoked) == 3 {
		if e0, e1 := revoked[0]["error"].(string), revoked[1]["error"].(string); strings.ReplaceAll(e0, id, "0123456789abcdef") != e1 {
			t.Errorf("tenant-b's attempt on tenant-a's key is recorded as %q, on an unknown key as %q: want them alike", e0, e1)
		}
	}
	g.assertNoSecrets()
}

// TestAPIKeyRevokedAcrossReplicas: two gateway processes on one Vault,
// gossiping. A key created over HTTP on replica 0 and used on replica 1
// (which then holds it in its cache of 5 s) is revoked over HTTP on
// replica 0: replica 0 refuses it at once, replica 1 within 2 s, well
// within its cache's TTL, because replica 0 told it.
func TestAPIKeyRevokedAcrossReplicas(t *testing.T) {
	s := startReplicaSet(t, 2)
	r0, r1 := s.replicas[0].view(s.g), s.replicas[1].view(s.g)
	status, out, raw := r0.api("tenant-a", "POST", "/tenants/tenant-a/api-keys", `{"name": "roaming agent"}`)
	if status != 201 {
		t.Fatalf("creating a key on replica 0: %d %s", status, raw)
	}
	id, key := out["id"].(string), out["key"].(string)
	if status := r1.initializeAs(key); status != 200 {
		t.Fatalf("the new key on replica 1: %d, want 200", status)
	}
	if _, _, listed := r1.api("tenant-a", "GET", "/tenants/tenant-a/api-keys", ""); !strings.Contains(listed, id) {
		t.Errorf("replica 1's listing lacks the key made on replica 0: %s", listed)
	}
	if status, _, raw := r0.api("tenant-a", "DELETE", "/tenants/tenant-a/api-keys/"+id, ""); status != 200 {
		t.Fatalf("revoking it on replica 0: %d %s", status, raw)
	}
	if status := r0.initializeAs(key); status != 401 {
		t.Errorf("the revoked key on replica 0: %d, want 401", status)
	}
	within(t, 2*time.Second, "the revoked key refused by replica 1", func() bool { return r1.initializeAs(key) == 401 })
}

// apiKeyExchanges exercises the API-key routes for TestOpenAPIDocument:
// each answer checked against the document.
func apiKeyExchanges(t *testing.T, d *apiDoc) {
	t.Helper()
	const keysA = "/tenants/tenant-a/api-keys"
	_, body := d.do(exchange{name: "a named key", method: "POST", path: keysA, as: "tenant-a", body: `{"name": "claude-desktop"}`, status: 201})
	var created struct{ ID, Key string }
	if err := json.Unmarshal(body, &created); err != nil || created.ID == "" {
		t.Fatalf("POST %s: %s", keysA, body)
	}
	d.g.keys["openapi-agent"] = created.Key // a planted secret: assertNoSecrets looks for it
	d.run([]exchange{
		{name: "no body", method: "POST", path: keysA, as: "tenant-a", status: 201},
		{name: "an admin key, by an admin", method: "POST", path: "/tenants/tenant-c/api-keys", as: "admin", body: `{"name": "ops for c", "admin": true}`, status: 201},
		{name: "by the new key", method: "POST", path: keysA, header: []string{"Authorization", "Bearer " + created.Key}, body: `{"name": null, "admin": false}`, status: 201},
		{name: "an admin key, by a tenant", method: "POST", path: keysA, as: "tenant-a", body: `{"admin": true}`, status: 403, errName: "Forbidden"},
		{name: "a name with a line break", method: "POST", path: keysA, as: "tenant-a", body: `{"name": "a\nb"}`, status: 400, errName: "ValidationError"},
		{name: "a name too long", method: "POST", path: keysA, as: "tenant-a", body: `{"name": "` + strings.Repeat("n", 65) + `"}`, status: 400, errName: "ValidationError", refused: true},
		{name: "a number for name", method: "POST", path: keysA, as: "tenant-a", body: `{"name": 1}`, status: 400, errName: "ValidationError", refused: true},
		{name: "an unknown field", method: "POST", path: keysA, as: "tenant-a", body: `{"tenantId": "tenant-b"}`, status: 400, errName: "ValidationError", refused: true},
		{name: "malformed JSON", method: "POST", path: keysA, as: "tenant-a", body: `{"name": `, status: 400, errName: "ValidationError", refused: true},
		{name: "not sent as JSON", method: "POST", path: keysA, as: "tenant-a", header: []string{"Content-Type", "text/plain"}, body: `{"name": "x"}`, status: 415, errName: "UnsupportedMediaType", refused: true},
		{name: "a hostile tenant ID", method: "POST", path: "/tenants/TENANT-A/api-keys", as: "tenant-a", status: 400, errName: "InvalidTenantId", refused: true},
		{name: "no credentials", method: "POST", path: keysA, status: 401, errName: "Unauthorized", refused: true},
		{name: "another tenant", method: "POST", path: keysA, as: "tenant-b", status: 403, errName: "Forbidden"},
		{name: "an oversized body", method: "POST", path: keysA, as: "tenant-a", body: `{"name": "` + strings.Repeat("n", 5<<20) + `"}`, status: 413, errName: "PayloadTooLarge", refused: true},

		{name: "tenant-a's keys", method: "GET", path: keysA, as: "tenant-a", status: 200},
		{name: "by an admin", method: "GET", path: "/tenants/tenant-c/api-keys", as: "admin", status: 200},
		{name: "a hostile tenant ID", method: "GET", path: "/tenants/TENANT-A/api-keys", as: "tenant-a", status: 400, errName: "InvalidTenantId", refused: true},
		{name: "no credentials", method: "GET", path: keysA, status: 401, errName: "Unauthorized", refused: true},
		{name: "another tenant", method: "GET", path: keysA, as: "tenant-b", status: 403, errName: "Forbidden"},

		{name: "another tenant", method: "DELETE", path: keysA + "/" + created.ID, as: "tenant-b", status: 403, errName: "Forbidden"},
		{name: "another tenant's key on its own path", method: "DELETE", path: "/tenants/tenant-b/api-keys/" + created.ID, as: "tenant-b", status: 404, errName: "APIKeyNotFound"},
		{name: "revoke", method: "DELETE", path: keysA + "/" + created.ID, as: "tenant-a", status: 200},
		{name: "revoke again", method: "DELETE", path: keysA + "/" + created.ID, as: "tenant-a", status: 404, errName: "APIKeyNotFound"},
		{name: "a malformed key ID", method: "DELETE", path: keysA + "/not-a-key-id", as: "tenant-a", status: 404, errName: "APIKeyNotFound", refused: true},
		{name: "a hostile tenant ID", method: "DELETE", path: "/tenants/TENANT-A/api-keys/" + created.ID, as: "tenant-a", status: 400, errName: "InvalidTenantId", refused: true},
		{name: "no credentials", method: "DELETE", path: keysA + "/" + created.ID, status: 401, errName: "Unauthorized", refused: true},
		{name: "by the revoked key", method: "GET", path: keysA, header: []string{"Authorization", "Bearer " + created.Key}, status: 401, errName: "Unauthorized"},
	})
}
