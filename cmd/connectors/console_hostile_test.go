package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/connectors-gateway/connectors/internal/testidp"
)

// browserSession is a signed-in browser's cookie and CSRF token, replayed
// by hand as a hostile page or person would.
type browserSession struct {
	cookie, csrf string
}

// sessionOf reads p's session cookie and its CSRF token.
func sessionOf(t *testing.T, p *person, base string) browserSession {
	t.Helper()
	s := browserSession{cookie: p.cookies(base)}
	req, _ := http.NewRequest(http.MethodGet, base+"/auth/session", nil)
	req.Header.Set("Cookie", s.cookie)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		CSRF string `json:"csrf_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.CSRF == "" {
		t.Fatalf("GET /auth/session: %s %v", resp.Status, err)
	}
	s.csrf = out.CSRF
	return s
}

// post sends a console form as s, from origin (the gateway's own when
// empty), and returns the status, where it redirects and the body.
func (s browserSession) post(t *testing.T, base, path, origin string, form url.Values) (int, string, string) {
	t.Helper()
	if origin == "" {
		origin = base
	}
	return s.send(t, http.MethodPost, base+path, strings.NewReader(form.Encode()),
		"Content-Type", "application/x-www-form-urlencoded", "Origin", origin)
}

// get fetches a console page as s.
func (s browserSession) get(t *testing.T, base, path string) (int, string, string) {
	t.Helper()
	return s.send(t, http.MethodGet, base+path, nil)
}

// send makes one request with s's cookie and the headers given (name,
// value pairs), without following a redirect.
func (s browserSession) send(t *testing.T, method, u string, body io.Reader, header ...string) (int, string, string) {
	t.Helper()
	req, _ := http.NewRequest(method, u, body)
	req.Header.Set("Cookie", s.cookie)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := noRedirects.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Location"), string(raw)
}

// TestConsoleIsolation: a tenant's browser reaches nothing of another
// tenant's through the console: not by URL (admin pages, another tenant's
// key ID), not by form fields naming another tenant, not with another
// session's CSRF token or its own from an earlier session, not from
// another origin. A pasted token is stored for its own tenant and never
// shown or logged; a tampered session cookie is no session.
func TestConsoleIsolation(t *testing.T) {
	browser := chromium(t)
	idp := testidp.Start(t)
	g, _, base := consoleGateway(t, idp)
	alice := consoleUser(t, browser, idp, base, map[string]any{"tenant_id": "tenant-c"})
	bob := consoleUser(t, browser, idp, base, map[string]any{"tenant_id": "tenant-b"})
	a, b := sessionOf(t, alice, base), sessionOf(t, bob, base)
	form := func(csrf string, kv ...string) url.Values {
		v := url.Values{"csrf_token": {csrf}}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Add(kv[i], kv[i+1])
		}
		return v
	}

	// The token form of an integration without OAuth, in the browser.
	alice.open(base + "/console/connect/paste")
	alice.checkPage("connect-token")
	const pasted = "paste-planted-secret-7c1d"
	alice.fill("#token", pasted)
	alice.click(`form[action="/console/connect/paste/token"] button`)
	if loc, text := alice.page(); !strings.HasSuffix(loc, "/console/?done=connected") || strings.Contains(text, pasted) {
		t.Fatalf("after pasting a token: %s\n%s", loc, text)
	}
	if !g.linked("tenant-c", "paste") || g.linked("tenant-b", "paste") {
		t.Fatal("the pasted token is not stored for tenant-c alone")
	}
	if strings.Contains(g.stderr.String(), pasted) {
		t.Error("the pasted token is in the gateway's log")
	}

	refused := []struct {
		name, path, origin string
		form               url.Values
		status             int
		want               string
	}{
		{"another session's CSRF token", "/console/connect/paste/token", "", form(b.csrf, "token", "x"), 403, "CSRFCheckFailed"},
		{"no CSRF token", "/console/disconnect/paste", "", form(""), 403, "CSRFCheckFailed"},
		{"another origin", "/console/disconnect/paste", "http://evil.example", form(a.csrf), 403, "ForbiddenOrigin"},
		{"an admin action on another tenant", "/console/admin/tenants/tenant-b/integrations/notion", "", form(a.csrf, "action", "disable"), 403, "administrators"},
		{"another tenant's key rotated", "/console/admin/tenants/tenant-b/rotate-key", "", form(a.csrf), 403, "administrators"},
		{"another tenant off-boarded", "/console/admin/tenants/tenant-b/offboard", "", form(a.csrf, "confirm", "tenant-b"), 403, "administrators"},
		{"another tenant's key revoked", "/console/keys/" + apiKeyID(t, g, "tenant-b") + "/revoke", "", form(a.csrf), 404, "APIKeyNotFound"},
	}
	for _, c := range refused {
		status, _, body := a.post(t, base, c.path, c.origin, c.form)
		if status != c.status || !strings.Contains(body, c.want) {
			t.Errorf("%s: %d %.300s, want %d naming %s", c.name, status, body, c.status, c.want)
		}
	}
	// Fields naming another tenant are not read: alice disconnects her own.
	if status, loc, body := a.post(t, base, "/console/disconnect/paste", "", form(a.csrf, "tenantId", "tenant-b", "tenant_id", "tenant-b")); status != http.StatusSeeOther || !strings.Contains(loc, "done=disconnected") {
		t.Fatalf("disconnect with another tenant's ID in the form: %d %s %.300s", status, loc, body)
	}
	if g.linked("tenant-c", "paste") {
		t.Error("tenant-c's pasted token survived its disconnect")
	}
	for _, tenant := range []string{"tenant-b", "tenant-a"} {
		if !g.linked(tenant, "notion") {
			t.Errorf("%s lost its notion credential to tenant-c's browser", tenant)
		}
		if code, _, raw := g.api(tenant, "GET", "/tenants/"+tenant+"/integrations", ""); code != http.StatusOK {
			t.Errorf("%s's key after tenant-c's attempts: %d %s", tenant, code, raw)
		}
	}
	// What alice's pages show is tenant-c's alone.
	for _, path := range []string{"/console/", "/console/health", "/console/keys", "/console/usage"} {
		if status, _, body := a.get(t, base, path); status != http.StatusOK || strings.Contains(body, "tenant-b") || strings.Contains(body, "tenant-a") {
			t.Errorf("GET %s as tenant-c: %d, or it names another tenant", path, status)
		}
	}
	// A CSRF token of an earlier session of the same person.
	alice.click(`form[action="/console/signout"] button`)
	if status, loc, _ := a.get(t, base, "/console/"); status != http.StatusOK && !strings.HasSuffix(loc, "/console/signin") {
		t.Logf("the old cookie after sign-out: %d %s", status, loc)
	}
	idp.SetUserClaims(testidp.UserID, map[string]any{"tenant_id": "tenant-c"})
	alice.open(base + "/console/signin")
	alice.click(`a.button[href^="/auth/login"]`)
	alice.signIn(idp.TestUsername(), testidp.UserPassword)
	alice.waitFor("/console/")
	again := sessionOf(t, alice, base)
	if again.csrf == a.csrf {
		t.Fatal("a new session has the old session's CSRF token")
	}
	again.csrf = a.csrf
	if status, _, body := again.post(t, base, "/console/keys", "", form(a.csrf, "name", "replayed")); status != http.StatusForbidden || !strings.Contains(body, "CSRFCheckFailed") {
		t.Errorf("the earlier session's CSRF token: %d %.300s, want 403", status, body)
	}
	// A tampered cookie is no session.
	tampered := browserSession{cookie: strings.Replace(again.cookie, "cgw_session=", "cgw_session=A", 1), csrf: again.csrf}
	if status, loc, _ := tampered.get(t, base, "/console/keys"); status != http.StatusSeeOther || !strings.HasSuffix(loc, "/console/signin") {
		t.Errorf("a tampered session cookie: %d %s, want the sign-in page", status, loc)
	}
	g.assertNoSecrets()
}

// apiKeyID is the ID of one of tenant's API keys.
func apiKeyID(t *testing.T, g *gateway, tenant string) string {
	t.Helper()
	_, out, raw := g.api(tenant, "GET", "/tenants/"+tenant+"/api-keys", "")
	keys, _ := out["keys"].([]any)
	if len(keys) == 0 {
		t.Fatalf("%s has no API keys: %s", tenant, raw)
	}
	return keys[0].(map[string]any)["id"].(string)
}
