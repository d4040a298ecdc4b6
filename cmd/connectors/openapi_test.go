package main

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/connectors-gateway/connectors/internal/testidp"
)

// TestOpenAPIDocument checks the document GET /openapi.json serves against
// the gateway itself: the document must be valid, and every route it
// describes is exercised on a real gateway (successes and refusals), each
// real request and response checked against it. A handler whose answer
// drifts from the document (a renamed field, a new status, a new error
// name) fails here.
func TestOpenAPIDocument(t *testing.T) {
	g, idp, base := openAPIGateway(t)
	d := loadAPIDoc(t, g, base)
	bogusKey := []string{"Authorization", "Bearer cgw_0000000000000000_not-a-key"}
	noScope := []string{"Authorization", "Bearer " + idp.Token(t, "agent-noscope")}
	tokenA := []string{"Authorization", "Bearer " + idp.Token(t, "agent-a", "mcp")}
	evilOrigin := []string{"Origin", "https://evil.example"}
	evilHost := []string{"Host", "evil.example"}

	// Probes and documents.
	d.run([]exchange{
		{name: "liveness", method: "GET", path: "/healthz", status: 200},
		{name: "readiness", method: "GET", path: "/readyz", status: 200},
		{name: "this document", method: "GET", path: "/openapi.json", status: 200},
		{name: "resource metadata", method: "GET", path: "/.well-known/oauth-protected-resource", status: 200},
		{name: "resource metadata of /mcp", method: "GET", path: "/.well-known/oauth-protected-resource/mcp", status: 200},
	})

	// Browser sign-in at the provider, for the cookie and CSRF token.
	d.run([]exchange{
		{name: "next not local", method: "GET", path: "/auth/login?next=" + url.QueryEscape("https://evil.example/"), status: 400, errName: "BadRequest", refused: true},
		{name: "no sign-in in progress", method: "GET", path: "/auth/callback?code=x&state=y", status: 400, errName: "BadRequest"},
		{name: "from another origin", method: "GET", path: "/auth/login", header: evilOrigin, status: 403, errName: "ForbiddenOrigin"},
		{name: "not signed in", method: "GET", path: "/auth/session", status: 401, errName: "Unauthorized", refused: true},
		{name: "a sign-in link without its token", method: "GET", path: "/auth/link", status: 400, errName: "BadRequest", refused: true},
		{name: "a sign-in link altered", method: "GET", path: "/auth/link?token=not-a-sealed-token", status: 400, errName: "SignInLinkInvalid"},
		{name: "a sign-in link posted from another site", method: "POST", path: "/auth/link", header: evilOrigin, status: 403, errName: "ForbiddenOrigin", refused: true},
	})
	resp, _ := d.do(exchange{name: "sign in", method: "GET", path: "/auth/login?next=/", status: 302})
	loginCookie := cookieNamed(resp, "cgw_session_login")
	jar, _ := cookiejar.New(nil)
	cb, err := idp.SignIn(t.Context(), &http.Client{Jar: jar}, resp.Header.Get("Location"), idp.TestUsername(), testidp.UserPassword)
	if err != nil {
		t.Fatal(err)
	}
	resp, _ = d.do(exchange{name: "signed in", method: "GET", path: "/auth/callback?" + cb.RawQuery,
		header: []string{"Cookie", "cgw_session_login=" + loginCookie}, status: 303})
	cookie := []string{"Cookie", "cgw_session=" + cookieNamed(resp, "cgw_session")}
	_, body := d.do(exchange{name: "the session", method: "GET", path: "/auth/session", header: cookie, status: 200})
	var session struct {
		CSRF string `json:"csrf_token"`
	}
	_ = json.Unmarshal(body, &session)
	browser := append(slices.Clone(cookie), "X-CSRF-Token", session.CSRF)

	// Credentials (seed: Option A, steps 3 to 5).
	const credsA = "/tenants/tenant-a/integrations/github/credentials"
	expiring := `{"accessToken": "xoxb-planted-1", "refreshToken": "xoxe-planted-2", "expiresIn": 3600, "tokenType": "bearer", "scopes": ["chat:write"], "team_id": "T123", "extra": {"bot_id": "B1"}}`
	padding := strings.Repeat("x", 5<<20)
	huge := `{"accessToken": "x", "padding": "` + padding + `"}`
	d.run([]exchange{
		{name: "tenant-c before any credential", method: "GET", path: "/tenants/tenant-c/integrations", as: "tenant-c", status: 200},
		{name: "the seed's body", method: "POST", path: credsA, as: "tenant-a", body: seedCredential, status: 201},
		{name: "an expiring token, with an OIDC token", method: "POST", path: "/tenants/tenant-a/integrations/slack/credentials", header: tokenA, body: expiring, status: 201},
		{name: "by X-API-Key", method: "POST", path: "/tenants/tenant-c/integrations/slack/credentials", header: []string{"X-API-Key", g.keys["tenant-c"]}, body: `{"accessToken": "xoxb-planted-3"}`, status: 201},
		{name: "by an admin", method: "POST", path: "/tenants/tenant-c/integrations/github/credentials", as: "admin", body: `{"accessToken": "ghp_planted_admin_put"}`, status: 201},
		{name: "from a signed-in browser", method: "POST", path: "/tenants/tenant-a/integrations/everything/credentials", header: browser, body: `{"accessToken": "unused"}`, status: 201},
		{name: "a browser without the CSRF token", method: "POST", path: credsA, header: cookie, body: seedCredential, status: 403, errName: "CSRFCheckFailed", refused: true},
		{name: "malformed JSON", method: "POST", path: credsA, as: "tenant-a", body: `{"accessToken": `, status: 400, errName: "ValidationError", refused: true},
		{name: "an array", method: "POST", path: credsA, as: "tenant-a", body: `[{"accessToken": "x"}]`, status: 400, errName: "ValidationError", refused: true},
		{name: "no accessToken", method: "POST", path: credsA, as: "tenant-a", body: `{"tokenType": "bearer"}`, status: 400, errName: "ValidationError", refused: true},
		{name: "negative expiresIn", method: "POST", path: credsA, as: "tenant-a", body: `{"accessToken": "x", "expiresIn": -1}`, status: 400, errName: "ValidationError", refused: true},
		{name: "fractional expiresIn", method: "POST", path: credsA, as: "tenant-a", body: `{"accessToken": "x", "expiresIn": 1.5}`, status: 400, errName: "ValidationError", refused: true},
		{name: "a scope with a space", method: "POST", path: credsA, as: "tenant-a", body: `{"accessToken": "x", "scopes": ["a b"]}`, status: 400, errName: "ValidationError", refused: true},
		{name: "an object extra", method: "POST", path: credsA, as: "tenant-a", body: `{"accessToken": "x", "workspace": {"id": 1}}`, status: 400, errName: "ValidationError", refused: true},
		{name: "an extra named like a record field", method: "POST", path: credsA, as: "tenant-a", body: `{"accessToken": "x", "access_token": "y"}`, status: 400, errName: "ValidationError", refused: true},
		{name: "an extra in extra named like a record field", method: "POST", path: credsA, as: "tenant-a", body: `{"accessToken": "x", "extra": {"scopes": "y"}}`, status: 400, errName: "ValidationError", refused: true},
		{name: "a hostile tenant ID", method: "POST", path: "/tenants/TENANT-A/integrations/github/credentials", as: "tenant-a", body: seedCredential, status: 400, errName: "InvalidTenantId", refused: true},
		{name: "no credentials", method: "POST", path: credsA, body: seedCredential, status: 401, errName: "Unauthorized", refused: true},
		{name: "an unknown API key", method: "POST", path: credsA, header: bogusKey, body: seedCredential, status: 401, errName: "Unauthorized"},
		{name: "another tenant", method: "POST", path: credsA, as: "tenant-b", body: seedCredential, status: 403, errName: "Forbidden"},
		{name: "a token without the scope", method: "POST", path: credsA, header: noScope, body: seedCredential, status: 403, errName: "InsufficientScope"},
		{name: "from another origin", method: "POST", path: credsA, as: "tenant-a", header: evilOrigin, body: seedCredential, status: 403, errName: "ForbiddenOrigin"},
		{name: "a rebound host", method: "POST", path: credsA, as: "tenant-a", header: evilHost, body: seedCredential, status: 403, errName: "ForbiddenHost"},
		{name: "an unknown integration", method: "POST", path: "/tenants/tenant-a/integrations/nope/credentials", as: "tenant-a", body: seedCredential, status: 404, errName: "IntegrationNotFound"},
		{name: "an oversized body", method: "POST", path: credsA, as: "tenant-a", body: huge, status: 413, errName: "PayloadTooLarge"},

		{name: "tenant-a's integrations", method: "GET", path: "/tenants/tenant-a/integrations", as: "tenant-a", status: 200},
		{name: "from a signed-in browser", method: "GET", path: "/tenants/tenant-a/integrations", header: cookie, status: 200},
		{name: "a hostile tenant ID", method: "GET", path: "/tenants/TENANT-A/integrations", as: "tenant-a", status: 400, errName: "InvalidTenantId", refused: true},
		{name: "no credentials", method: "GET", path: "/tenants/tenant-a/integrations", status: 401, errName: "Unauthorized", refused: true},
		{name: "another tenant", method: "GET", path: "/tenants/tenant-a/integrations", as: "tenant-b", status: 403, errName: "Forbidden"},

		{name: "one linked", method: "GET", path: "/tenants/tenant-a/integrations/github", as: "tenant-a", status: 200},
		{name: "one expiring", method: "GET", path: "/tenants/tenant-a/integrations/slack", as: "tenant-a", status: 200},
		{name: "one not linked", method: "GET", path: "/tenants/tenant-b/integrations/github", as: "tenant-b", status: 200},
		{name: "an unknown integration", method: "GET", path: "/tenants/tenant-a/integrations/nope", as: "tenant-a", status: 404, errName: "IntegrationNotFound"},
		{name: "another tenant", method: "GET", path: "/tenants/tenant-a/integrations/github", as: "tenant-b", status: 403, errName: "Forbidden"},

		{name: "revoke", method: "DELETE", path: credsA, as: "tenant-a", status: 200},
		{name: "revoke again", method: "DELETE", path: credsA, as: "tenant-a", status: 404, errName: "CredentialNotFoundError"},
		{name: "a revoked one", method: "GET", path: "/tenants/tenant-a/integrations/github", as: "tenant-a", status: 200},
		{name: "revoke an unknown integration", method: "DELETE", path: "/tenants/tenant-a/integrations/nope/credentials", as: "tenant-a", status: 404, errName: "IntegrationNotFound"},
		{name: "revoke another tenant's", method: "DELETE", path: "/tenants/tenant-a/integrations/slack/credentials", as: "tenant-b", status: 403, errName: "Forbidden"},
	})

	// Tool calls (seed: Option A, step 6).
	d.run([]exchange{
		{name: "the seed's shape", method: "POST", path: "/api/v1/tools/invoke", as: "tenant-a", body: `{"toolId": "notion.API-get-self", "integration": "notion", "tenantId": "tenant-a", "parameters": {}}`, status: 200},
		{name: "the caller's own tenant", method: "POST", path: "/api/v1/tools/invoke", as: "tenant-b", body: `{"toolId": "everything.echo", "parameters": {"message": "hi"}}`, status: 200},
		{name: "toolId without a tool", method: "POST", path: "/api/v1/tools/invoke", as: "tenant-a", body: `{"toolId": "notion"}`, status: 400, errName: "ValidationError", refused: true},
		{name: "integration not toolId's", method: "POST", path: "/api/v1/tools/invoke", as: "tenant-a", body: `{"toolId": "notion.API-get-self", "integration": "github"}`, status: 400, errName: "ValidationError"},
		{name: "parameters not an object", method: "POST", path: "/api/v1/tools/invoke", as: "tenant-a", body: `{"toolId": "notion.API-get-self", "parameters": "x"}`, status: 400, errName: "ValidationError", refused: true},
		{name: "an unknown field", method: "POST", path: "/api/v1/tools/invoke", as: "tenant-a", body: `{"toolId": "notion.API-get-self", "tenant": "tenant-b"}`, status: 400, errName: "ValidationError", refused: true},
		{name: "a hostile tenant ID", method: "POST", path: "/api/v1/tools/invoke", as: "tenant-a", body: `{"toolId": "notion.API-get-self", "tenantId": "../tenant-b"}`, status: 400, errName: "InvalidTenantId", refused: true},
		{name: "no credentials", method: "POST", path: "/api/v1/tools/invoke", body: `{"toolId": "notion.API-get-self"}`, status: 401, errName: "Unauthorized", refused: true},
		{name: "another tenant", method: "POST", path: "/api/v1/tools/invoke", as: "tenant-b", body: `{"toolId": "notion.API-get-self", "tenantId": "tenant-a"}`, status: 403, errName: "Forbidden"},
		{name: "an unknown integration", method: "POST", path: "/api/v1/tools/invoke", as: "tenant-a", body: `{"toolId": "nope.tool"}`, status: 404, errName: "IntegrationNotFound"},
		{name: "not sent as JSON", method: "POST", path: "/api/v1/tools/invoke", as: "tenant-a", header: []string{"Content-Type", "text/plain"}, body: `{"toolId": "notion.API-get-self"}`, status: 415, errName: "UnsupportedMediaType", refused: true},
		{name: "an unknown tool", method: "POST", path: "/api/v1/tools/invoke", as: "tenant-a", body: `{"toolId": "notion.no-such-tool"}`, status: 404, errName: "ToolNotFound"},
		{name: "not connected", method: "POST", path: "/api/v1/tools/invoke", as: "tenant-a", body: `{"toolId": "github.get_me"}`, status: 404, errName: "CredentialNotFoundError"},
	})

	// Tenant settings (admins).
	const everythingB = "/tenants/tenant-b/integrations/everything"
	d.run([]exchange{
		{name: "narrow to one tool", method: "PUT", path: everythingB, as: "admin", body: `{"enabled": true, "tools": ["echo"]}`, status: 200},
		{name: "turn off", method: "DELETE", path: everythingB, as: "admin", status: 200},
		{name: "a call to it", method: "POST", path: "/api/v1/tools/invoke", as: "tenant-b", body: `{"toolId": "everything.echo", "parameters": {"message": "hi"}}`, status: 403, errName: "IntegrationDisabled"},
		{name: "listed as off", method: "GET", path: "/tenants/tenant-b/integrations", as: "tenant-b", status: 200},
		{name: "turn on, no body", method: "PUT", path: everythingB, as: "admin", status: 200},
		{name: "not an admin", method: "PUT", path: everythingB, as: "tenant-b", body: `{"enabled": false}`, status: 403, errName: "Forbidden"},
		{name: "not an admin", method: "DELETE", path: everythingB, as: "tenant-b", status: 403, errName: "Forbidden"},
		{name: "an unknown field", method: "PUT", path: everythingB, as: "admin", body: `{"bogus": 1}`, status: 400, errName: "ValidationError", refused: true},
		{name: "an empty tool name", method: "PUT", path: everythingB, as: "admin", body: `{"tools": [""]}`, status: 400, errName: "ValidationError", refused: true},
		{name: "an unknown integration", method: "PUT", path: "/tenants/tenant-b/integrations/nope", as: "admin", status: 404, errName: "IntegrationNotFound"},
		{name: "a hostile tenant ID", method: "DELETE", path: "/tenants/TENANT-B/integrations/everything", as: "admin", status: 400, errName: "InvalidTenantId", refused: true},
	})

	// Admin health (seed: Health Checks).
	d.run([]exchange{
		{name: "every tenant", method: "GET", path: "/admin/tenants/health", as: "admin", status: 200},
		{name: "a page", method: "GET", path: "/admin/tenants/health?limit=1&after=tenant-a", as: "admin", status: 200},
		{name: "limit 0", method: "GET", path: "/admin/tenants/health?limit=0", as: "admin", status: 400, errName: "ValidationError", refused: true},
		{name: "after not a tenant", method: "GET", path: "/admin/tenants/health?after=..", as: "admin", status: 400, errName: "ValidationError", refused: true},
		{name: "not an admin", method: "GET", path: "/admin/tenants/health", as: "tenant-b", status: 403, errName: "Forbidden"},
		{name: "no credentials", method: "GET", path: "/admin/tenants/health", status: 401, errName: "Unauthorized", refused: true},

		{name: "rotate", method: "POST", path: "/admin/tenants/tenant-b/rotate-key", as: "admin", status: 200},
		{name: "still readable", method: "POST", path: "/api/v1/tools/invoke", as: "tenant-b", body: `{"toolId": "notion.API-get-self"}`, status: 200},
		{name: "not an admin", method: "POST", path: "/admin/tenants/tenant-b/rotate-key", as: "tenant-b", status: 403, errName: "Forbidden"},
		{name: "a hostile tenant ID", method: "POST", path: "/admin/tenants/TENANT-B/rotate-key", as: "admin", status: 400, errName: "InvalidTenantId", refused: true},
		{name: "no credentials", method: "POST", path: "/admin/tenants/tenant-b/rotate-key", status: 401, errName: "Unauthorized", refused: true},
	})

	// The OAuth link flow (seed: Option A, steps 1 and 2).
	const authorize = "/oauth/authorize/linked"
	back := "?redirect_uri=" + url.QueryEscape(appCallback)
	d.run([]exchange{
		{name: "a browser", method: "GET", path: authorize + back, as: "tenant-a", header: []string{"Accept", "text/html,application/xhtml+xml"}, status: 302},
		{name: "a hostile tenant_id", method: "GET", path: authorize + "?tenant_id=TENANT-A", as: "tenant-a", status: 400, errName: "InvalidTenantId", refused: true},
		{name: "a redirect_uri not allowed", method: "GET", path: authorize + "?redirect_uri=" + url.QueryEscape("https://evil.example/done"), as: "tenant-a", status: 400, errName: "InvalidRedirectUri"},
		{name: "no credentials", method: "GET", path: authorize, status: 401, errName: "Unauthorized", refused: true},
		{name: "an unknown API key", method: "GET", path: authorize, header: bogusKey, status: 401, errName: "Unauthorized"},
		{name: "another tenant", method: "GET", path: authorize + "?tenant_id=tenant-a", as: "tenant-b", status: 403, errName: "Forbidden"},
		{name: "a token without the scope", method: "GET", path: authorize, header: noScope, status: 403, errName: "InsufficientScope"},
		{name: "a rebound host", method: "GET", path: authorize, as: "tenant-a", header: evilHost, status: 403, errName: "ForbiddenHost"},
		{name: "an unknown integration", method: "GET", path: "/oauth/authorize/nope", as: "tenant-a", status: 404, errName: "IntegrationNotFound"},
		{name: "a preset without a client", method: "GET", path: "/oauth/authorize/notion", as: "tenant-a", status: 404, errName: "OAuthNotConfigured"},
	})
	link := func(tenant, query string) (authURL, state string) {
		t.Helper()
		_, body := d.do(exchange{name: "start a link", method: "GET", path: authorize + query, as: tenant, status: 200})
		var out struct {
			AuthorizationURL string `json:"authorizationUrl"`
			State            string `json:"state"`
		}
		if err := json.Unmarshal(body, &out); err != nil {
			t.Fatalf("GET %s: %s", authorize, body)
		}
		return out.AuthorizationURL, out.State
	}
	// An agent's link goes through the consent page, where the person must
	// be signed in as a user of the link's tenant.
	consentURL, _ := link("tenant-a", back)
	consent := strings.TrimPrefix(consentURL, "http://gateway.test")
	_, consentB := link("tenant-b", back)
	resp, _ = d.do(exchange{name: "the consent page, not signed in", method: "GET", path: consent, status: 303})
	if loc := resp.Header.Get("Location"); loc != "/auth/login?next="+url.QueryEscape(consent) {
		t.Errorf("consent page without a session: to %q, want sign-in and back", loc)
	}
	resp, page := d.do(exchange{name: "the consent page", method: "GET", path: consent, header: cookie, status: 200})
	linkCookie := "cgw_link=" + cookieNamed(resp, "cgw_link")
	csrf := csrfField.FindStringSubmatch(string(page))
	if csrf == nil || linkCookie == "cgw_link=" {
		t.Fatalf("consent page without its form or cookie: %s", page)
	}
	both := []string{"Cookie", cookie[1] + "; " + linkCookie}
	form := func(extra ...string) []string {
		return append(append(slices.Clone(both), "Content-Type", "application/x-www-form-urlencoded"), extra...)
	}
	confirm := "csrf_token=" + url.QueryEscape(html.UnescapeString(csrf[1]))
	d.run([]exchange{
		{name: "another tenant's link", method: "GET", path: "/oauth/link/" + consentB, header: cookie, status: 403, errName: "StateTenantMismatch"},
		{name: "an altered link", method: "GET", path: consent + "x", header: cookie, status: 400, errName: "InvalidState"},
		{name: "a rebound host", method: "GET", path: consent, header: append(slices.Clone(cookie), "Host", "evil.example"), status: 403, errName: "ForbiddenHost"},
		{name: "without the CSRF token", method: "POST", path: consent, header: form(), body: "csrf_token=x", status: 403},
		{name: "from another site", method: "POST", path: consent, header: form("Origin", "https://evil.example"), body: confirm, status: 403},
		{name: "not signed in", method: "POST", path: consent, header: []string{"Cookie", linkCookie, "Content-Type", "application/x-www-form-urlencoded"}, body: confirm, status: 401},
	})
	resp, _ = d.do(exchange{name: "confirmed", method: "POST", path: consent, header: form(), body: confirm, status: 303})
	authURL := resp.Header.Get("Location")
	d.run([]exchange{
		{name: "confirmed again", method: "POST", path: consent, header: form(), body: confirm, status: 400},
	})
	cb, err = idp.SignIn(t.Context(), &http.Client{}, authURL, idp.TestUsername(), testidp.UserPassword)
	if err != nil {
		t.Fatal(err)
	}
	callback := "/oauth/callback/linked?" + cb.RawQuery
	inBrowser := []string{"Cookie", linkCookie}
	d.run([]exchange{
		{name: "in another browser", method: "GET", path: callback, status: 403, errName: "StateBrowserMismatch"},
	})
	resp, _ = d.do(exchange{name: "linked", method: "GET", path: callback, header: inBrowser, status: 302})
	if want := appCallback + "?integration=linked&status=success"; resp.Header.Get("Location") != want {
		t.Errorf("callback: to %q, want %s", resp.Header.Get("Location"), want)
	}
	// A signed-in browser gets the provider's URL at once, bound to it.
	browserLink := func(query string) string {
		t.Helper()
		_, body := d.do(exchange{name: "a signed-in browser starts a link", method: "GET", path: authorize + query, header: append(slices.Clone(both), "Sec-Fetch-Site", "same-origin"), status: 200})
		var out struct {
			AuthorizationURL string `json:"authorizationUrl"`
			State            string `json:"state"`
		}
		if err := json.Unmarshal(body, &out); err != nil || !strings.HasPrefix(out.AuthorizationURL, idp.Issuer) {
			t.Fatalf("GET %s from a signed-in browser: %s, want the provider's URL", authorize, body)
		}
		return out.State
	}
	// A link another site makes the signed-in browser follow (no fetch
	// metadata, or a cross-site or typed navigation) gets the consent page,
	// which asks: a GET carries the session cookie from anywhere.
	for _, site := range []string{"", "cross-site", "none", "same-site"} {
		h := slices.Clone(both)
		if site != "" {
			h = append(h, "Sec-Fetch-Site", site)
		}
		_, body := d.do(exchange{name: "a signed-in browser sent by another site", method: "GET", path: authorize + back, header: h, status: 200})
		var out struct {
			AuthorizationURL string `json:"authorizationUrl"`
		}
		if err := json.Unmarshal(body, &out); err != nil || !strings.Contains(out.AuthorizationURL, "/oauth/link/") {
			t.Errorf("GET %s from a signed-in browser, Sec-Fetch-Site %q: %s, want the consent page", authorize, site, body)
		}
	}
	state := browserLink(back)
	forged := []byte(state)
	forged[len(forged)/2] ^= 1
	pageState := browserLink("") // no redirect URI: the gateway's own page
	d.run([]exchange{
		{name: "replayed", method: "GET", path: callback, header: inBrowser, status: 400, errName: "StateAlreadyUsed"},
		{name: "replayed by a browser", method: "GET", path: callback, header: append(slices.Clone(inBrowser), "Accept", "text/html"), status: 400},
		{name: "an altered state", method: "GET", path: "/oauth/callback/linked?code=x&state=" + url.QueryEscape(string(forged)), header: inBrowser, status: 400, errName: "InvalidState"},
		{name: "no state", method: "GET", path: "/oauth/callback/linked?code=x&state=", status: 400, errName: "InvalidState", refused: true},
		{name: "another integration's callback", method: "GET", path: "/oauth/callback/everything?code=x&state=" + url.QueryEscape(state), status: 404, errName: "OAuthNotConfigured"},
		{name: "a rebound host", method: "GET", path: "/oauth/callback/linked?code=x&state=" + url.QueryEscape(state), header: evilHost, status: 403, errName: "ForbiddenHost"},
		{name: "denied", method: "GET", path: "/oauth/callback/linked?error=access_denied&state=" + url.QueryEscape(state), header: inBrowser, status: 302},
		{name: "denied, without a redirect URI", method: "GET", path: "/oauth/callback/linked?error=access_denied&state=" + url.QueryEscape(pageState), header: inBrowser, status: 400},
	})

	// The MCP endpoint, briefly.
	mcpHeaders := func(extra ...string) []string {
		return append([]string{"Accept", "application/json, text/event-stream"}, extra...)
	}
	resp, _ = d.do(exchange{name: "initialize", method: "POST", path: "/mcp", as: "tenant-a", header: mcpHeaders(), body: initializeBody, status: 200})
	sessionID := resp.Header.Get("Mcp-Session-Id")
	inSession := mcpHeaders("Mcp-Session-Id", sessionID, "MCP-Protocol-Version", "2025-11-25")
	d.run([]exchange{
		{name: "initialized", method: "POST", path: "/mcp", as: "tenant-a", header: inSession, body: `{"jsonrpc":"2.0","method":"notifications/initialized"}`, status: 202},
		{name: "a batch", method: "POST", path: "/mcp", as: "tenant-a", header: mcpHeaders(), body: "[" + initializeBody + "]", status: 400, refused: true},
		{name: "no credentials", method: "POST", path: "/mcp", header: mcpHeaders(), body: initializeBody, status: 401, errName: "Unauthorized", refused: true},
		{name: "only the browser cookie", method: "POST", path: "/mcp", header: mcpHeaders(browser...), body: initializeBody, status: 401, errName: "Unauthorized", refused: true},
		{name: "a token without the scope", method: "POST", path: "/mcp", header: mcpHeaders(noScope...), body: initializeBody, status: 403, errName: "InsufficientScope"},
		{name: "an oversized body", method: "POST", path: "/mcp", as: "tenant-a", header: mcpHeaders(), body: `{"jsonrpc":"2.0","id":2,"method":"ping","params":{"padding":"` + padding + `"}}`, status: 413, errName: "PayloadTooLarge"},
		{name: "another identity's session", method: "GET", path: "/mcp", as: "tenant-b", header: inSession, status: 404, errName: "SessionNotFound"},
		{name: "another identity's session", method: "DELETE", path: "/mcp", as: "tenant-b", header: inSession, status: 404, errName: "SessionNotFound"},
		{name: "a GET without a session", method: "GET", path: "/mcp", as: "tenant-a", header: mcpHeaders("MCP-Protocol-Version", "2025-11-25"), status: 400},
		{name: "a DELETE without a session", method: "DELETE", path: "/mcp", as: "tenant-a", header: mcpHeaders(), status: 400},
		{name: "an id that is an object", method: "POST", path: "/mcp", as: "tenant-a", header: inSession, body: `{"jsonrpc":"2.0","id":{"x":1},"method":"ping"}`, status: 400, refused: true},
		{name: "the session on another endpoint", method: "POST", path: "/mcp/notion", as: "tenant-a", header: inSession, body: `{"jsonrpc":"2.0","id":3,"method":"ping"}`, status: 404, errName: "SessionNotFound"},
		{name: "end the session", method: "DELETE", path: "/mcp", as: "tenant-a", header: inSession, status: 200},
		{name: "one integration", method: "POST", path: "/mcp/notion", as: "tenant-a", header: mcpHeaders(), body: initializeBody, status: 200},
		{name: "an unknown integration", method: "POST", path: "/mcp/nope", as: "tenant-a", header: mcpHeaders(), body: initializeBody, status: 404, errName: "IntegrationNotFound"},
		{name: "an unknown session", method: "GET", path: "/mcp/notion", as: "tenant-a", header: mcpHeaders("Mcp-Session-Id", "made-up"), status: 404, errName: "SessionNotFound"},
		{name: "an unknown session", method: "DELETE", path: "/mcp/notion", as: "tenant-a", header: mcpHeaders("Mcp-Session-Id", "made-up"), status: 404, errName: "SessionNotFound"},
	})

	// Sign-out last: it ends the browser session.
	d.run([]exchange{
		{name: "without the CSRF token", method: "POST", path: "/auth/logout", header: cookie, status: 403, errName: "CSRFCheckFailed"},
		{name: "sign out", method: "POST", path: "/auth/logout", header: browser, status: 204},
	})

	apiKeyExchanges(t, d)     // apikeys_test.go
	usageDailyExchanges(t, d) // usagedaily_test.go
	limitsExchanges(t, d)     // limits_test.go
	// Last: it off-boards tenant-c (offboard_test.go).
	offboardExchanges(t, d)
	d.checkCovered()
	g.assertNoSecrets()

	// A gateway with no OAuth, OpenID provider or browser sign-in: the
	// routes that then do not exist, as the document describes them.
	t.Run("unconfigured", func(t *testing.T) {
		g := newGateway(t)
		d := loadAPIDoc(t, g, "http://"+g.serve())
		d.run([]exchange{
			{name: "no resource URI", method: "GET", path: "/.well-known/oauth-protected-resource", status: 404},
			{name: "no OAuth", method: "GET", path: "/oauth/authorize/github", as: "tenant-a", status: 404, errName: "OAuthNotConfigured"},
			{name: "no OAuth", method: "GET", path: "/oauth/callback/github?code=x&state=y", status: 404, errName: "OAuthNotConfigured"},
			// Sign-in links only (no provider): a cookie not valid is no session.
			{name: "no browser sign-in", method: "GET", path: "/auth/session", header: []string{"Cookie", "cgw_session=x"}, status: 401, errName: "Unauthorized"},
		})
	})
}

// openAPIGateway runs a gateway with everything the document describes
// configured: an OpenID provider (access tokens, protected-resource
// metadata, browser sign-in) that is also the OAuth provider of the
// integration "linked", and an admin API key besides tenant-a's,
// tenant-b's and tenant-c's. The provider's user signs in as tenant-a.
func openAPIGateway(t *testing.T) (*gateway, *testidp.IDP, string) {
	t.Helper()
	idp := testidp.Start(t)
	const public = "http://gateway.test"
	idp.AddWebClient(testidp.WebClient{ID: "gateway-web", Secret: "web-s3cret", RedirectURIs: []string{public + "/auth/callback"}})
	idp.SetUserClaims(testidp.UserID, map[string]any{"tenant_id": "tenant-a"})
	idp.AddClient(testidp.Client{ID: "agent-a", Secret: "s3cret-agent-a", Audience: []string{resource},
		Claims: map[string]any{"tenant_id": "tenant-a"}, Scopes: []string{"mcp"}})
	idp.AddClient(testidp.Client{ID: "agent-noscope", Secret: "s3cret-agent-noscope", Audience: []string{resource},
		Claims: map[string]any{"tenant_id": "tenant-a"}})
	in := linkedIntegration(t, idp, public, "cgw-openapi")
	g := newGatewayWithEnv(t, map[string]string{
		"CONNECTORS_PUBLIC_URL":            public,
		"CONNECTORS_OAUTH_REDIRECT_URIS":   appCallback,
		"CONNECTORS_OIDC_ISSUER":           idp.Issuer,
		"CONNECTORS_RESOURCE":              resource,
		"CONNECTORS_OIDC_SCOPES":           "mcp",
		"CONNECTORS_BROWSER_CLIENT_ID":     "gateway-web",
		"CONNECTORS_BROWSER_CLIENT_SECRET": "web-s3cret",
		"CONNECTORS_BROWSER_SESSION_KEY":   strings.Repeat("ef", 32),
		"LINKED_CLIENT_ID":                 "linker",
		"LINKED_CLIENT_SECRET":             "linker-s3cret",
	}, in)
	g.withAdmin()
	return g, idp, "http://" + g.serve()
}

// apiDoc is the OpenAPI document a running gateway serves, and what a
// test has exercised of it.
type apiDoc struct {
	t      *testing.T
	g      *gateway
	base   string
	doc    *openapi3.T
	router routers.Router
	opts   *openapi3filter.Options
	seen   map[string][]int // "GET /healthz" → statuses answered
}

// loadAPIDoc loads and validates the document the gateway at base serves
// at GET /openapi.json.
func loadAPIDoc(t *testing.T, g *gateway, base string) *apiDoc {
	t.Helper()
	resp, err := http.Get(base + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	doc, err := openapi3.NewLoader().LoadFromData(raw)
	if err != nil {
		t.Fatalf("loading GET /openapi.json: %v", err)
	}
	if err := doc.Validate(t.Context()); err != nil {
		t.Fatalf("GET /openapi.json is not a valid OpenAPI document: %v", err)
	}
	// The document names the default address; this gateway listens elsewhere.
	doc.Servers = openapi3.Servers{{URL: base}}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	return &apiDoc{
		t: t, g: g, base: base, doc: doc, router: router, seen: map[string][]int{},
		opts: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true, AuthenticationFunc: presented},
	}
}

// presented checks that a request presents the credential a security
// scheme names (whether it is valid is the gateway's business).
func presented(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	r, s := in.RequestValidationInput.Request, in.SecurityScheme
	switch {
	case s.Type == "http" && strings.EqualFold(s.Scheme, "bearer"):
		if scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " "); strings.EqualFold(scheme, "Bearer") && token != "" {
			return nil
		}
	case s.Type == "apiKey" && s.In == "header":
		if r.Header.Get(s.Name) != "" {
			return nil
		}
	case s.Type == "apiKey" && s.In == "cookie":
		if c, err := r.Cookie(s.Name); err == nil && c.Value != "" {
			return nil
		}
	}
	return fmt.Errorf("no %s credentials", in.SecuritySchemeName)
}

// exchange is one request to the gateway and the answer it must get.
type exchange struct {
	name         string
	method, path string   // path with any query
	as           string   // the tenant whose API key is sent as a bearer token; "" for none
	header       []string // more headers, name and value pairs ("Host" sets the Host)
	body         string   // JSON
	status       int
	errName      string // the error name an error answer carries
	refused      bool   // the document itself does not accept the request
}

func (d *apiDoc) run(exs []exchange) {
	d.t.Helper()
	for _, ex := range exs {
		d.do(ex)
	}
}

// do sends ex, checks the status and error name, and checks the request
// and the response against the document.
func (d *apiDoc) do(ex exchange) (*http.Response, []byte) {
	d.t.Helper()
	newRequest := func() *http.Request {
		var body io.Reader
		if ex.body != "" {
			body = strings.NewReader(ex.body)
		}
		req, err := http.NewRequestWithContext(d.t.Context(), ex.method, d.base+ex.path, body)
		if err != nil {
			d.t.Fatal(err)
		}
		if ex.body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		if ex.as != "" {
			req.Header.Set("Authorization", "Bearer "+d.g.keys[ex.as])
		}
		for i := 0; i+1 < len(ex.header); i += 2 {
			if ex.header[i] == "Host" {
				req.Host = ex.header[i+1]
				continue
			}
			req.Header.Set(ex.header[i], ex.header[i+1])
		}
		return req
	}
	label := fmt.Sprintf("%s %.80s (%s)", ex.method, ex.path, ex.name)
	client := &http.Client{CheckRedirect: noRedirects.CheckRedirect, Timeout: 60 * time.Second}
	resp, err := client.Do(newRequest())
	if err != nil {
		d.t.Fatalf("%s: %v", label, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != ex.status {
		d.t.Errorf("%s: %s %.300s, want %d", label, resp.Status, body, ex.status)
	}
	if ex.errName != "" {
		var e struct{ Error string }
		_ = json.Unmarshal(body, &e)
		if e.Error != ex.errName {
			d.t.Errorf("%s: error %q (%.300s), want %s", label, e.Error, body, ex.errName)
		}
	}

	req := newRequest()
	route, params, err := d.router.FindRoute(req)
	if err != nil {
		d.t.Errorf("%s: not in the document: %v", label, err)
		return resp, body
	}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: d.opts}
	switch err := openapi3filter.ValidateRequest(d.t.Context(), in); {
	case ex.refused && err == nil:
		d.t.Errorf("%s: the document accepts a request the gateway refuses", label)
	case !ex.refused && err != nil:
		d.t.Errorf("%s: the request does not match the document: %.2000v", label, err)
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header, Options: d.opts}
	out.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(d.t.Context(), out); err != nil {
		d.t.Errorf("%s: the response (%s %.300s) does not match the document: %.2000v", label, resp.Status, body, err)
	}
	key := strings.ToUpper(route.Method) + " " + route.Path
	d.seen[key] = append(d.seen[key], resp.StatusCode)
	return resp, body
}

// checkCovered fails for each operation of the document no exchange
// reached, and logs the statuses each one answered.
func (d *apiDoc) checkCovered() {
	d.t.Helper()
	var report []string
	for path, item := range d.doc.Paths.Map() {
		for method := range item.Operations() {
			key := strings.ToUpper(method) + " " + path
			statuses, ok := d.seen[key]
			if !ok {
				d.t.Errorf("%s is documented but no exchange reached it", key)
				continue
			}
			slices.Sort(statuses)
			report = append(report, fmt.Sprintf("%s: %v", key, slices.Compact(statuses)))
		}
	}
	sort.Strings(report)
	d.t.Logf("statuses checked against the document:\n%s", strings.Join(report, "\n"))
}

// cookieNamed returns the value of the cookie resp sets under name.
func cookieNamed(resp *http.Response, name string) string {
	for _, c := range resp.Cookies() {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}
