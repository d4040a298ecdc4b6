package transport

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/connectors-gateway/connectors/internal/testidp"
	"github.com/connectors-gateway/connectors/tenants"
)

const browserClientID = "gateway-web"

// browserEnv is a gateway's browser sign-in served on loopback against a
// real provider, and a browser (a client with a cookie jar that does not
// follow the gateway's redirects).
type browserEnv struct {
	idp     *testidp.IDP
	base    string
	b       *Browser
	browser *http.Client
}

func newBrowserEnv(t *testing.T) *browserEnv {
	t.Helper()
	idp := testidp.Start(t)
	srv := httptest.NewUnstartedServer(nil)
	base := "http://" + srv.Listener.Addr().String()
	idp.AddWebClient(testidp.WebClient{ID: browserClientID, Secret: "web-secret", RedirectURIs: []string{base + "/auth/callback"}})
	idp.SetUserClaims(testidp.UserID, map[string]any{"tenant_id": "acme", "roles": []string{"admin"}})

	var disc struct {
		AuthURL  string `json:"authorization_endpoint"`
		TokenURL string `json:"token_endpoint"`
	}
	resp, err := http.Get(idp.Issuer + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	err = json.NewDecoder(resp.Body).Decode(&disc)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := tenants.NewOIDCVerifier(t.Context(), tenants.OIDCConfig{
		Issuer: idp.Issuer, Audience: browserClientID, AdminRole: "admin", AdminClaim: "roles",
	})
	if err != nil {
		t.Fatal(err)
	}
	sessions, err := tenants.NewBrowserSessions(bytes.Repeat([]byte{42}, tenants.BrowserSessionKeySize), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewBrowser(BrowserConfig{
		OAuth2: &oauth2.Config{
			ClientID: browserClientID, ClientSecret: "web-secret",
			Endpoint:    oauth2.Endpoint{AuthURL: disc.AuthURL, TokenURL: disc.TokenURL, AuthStyle: oauth2.AuthStyleInHeader},
			RedirectURL: base + "/auth/callback",
		},
		Verifier: verifier,
		Sessions: sessions,
	})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	b.Register(mux)
	mux.HandleFunc("/api/whoami", func(w http.ResponseWriter, r *http.Request) {
		id, err := b.Auth().Authenticate(r)
		switch {
		case errors.Is(err, ErrCSRF):
			http.Error(w, "csrf", http.StatusForbidden)
		case err != nil:
			http.Error(w, "unauthorized", http.StatusUnauthorized)
		default:
			_ = json.NewEncoder(w).Encode(id)
		}
	})
	srv.Config.Handler = mux
	srv.Start()
	t.Cleanup(srv.Close)

	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return &browserEnv{idp: idp, base: base, b: b, browser: browser}
}

func (e *browserEnv) do(t *testing.T, method, path string, body string, header map[string]string) *http.Response {
	t.Helper()
	target := path
	if strings.HasPrefix(path, "/") {
		target = e.base + path
	}
	req, err := http.NewRequestWithContext(t.Context(), method, target, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := e.browser.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// startLogin asks the gateway to sign in and returns the provider's
// authorization URL it redirected to.
func (e *browserEnv) startLogin(t *testing.T, next string) string {
	t.Helper()
	resp := e.do(t, "GET", "/auth/login?next="+url.QueryEscape(next), "", nil)
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("GET /auth/login: %s", resp.Status)
	}
	c := findCookie(resp, DefaultSessionCookie+"_login")
	if c == nil || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Secure {
		t.Fatalf("login state cookie = %+v, want HttpOnly, SameSite=Lax, not Secure (no TLS)", c)
	}
	loc := resp.Header.Get("Location")
	u, _ := url.Parse(loc)
	if q := u.Query(); q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Get("state") == "" || q.Get("nonce") == "" {
		t.Fatalf("authorization URL lacks PKCE, state or nonce: %s", loc)
	}
	return loc
}

// signIn goes through the provider's login form and returns the redirect
// back to the gateway's callback.
func (e *browserEnv) signIn(t *testing.T, authURL, user string) *url.URL {
	t.Helper()
	cb, err := e.idp.SignIn(t.Context(), e.browser, authURL, user, testidp.UserPassword)
	if err != nil {
		t.Fatalf("signing in at the provider: %v", err)
	}
	if !strings.HasPrefix(cb.String(), e.base+"/auth/callback?") || cb.Query().Get("code") == "" {
		t.Fatalf("provider redirected to %s", cb)
	}
	return cb
}

func findCookie(resp *http.Response, name string) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func (e *browserEnv) session(t *testing.T) (int, map[string]any) {
	t.Helper()
	resp, err := e.browser.Get(e.base + "/auth/session")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var s map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&s)
	return resp.StatusCode, s
}

func TestBrowserSignInThroughProvider(t *testing.T) {
	e := newBrowserEnv(t)
	cb := e.signIn(t, e.startLogin(t, "/app/links?x=1"), e.idp.TestUsername())

	resp := e.do(t, "GET", cb.String(), "", nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/app/links?x=1" {
		t.Fatalf("callback: %s to %q", resp.Status, resp.Header.Get("Location"))
	}
	c := findCookie(resp, DefaultSessionCookie)
	if c == nil || c.Value == "" || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Secure || c.Path != "/" || c.MaxAge <= 0 {
		t.Fatalf("session cookie = %+v", c)
	}
	if lc := findCookie(resp, DefaultSessionCookie+"_login"); lc == nil || lc.MaxAge >= 0 {
		t.Fatalf("login state cookie not cleared: %+v", lc)
	}

	status, s := e.session(t)
	if status != http.StatusOK || s["tenant"] != "acme" || s["subject"] != "oidc:"+testidp.UserID || s["admin"] != true {
		t.Fatalf("GET /auth/session: %d %v", status, s)
	}
	csrf, _ := s["csrf_token"].(string)

	// Safe methods need no CSRF token; unsafe ones do.
	if r := e.do(t, "GET", "/api/whoami", "", nil); r.StatusCode != http.StatusOK {
		t.Fatalf("GET whoami: %s", r.Status)
	}
	if r := e.do(t, "POST", "/api/whoami", "", nil); r.StatusCode != http.StatusForbidden {
		t.Fatalf("POST without CSRF token: %s", r.Status)
	}
	if r := e.do(t, "POST", "/api/whoami", "", map[string]string{CSRFHeader: "wrong"}); r.StatusCode != http.StatusForbidden {
		t.Fatalf("POST with wrong CSRF token: %s", r.Status)
	}
	if r := e.do(t, "POST", "/api/whoami", "", map[string]string{CSRFHeader: csrf}); r.StatusCode != http.StatusOK {
		t.Fatalf("POST with CSRF header: %s", r.Status)
	}
	form := url.Values{CSRFField: {csrf}}.Encode()
	if r := e.do(t, "POST", "/api/whoami", form, map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Origin": e.base}); r.StatusCode != http.StatusOK {
		t.Fatalf("POST with CSRF form field, same origin: %s", r.Status)
	}
	if r := e.do(t, "POST", "/api/whoami", "", map[string]string{CSRFHeader: csrf, "Origin": "https://evil.example"}); r.StatusCode != http.StatusForbidden {
		t.Fatalf("POST from another origin: %s", r.Status)
	}
	if r := e.do(t, "POST", "/api/whoami", "", map[string]string{CSRFHeader: csrf, "Referer": "https://evil.example/page"}); r.StatusCode != http.StatusForbidden {
		t.Fatalf("POST with a foreign Referer: %s", r.Status)
	}

	// Logout: refused without the CSRF token, the session kept.
	r := e.do(t, "POST", "/auth/logout", "", nil)
	if r.StatusCode != http.StatusForbidden || findCookie(r, DefaultSessionCookie) != nil {
		t.Fatalf("logout without CSRF token: %s, cookies %v", r.Status, r.Cookies())
	}
	if status, _ := e.session(t); status != http.StatusOK {
		t.Fatalf("session after refused logout: %d", status)
	}
	r = e.do(t, "POST", "/auth/logout", "", map[string]string{CSRFHeader: csrf})
	if c := findCookie(r, DefaultSessionCookie); r.StatusCode != http.StatusNoContent || c == nil || c.MaxAge >= 0 || c.Value != "" {
		t.Fatalf("logout: %s, cookie %+v", r.Status, c)
	}
	if status, _ := e.session(t); status != http.StatusUnauthorized {
		t.Fatalf("session after logout: %d", status)
	}
}

func TestBrowserSignInRefusesUserWithoutTenant(t *testing.T) {
	e := newBrowserEnv(t)
	cb := e.signIn(t, e.startLogin(t, "/"), testidp.User2Username)
	resp := e.do(t, "GET", cb.String(), "", nil)
	if resp.StatusCode != http.StatusForbidden || findCookie(resp, DefaultSessionCookie) != nil {
		t.Fatalf("callback for a user without tenant: %s, cookies %v", resp.Status, resp.Cookies())
	}
}

func TestBrowserTamperedCookieRefused(t *testing.T) {
	e := newBrowserEnv(t)
	cb := e.signIn(t, e.startLogin(t, "/"), e.idp.TestUsername())
	resp := e.do(t, "GET", cb.String(), "", nil)
	c := findCookie(resp, DefaultSessionCookie)
	if c == nil {
		t.Fatalf("no session cookie: %s", resp.Status)
	}
	raw := []byte(c.Value)
	raw[len(raw)/2] ^= 0x01
	if raw[len(raw)/2] == '.' || raw[len(raw)/2] == 0 {
		raw[len(raw)/2] = 'A'
	}
	u, _ := url.Parse(e.base)
	e.browser.Jar.SetCookies(u, []*http.Cookie{{Name: DefaultSessionCookie, Value: string(raw), Path: "/"}})
	if status, _ := e.session(t); status != http.StatusUnauthorized {
		t.Fatalf("tampered cookie: /auth/session %d", status)
	}
	if r := e.do(t, "GET", "/api/whoami", "", nil); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("tampered cookie: whoami %s", r.Status)
	}
	req := httptest.NewRequest("GET", "/", nil)
	req.AddCookie(&http.Cookie{Name: DefaultSessionCookie, Value: string(raw)})
	if _, err := e.b.Auth().Authenticate(req); !errors.Is(err, ErrBrowserSession) {
		t.Fatalf("tampered cookie: err = %v", err)
	}
	if _, err := e.b.Auth().Authenticate(httptest.NewRequest("GET", "/", nil)); !errors.Is(err, ErrNoCredentials) {
		t.Fatalf("no cookie: err = %v", err)
	}
}

func TestBrowserCallbackState(t *testing.T) {
	t.Run("wrong state", func(t *testing.T) {
		e := newBrowserEnv(t)
		cb := e.signIn(t, e.startLogin(t, "/"), e.idp.TestUsername())
		q := cb.Query()
		q.Set("state", "forged")
		cb.RawQuery = q.Encode()
		resp := e.do(t, "GET", cb.String(), "", nil)
		if resp.StatusCode != http.StatusBadRequest || findCookie(resp, DefaultSessionCookie) != nil {
			t.Fatalf("wrong state: %s, cookies %v", resp.Status, resp.Cookies())
		}
	})
	t.Run("no login cookie", func(t *testing.T) {
		e := newBrowserEnv(t)
		cb := e.signIn(t, e.startLogin(t, "/"), e.idp.TestUsername())
		resp, err := http.Get(cb.String()) // another browser: no state cookie
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || findCookie(resp, DefaultSessionCookie) != nil {
			t.Fatalf("no state cookie: %s", resp.Status)
		}
	})
	t.Run("replayed", func(t *testing.T) {
		e := newBrowserEnv(t)
		cb := e.signIn(t, e.startLogin(t, "/"), e.idp.TestUsername())
		u, _ := url.Parse(e.base)
		var login *http.Cookie
		for _, c := range e.browser.Jar.Cookies(u) {
			if c.Name == DefaultSessionCookie+"_login" {
				login = c
			}
		}
		if login == nil {
			t.Fatal("no login cookie in the jar")
		}
		if resp := e.do(t, "GET", cb.String(), "", nil); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("first callback: %s", resp.Status)
		}
		// An attacker who captured both the callback URL and the state
		// cookie replays them.
		req, _ := http.NewRequestWithContext(t.Context(), "GET", cb.String(), nil)
		req.AddCookie(login)
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || findCookie(resp, DefaultSessionCookie) != nil {
			t.Fatalf("replayed callback: %s, cookies %v", resp.Status, resp.Cookies())
		}
	})
}

func TestBrowserLoginRefusesOpenRedirect(t *testing.T) {
	e := newBrowserEnv(t)
	for _, next := range []string{"//evil.example", "https://evil.example", `/\evil.example`, `\\evil.example`,
		"evil.example", "javascript:alert(1)", "/\t/evil.example", "///evil.example"} {
		resp := e.do(t, "GET", "/auth/login?next="+url.QueryEscape(next), "", nil)
		if resp.StatusCode != http.StatusBadRequest || len(resp.Cookies()) != 0 {
			t.Errorf("next=%q: %s, cookies %v", next, resp.Status, resp.Cookies())
		}
	}
	for _, next := range []string{"/", "/app", "/app/x?y=//z", "/a//b"} {
		if !LocalPath(next) {
			t.Errorf("LocalPath(%q) = false", next)
		}
	}
}

func TestBrowserCookiesSecureUnderTLS(t *testing.T) {
	e := newBrowserEnv(t)
	req := httptest.NewRequest("GET", "https://gateway.test/auth/login?next=/x", nil)
	if req.TLS == nil {
		t.Fatal("httptest request for https has no TLS state")
	}
	w := httptest.NewRecorder()
	e.b.handleLogin(w, req)
	c := findCookie(w.Result(), DefaultSessionCookie+"_login")
	if w.Code != http.StatusFound || c == nil || !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode {
		t.Fatalf("login under TLS: %d, cookie %+v", w.Code, c)
	}
	// Logout under TLS clears with a Secure cookie too.
	w = httptest.NewRecorder()
	e.b.handleLogout(w, httptest.NewRequest("POST", "https://gateway.test/auth/logout", nil))
	if c := findCookie(w.Result(), DefaultSessionCookie); w.Code != http.StatusNoContent || c == nil || !c.Secure || c.MaxAge >= 0 {
		t.Fatalf("logout under TLS: %d, cookie %+v", w.Code, c)
	}
}
