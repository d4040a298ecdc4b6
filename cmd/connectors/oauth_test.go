package main

import (
	"encoding/hex"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/connectors-gateway/connectors/internal/testidp"
)

// appCallback is where the tests' app wants tenants back after linking.
const appCallback = "https://app.example.com/oauth/done"

// linkedGateway runs a gateway whose integration "linked" (the upstream-env
// fixture) is linked through the OAuth link flow at a real OpenID provider
// (a standard OAuth 2.0 provider: code + PKCE + refresh tokens).
func linkedGateway(t *testing.T) (*gateway, *testidp.IDP, string) {
	t.Helper()
	idp := testidp.Start(t)
	const public = "http://gateway.test"
	in := linkedIntegration(t, idp, public, "cgw-linked")
	g := newGatewayWithEnv(t, map[string]string{
		"CONNECTORS_PUBLIC_URL":          public,
		"CONNECTORS_OAUTH_REDIRECT_URIS": appCallback,
		"CONNECTORS_BROWSER_SESSION_KEY": strings.Repeat("cd", 32),
		"LINKED_CLIENT_ID":               "linker",
		"LINKED_CLIENT_SECRET":           "linker-s3cret",
	}, in)
	return g, idp, "http://" + g.serve()
}

// linkedIntegration is the upstream-env fixture as integration "linked",
// linked through idp (client "linker", whose callback is under public).
func linkedIntegration(t *testing.T, idp *testidp.IDP, public, marker string) map[string]any {
	t.Helper()
	idp.AddWebClient(testidp.WebClient{ID: "linker", Secret: "linker-s3cret", RedirectURIs: []string{public + "/oauth/callback/linked"}})
	disc := discover(t, idp.Issuer)
	in := envIntegration(t, "linked", marker, "")
	in["oauth"] = map[string]any{
		"authorizeUrl": disc.AuthorizationEndpoint,
		"tokenUrl":     disc.TokenEndpoint,
		"scopes":       []string{"openid", "offline_access"},
	}
	return in
}

type discovery struct {
	AuthorizationEndpoint string `json:"authorization_endpoint"`
	TokenEndpoint         string `json:"token_endpoint"`
	UserinfoEndpoint      string `json:"userinfo_endpoint"`
}

func discover(t *testing.T, issuer string) discovery {
	t.Helper()
	resp, err := http.Get(issuer + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var d discovery
	if err := json.NewDecoder(resp.Body).Decode(&d); err != nil {
		t.Fatal(err)
	}
	return d
}

// noRedirects is a browser that shows each redirect instead of following it.
var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// getAs sends GET url with tenant's API key (none for "") and headers.
func (g *gateway) getAs(tenant, u string, header ...string) (*http.Response, string) {
	g.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	if tenant != "" {
		req.Header.Set("Authorization", "Bearer "+g.keys[tenant])
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := noRedirects.Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// startLink asks the gateway to start linking integration for tenant and
// returns the provider URL and state.
func (g *gateway) startLink(base, tenant, integration string) (authURL, state string) {
	g.t.Helper()
	resp, body := g.getAs(tenant, base+"/oauth/authorize/"+integration+"?redirect_uri="+url.QueryEscape(appCallback))
	if resp.StatusCode != http.StatusOK {
		g.t.Fatalf("GET /oauth/authorize/%s: %s %s", integration, resp.Status, body)
	}
	var out struct {
		AuthorizationURL string `json:"authorizationUrl"`
		State            string `json:"state"`
	}
	if err := json.Unmarshal([]byte(body), &out); err != nil || out.AuthorizationURL == "" || out.State == "" {
		g.t.Fatalf("GET /oauth/authorize/%s: %s, want {authorizationUrl, state}", integration, body)
	}
	return out.AuthorizationURL, out.State
}

// linkBrowser is a browser without JavaScript: cookies, no redirects
// followed.
func linkBrowser() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

var (
	csrfField   = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)
	formAction  = regexp.MustCompile(`<form method="post" action="([^"]+)"`)
	publicLinks = regexp.MustCompile(`^http://gateway\.test`)
)

// confirm plays the person who opens the consent link in browser and
// confirms: it returns the provider URL the gateway sends browser on to.
// Links under the tests' public URL (http://gateway.test) are opened at
// base.
func (g *gateway) confirm(base string, browser *http.Client, link string) string {
	g.t.Helper()
	resp, page := g.visit(browser, http.MethodGet, publicLinks.ReplaceAllString(link, base), "")
	if resp.StatusCode != http.StatusOK {
		g.t.Fatalf("consent page %s: %s %s", link, resp.Status, page)
	}
	csrf, action := csrfField.FindStringSubmatch(page), formAction.FindStringSubmatch(page)
	if csrf == nil || action == nil {
		g.t.Fatalf("consent page without its form: %s", page)
	}
	resp, page = g.visit(browser, http.MethodPost, base+html.UnescapeString(action[1]), "csrf_token="+url.QueryEscape(html.UnescapeString(csrf[1])))
	if resp.StatusCode != http.StatusSeeOther {
		g.t.Fatalf("confirming %s: %s %s", link, resp.Status, page)
	}
	return resp.Header.Get("Location")
}

// visit sends one browser request (a form POST when form is not empty,
// from the gateway's own origin) and returns the answer and its body.
func (g *gateway) visit(browser *http.Client, method, u, form string) (*http.Response, string) {
	g.t.Helper()
	var body io.Reader
	if method == http.MethodPost {
		body = strings.NewReader(form)
	}
	req, _ := http.NewRequest(method, u, body)
	req.Header.Set("Accept", "text/html")
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", "http://"+req.URL.Host)
	}
	resp, err := browser.Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// linkState begins a link for tenant as an agent would and confirms it in
// a new browser: the browser, the provider URL and its state.
func (g *gateway) linkState(base, tenant, integration string) (*http.Client, string, string) {
	g.t.Helper()
	link, _ := g.startLink(base, tenant, integration)
	browser := linkBrowser()
	authURL := g.confirm(base, browser, link)
	u, err := url.Parse(authURL)
	if err != nil || u.Query().Get("state") == "" {
		g.t.Fatalf("confirmed link goes to %q, want the provider with a state", authURL)
	}
	return browser, authURL, u.Query().Get("state")
}

// TestOAuthLinkFlow links an account end to end through the gateway's
// routes and a real provider: authorize (JSON and browser redirect), the
// provider's login, the callback, storage, tools appearing in an open
// session, and the provider's token reaching the upstream.
func TestOAuthLinkFlow(t *testing.T) {
	g, idp, base := linkedGateway(t)
	disc := discover(t, idp.Issuer)

	// An agent session open before the link.
	c := g.client("tenant-a")
	changed := collect(c, mcp.MethodNotificationToolsListChanged)
	if names := toolNames(t, c); containsPrefix(names, "linked_env") || !slices.Contains(names, "linked_connect_account") {
		t.Fatalf("before the link: %v, want linked_connect_account and no linked tools", names)
	}

	// An agent gets the gateway's consent page, never the provider's URL.
	link, id := g.startLink(base, "tenant-a", "linked")
	if link != "http://gateway.test/oauth/link/"+id {
		t.Fatalf("authorizationUrl = %s, want the consent page http://gateway.test/oauth/link/{state}", link)
	}
	resp, _ := g.getAs("tenant-a", base+"/oauth/authorize/linked", "Accept", "text/html,application/xhtml+xml")
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc, "http://gateway.test/oauth/link/") {
		t.Errorf("GET /oauth/authorize/linked asking for HTML: %s to %q, want 302 to the consent page", resp.Status, loc)
	}
	browser := linkBrowser()
	authURL := g.confirm(base, browser, link)
	u, _ := url.Parse(authURL)
	q := u.Query()
	if !strings.HasPrefix(authURL, disc.AuthorizationEndpoint+"?") || q.Get("state") == "" ||
		q.Get("code_challenge") == "" || q.Get("code_challenge_method") != "S256" ||
		q.Get("redirect_uri") != "http://gateway.test/oauth/callback/linked" || q.Get("client_id") != "linker" {
		t.Fatalf("confirmed, the browser goes to %s", authURL)
	}

	cb, err := idp.SignIn(t.Context(), &http.Client{}, authURL, idp.TestUsername(), testidp.UserPassword)
	if err != nil {
		t.Fatal(err)
	}
	callback := base + cb.Path + "?" + cb.RawQuery
	// Only the browser that confirmed can bring the approval back.
	resp, body := g.getAs("", callback)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "StateBrowserMismatch") {
		t.Fatalf("callback without the confirming browser's cookie: %s %s, want 403 StateBrowserMismatch", resp.Status, body)
	}
	resp, body = g.visit(browser, http.MethodGet, callback, "")
	want := appCallback + "?integration=linked&status=success"
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != want {
		t.Fatalf("callback: %s to %q (%s), want 302 to %s", resp.Status, resp.Header.Get("Location"), body, want)
	}

	// The open session hears that its tools changed, and now lists them.
	changed.waitFor(10*time.Second, func(n []map[string]any) bool { return len(n) > 0 })
	if names := toolNames(t, c); !containsPrefix(names, "linked_env") || slices.Contains(names, "linked_connect_account") {
		t.Fatalf("after the link: %v, want the linked tools and no connect tool", names)
	}
	// The upstream got the provider's access token, and it works there.
	token := probe(t, c, "linked_env")
	req, _ := http.NewRequest(http.MethodGet, disc.UserinfoEndpoint, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	uresp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	uresp.Body.Close()
	if uresp.StatusCode != http.StatusOK {
		t.Errorf("the provider's userinfo refuses the token the upstream got: %s", uresp.Status)
	}
	g.assertNoSecretsIn(token)
	if strings.Contains(g.stderr.String(), token) {
		t.Error("the linked access token appears in the gateway's log")
	}

	// The state is spent: the same callback again stores nothing.
	resp, body = g.visit(browser, http.MethodGet, callback, "")
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "StateAlreadyUsed") {
		t.Errorf("replayed callback: %s %s, want 400 StateAlreadyUsed", resp.Status, body)
	}
	if got := probe(t, c, "linked_env"); got != token {
		t.Error("a replayed callback changed the stored credential")
	}
}

// probe returns the PROBE_TOKEN the upstream-env tool env sees.
func probe(t *testing.T, c *client.Client, tool string) string {
	t.Helper()
	out := mustCall(t, c, tool, map[string]any{"hex": true})
	for line := range strings.Lines(out) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "PROBE_TOKEN="); ok {
			b, err := hex.DecodeString(v)
			if err != nil {
				t.Fatal(err)
			}
			return string(b)
		}
	}
	t.Fatalf("%s: no PROBE_TOKEN in %q", tool, out)
	return ""
}

// toolNames lists the tools c's session sees.
func toolNames(t *testing.T, c *client.Client) []string {
	t.Helper()
	res, err := c.ListTools(t.Context(), mcp.ListToolsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tool := range res.Tools {
		names = append(names, tool.Name)
	}
	return names
}

func containsPrefix(names []string, prefix string) bool {
	for _, n := range names {
		if strings.HasPrefix(n, prefix) {
			return true
		}
	}
	return false
}

// TestOAuthLinkRefusals: every way to misuse the link routes is refused
// with a clear error, and stores nothing.
func TestOAuthLinkRefusals(t *testing.T) {
	g, _, base := linkedGateway(t)
	authorize := base + "/oauth/authorize/linked"

	check := func(name string, resp *http.Response, body string, status int, errName string) {
		t.Helper()
		if resp.StatusCode != status || !strings.Contains(body, `"error":"`+errName+`"`) {
			t.Errorf("%s: %s %s, want %d %s", name, resp.Status, strings.TrimSpace(body), status, errName)
		}
	}
	resp, body := g.getAs("", authorize)
	check("no credentials", resp, body, http.StatusUnauthorized, "Unauthorized")
	resp, body = g.getAs("tenant-b", authorize+"?tenant_id=tenant-a")
	check("another tenant's tenant_id", resp, body, http.StatusForbidden, "Forbidden")
	if !strings.Contains(g.stderr.String(), "tenant_access_denied") {
		t.Error("a cross-tenant attempt is not recorded")
	}
	for _, id := range []string{"../tenant-a", "tenant-a/../tenant-b", "tenant-a%2F..", "%2e%2e", "TENANT-A", "tеnant-a", "tenant+a", strings.Repeat("a", 65)} {
		resp, body = g.getAs("tenant-a", authorize+"?tenant_id="+id)
		check("tenant_id "+id, resp, body, http.StatusBadRequest, "InvalidTenantId")
	}
	for _, ru := range []string{
		appCallback + "/", appCallback + "?next=x", appCallback + "#x", strings.ToUpper(appCallback),
		"http://app.example.com/oauth/done", "https://app.example.com.evil.example/oauth/done",
		"https://app.example.com@evil.example/oauth/done", "https://evil.example/oauth/done?https://app.example.com/oauth/done",
		"//evil.example/oauth/done", "javascript:alert(1)", "https://app.example.com/oauth/done/../../evil",
		"https://app.example.com/oauth/done%00", " " + appCallback,
	} {
		resp, body = g.getAs("tenant-a", authorize+"?redirect_uri="+url.QueryEscape(ru))
		check("redirect_uri "+ru, resp, body, http.StatusBadRequest, "InvalidRedirectUri")
	}
	resp, body = g.getAs("tenant-a", base+"/oauth/authorize/nope")
	check("unknown integration", resp, body, http.StatusNotFound, "IntegrationNotFound")
	resp, body = g.getAs("tenant-a", base+"/oauth/authorize/notion") // a preset whose client is not configured
	check("integration without a client", resp, body, http.StatusNotFound, "OAuthNotConfigured")

	// Callbacks.
	_, linkID := g.startLink(base, "tenant-a", "linked")
	callback := base + "/oauth/callback/linked?code=whatever&state="
	resp, body = g.getAs("", callback+url.QueryEscape(linkID))
	check("a consent link's ID as state", resp, body, http.StatusBadRequest, "InvalidState")
	browser, _, state := g.linkState(base, "tenant-a", "linked")
	resp, body = g.getAs("", callback)
	check("no state", resp, body, http.StatusBadRequest, "InvalidState")
	forged := []byte(state)
	forged[len(forged)/2] ^= 1
	resp, body = g.getAs("", callback+url.QueryEscape(string(forged)))
	check("altered state", resp, body, http.StatusBadRequest, "InvalidState")
	resp, body = g.getAs("", callback+url.QueryEscape(state[:len(state)-4]))
	check("truncated state", resp, body, http.StatusBadRequest, "InvalidState")
	resp, body = g.getAs("", base+"/oauth/callback/everything?code=x&state="+url.QueryEscape(state))
	check("state at another integration's callback", resp, body, http.StatusNotFound, "OAuthNotConfigured")

	resp, body = g.getAs("", callback+url.QueryEscape(state))
	check("a browser that did not confirm", resp, body, http.StatusForbidden, "StateBrowserMismatch")
	// The tenant says no at the provider: sent back with the error, nothing stored.
	resp, _ = g.visit(browser, http.MethodGet, base+"/oauth/callback/linked?error=access_denied&error_description=no&state="+url.QueryEscape(state), "")
	if want := appCallback + "?error=access_denied&integration=linked&status=error"; resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != want {
		t.Errorf("denied: %s to %q, want 302 to %s", resp.Status, resp.Header.Get("Location"), want)
	}
	resp, _ = g.visit(browser, http.MethodGet, callback+url.QueryEscape(state), "")
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("the denied flow's state again: %s, want 400 StateAlreadyUsed", resp.Status)
	}
	// A code the provider never issued: sent back with exchange_failed.
	browser, _, state = g.linkState(base, "tenant-a", "linked")
	resp, _ = g.visit(browser, http.MethodGet, callback+url.QueryEscape(state), "")
	if want := appCallback + "?error=exchange_failed&integration=linked&status=error"; resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != want {
		t.Errorf("bad code: %s to %q, want 302 to %s", resp.Status, resp.Header.Get("Location"), want)
	}
	if names := toolNames(t, g.client("tenant-a")); containsPrefix(names, "linked_env") {
		t.Errorf("refused flows stored a credential: %v", names)
	}
	g.assertNoSecrets()
}

// TestConsentRefusals: the consent page is a page no other site can use:
// framed, posted to from elsewhere, confirmed without its cookie or with
// another link's token, or twice, it refuses and sends no one to the
// provider.
func TestConsentRefusals(t *testing.T) {
	g, _, base := linkedGateway(t)
	link, id := g.startLink(base, "tenant-a", "linked")
	consent := base + "/oauth/link/" + id

	browser := linkBrowser()
	resp, page := g.visit(browser, http.MethodGet, consent, "")
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(link, "http://gateway.test/oauth/link/") {
		t.Fatalf("consent page: %s %s", resp.Status, page)
	}
	csp := resp.Header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "frame-ancestors 'none'", "form-action 'self' http://127.0.0.1:"} {
		if !strings.Contains(csp, want) {
			t.Errorf("Content-Security-Policy %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "script-src") || strings.Contains(page, "<script") {
		t.Errorf("the consent page allows or carries script: %q", csp)
	}
	if resp.Header.Get("X-Frame-Options") != "DENY" || resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("consent page headers: %v", resp.Header)
	}
	var cookie *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "cgw_link" {
			cookie = c
		}
	}
	if cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteLaxMode || cookie.Path != "/oauth/" || cookie.Secure {
		t.Fatalf("cgw_link cookie = %+v, want HttpOnly, SameSite=Lax, Path=/oauth/, not Secure over http", cookie)
	}
	for _, want := range []string{"linked", "tenant-a", "apikey:"} {
		if !strings.Contains(page, want) {
			t.Errorf("the consent page does not name %q", want)
		}
	}
	token := "csrf_token=" + url.QueryEscape(html.UnescapeString(csrfField.FindStringSubmatch(page)[1]))
	_, otherID := g.startLink(base, "tenant-a", "linked")
	_, other := g.visit(browser, http.MethodGet, base+"/oauth/link/"+otherID, "")
	otherToken := "csrf_token=" + url.QueryEscape(html.UnescapeString(csrfField.FindStringSubmatch(other)[1]))

	post := func(name string, c *http.Client, form string, header ...string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, consent, strings.NewReader(form))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode == http.StatusSeeOther {
			t.Errorf("%s: sent on to %s", name, resp.Header.Get("Location"))
		}
		return resp, string(b)
	}
	for _, c := range []struct {
		name   string
		client *http.Client
		form   string
		header []string
		status int
		errNm  string
	}{
		{"from another site", browser, token, []string{"Origin", "https://evil.example"}, http.StatusForbidden, "CSRFCheckFailed"},
		{"a cross-site form (allowed origin)", browser, token, []string{"Origin", "http://localhost:1", "Sec-Fetch-Site", "cross-site"}, http.StatusForbidden, "CSRFCheckFailed"},
		{"an opaque origin", browser, token, []string{"Origin", "null"}, http.StatusForbidden, ""},
		{"without the cookie", linkBrowser(), token, nil, http.StatusForbidden, "CSRFCheckFailed"},
		{"without the token", browser, "", nil, http.StatusForbidden, "CSRFCheckFailed"},
		{"with another link's token", browser, otherToken, nil, http.StatusForbidden, "CSRFCheckFailed"},
		{"as JSON", browser, `{"csrf_token":"x"}`, []string{"Content-Type", "application/json"}, http.StatusForbidden, "CSRFCheckFailed"},
	} {
		resp, body := post(c.name, c.client, c.form, c.header...)
		if resp.StatusCode != c.status || !strings.Contains(body, c.errNm) {
			t.Errorf("%s: %s %.200s, want %d %s", c.name, resp.Status, body, c.status, c.errNm)
		}
	}
	// The real confirmation works once.
	resp, _ = g.visit(browser, http.MethodPost, consent, token)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("confirmation: %s", resp.Status)
	}
	resp, body := g.visit(browser, http.MethodPost, consent, token)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "StateAlreadyUsed") {
		t.Errorf("a second confirmation: %s %.200s, want 400 StateAlreadyUsed", resp.Status, body)
	}
	for name, path := range map[string]string{
		"an altered link": "/oauth/link/" + id[:len(id)-2] + "xx", "a provider state as link": "/oauth/link/" + "x", "no link": "/oauth/link/",
	} {
		resp, _ := g.visit(browser, http.MethodGet, base+path, "")
		if resp.StatusCode != http.StatusBadRequest && resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: %s, want 400", name, resp.Status)
		}
	}
	if names := toolNames(t, g.client("tenant-a")); containsPrefix(names, "linked_env") {
		t.Errorf("refused confirmations stored a credential: %v", names)
	}
	g.assertNoSecrets()
}

// TestConsentCookieSecure: behind TLS (an https public URL, so https
// callbacks), the link cookie is Secure: it never travels in clear.
func TestConsentCookieSecure(t *testing.T) {
	idp := testidp.Start(t)
	const public = "https://gateway.test"
	g := newGatewayWithEnv(t, map[string]string{
		"CONNECTORS_PUBLIC_URL":          public,
		"CONNECTORS_BROWSER_SESSION_KEY": strings.Repeat("cd", 32),
		"LINKED_CLIENT_ID":               "linker",
		"LINKED_CLIENT_SECRET":           "linker-s3cret",
	}, linkedIntegration(t, idp, public, "cgw-secure"))
	base := "http://" + g.serve()
	resp, body := g.getAs("tenant-a", base+"/oauth/authorize/linked")
	var out struct{ AuthorizationURL, State string }
	if err := json.Unmarshal([]byte(body), &out); err != nil || !strings.HasPrefix(out.AuthorizationURL, public+"/oauth/link/") {
		t.Fatalf("authorize: %s %s", resp.Status, body)
	}
	resp, _ = g.visit(linkBrowser(), http.MethodGet, base+"/oauth/link/"+out.State, "")
	if c := resp.Header.Get("Set-Cookie"); !strings.Contains(c, "cgw_link=") || !strings.Contains(c, "; Secure") || !strings.Contains(c, "; HttpOnly") {
		t.Errorf("Set-Cookie %q, want a Secure HttpOnly cgw_link", c)
	}
}
