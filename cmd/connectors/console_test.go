package main

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/connectors-gateway/connectors/internal/fakeoauth"
	"github.com/connectors-gateway/connectors/internal/testenv"
	"github.com/connectors-gateway/connectors/internal/testidp"
)

// consoleGateway runs a gateway whose notion integration links at a fake
// Notion (OAuth) and whose "paste" integration takes a pasted token, with
// browser sign-in at idp, at a public URL Chromium reaches. Users signed
// in with the role connectors-admin are admins.
func consoleGateway(t *testing.T, idp *testidp.IDP) (*gateway, *fakeoauth.Server, string) {
	t.Helper()
	fake := fakeoauth.New(t, fakeoauth.Notion, "notion-client", "notion-s3cret")
	addr := freeAddr(t)
	public := "http://" + addr
	env := oauthEnv("notion", map[string]string{"CONNECTORS_PUBLIC_URL": public})
	idp.AddWebClient(testidp.WebClient{ID: "gateway-web", Secret: "web-s3cret", RedirectURIs: []string{public + "/auth/callback"}})
	env["CONNECTORS_OIDC_ISSUER"] = idp.Issuer
	env["CONNECTORS_RESOURCE"] = resource
	env["CONNECTORS_BROWSER_CLIENT_ID"] = "gateway-web"
	env["CONNECTORS_BROWSER_CLIENT_SECRET"] = "web-s3cret"
	env["CONNECTORS_OIDC_ADMIN_ROLE"] = "connectors-admin"
	g := newGatewayWithEnv(t, env, oauthIntegration(t, "notion", fake), envIntegration(t, "paste", "cgw-paste", ""))
	g.withAdmin()
	g.bind = addr
	g.serve()
	return g, fake, public
}

// consoleUser signs a new person in to the console at base through the
// OpenID provider with claims, and returns them on the dashboard.
func consoleUser(t *testing.T, browser context.Context, idp *testidp.IDP, base string, claims map[string]any) *person {
	t.Helper()
	idp.SetUserClaims(testidp.UserID, claims)
	p := newPerson(t, browser)
	if loc, text := p.open(base + "/console/"); !strings.HasSuffix(loc, "/console/signin") || !strings.Contains(text, "Sign in") {
		t.Fatalf("the console without a session: %s\n%s\nwant its sign-in page", loc, text)
	}
	p.checkPage("")
	p.click(`a.button[href^="/auth/login"]`)
	p.signIn(idp.TestUsername(), testidp.UserPassword)
	if loc, text := p.waitFor("/console/"); !strings.Contains(text, "Tenant "+claims["tenant_id"].(string)) {
		t.Fatalf("after signing in: %s\n%s", loc, text)
	}
	return p
}

// click clicks the element sel names and waits for the page it loads.
func (p *person) click(sel string) {
	p.t.Helper()
	p.do(chromedp.WaitVisible(chromedp.CSS(sel)))
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	if _, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(sel))); err != nil {
		p.t.Fatalf("clicking %s: %v", sel, err)
	}
}

// fill types text into the field sel names.
func (p *person) fill(sel, text string) {
	p.t.Helper()
	p.do(chromedp.WaitVisible(chromedp.CSS(sel)), chromedp.SendKeys(chromedp.CSS(sel), text))
}

// value is the value of the field sel names.
func (p *person) value(sel string) string {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Value(chromedp.CSS(sel)))
	if err != nil {
		p.t.Fatal(err)
	}
	return v
}

// cookies are the browser's cookies for u, as a header.
func (p *person) cookies(u string) string {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{u}})
	if err != nil {
		p.t.Fatal(err)
	}
	var parts []string
	for _, c := range res.Cookies {
		parts = append(parts, c.Name+"="+c.Value)
	}
	return strings.Join(parts, "; ")
}

// checkPage runs axe-core on the page the person is on (no serious or
// critical violation) and saves its screenshot as name (docs/ with
// CONNECTORS_SCREENSHOTS, a temporary directory otherwise).
func (p *person) checkPage(name string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 60*time.Second)
	defer cancel()
	vs, err := testenv.Axe(ctx)
	if err != nil {
		p.t.Fatal(err)
	}
	if s := testenv.Serious(vs); len(s) > 0 {
		loc, _ := p.page()
		p.t.Errorf("axe finds serious violations on %s (%s):\n%s", name, loc, testenv.FormatAxe(s))
	}
	if name != "" {
		if err := testenv.Screenshot(ctx, testenv.ScreenshotPath(p.t, "console-"+name+".png")); err != nil {
			p.t.Fatal(err)
		}
	}
}

// TestConsole: in a real browser, a tenant's person signs in, links
// Notion through the wizard (the consent page, the provider, back to the
// dashboard), sees it connected and its tools in an MCP session made with
// a key created on the keys page; its refresh breaks and the dashboard and
// health page say so; they reconnect; they revoke the key and the agent is
// refused; an admin turns the integration off for the tenant, and the
// tenant's dashboard and catalogue follow. axe-core checks every page.
func TestConsole(t *testing.T) {
	browser := chromium(t)
	idp := testidp.Start(t)
	g, fake, base := consoleGateway(t, idp)

	alice := consoleUser(t, browser, idp, base, map[string]any{"tenant_id": "tenant-c"})
	if _, text := alice.page(); !strings.Contains(text, "notion") || !strings.Contains(text, "not connected") {
		t.Fatalf("a new tenant's dashboard:\n%s", text)
	}
	alice.checkPage("")

	// A tenant's person cannot sign in to the console as another tenant
	// by any field of a form or part of a URL; see TestConsoleIsolation.

	// The wizard: the connect page, the consent page, the provider, back.
	alice.click(`a.button[href="/console/connect/notion"]`)
	if loc, text := alice.page(); !strings.HasSuffix(loc, "/console/connect/notion") || !strings.Contains(text, "tenant-c") {
		t.Fatalf("Connect notion: %s\n%s", loc, text)
	}
	alice.checkPage("connect")
	fake.SetExpiresIn(time.Hour)
	alice.click(`button[type="submit"]:not(.quiet)`)
	if _, text := alice.waitFor("/oauth/link/"); !strings.Contains(text, "into the tenant tenant-c") {
		t.Fatalf("the wizard's second step is not the consent page naming the tenant:\n%s", text)
	}
	alice.checkPage("")
	alice.confirm()
	loc, text := alice.waitFor("/console/?")
	if !strings.Contains(loc, "status=success") || !strings.Contains(text, "Connected.") || !strings.Contains(text, "connected") {
		t.Fatalf("back from the provider: %s\n%s", loc, text)
	}
	if !g.linked("tenant-c", "notion") {
		t.Fatal("the credential is not stored for tenant-c")
	}
	alice.checkPage("")

	// A key for the agent, shown once, and the tools in its session.
	alice.open(base + "/console/keys")
	alice.fill("#keyname", "laptop")
	alice.click(`form[action="/console/keys"] button`)
	key := alice.value("#newkey")
	if !strings.HasPrefix(key, "cgw_") {
		t.Fatalf("the new key shown is %.8q…", key)
	}
	if _, text := alice.page(); !strings.Contains(text, "Bearer "+key) || !strings.Contains(text, "laptop") {
		t.Errorf("the configurations after creating a key do not carry it")
	}
	alice.checkPage("keys")
	// Audited as the API's own: the key's creation, by the browser's user.
	if !auditedOnce(g, `"operation":"apikey_create"`, `"tenantId":"tenant-c"`, `"subject":"`) {
		t.Errorf("creating a key in the console left no apikey_create record for tenant-c naming its subject")
	}
	g.keys["tenant-c"] = key
	c := g.client("tenant-c")
	if tok := probe(t, c, "notion_env"); !fake.Valid(tok) {
		t.Errorf("tenant-c's notion call ran with %.8q…, not the token the provider issued", tok)
	}
	alice.open(base + "/console/keys")
	if _, text := alice.page(); strings.Contains(text, key) {
		t.Error("the keys page shows the key again")
	}

	consoleBrokenRefresh(t, g, fake, alice, base)

	// The key revoked: the agent is refused.
	alice.open(base + "/console/keys")
	alice.click(`form[action$="/revoke"] button`)
	if _, text := alice.page(); !strings.Contains(text, "The API key is revoked") {
		t.Fatalf("after Revoke: %s", text)
	}
	if _, err := c.ListTools(t.Context(), mcp.ListToolsRequest{}); err == nil {
		t.Error("the revoked key still lists tools")
	}

	consoleAdmin(t, g, idp, browser, alice, base)
	g.assertNoSecrets()
}

// consoleBrokenRefresh: the provider goes down and tenant-c's token
// expires; the dashboard and the health page show the refresh failing;
// with the provider back, Reconnect links again and all is well.
func consoleBrokenRefresh(t *testing.T, g *gateway, fake *fakeoauth.Server, alice *person, base string) {
	t.Helper()
	fake.SetMode(fakeoauth.Down)
	access, refresh := fake.IssueToken()
	body := `{"accessToken": "` + access + `", "refreshToken": "` + refresh + `", "expiresIn": 1}`
	if status, _, raw := g.api("tenant-c", "POST", "/tenants/tenant-c/integrations/notion/credentials", body); status != http.StatusCreated {
		t.Fatalf("POST credentials: %d %s", status, raw)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, text := alice.open(base + "/console/")
		if (strings.Contains(text, "refresh failed") || strings.Contains(text, "needs re-auth")) && strings.Contains(text, "Reconnect") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the dashboard never showed the failed refresh:\n%s", text)
		}
		time.Sleep(200 * time.Millisecond)
	}
	alice.checkPage("dashboard")
	// Five failures (in well under a second here) and it needs re-auth.
	if _, text := alice.open(base + "/console/health"); !strings.Contains(text, "refresh failed") && !strings.Contains(text, "needs re-auth") ||
		!strings.Contains(text, "HTTP 503") || strings.Contains(text, access) || strings.Contains(text, refresh) {
		t.Fatalf("the health page while the refresh fails:\n%s", text)
	}
	alice.checkPage("health")

	fake.SetMode(fakeoauth.OK)
	alice.open(base + "/console/")
	alice.click(`a.button[href="/console/connect/notion"]`)
	alice.click(`button[type="submit"]:not(.quiet)`)
	alice.waitFor("/oauth/link/")
	alice.confirm()
	if loc, text := alice.waitFor("/console/?"); !strings.Contains(loc, "status=success") || strings.Contains(text, "refresh failed") {
		t.Fatalf("after reconnecting: %s\n%s", loc, text)
	}
	if _, text := alice.open(base + "/console/health"); !strings.Contains(text, "connected") || strings.Contains(text, "refresh failed") {
		t.Fatalf("the health page after reconnecting:\n%s", text)
	}
}

// consoleAdmin: an admin finds tenant-c, turns notion off for it; the
// tenant's dashboard says so and its agents lose the tools. The tenant's
// person cannot reach the admin pages or actions.
func consoleAdmin(t *testing.T, g *gateway, idp *testidp.IDP, browser context.Context, alice *person, base string) {
	t.Helper()
	ops := consoleUser(t, browser, idp, base, map[string]any{"tenant_id": "ops", "roles": []string{"connectors-admin"}})
	ops.open(base + "/console/admin?q=tenant-c")
	if _, text := ops.page(); !strings.Contains(text, "tenant-c") || strings.Contains(text, "tenant-a") {
		t.Fatalf("the admin's search for tenant-c:\n%s", text)
	}
	ops.checkPage("admin")
	ops.click(`a[href="/console/admin/tenants/tenant-c"]`)
	ops.checkPage("admin-tenant")
	ops.click(`form[action="/console/admin/tenants/tenant-c/integrations/notion"] button[value="disable"]`)
	if _, text := ops.page(); !strings.Contains(text, "turned off for this tenant") {
		t.Fatalf("after Turn off: %s", text)
	}
	if _, text := alice.open(base + "/console/"); !strings.Contains(text, "turned off") {
		t.Errorf("tenant-c's dashboard after the admin turned notion off:\n%s", text)
	}
	_, out, raw := g.api("admin", "GET", "/tenants/tenant-c/integrations/notion", "")
	if out["enabled"] != false {
		t.Errorf("notion for tenant-c after Turn off: %s", raw)
	}
	// Limits: the admin sets tenant-c's own, which the API has at once; a
	// field that is not a number is refused, naming it, and changes
	// nothing.
	ops.fill("#limit-callsPerMinute", "120")
	ops.fill("#limit-stdioProcesses", "2")
	ops.click(`form[action="/console/admin/tenants/tenant-c/limits"] button`)
	if _, text := ops.page(); !strings.Contains(text, "limits are saved") || !strings.Contains(text, "120") {
		t.Fatalf("after Save limits: %s", text)
	}
	_, lim, raw := g.api("admin", "GET", "/admin/tenants/tenant-c/limits", "")
	if lim["callsPerMinute"] != float64(120) || lim["stdioProcesses"] != float64(2) {
		t.Errorf("tenant-c's limits after the console saved them: %s", raw)
	}
	ops.fill("#limit-burst", "many")
	ops.click(`form[action="/console/admin/tenants/tenant-c/limits"] button`)
	if _, text := ops.page(); !strings.Contains(text, "burst: must be a whole number") {
		t.Errorf("Save limits with a burst of \"many\": %s", text)
	}
	if _, _, again := g.api("admin", "GET", "/admin/tenants/tenant-c/limits", ""); again != raw {
		t.Errorf("tenant-c's limits after a refused save: %s, were %s", again, raw)
	}
	// Off-boarding: the confirmation names the tenant and wants its ID.
	ops.open(base + "/console/admin/tenants/tenant-c/offboard")
	ops.checkPage("")
	ops.fill("#confirm", "tenant-a")
	ops.click(`form[action="/console/admin/tenants/tenant-c/offboard"] button`)
	if _, text := ops.page(); !strings.Contains(text, "confirm") || !adminSees(g, "tenant-c", "notion") {
		t.Fatalf("off-boarding tenant-c confirmed with another tenant's ID: %s", text)
	}
	ops.open(base + "/console/admin/tenants/tenant-c/offboard")
	ops.fill("#confirm", "tenant-c")
	ops.click(`form[action="/console/admin/tenants/tenant-c/offboard"] button`)
	if _, text := ops.page(); !strings.Contains(text, "off-boarded") {
		t.Fatalf("after off-boarding tenant-c: %s", text)
	}
	if adminSees(g, "tenant-c", "notion") || !adminSees(g, "tenant-a", "notion") {
		t.Error("off-boarding tenant-c did not delete its credential, or deleted another tenant's")
	}
	if !auditedOnce(g, `"operation":"offboard"`, `"tenantId":"tenant-c"`, `"subject":"`) {
		t.Error("the console's off-boarding left no offboard record naming the admin")
	}

	// The tenant's person: no admin pages, by link or by URL.
	if _, text := alice.page(); strings.Contains(text, "Admin") {
		t.Error("a tenant's navigation shows Admin")
	}
	for _, path := range []string{"/console/admin", "/console/admin/tenants/tenant-c", "/console/admin/tenants/tenant-a"} {
		if _, text := alice.open(base + path); !strings.Contains(text, "403") || strings.Contains(text, "tenant-a") && !strings.Contains(path, "tenant-a") {
			t.Errorf("tenant-c's browser at %s:\n%s", path, text)
		}
	}
	alice.checkPage("")
}

// auditedOnce reports whether exactly one line of g's log holds every one
// of parts.
func auditedOnce(g *gateway, parts ...string) bool {
	n := 0
	for line := range strings.Lines(g.stderr.String()) {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			n++
		}
	}
	return n == 1
}

// adminSees reports whether an admin sees tenant's credential of
// integration.
func adminSees(g *gateway, tenant, integration string) bool {
	g.t.Helper()
	code, out, raw := g.api("admin", "GET", "/tenants/"+tenant+"/integrations/"+integration, "")
	if code != http.StatusOK {
		g.t.Fatalf("GET /tenants/%s/integrations/%s as admin: %d %s", tenant, integration, code, raw)
	}
	return out["hasCredentials"] == true
}
