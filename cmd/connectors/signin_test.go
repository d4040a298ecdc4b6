package main

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
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

// personBrowser is a browser: a cookie jar, redirects not followed.
func personBrowser() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: noRedirects.CheckRedirect}
}

// browse sends one request as browser and returns the status and body.
func browse(t *testing.T, browser *http.Client, method, u string, form url.Values, header ...string) (*http.Response, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(t.Context(), method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := browser.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

// signInWith opens link in browser and presses its button, as from the
// gateway's own page; it returns the confirmation's answer.
func signInWith(t *testing.T, browser *http.Client, base, link string) (*http.Response, string) {
	t.Helper()
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	return browse(t, browser, http.MethodPost, base+"/auth/link", url.Values{"token": {u.Query().Get("token")}},
		"Origin", base, "Sec-Fetch-Site", "same-origin")
}

func sessionAt(t *testing.T, browser *http.Client, base string) (int, map[string]any) {
	t.Helper()
	resp, body := browse(t, browser, http.MethodGet, base+"/auth/session", nil)
	var s map[string]any
	_ = json.Unmarshal([]byte(body), &s)
	return resp.StatusCode, s
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

	browser := personBrowser()
	resp, page := browse(t, browser, http.MethodGet, link, nil, "Accept", "text/html")
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `<strong id="tenant">acme</strong>`) || len(resp.Cookies()) != 0 {
		t.Fatalf("GET the link: %s, cookies %v\n%s", resp.Status, resp.Cookies(), page)
	}
	if status, _ := sessionAt(t, browser, base); status != http.StatusUnauthorized {
		t.Fatalf("signed in by opening the link: %d", status)
	}
	resp, body := signInWith(t, browser, base, link)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console/" || cookieNamed(resp, "cgw_session") == "" {
		t.Fatalf("POST /auth/link: %s to %q: %s", resp.Status, resp.Header.Get("Location"), body)
	}
	status, s := sessionAt(t, browser, base)
	if status != http.StatusOK || s["tenant"] != "acme" || s["admin"] != false || s["subject"] != linkSubject {
		t.Fatalf("GET /auth/session: %d %v", status, s)
	}
	if resp, body := browse(t, browser, http.MethodGet, base+"/tenants/acme/integrations", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /tenants/acme/integrations with the cookie: %s %s", resp.Status, body)
	}
	if resp, body := browse(t, browser, http.MethodGet, base+"/tenants/other/integrations", nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("GET /tenants/other/integrations as acme: %s %s, want 403", resp.Status, body)
	}
	// Once only, in any browser.
	for _, b := range []*http.Client{browser, personBrowser()} {
		if resp, body := signInWith(t, b, base, link); resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "SignInLinkUsed") || cookieNamed(resp, "cgw_session") != "" {
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
	if status, s := sessionAt(t, browser, base); status != http.StatusOK || s["tenant"] != "acme" {
		t.Fatalf("GET /auth/session after a restart: %d %v", status, s)
	}
	if resp, body := signInWith(t, personBrowser(), base, link); resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "SignInLinkUsed") {
		t.Fatalf("the link used after a restart: %s %s", resp.Status, body)
	}
}

// TestConsoleLinkAdmin: an admin's link signs in an administrator, who
// reaches any tenant's API.
func TestConsoleLinkAdmin(t *testing.T) {
	g, base := linkGateway(t, nil)
	link := g.consoleLink(base, "--admin", "--ttl", "2m") // before serve: it creates the key file
	g.serve()
	browser := personBrowser()
	if resp, page := browse(t, browser, http.MethodGet, link, nil); resp.StatusCode != http.StatusOK || !strings.Contains(page, "as an administrator") {
		t.Fatalf("GET the link: %s %s", resp.Status, page)
	}
	if resp, body := signInWith(t, browser, base, link); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("POST /auth/link: %s %s", resp.Status, body)
	}
	if status, s := sessionAt(t, browser, base); status != http.StatusOK || s["admin"] != true {
		t.Fatalf("GET /auth/session: %d %v", status, s)
	}
	if resp, body := browse(t, browser, http.MethodGet, base+"/tenants/other/integrations", nil); resp.StatusCode != http.StatusOK {
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
	u, _ := url.Parse(link)
	victim := personBrowser()
	for _, h := range [][]string{
		{"Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"},
		{"Origin", base, "Sec-Fetch-Site", "cross-site"},
		{"Origin", "http://localhost:6274"}, // a loopback origin the MCP endpoint allows
		{"Referer", "https://evil.example/x"},
		{},
	} {
		resp, body := browse(t, victim, http.MethodPost, base+"/auth/link", url.Values{"token": {u.Query().Get("token")}}, h...)
		if resp.StatusCode != http.StatusForbidden || cookieNamed(resp, "cgw_session") != "" {
			t.Errorf("POST /auth/link with %v: %s %s, want 403 and no session", h, resp.Status, body)
		}
	}
	if status, _ := sessionAt(t, victim, base); status != http.StatusUnauthorized {
		t.Fatalf("the victim is signed in: %d", status)
	}

	// With Vault and no CONNECTORS_BROWSER_SESSION_KEY there is no key
	// the gateways share: no link, and the command says what to set.
	v, _ := linkGateway(t, map[string]string{"VAULT_ADDR": "http://127.0.0.1:1", "VAULT_TOKEN": "unused"})
	out, err := v.run("", "console", "link", "--tenant", "acme")
	if err == nil || out != "" || !strings.Contains(err.Error(), "CONNECTORS_BROWSER_SESSION_KEY") {
		t.Fatalf("console link on Vault without a key: %q, %v", out, err)
	}
}

// TestConsoleLinkKeyFile: the key file is made once, atomically and
// privately, and one that others can read is refused.
func TestConsoleLinkKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", sessionKeyFile)
	key, err := loadOrCreateSessionKey(path)
	if err != nil {
		t.Fatal(err)
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

	resp, page := browse(t, personBrowser(), http.MethodGet, consent, nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, warning) {
		t.Fatalf("the consent page, not signed in: %s\n%s", resp.Status, page)
	}
	for tenant, want := range map[string]int{"tenant-a": http.StatusOK, "tenant-b": http.StatusForbidden} {
		browser := personBrowser()
		if resp, body := signInWith(t, browser, base, g.consoleLink(base, "--tenant", tenant)); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("signing in as %s: %s %s", tenant, resp.Status, body)
		}
		resp, page := browse(t, browser, http.MethodGet, consent, nil)
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
