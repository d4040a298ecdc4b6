package transport

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/connectors-gateway/connectors/tenants"
	"github.com/connectors-gateway/connectors/vault/embedded"
)

// linkCSP is the sign-in link page's Content-Security-Policy.
const linkCSP = "default-src 'none'; style-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"

// linkEnv is two replicas of a gateway's sessions-only browser sign-in
// (no OpenID provider), sharing the session key and one embedded store
// whose claims spend the links, each served on loopback.
type linkEnv struct {
	skew     atomic.Int64 // nanoseconds the clock of sealer and Browsers is ahead
	sessions *tenants.BrowserSessions
	store    *embedded.Store
	b        [2]*Browser
	base     [2]string
	log      *syncBuffer
}

func newLinkEnv(t *testing.T) *linkEnv {
	t.Helper()
	e := &linkEnv{log: &syncBuffer{}}
	now := func() time.Time { return time.Now().Add(time.Duration(e.skew.Load())) }
	var err error
	if e.sessions, err = tenants.NewBrowserSessions(bytes.Repeat([]byte{42}, tenants.BrowserSessionKeySize), now); err != nil {
		t.Fatal(err)
	}
	if e.store, err = embedded.Open(filepath.Join(t.TempDir(), "claims.db"), &embedded.Options{MasterKey: bytes.Repeat([]byte{7}, 32)}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.store.Close() })
	for i := range e.b {
		e.b[i], err = NewBrowser(BrowserConfig{
			Sessions: e.sessions, Claims: e.store, Now: now,
			Logger: slog.New(slog.NewJSONHandler(e.log, nil)),
		})
		if err != nil {
			t.Fatal(err)
		}
		e.base[i] = serveBrowser(t, e.b[i])
	}
	return e
}

// serveBrowser serves b's routes on loopback and returns their base URL.
func serveBrowser(t *testing.T, b *Browser) string {
	t.Helper()
	mux := http.NewServeMux()
	b.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

// link makes a sign-in link token on replica 0.
func (e *linkEnv) link(t *testing.T, id tenants.Identity) string {
	t.Helper()
	token, err := e.b[0].SignInLink(id, 0)
	if err != nil {
		t.Fatal(err)
	}
	return token
}

// browser is a client with a cookie jar that does not follow redirects.
func newLinkBrowser() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// linkAnswer is a response with its body read.
type linkAnswer struct {
	*http.Response
	body string
}

func send(t *testing.T, c *http.Client, method, target, body string, header map[string]string) linkAnswer {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, target, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return linkAnswer{resp, string(b)}
}

// confirm posts token to replica i's /auth/link as its own page's form
// does, with header's fields added (or, set to "", removed).
func (e *linkEnv) confirm(t *testing.T, c *http.Client, i int, token string, header map[string]string) linkAnswer {
	t.Helper()
	h := map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Origin": e.base[i], "Sec-Fetch-Site": "same-origin"}
	for k, v := range header {
		if v == "" {
			delete(h, k)
		} else {
			h[k] = v
		}
	}
	return send(t, c, "POST", e.base[i]+"/auth/link", url.Values{"token": {token}}.Encode(), h)
}

func sessionOf(t *testing.T, c *http.Client, base string) (int, map[string]any) {
	t.Helper()
	a := send(t, c, "GET", base+"/auth/session", "", nil)
	var s map[string]any
	_ = json.Unmarshal([]byte(a.body), &s)
	return a.StatusCode, s
}

// refusedLink checks a refusal: status, the error's name on the page and
// no session cookie set.
func refusedLink(t *testing.T, a linkAnswer, status int, name string) {
	t.Helper()
	if a.StatusCode != status || !strings.Contains(a.body, name) {
		t.Fatalf("%s %s: %s %q, want %d naming %s", a.Request.Method, a.Request.URL.Path, a.Status, a.body, status, name)
	}
	if c := findCookie(a.Response, DefaultSessionCookie); c != nil {
		t.Fatalf("a refused link set the session cookie: %+v", c)
	}
}

func TestBrowserLinkSignIn(t *testing.T) {
	e := newLinkEnv(t)
	token := e.link(t, tenants.Identity{Tenant: "acme", Subject: "console-link"})
	c := newLinkBrowser()

	// The GET is a page that names the tenant and offers one button; it
	// signs nobody in.
	page := send(t, c, "GET", e.base[0]+"/auth/link?token="+url.QueryEscape(token), "", map[string]string{"Accept": "text/html"})
	if page.StatusCode != http.StatusOK || !strings.Contains(page.body, `<strong id="tenant">acme</strong>`) ||
		strings.Contains(page.body, "administrator") || !strings.Contains(page.body, `<form method="post" action="/auth/link">`) {
		t.Fatalf("GET /auth/link: %s %s", page.Status, page.body)
	}
	if got := page.Header.Get("Content-Security-Policy"); got != linkCSP {
		t.Errorf("CSP = %q, want %q", got, linkCSP)
	}
	if strings.Contains(page.body, "style=") || strings.Contains(page.body, "<style") || strings.Contains(page.body, "<script") {
		t.Errorf("the page has inline style or script: %s", page.body)
	}
	if page.Header.Get("Referrer-Policy") != "strict-origin" || page.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("page headers: %v", page.Header)
	}
	if len(page.Cookies()) != 0 {
		t.Fatalf("GET /auth/link set cookies: %v", page.Cookies())
	}
	if status, _ := sessionOf(t, c, e.base[0]); status != http.StatusUnauthorized {
		t.Fatalf("signed in by the GET alone: %d", status)
	}
	// A second GET (a preview, then the person) still shows the page.
	if again := send(t, c, "GET", e.base[1]+"/auth/link?token="+url.QueryEscape(token), "", nil); again.StatusCode != http.StatusOK {
		t.Fatalf("the GET spent the link: %s", again.Status)
	}

	a := e.confirm(t, c, 0, token, nil)
	if a.StatusCode != http.StatusSeeOther || a.Header.Get("Location") != "/console/" {
		t.Fatalf("POST /auth/link: %s to %q: %s", a.Status, a.Header.Get("Location"), a.body)
	}
	ck := findCookie(a.Response, DefaultSessionCookie)
	if ck == nil || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/" || ck.MaxAge != int(DefaultSessionTTL/time.Second) {
		t.Fatalf("session cookie = %+v", ck)
	}
	status, s := sessionOf(t, c, e.base[0])
	if status != http.StatusOK || s["tenant"] != "acme" || s["subject"] != "console-link" || s["admin"] != false {
		t.Fatalf("GET /auth/session: %d %v", status, s)
	}

	// Spent: on this replica and on the other, for any browser.
	refusedLink(t, e.confirm(t, newLinkBrowser(), 0, token, nil), http.StatusBadRequest, "SignInLinkUsed")
	refusedLink(t, e.confirm(t, newLinkBrowser(), 1, token, nil), http.StatusBadRequest, "SignInLinkUsed")

	logs := e.log.String()
	if strings.Contains(logs, token) || strings.Contains(logs, ck.Value) {
		t.Fatalf("a token is in the logs: %s", logs)
	}
	if !strings.Contains(logs, `"msg":"browser_link_signin","tenantId":"acme","subject":"console-link","admin":false`) ||
		!strings.Contains(logs, `"msg":"browser_link_refused","reason":"used"`) {
		t.Fatalf("logs lack the sign-in or the refusal: %s", logs)
	}
}

func TestBrowserLinkAdmin(t *testing.T) {
	e := newLinkEnv(t)
	token := e.link(t, tenants.Identity{Tenant: "admin", Subject: "console-link", Admin: true})
	c := newLinkBrowser()
	page := send(t, c, "GET", e.base[1]+"/auth/link?token="+url.QueryEscape(token), "", nil)
	if page.StatusCode != http.StatusOK || !strings.Contains(page.body, "as an administrator") {
		t.Fatalf("GET /auth/link: %s %s", page.Status, page.body)
	}
	if a := e.confirm(t, c, 1, token, nil); a.StatusCode != http.StatusSeeOther {
		t.Fatalf("POST /auth/link: %s %s", a.Status, a.body)
	}
	if status, s := sessionOf(t, c, e.base[0]); status != http.StatusOK || s["admin"] != true || s["tenant"] != "admin" {
		t.Fatalf("GET /auth/session: %d %v", status, s)
	}
}

func TestBrowserLinkExpired(t *testing.T) {
	e := newLinkEnv(t)
	token := e.link(t, tenants.Identity{Tenant: "acme", Subject: "console-link"})
	e.skew.Add(int64(DefaultLinkTTL + time.Second))
	c := newLinkBrowser()
	refusedLink(t, send(t, c, "GET", e.base[0]+"/auth/link?token="+url.QueryEscape(token), "", map[string]string{"Accept": "text/html"}),
		http.StatusBadRequest, "SignInLinkExpired")
	a := e.confirm(t, c, 0, token, nil)
	refusedLink(t, a, http.StatusBadRequest, "SignInLinkExpired")
	if !strings.Contains(a.body, "expired") || a.Header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("the page does not say the link expired: %s", a.body)
	}
	if !strings.Contains(e.log.String(), `"reason":"expired"`) {
		t.Fatalf("refusal not logged: %s", e.log)
	}
}

func TestBrowserLinkTamperedOrForeign(t *testing.T) {
	e := newLinkEnv(t)
	token := e.link(t, tenants.Identity{Tenant: "acme", Subject: "console-link"})
	raw := []byte(token)
	raw[len(raw)/2] ^= 1 // still base64url, a bit of the ciphertext flipped
	session, _ := e.sessions.Seal(tenants.Identity{Tenant: "acme", Subject: "console-link"}, time.Hour)
	login, _ := e.sessions.SealData(purposeLogin, []byte(`{"s":"x","v":"y","n":"z","r":"/"}`), time.Hour)
	other, _ := tenants.NewBrowserSessions(bytes.Repeat([]byte{9}, tenants.BrowserSessionKeySize), nil)
	foreignKey, _ := other.SealData(purposeLink, []byte(`{"t":"acme","s":"console-link","n":"abc","e":9999999999}`), time.Hour)
	for name, v := range map[string]string{
		"tampered":                 string(raw),
		"a session cookie":         session,
		"a sign-in state":          login,
		"another key's link":       foreignKey,
		"not base64":               "%%%",
		"a link with no nonce":     mustSeal(t, e.sessions, `{"t":"acme","s":"console-link","e":9999999999}`),
		"a link naming no tenant":  mustSeal(t, e.sessions, `{"t":"","s":"console-link","n":"abc","e":9999999999}`),
		"a link with a bad tenant": mustSeal(t, e.sessions, `{"t":"../x","s":"console-link","n":"abc","e":9999999999}`),
	} {
		t.Run(name, func(t *testing.T) {
			c := newLinkBrowser()
			refusedLink(t, send(t, c, "GET", e.base[0]+"/auth/link?token="+url.QueryEscape(v), "", nil), http.StatusBadRequest, "SignInLinkInvalid")
			refusedLink(t, e.confirm(t, c, 0, v, nil), http.StatusBadRequest, "SignInLinkInvalid")
			if status, _ := sessionOf(t, c, e.base[0]); status != http.StatusUnauthorized {
				t.Fatalf("signed in: %d", status)
			}
		})
	}
	refusedLink(t, e.confirm(t, newLinkBrowser(), 0, "", nil), http.StatusBadRequest, "BadRequest")

	// Nor does a link stand in for a session cookie.
	c := newLinkBrowser()
	u, _ := url.Parse(e.base[0])
	c.Jar.SetCookies(u, []*http.Cookie{{Name: DefaultSessionCookie, Value: token}})
	if status, _ := sessionOf(t, c, e.base[0]); status != http.StatusUnauthorized {
		t.Fatalf("a link token opened as a session: %d", status)
	}
	// The genuine link was spent by none of this.
	if a := e.confirm(t, newLinkBrowser(), 0, token, nil); a.StatusCode != http.StatusSeeOther {
		t.Fatalf("the genuine link: %s %s", a.Status, a.body)
	}
}

func mustSeal(t *testing.T, s *tenants.BrowserSessions, data string) string {
	t.Helper()
	v, err := s.SealData(purposeLink, []byte(data), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestBrowserLinkLoginCSRF: an attacker's page posting the attacker's own
// link (to sign the victim in as the attacker) is refused, and the link
// is not spent by it.
func TestBrowserLinkLoginCSRF(t *testing.T) {
	e := newLinkEnv(t)
	token := e.link(t, tenants.Identity{Tenant: "attacker", Subject: "console-link"})
	for name, h := range map[string]map[string]string{
		"another origin":             {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
		"another origin, no fetch":   {"Origin": "https://evil.example", "Sec-Fetch-Site": ""},
		"the other replica's origin": {"Origin": e.base[1], "Sec-Fetch-Site": ""},
		"an opaque origin":           {"Origin": "null", "Sec-Fetch-Site": ""},
		"a foreign referer":          {"Origin": "", "Referer": "https://evil.example/page", "Sec-Fetch-Site": ""},
		"cross-site, own origin":     {"Sec-Fetch-Site": "cross-site"},
		"same-site, own origin":      {"Sec-Fetch-Site": "same-site"},
		"neither origin nor referer": {"Origin": "", "Sec-Fetch-Site": ""},
	} {
		t.Run(name, func(t *testing.T) {
			c := newLinkBrowser()
			refusedLink(t, e.confirm(t, c, 0, token, h), http.StatusForbidden, "CSRFCheckFailed")
			if status, _ := sessionOf(t, c, e.base[0]); status != http.StatusUnauthorized {
				t.Fatalf("signed in: %d", status)
			}
		})
	}
	if !strings.Contains(e.log.String(), `"reason":"cross_origin"`) {
		t.Fatalf("refusal not logged: %s", e.log)
	}
	// From the gateway's own page (Referer only, as a browser with no
	// Origin would send): signed in, the link spent once.
	if a := e.confirm(t, newLinkBrowser(), 0, token, map[string]string{"Origin": "", "Referer": e.base[0] + "/auth/link", "Sec-Fetch-Site": ""}); a.StatusCode != http.StatusSeeOther {
		t.Fatalf("same-origin confirmation: %s %s", a.Status, a.body)
	}
}

// TestBrowserLinkStoreDown: a link whose use cannot be recorded is not
// honoured (fail closed).
func TestBrowserLinkStoreDown(t *testing.T) {
	e := newLinkEnv(t)
	token := e.link(t, tenants.Identity{Tenant: "acme", Subject: "console-link"})
	_ = e.store.Close()
	c := newLinkBrowser()
	refusedLink(t, e.confirm(t, c, 0, token, nil), http.StatusServiceUnavailable, "VaultError")
	if status, _ := sessionOf(t, c, e.base[0]); status != http.StatusUnauthorized {
		t.Fatalf("signed in: %d", status)
	}
}

func TestBrowserSessionsOnly(t *testing.T) {
	sessions, _ := tenants.NewBrowserSessions(bytes.Repeat([]byte{42}, tenants.BrowserSessionKeySize), nil)
	b, err := NewBrowser(BrowserConfig{Sessions: sessions})
	if err != nil {
		t.Fatal(err)
	}
	base := serveBrowser(t, b)
	c := newLinkBrowser()
	for _, path := range []string{"/auth/login?next=/console/", "/auth/callback?code=x&state=y"} {
		a := send(t, c, "GET", base+path, "", nil)
		var body struct{ Error, Message string }
		_ = json.Unmarshal([]byte(a.body), &body)
		if a.StatusCode != http.StatusNotFound || body.Error != "SignInNotConfigured" || !strings.Contains(body.Message, "connectors console link") {
			t.Fatalf("GET %s: %s %s", path, a.Status, a.body)
		}
		page := send(t, c, "GET", base+path, "", map[string]string{"Accept": "text/html,application/xhtml+xml"})
		if page.StatusCode != http.StatusNotFound || !strings.Contains(page.body, "SignInNotConfigured") ||
			page.Header.Get("Content-Security-Policy") != linkCSP {
			t.Fatalf("GET %s as a browser: %s %v %s", path, page.Status, page.Header, page.body)
		}
	}
	// Without claims links are refused: nothing could spend them once.
	token, err := b.SignInLink(tenants.Identity{Tenant: "acme", Subject: "console-link"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	a := send(t, c, "POST", base+"/auth/link", url.Values{"token": {token}}.Encode(),
		map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Origin": base})
	refusedLink(t, a, http.StatusNotFound, "SignInNotConfigured")
	refusedLink(t, send(t, c, "GET", base+"/auth/link?token="+token, "", nil), http.StatusNotFound, "SignInNotConfigured")
}

func TestBrowserConfigAndLinkLimits(t *testing.T) {
	sessions, _ := tenants.NewBrowserSessions(bytes.Repeat([]byte{42}, tenants.BrowserSessionKeySize), nil)
	if _, err := NewBrowser(BrowserConfig{}); err == nil {
		t.Error("NewBrowser without Sessions: no error")
	}
	if _, err := NewBrowser(BrowserConfig{Sessions: sessions, OAuth2: &oauth2.Config{RedirectURL: "http://x/auth/callback"}}); err == nil {
		t.Error("NewBrowser with OAuth2 but no Verifier: no error")
	}
	b, _ := NewBrowser(BrowserConfig{Sessions: sessions})
	for _, c := range []struct {
		id  tenants.Identity
		ttl time.Duration
	}{
		{tenants.Identity{Tenant: "acme", Subject: "s"}, MaxLinkTTL + time.Second},
		{tenants.Identity{Tenant: "acme", Subject: "s"}, -time.Minute},
		{tenants.Identity{Tenant: "Not Valid", Subject: "s"}, 0},
		{tenants.Identity{Tenant: "acme"}, 0},
	} {
		if _, err := b.SignInLink(c.id, c.ttl); err == nil {
			t.Errorf("SignInLink(%+v, %s): no error", c.id, c.ttl)
		}
	}
	if _, err := b.SignInLink(tenants.Identity{Tenant: "acme", Subject: "s"}, MaxLinkTTL); err != nil {
		t.Errorf("SignInLink for MaxLinkTTL: %v", err)
	}
}
