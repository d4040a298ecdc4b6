package main

import (
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"

	"github.com/connectors-gateway/connectors/internal/testidp"
)

// TestBrowserSignIn: with a browser client configured, a person signs in
// through the provider's real login form and the gateway knows their
// tenant from the session cookie it sets.
func TestBrowserSignIn(t *testing.T) {
	idp := testidp.Start(t)
	const public = "http://gateway.test"
	idp.AddWebClient(testidp.WebClient{ID: "gateway-web", Secret: "web-s3cret", RedirectURIs: []string{public + "/auth/callback"}})
	idp.SetUserClaims(testidp.UserID, map[string]any{"tenant_id": "tenant-a"})
	g := newGateway(t)
	for k, v := range map[string]string{
		"CONNECTORS_OIDC_ISSUER":           idp.Issuer,
		"CONNECTORS_RESOURCE":              resource,
		"CONNECTORS_PUBLIC_URL":            public,
		"CONNECTORS_BROWSER_CLIENT_ID":     "gateway-web",
		"CONNECTORS_BROWSER_CLIENT_SECRET": "web-s3cret",
		"CONNECTORS_BROWSER_SESSION_KEY":   strings.Repeat("ab", 32),
	} {
		g.env[k] = v
	}
	base := "http://" + g.serve()

	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := browser.Get(base + "/auth/login?next=/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), idp.Issuer) {
		t.Fatalf("GET /auth/login: %s to %s, want a redirect to the provider", resp.Status, resp.Header.Get("Location"))
	}
	cb, err := idp.SignIn(t.Context(), browser, resp.Header.Get("Location"), idp.TestUsername(), testidp.UserPassword)
	if err != nil {
		t.Fatal(err)
	}
	// The provider sends the browser to the public URL; here that is us.
	back, _ := url.Parse(base + "/auth/callback?" + cb.RawQuery)
	resp, err = browser.Get(back.String())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("callback: %s", resp.Status)
	}
	resp, err = browser.Get(base + "/auth/session")
	if err != nil {
		t.Fatal(err)
	}
	var session struct {
		Tenant string `json:"tenant"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&session)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || session.Tenant != "tenant-a" {
		t.Errorf("GET /auth/session: %s, tenant %q; want tenant-a", resp.Status, session.Tenant)
	}
	// The cookie is no key to MCP: /mcp still wants a bearer token.
	req, _ := http.NewRequest(http.MethodPost, base+"/mcp", strings.NewReader(initializeBody))
	req.Header.Set("Content-Type", "application/json")
	resp, err = browser.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("POST /mcp with only the session cookie: %s, want 401", resp.Status)
	}
}
