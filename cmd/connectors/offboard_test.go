package main

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
	"github.com/mark3labs/mcp-go/mcp"
)

// offboardOverHTTP off-boards tenant-a through g's route as the admin,
// after a confirmation naming another tenant was refused, and checks what
// the route answered and that tenant-a's credentials are gone and its key
// refused (its open MCP session too), through g, while tenant-b's stay.
// peer, if not nil, is another replica: it verifies (and caches, for 5 s)
// tenant-a's key just before the off-boarding, and must refuse it within
// 2 s of the answer: told, not by its cache's expiry.
func offboardOverHTTP(t *testing.T, g, peer *gateway) {
	t.Helper()
	const path = "/admin/tenants/tenant-a/offboard"
	session := g.client("tenant-a")
	if status, _, raw := g.api("tenant-b", "POST", path, `{"confirm": "tenant-a"}`); status != http.StatusForbidden {
		t.Errorf("tenant-b off-boarding tenant-a: %d %s, want 403", status, raw)
	}
	status, out, raw := g.api("admin", "POST", path, `{"confirm": "tenant-b"}`)
	if msg, _ := out["message"].(string); status != http.StatusBadRequest || out["error"] != "ValidationError" || !strings.HasPrefix(msg, "confirm: ") {
		t.Errorf("a confirmation naming tenant-b: %d %s, want 400 ValidationError naming confirm", status, raw)
	}
	if _, out, raw := g.api("admin", "GET", "/tenants/tenant-a/integrations/notion", ""); out["hasCredentials"] != true {
		t.Fatalf("tenant-a's notion after refused off-boardings: %s", raw)
	}

	if peer != nil && peer.initializeAs(g.keys["tenant-a"]) != http.StatusOK {
		t.Fatal("tenant-a's key refused by the other replica before the off-boarding")
	}
	status, out, raw = g.api("admin", "POST", path, `{"confirm": "tenant-a"}`)
	if status != http.StatusOK || out["tenantId"] != "tenant-a" || out["offboarded"] != true || out["keyDestroyed"] != true ||
		out["credentialsDeleted"] != float64(2) || out["apiKeysRevoked"] != float64(1) {
		t.Fatalf("POST %s: %d %s, want 200: 2 credentials deleted, 1 API key revoked", path, status, raw)
	}
	if peer != nil {
		within(t, propagationBound, "tenant-a's key refused by the other replica", func() bool {
			return peer.initializeAs(g.keys["tenant-a"]) == http.StatusUnauthorized
		})
	}
	_, list, raw := g.api("admin", "GET", "/tenants/tenant-a/integrations", "")
	ints, _ := list["integrations"].([]any)
	for _, in := range ints {
		if in.(map[string]any)["hasCredentials"] != false {
			t.Errorf("tenant-a's integrations after off-boarding: %s", raw)
		}
	}
	if len(ints) == 0 {
		t.Errorf("tenant-a's integrations after off-boarding: %s", raw)
	}
	if status := g.initializeAs(g.keys["tenant-a"]); status != http.StatusUnauthorized {
		t.Errorf("tenant-a's key after off-boarding: %d, want 401", status)
	}
	if status, _, _ := g.api("tenant-a", "GET", "/tenants/tenant-a/integrations", ""); status != http.StatusUnauthorized {
		t.Errorf("tenant-a's key on the API after off-boarding: %d, want 401", status)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if _, err := session.ListTools(ctx, mcp.ListToolsRequest{}); err == nil {
		t.Error("tools/list in tenant-a's session opened before the off-boarding succeeded")
	}
	if _, out, raw := g.api("tenant-b", "GET", "/tenants/tenant-b/integrations/notion", ""); out["hasCredentials"] != true {
		t.Errorf("tenant-b's notion after tenant-a's off-boarding: %s", raw)
	}
	res, err := g.client("tenant-b").CallTool(ctx, mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "notion_API-get-self"}})
	if err != nil || !strings.Contains(toolText(t, res), "Beta Bot") {
		t.Errorf("tenant-b's call after tenant-a's off-boarding: %v, %v", res, err)
	}

	// Idempotent: nothing left, nothing to do, the same answer with zeros.
	status, out, raw = g.api("admin", "POST", path, `{"confirm": "tenant-a"}`)
	if status != http.StatusOK || out["credentialsDeleted"] != float64(0) || out["apiKeysRevoked"] != float64(0) {
		t.Errorf("off-boarding tenant-a again: %d %s, want 200 with zeros", status, raw)
	}
}

// checkOffboardAudit checks g's audit trail for the route's off-boarding
// of tenant-a by the admin: the store's offboard records (the first one
// and the one of the second call), and the revocation of tenant-a's key.
func checkOffboardAudit(t *testing.T, g *gateway) {
	t.Helper()
	admin := "apikey:" + keyID(g.keys["admin"])
	offboards := g.auditOf("offboard")
	if len(offboards) != 2 {
		t.Fatalf("offboard audit records: %v, want two (the off-boarding and its repetition)", offboards)
	}
	for _, rec := range offboards {
		if rec["tenantId"] != "tenant-a" || rec["subject"] != admin || rec["success"] != true || rec["requestId"] == nil {
			t.Errorf("offboard audit record %v, want tenant-a's by %s, with the request's ID", rec, admin)
		}
	}
	revokes := g.auditOf("apikey_revoke")
	if len(revokes) != 1 || revokes[0]["apiKeyId"] != keyID(g.keys["tenant-a"]) || revokes[0]["tenantId"] != "tenant-a" ||
		revokes[0]["subject"] != admin || revokes[0]["success"] != true {
		t.Errorf("apikey_revoke audit records: %v, want the revocation of tenant-a's key by %s", revokes, admin)
	}
}

// TestOffboardRouteEmbedded: on the embedded store, as the gateway serves,
// an admin off-boards tenant-a over HTTP (while the CLI could not: the
// store is locked), and "remote offboard" off-boards tenant-c; both are
// audited as the admin's.
func TestOffboardRouteEmbedded(t *testing.T) {
	g := newGateway(t)
	g.withAdmin()
	addr := g.serve()
	offboardOverHTTP(t, g, nil)
	checkOffboardAudit(t, g)

	g.env["CONNECTORS_GATEWAY_URL"] = "http://" + addr
	g.env["CONNECTORS_API_KEY"] = g.keys["tenant-b"]
	if _, err := g.run("", "remote", "offboard", "--tenant", "tenant-c"); err == nil || !strings.Contains(err.Error(), "403 Forbidden") {
		t.Errorf("remote offboard with a tenant's key: %v, want 403 Forbidden", err)
	}
	if _, err := g.run("", "remote", "offboard", "--tenant", "../tenant-c"); err == nil || exitCode(err) != 2 {
		t.Errorf("remote offboard of a hostile tenant: %v, want a usage error before any request", err)
	}
	g.env["CONNECTORS_API_KEY"] = g.keys["admin"]
	if status := g.initializeAs(g.keys["tenant-c"]); status != http.StatusOK {
		t.Fatalf("tenant-c's key before its off-boarding: %d", status)
	}
	if out := g.mustRun("", "remote", "offboard", "--tenant", "tenant-c"); out != "offboarded tenant-c: 0 credentials deleted, key destroyed, 1 API keys revoked\n" {
		t.Errorf("remote offboard = %q", out)
	}
	if status := g.initializeAs(g.keys["tenant-c"]); status != http.StatusUnauthorized {
		t.Errorf("tenant-c's key after remote offboard: %d, want 401", status)
	}
	if out := g.mustRun("", "remote", "offboard", "--tenant", "tenant-c", "--json"); !strings.Contains(out, `"apiKeysRevoked": 0`) || !strings.Contains(out, `"offboarded": true`) {
		t.Errorf("remote offboard --json, again = %q", out)
	}
	g.assertNoSecrets()
}

// TestOffboardRouteOnVault: two replicas on one real Vault, gossiping,
// their token holding the shipped gateway-service and gateway-admin
// policies (off-boarding destroys a Transit key). tenant-a's key is used
// on replica b (which then caches it for 5 s) and tenant-a is off-boarded
// through replica a: a refuses the key at once, b within 2 s (told, not
// by its cache's expiry); Vault holds no record and no key of tenant-a.
func TestOffboardRouteOnVault(t *testing.T) {
	vaultAddr, root, _ := gatewayVault(t)
	a, b := clusteredPairOn(t, vaultAddr, adminVaultToken(t, root), nil)
	if _, out, raw := b.api("admin", "GET", "/tenants/tenant-a/integrations/notion", ""); out["hasCredentials"] != true { // b caches it
		t.Fatalf("b before the off-boarding: %s", raw)
	}
	offboardOverHTTP(t, a, b)
	if _, out, raw := b.api("admin", "GET", "/tenants/tenant-a/integrations/notion", ""); out["hasCredentials"] != false {
		t.Errorf("b after the off-boarding through a: %s", raw)
	}
	checkOffboardAudit(t, a)
	checkVaultHoldsNothingOf(t, root, "tenant-a")
	if status := b.initializeAs(b.keys["tenant-b"]); status != http.StatusOK {
		t.Errorf("tenant-b's key on b after tenant-a's off-boarding: %d, want 200", status)
	}
	a.assertNoSecrets()
	b.assertNoSecrets()
}

// checkVaultHoldsNothingOf fails unless the Vault of root holds no KV
// record and no Transit key of tenant.
func checkVaultHoldsNothingOf(t *testing.T, root *api.Client, tenant string) {
	t.Helper()
	if s, err := root.Logical().List("secret/metadata/" + tenant); err != nil || s != nil && len(s.Data["keys"].([]any)) > 0 {
		t.Errorf("Vault's records of %s after off-boarding: %v, %v", tenant, s, err)
	}
	if s, err := root.Logical().Read("transit/keys/" + tenant); err != nil || s != nil {
		t.Errorf("Vault's Transit key of %s after off-boarding: %v, %v", tenant, s, err)
	}
}

// offboardExchanges exercises the off-boarding route for
// TestOpenAPIDocument, last (it off-boards tenant-c): each answer checked
// against the document.
func offboardExchanges(t *testing.T, d *apiDoc) {
	t.Helper()
	const path = "/admin/tenants/tenant-c/offboard"
	confirmed := `{"confirm": "tenant-c"}`
	d.run([]exchange{
		{name: "a confirmation naming another tenant", method: "POST", path: path, as: "admin", body: `{"confirm": "tenant-b"}`, status: 400, errName: "ValidationError"},
		{name: "no body", method: "POST", path: path, as: "admin", status: 400, errName: "ValidationError", refused: true},
		{name: "confirm not a tenant ID", method: "POST", path: path, as: "admin", body: `{"confirm": "TENANT-C"}`, status: 400, errName: "ValidationError", refused: true},
		{name: "a number for confirm", method: "POST", path: path, as: "admin", body: `{"confirm": 1}`, status: 400, errName: "ValidationError", refused: true},
		{name: "an unknown field", method: "POST", path: path, as: "admin", body: `{"confirm": "tenant-c", "force": true}`, status: 400, errName: "ValidationError", refused: true},
		{name: "malformed JSON", method: "POST", path: path, as: "admin", body: `{"confirm": `, status: 400, errName: "ValidationError", refused: true},
		{name: "not sent as JSON", method: "POST", path: path, as: "admin", header: []string{"Content-Type", "text/plain"}, body: confirmed, status: 415, errName: "UnsupportedMediaType", refused: true},
		{name: "an oversized body", method: "POST", path: path, as: "admin", body: `{"confirm": "tenant-c", "x": "` + strings.Repeat("n", 5<<20) + `"}`, status: 413, errName: "PayloadTooLarge", refused: true},
		{name: "not an admin", method: "POST", path: path, as: "tenant-c", body: confirmed, status: 403, errName: "Forbidden"},
		{name: "a hostile tenant ID", method: "POST", path: "/admin/tenants/TENANT-C/offboard", as: "admin", body: `{"confirm": "TENANT-C"}`, status: 400, errName: "InvalidTenantId", refused: true},
		{name: "no credentials", method: "POST", path: path, body: confirmed, status: 401, errName: "Unauthorized", refused: true},
		{name: "off-board", method: "POST", path: path, as: "admin", body: confirmed, status: 200},
		{name: "again: nothing left", method: "POST", path: path, as: "admin", body: confirmed, status: 200},
		{name: "by the off-boarded tenant's key", method: "GET", path: "/tenants/tenant-c/integrations", as: "tenant-c", status: 401, errName: "Unauthorized"},
	})
}
