package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/chromedp"
)

// linkGateway is a gateway on the embedded store with presets only and
// no OpenID provider (what "make run" starts), at a public URL that is
// its own address, so that the links "console link" prints reach it.
func linkGateway(t *testing.T, env map[string]string) (*gateway, string) {
	t.Helper()
	dir := t.TempDir()
	addr := freeAddr(t)
	g := &gateway{
		t: t, stderr: &lockedBuffer{}, keys: map[string]string{}, bind: addr,
		env: map[string]string{
			"CONNECTORS_DATA_DIR":   filepath.Join(dir, "data"),
			"CONNECTORS_PUBLIC_URL": "http://" + addr,
			"PATH":                  os.Getenv("PATH"),
			"HOME":                  dir,
		},
	}
	for k, v := range env {
		g.env[k] = v
	}
	return g, "http://" + addr
}

// consoleLink runs "connectors console link" with args and returns the
// link it printed.
func (g *gateway) consoleLink(base string, args ...string) string {
	g.t.Helper()
	out := strings.TrimSpace(g.mustRun("", append([]string{"console", "link"}, args...)...))
	if strings.Contains(out, "\n") || !strings.HasPrefix(out, base+"/auth/link?token=") {
		g.t.Fatalf("console link printed %q, want one link to %s/auth/link", out, base)
	}
	return out
}

// signInWith presses the link page's button in browser, as the gateway's
// own page does (visit sends the gateway's Origin), and returns the
// answer.
func (g *gateway) signInWith(browser *http.Client, base, link string) (*http.Response, string) {
	g.t.Helper()
	u, err := url.Parse(link)
	if err != nil {
		g.t.Fatal(err)
	}
	return g.visit(browser, http.MethodPost, base+"/auth/link", url.Values{"token": {u.Query().Get("token")}}.Encode())
}

func (g *gateway) sessionAt(browser *http.Client, base string) (int, map[string]any) {
	g.t.Helper()
	resp, body := g.visit(browser, http.MethodGet, base+"/auth/session", "")
	var s map[string]any
	_ = json.Unmarshal([]byte(body), &s)
	return resp.StatusCode, s
}

// headersAs is a browser's transport that sends what another site's page
// would: each pair of header sets a field, or deletes it when the value
// is empty.
type headersAs []string

func (h headersAs) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	for i := 0; i+1 < len(h); i += 2 {
		r.Header.Del(h[i])
		if h[i+1] != "" {
			r.Header.Set(h[i], h[i+1])
		}
	}
	return http.DefaultTransport.RoundTrip(r)
}

// TestConsoleLinkSignIn: with no OpenID provider, "console link" run
// beside a serving gateway prints a link that signs a browser in once as
// the tenant, whose cookie alone then reaches that tenant's API and no
// other's; the key is a file of the data dir (mode 0600), and sessions
// outlive a restart.
func TestConsoleLinkSignIn(t *testing.T) {
	g, base := linkGateway(t, nil)
	_, stop := g.start()
	link := g.consoleLink(base, "--tenant", "acme")
	if !strings.Contains(g.stderr.String(), "Valid once, for 10 minutes") {
		t.Errorf("console link did not say how long the link is valid: %s", g.stderr)
	}
	token, _ := url.Parse(link)

	browser := linkBrowser()
	resp, page := g.visit(browser, http.MethodGet, link, "")
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `<strong id="tenant">acme</strong>`) || len(resp.Cookies()) != 0 {
		t.Fatalf("GET the link: %s, cookies %v\n%s", resp.Status, resp.Cookies(), page)
	}
	if status, _ := g.sessionAt(browser, base); status != http.StatusUnauthorized {
		t.Fatalf("signed in by opening the link: %d", status)
	}
	resp, body := g.signInWith(browser, base, link)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console/" || cookieNamed(resp, "cgw_session") == "" {
		t.Fatalf("POST /auth/link: %s to %q: %s", resp.Status, resp.Header.Get("Location"), body)
	}
	status, s := g.sessionAt(browser, base)
	if status != http.StatusOK || s["tenant"] != "acme" || s["admin"] != false || s["subject"] != linkSubject {
		t.Fatalf("GET /auth/session: %d %v", status, s)
	}
	if resp, body := g.visit(browser, http.MethodGet, base+"/tenants/acme/integrations", ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /tenants/acme/integrations with the cookie: %s %s", resp.Status, body)
	}
	if resp, body := g.visit(browser, http.MethodGet, base+"/tenants/other/integrations", ""); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("GET /tenants/other/integrations as acme: %s %s, want 403", resp.Status, body)
	}
	// Once only, in any browser.
	for _, b := range []*http.Client{browser, linkBrowser()} {
		if resp, body := g.signInWith(b, base, link); resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "SignInLinkUsed") || cookieNamed(resp, "cgw_session") != "" {
			t.Fatalf("the link used again: %s %s", resp.Status, body)
		}
	}

	info, err := os.Stat(filepath.Join(g.env["CONNECTORS_DATA_DIR"], sessionKeyFile))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("the key file: %v, %v; want mode 0600", info, err)
	}
	logs := g.stderr.String()
	if strings.Contains(logs, "oauth_state_key_ephemeral") || !strings.Contains(logs, "browser_link_signin") {
		t.Errorf("the gateway's log has the ephemeral-key warning, or not the sign-in: %s", logs)
	}
	if tok := token.Query().Get("token"); strings.Contains(logs, tok) {
		t.Error("the link's token is in the log")
	}

	// A restart: the same key from the file, the session still valid.
	stop()
	g.start()
	if status, s := g.sessionAt(browser, base); status != http.StatusOK || s["tenant"] != "acme" {
		t.Fatalf("GET /auth/session after a restart: %d %v", status, s)
	}
	if resp, body := g.signInWith(linkBrowser(), base, link); resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "SignInLinkUsed") {
		t.Fatalf("the link used after a restart: %s %s", resp.Status, body)
	}
}

// TestConsoleLinkAdmin: an admin's link signs in an administrator, who
// reaches any tenant's API.
func TestConsoleLinkAdmin(t *testing.T) {
	g, base := linkGateway(t, nil)
	link := g.consoleLink(base, "--admin", "--ttl", "2m") // before serve: it creates the key file
	g.serve()
	browser := linkBrowser()
	if resp, page := g.visit(browser, http.MethodGet, link, ""); resp.StatusCode != http.StatusOK || !strings.Contains(page, "as an administrator") {
		t.Fatalf("GET the link: %s %s", resp.Status, page)
	}
	if resp, body := g.signInWith(browser, base, link); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("POST /auth/link: %s %s", resp.Status, body)
	}
	if status, s := g.sessionAt(browser, base); status != http.StatusOK || s["admin"] != true {
		t.Fatalf("GET /auth/session: %d %v", status, s)
	}
	if resp, body := g.visit(browser, http.MethodGet, base+"/tenants/other/integrations", ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /tenants/other/integrations as an admin: %s %s", resp.Status, body)
	}
}

// TestConsoleLinkRefused: the command's mistakes, a link across sites, and
// a gateway on Vault without the shared key.
func TestConsoleLinkRefused(t *testing.T) {
	g, base := linkGateway(t, nil)
	for _, args := range [][]string{
		{"console", "link"},
		{"console", "link", "--tenant", "acme", "--admin"},
		{"console", "link", "--tenant", "Not A Tenant"},
		{"console", "link", "--tenant", "acme", "--ttl", "25h"},
		{"console", "link", "--tenant", "acme", "--ttl", "-1m"},
		{"console"},
		{"console", "links"},
	} {
		out, err := g.run("", args...)
		var u usageError
		if !errors.As(err, &u) || out != "" {
			t.Errorf("connectors %s: %q, %v; want a usage error and no link", strings.Join(args, " "), out, err)
		}
	}

	// Login CSRF: another site's page posting the attacker's link.
	link := g.consoleLink(base, "--tenant", "attacker")
	g.serve()
	victim := linkBrowser()
	for _, h := range []headersAs{
		{"Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"},
		{"Origin", base, "Sec-Fetch-Site", "cross-site"},
		{"Origin", "http://localhost:6274"}, // a loopback origin the MCP endpoint allows
		{"Origin", "", "Referer", "https://evil.example/x"},
		{"Origin", ""},
	} {
		resp, body := g.signInWith(&http.Client{Jar: victim.Jar, Transport: h, CheckRedirect: victim.CheckRedirect}, base, link)
		if resp.StatusCode != http.StatusForbidden || cookieNamed(resp, "cgw_session") != "" {
			t.Errorf("POST /auth/link with %v: %s %s, want 403 and no session", h, resp.Status, body)
		}
	}
	if status, _ := g.sessionAt(victim, base); status != http.StatusUnauthorized {
		t.Fatalf("the victim is signed in: %d", status)
	}

	// With Vault and no CONNECTORS_BROWSER_SESSION_KEY there is no key
	// the gateways share: no link, and the command says what to set.
	v, _ := linkGateway(t, map[string]string{"VAULT_ADDR": "http://127.0.0.1:1", "VAULT_TOKEN": "unused"})
	out, err := v.run("", "console", "link", "--tenant", "acme")
	if err == nil || out != "" || !strings.Contains(err.Error(), "CONNECTORS_BROWSER_SESSION_KEY") {
		t.Fatalf("console link on Vault without a key: %q, %v", out, err)
	}
	// With the key, the link is made from it alone (no Vault answers here).
	v.env["CONNECTORS_BROWSER_SESSION_KEY"] = strings.Repeat("ab", 32)
	v.consoleLink(v.env["CONNECTORS_PUBLIC_URL"], "--tenant", "acme")
	if _, err := os.Stat(filepath.Join(v.env["CONNECTORS_DATA_DIR"], sessionKeyFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a key file was made beside Vault: %v", err)
	}
}

// TestConsoleLinkKeyFile: the key file is made once, atomically and
// privately, and one that others can read is refused.
func TestConsoleLinkKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", sessionKeyFile)
	// Made by several at once (a gateway starting, a command): one key.
	keys := make([][]byte, 8)
	var wg sync.WaitGroup
	for i := range keys {
		wg.Go(func() {
			var err error
			if keys[i], err = loadOrCreateSessionKey(path); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	key := keys[0]
	for _, k := range keys {
		if string(k) != string(key) || len(k) != 32 {
			t.Fatal("processes making the key file at once got different keys")
		}
	}
	again, err := loadOrCreateSessionKey(path)
	if err != nil || string(again) != string(key) {
		t.Fatalf("second load: %v, same key %v", err, string(again) == string(key))
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("the data dir holds %v, want the key file alone (no temporary file left)", entries)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := loadOrCreateSessionKey(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("a key file others can read: %v", err)
	}
	if err := os.WriteFile(path, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	_ = os.Chmod(path, 0o600)
	if _, err := loadOrCreateSessionKey(path); err == nil {
		t.Fatal("a key file that holds no key: no error")
	}
}

// TestConsoleLinkOnConsentPage: with sign-in links only, an agent's
// consent page is still open to whoever holds it (there is no provider to
// send them to sign in at), but a browser signed in by a link as another
// tenant is refused, and one signed in as the link's tenant is told it is.
func TestConsoleLinkOnConsentPage(t *testing.T) {
	g, _, base := consentGateway(t, "embedded", nil)
	consent := g.agentLink(base, "tenant-a", "gh")
	const warning = "Only confirm if you asked for this link yourself"

	resp, page := g.visit(linkBrowser(), http.MethodGet, consent, "")
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, warning) {
		t.Fatalf("the consent page, not signed in: %s\n%s", resp.Status, page)
	}
	for tenant, want := range map[string]int{"tenant-a": http.StatusOK, "tenant-b": http.StatusForbidden} {
		browser := linkBrowser()
		if resp, body := g.signInWith(browser, base, g.consoleLink(base, "--tenant", tenant)); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("signing in as %s: %s %s", tenant, resp.Status, body)
		}
		resp, page := g.visit(browser, http.MethodGet, consent, "")
		if resp.StatusCode != want || strings.Contains(page, warning) {
			t.Errorf("tenant-a's consent page signed in as %s: %s, want %d without the warning\n%s", tenant, resp.Status, want, page)
		}
		if want == http.StatusForbidden && !strings.Contains(page, "StateTenantMismatch") {
			t.Errorf("signed in as %s: %s, want StateTenantMismatch", tenant, page)
		}
	}
	if g.linked("tenant-a", "gh") {
		t.Fatal("opening consent pages linked something")
	}
}

// TestConsoleLinkInChromium: in a real browser, the link's page and its
// button sign in (the browser's own Origin and Sec-Fetch-Site pass), a
// second use is refused, and another site's page posting an attacker's
// link signs nobody in.
func TestConsoleLinkInChromium(t *testing.T) {
	browser := chromium(t)
	g, base := linkGateway(t, nil)
	g.serve()
	link := g.consoleLink(base, "--tenant", "acme")

	alice := newPerson(t, browser)
	if _, text := alice.open(link); !strings.Contains(text, "signs you in to the tenant acme") {
		t.Fatalf("the link's page: %s", text)
	}
	alice.checkPage("")
	alice.do(chromedp.Click(chromedp.ID("signin")))
	alice.waitFor(base + "/console/")
	alice.checkPage("")
	if _, text := alice.open(base + "/auth/session"); !strings.Contains(text, `"tenant":"acme"`) {
		t.Fatalf("GET /auth/session after signing in: %s", text)
	}
	bob := newPerson(t, browser)
	bob.open(link)
	bob.do(chromedp.Click(chromedp.ID("signin")), chromedp.WaitVisible(chromedp.ID("error")))
	if _, text := bob.page(); !strings.Contains(text, "SignInLinkUsed") {
		t.Fatalf("the link used again: %s", text)
	}
	bob.checkPage("")
	// Without a session the console's sign-in page says how to get a link.
	if loc, text := bob.open(base + "/console/keys"); !strings.HasSuffix(loc, "/console/signin") || !strings.Contains(text, "connectors console link --tenant") {
		t.Fatalf("the console without a session, without an OpenID provider: %s\n%s", loc, text)
	}
	bob.checkPage("")

	// Another site (another loopback port: same site, another origin)
	// whose button posts the attacker's link.
	u, _ := url.Parse(g.consoleLink(base, "--tenant", "attacker"))
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><title>Win a prize</title><form method="post" action="%s/auth/link">`+
			`<input type="hidden" name="token" value="%s"><button id="go">Claim</button></form>`, base, html.EscapeString(u.Query().Get("token")))
	}))
	t.Cleanup(evil.Close)
	victim := newPerson(t, browser)
	victim.open(evil.URL)
	victim.do(chromedp.Click(chromedp.ID("go")), chromedp.WaitVisible(chromedp.ID("error")))
	if loc, text := victim.page(); !strings.HasPrefix(loc, base+"/auth/link") || !strings.Contains(text, "CSRFCheckFailed") {
		t.Fatalf("another site's form: %s", text)
	}
	if _, text := victim.open(base + "/auth/session"); !strings.Contains(text, "Unauthorized") {
		t.Fatalf("the victim is signed in: %s", text)
	}
}
