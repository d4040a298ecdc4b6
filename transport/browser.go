package transport

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"

	"github.com/connectors-gateway/connectors/internal/httpwire"
	"github.com/connectors-gateway/connectors/tenants"
)

// Errors of BrowserAuth.
var (
	// ErrBrowserSession is a session cookie that is not valid (altered,
	// sealed with another key, or expired): 401.
	ErrBrowserSession = errors.New("browser session not valid")
	// ErrCSRF is a state-changing request with a valid session but
	// without its CSRF token or from another origin: 403.
	ErrCSRF = errors.New("CSRF check failed")
)

// Defaults of BrowserConfig.
const (
	DefaultSessionCookie = "cgw_session"
	DefaultSessionTTL    = 8 * time.Hour
	DefaultLoginTTL      = 10 * time.Minute
	// CSRFHeader and CSRFField carry a session's CSRF token on
	// state-changing browser requests.
	CSRFHeader = "X-CSRF-Token"
	CSRFField  = "csrf_token"
)

// purposeLogin binds the sign-in state cookie's seal.
const purposeLogin = "cgw-browser-login/v1"

// BrowserConfig configures Browser. Sessions is required; OAuth2 and
// Verifier come together (sign-in through the OpenID provider) or not at
// all (sign-in links only, browserlink.go).
type BrowserConfig struct {
	// OAuth2 is the gateway's client at the OpenID provider: client ID and
	// secret, the provider's endpoints, the redirect URI (the gateway's
	// /auth/callback) and the scopes ("openid" is added if missing).
	OAuth2 *oauth2.Config
	// Verifier verifies the token that names the signed-in user's tenant:
	// the ID token (a tenants.OIDCVerifier whose Audience is the client
	// ID), or the access token when UseAccessToken (Audience the
	// gateway's resource).
	Verifier       TokenVerifier
	UseAccessToken bool
	// Sessions seals the session and sign-in state cookies.
	Sessions *tenants.BrowserSessions
	// Claims, if set, spends each sign-in link once on every replica of
	// one store (vault.Claims); without it sign-in links are refused.
	Claims Claimer
	// CookieName names the session cookie; empty means
	// DefaultSessionCookie. The sign-in state cookie is CookieName+"_login".
	CookieName string
	// Secure forces the Secure flag on cookies; they get it anyway on
	// requests that arrived over TLS.
	Secure bool
	// SessionTTL is a session's lifetime; zero means DefaultSessionTTL.
	SessionTTL time.Duration
	// LoginTTL bounds a sign-in, from /auth/login to /auth/callback; zero
	// means DefaultLoginTTL.
	LoginTTL time.Duration
	// Origins are the origins (scheme://host[:port]) state-changing browser
	// requests may come from besides the request's own: a reverse proxy's
	// public origin.
	Origins []string
	// HTTPClient makes the token request; nil means http.DefaultClient.
	HTTPClient *http.Client
	Logger     *slog.Logger // nil: discard
	Now        func() time.Time
}

// Browser is browser sign-in: OIDC authorization code with PKCE against
// the gateway's provider, ending in a sealed HttpOnly session cookie
// (SameSite=Lax, Secure under TLS), and sign-out. Its routes:
//
//	GET  /auth/login?next=/path  redirect to the provider
//	GET  /auth/callback          the provider's redirect back
//	POST /auth/logout            CSRF-checked; clears the session
//	GET  /auth/session           the session's identity and CSRF token (JSON)
//	GET  /auth/link?token=…      a sign-in link's confirmation page (browserlink.go)
//	POST /auth/link              the confirmation: spends the link, signs in
//
// Without OAuth2 and Verifier, /auth/login and /auth/callback answer 404
// SignInNotConfigured and only sign-in links sign in.
//
// BrowserAuth authenticates the requests of a signed-in browser.
type Browser struct {
	cfg BrowserConfig
	log *slog.Logger

	mu   sync.Mutex
	used map[string]time.Time // guarded by mu; states consumed, until they expire
}

// NewBrowser returns browser sign-in.
func NewBrowser(cfg BrowserConfig) (*Browser, error) {
	if cfg.Sessions == nil {
		return nil, errors.New("browser sign-in: Sessions is required")
	}
	if (cfg.OAuth2 == nil) != (cfg.Verifier == nil) {
		return nil, errors.New("browser sign-in: OAuth2 and Verifier go together")
	}
	if cfg.OAuth2 != nil {
		if cfg.OAuth2.RedirectURL == "" {
			return nil, errors.New("browser sign-in: the OAuth2 redirect URL is required")
		}
		o := *cfg.OAuth2
		if !containsString(o.Scopes, "openid") {
			o.Scopes = append([]string{"openid"}, o.Scopes...)
		}
		cfg.OAuth2 = &o
	}
	if cfg.CookieName == "" {
		cfg.CookieName = DefaultSessionCookie
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = DefaultSessionTTL
	}
	if cfg.LoginTTL <= 0 {
		cfg.LoginTTL = DefaultLoginTTL
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = http.DefaultClient
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	b := &Browser{cfg: cfg, log: cfg.Logger, used: map[string]time.Time{}}
	if b.log == nil {
		b.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return b, nil
}

// Register adds the routes of browser sign-in to mux.
func (b *Browser) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /auth/login", b.handleLogin)
	mux.HandleFunc("GET /auth/callback", b.handleCallback)
	mux.HandleFunc("POST /auth/logout", b.handleLogout)
	mux.HandleFunc("GET /auth/session", b.handleSession)
	mux.HandleFunc("GET /auth/link", b.handleLinkPage)
	mux.HandleFunc("POST /auth/link", b.handleLinkSignIn)
}

// Auth returns the Authenticator of signed-in browsers.
func (b *Browser) Auth() BrowserAuth { return BrowserAuth{Browser: b} }

func (b *Browser) loginCookie() string { return b.cfg.CookieName + "_login" }

// loginState is what the sign-in state cookie holds.
type loginState struct {
	State    string `json:"s"`
	Verifier string `json:"v"`
	Nonce    string `json:"n"`
	Next     string `json:"r"`
}

// handleLogin handles "GET /auth/login?next=/path".
func (b *Browser) handleLogin(w http.ResponseWriter, r *http.Request) {
	if b.cfg.OAuth2 == nil {
		b.signInNotConfigured(w, r)
		return
	}
	next := r.URL.Query().Get("next")
	if next == "" {
		next = "/"
	}
	if !LocalPath(next) {
		httpwire.WriteError(w, r, http.StatusBadRequest, "BadRequest", "next must be a local path")
		return
	}
	st := loginState{State: tenants.RandomToken(), Verifier: oauth2.GenerateVerifier(), Nonce: tenants.RandomToken(), Next: next}
	data, err := json.Marshal(st)
	if err != nil {
		httpwire.WriteError(w, r, http.StatusInternalServerError, "InternalError", "could not start sign-in")
		return
	}
	sealed, err := b.cfg.Sessions.SealData(purposeLogin, data, b.cfg.LoginTTL)
	if err != nil {
		httpwire.WriteError(w, r, http.StatusInternalServerError, "InternalError", "could not start sign-in")
		return
	}
	http.SetCookie(w, b.cookie(r, b.loginCookie(), sealed, b.cfg.LoginTTL))
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, b.cfg.OAuth2.AuthCodeURL(st.State,
		oauth2.S256ChallengeOption(st.Verifier),
		oauth2.SetAuthURLParam("nonce", st.Nonce)), http.StatusFound)
}

// handleCallback handles "GET /auth/callback": the provider's redirect.
func (b *Browser) handleCallback(w http.ResponseWriter, r *http.Request) {
	if b.cfg.OAuth2 == nil {
		b.signInNotConfigured(w, r)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	// The state cookie is for one sign-in only, whatever its outcome.
	http.SetCookie(w, b.cookie(r, b.loginCookie(), "", -1))

	c, err := r.Cookie(b.loginCookie())
	if err != nil {
		httpwire.WriteError(w, r, http.StatusBadRequest, "BadRequest", "no sign-in in progress")
		return
	}
	data, err := b.cfg.Sessions.OpenData(purposeLogin, c.Value)
	var st loginState
	if err == nil {
		err = json.Unmarshal(data, &st)
	}
	if err != nil || st.State == "" || st.Verifier == "" {
		httpwire.WriteError(w, r, http.StatusBadRequest, "BadRequest", "sign-in expired or not valid")
		return
	}
	q := r.URL.Query()
	if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(st.State)) != 1 {
		b.log.InfoContext(r.Context(), "browser_signin_failed", "reason", "state mismatch")
		httpwire.WriteError(w, r, http.StatusBadRequest, "BadRequest", "sign-in state does not match")
		return
	}
	if !b.consume(st.State) {
		b.log.InfoContext(r.Context(), "browser_signin_failed", "reason", "state replayed")
		httpwire.WriteError(w, r, http.StatusBadRequest, "BadRequest", "sign-in state already used")
		return
	}
	if e := q.Get("error"); e != "" {
		b.log.InfoContext(r.Context(), "browser_signin_failed", "reason", "provider error", "error", e)
		httpwire.WriteError(w, r, http.StatusForbidden, "SignInFailed", "the provider refused sign-in")
		return
	}
	code := q.Get("code")
	if code == "" {
		httpwire.WriteError(w, r, http.StatusBadRequest, "BadRequest", "no authorization code")
		return
	}
	ctx := context.WithValue(r.Context(), oauth2.HTTPClient, b.cfg.HTTPClient)
	tok, err := b.cfg.OAuth2.Exchange(ctx, code, oauth2.VerifierOption(st.Verifier))
	if err != nil {
		b.log.InfoContext(r.Context(), "browser_signin_failed", "reason", "code exchange", "error", err)
		httpwire.WriteError(w, r, http.StatusBadGateway, "SignInFailed", "could not redeem the authorization code")
		return
	}
	raw := tok.AccessToken
	if !b.cfg.UseAccessToken {
		raw, _ = tok.Extra("id_token").(string)
	}
	if raw == "" {
		httpwire.WriteError(w, r, http.StatusBadGateway, "SignInFailed", "the provider returned no token to verify")
		return
	}
	id, err := b.cfg.Verifier.Verify(r.Context(), raw)
	if err == nil && !b.cfg.UseAccessToken && jwtClaim(raw, "nonce") != st.Nonce {
		// Verified, so the claims are the provider's.
		err = errors.New("ID token nonce does not match")
	}
	if err != nil {
		b.log.InfoContext(r.Context(), "browser_signin_failed", "reason", "token", "error", err)
		httpwire.WriteError(w, r, http.StatusForbidden, "SignInFailed", "the signed-in identity is not accepted")
		return
	}
	sealed, err := b.cfg.Sessions.Seal(id, b.cfg.SessionTTL)
	if err != nil {
		httpwire.WriteError(w, r, http.StatusInternalServerError, "InternalError", "could not start the session")
		return
	}
	http.SetCookie(w, b.cookie(r, b.cfg.CookieName, sealed, b.cfg.SessionTTL))
	b.log.InfoContext(r.Context(), "browser_signin", "tenantId", id.Tenant, "subject", id.Subject)
	http.Redirect(w, r, st.Next, http.StatusSeeOther)
}

// consume marks state used; it reports false if it already was.
func (b *Browser) consume(state string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.cfg.Now()
	for s, exp := range b.used {
		if now.After(exp) {
			delete(b.used, s)
		}
	}
	if _, ok := b.used[state]; ok {
		return false
	}
	// The state cookie expires within LoginTTL; a second's margin covers
	// its whole-second expiry.
	b.used[state] = now.Add(b.cfg.LoginTTL + time.Second)
	return true
}

// handleLogout handles "POST /auth/logout": with a valid session, only
// with its CSRF token (403 otherwise). The cookie is cleared.
func (b *Browser) handleLogout(w http.ResponseWriter, r *http.Request) {
	_, err := b.Auth().Authenticate(r)
	if errors.Is(err, ErrCSRF) {
		httpwire.WriteError(w, r, http.StatusForbidden, "CSRFCheckFailed", "a state-changing browser request needs the session's CSRF token and a same-origin Origin")
		return
	}
	// No session or one not valid: clearing it does no harm.
	http.SetCookie(w, b.cookie(r, b.cfg.CookieName, "", -1))
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}

// handleSession handles "GET /auth/session": who is signed in, and the
// CSRF token pages send back on state-changing requests.
func (b *Browser) handleSession(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	s, err := b.session(r)
	if err != nil {
		httpwire.WriteError(w, r, http.StatusUnauthorized, "Unauthorized", "not signed in")
		return
	}
	httpwire.WriteJSON(w, http.StatusOK, map[string]any{
		"tenant":     s.Identity.Tenant,
		"subject":    s.Identity.Subject,
		"admin":      s.Identity.Admin,
		"expires_at": s.Expiry.UTC().Format(time.RFC3339),
		"csrf_token": s.CSRF,
	})
}

// session opens the request's session cookie: ErrNoCredentials without
// one, ErrBrowserSession for one not valid.
func (b *Browser) session(r *http.Request) (tenants.BrowserSession, error) {
	c, err := r.Cookie(b.cfg.CookieName)
	if err != nil || c.Value == "" {
		return tenants.BrowserSession{}, ErrNoCredentials
	}
	s, err := b.cfg.Sessions.Open(c.Value)
	if err != nil {
		return tenants.BrowserSession{}, errors.Join(ErrBrowserSession, err)
	}
	return s, nil
}

// cookie is an HttpOnly, SameSite=Lax cookie, Secure under TLS or when
// configured. A negative maxAge deletes it.
func (b *Browser) cookie(r *http.Request, name, value string, maxAge time.Duration) *http.Cookie {
	c := &http.Cookie{
		Name:     name,
		Value:    value,
		Path:     "/",
		HttpOnly: true,
		Secure:   b.cfg.Secure || r.TLS != nil,
		SameSite: http.SameSiteLaxMode,
	}
	if maxAge < 0 {
		c.MaxAge = -1
	} else {
		c.MaxAge = int(maxAge / time.Second)
	}
	return c
}

// BrowserAuth authenticates a signed-in browser by its session cookie. It
// declines (ErrNoCredentials) requests without one. A cookie that is not
// valid is ErrBrowserSession. A state-changing request (any method but
// GET, HEAD, OPTIONS and TRACE) must also carry the session's CSRF token,
// in X-CSRF-Token or the form field csrf_token, and its Origin (or else
// Referer), when present, must be the request's own origin or one of
// BrowserConfig.Origins: ErrCSRF otherwise.
type BrowserAuth struct{ Browser *Browser }

// Authenticate implements Authenticator.
func (a BrowserAuth) Authenticate(r *http.Request) (tenants.Identity, error) {
	s, err := a.Browser.session(r)
	if err != nil {
		return tenants.Identity{}, err
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return s.Identity, nil
	}
	if !a.Browser.sameOrigin(r) {
		return tenants.Identity{}, errors.Join(ErrCSRF, errors.New("cross-origin request"))
	}
	token := r.Header.Get(CSRFHeader)
	if token == "" && isForm(r) {
		token = r.PostFormValue(CSRFField)
	}
	if token == "" || subtle.ConstantTimeCompare([]byte(token), []byte(s.CSRF)) != 1 {
		return tenants.Identity{}, errors.Join(ErrCSRF, errors.New("missing or wrong CSRF token"))
	}
	return s.Identity, nil
}

// sameOrigin reports whether r's Origin, or else its Referer, names r's
// own origin or an allowed one. A request with neither passes (the CSRF
// token is still required).
func (b *Browser) sameOrigin(r *http.Request) bool {
	return fromOrigin(r, b.cfg.Origins)
}

// fromOrigin reports whether r's Origin, or else its Referer, is r's own
// origin or one of allowed. A request with neither passes (its CSRF token
// is still required); an opaque origin ("null") or an unreadable Referer
// does not.
func fromOrigin(r *http.Request, allowed []string) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		ref := r.Header.Get("Referer")
		if ref == "" {
			return true
		}
		u, err := url.Parse(ref)
		if err != nil || u.Host == "" {
			return false
		}
		origin = u.Scheme + "://" + u.Host
	}
	if origin == "null" {
		return false
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if strings.EqualFold(origin, scheme+"://"+r.Host) {
		return true
	}
	return slices.ContainsFunc(allowed, func(o string) bool { return strings.EqualFold(o, origin) })
}

func isForm(r *http.Request) bool {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return mt == "application/x-www-form-urlencoded" || mt == "multipart/form-data"
}

// LocalPath reports whether next is a path on this site, safe to redirect
// to: it starts with one "/", and no browser reads it as another host
// ("//evil", "/\evil") or scheme.
func LocalPath(next string) bool {
	if next == "" || next[0] != '/' || len(next) > 2048 {
		return false
	}
	if len(next) > 1 && (next[1] == '/' || next[1] == '\\') {
		return false
	}
	for _, c := range next {
		// Browsers drop tabs and newlines and read '\' as '/'.
		if c < 0x20 || c == 0x7f || c == '\\' {
			return false
		}
	}
	u, err := url.Parse(next)
	return err == nil && u.Scheme == "" && u.Host == "" && u.User == nil
}

// jwtClaim returns a string claim of a JWT's payload, unverified: call it
// only on a token already verified.
func jwtClaim(raw, name string) string {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return ""
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return ""
	}
	var claims map[string]any
	if json.Unmarshal(payload, &claims) != nil {
		return ""
	}
	s, _ := claims[name].(string)
	return s
}

func containsString(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}
