// Package fakeoauth runs stand-ins for the OAuth 2.0 endpoints of Notion,
// GitHub and Slack on loopback, for tests of the gateway's link flow and
// token refresh. The real endpoints cannot be reached from tests.
//
// # Overview
//
// Each fake follows its provider's documented behaviour, not the gateway's
// client: the paths the provider really serves, its way of authenticating
// the client (Notion: HTTP Basic and a JSON body only; GitHub and Slack:
// form fields or Basic), its answer format (GitHub answers JSON only when
// asked with Accept: application/json; GitHub and Slack answer errors with
// HTTP 200), single-use codes that expire after 10 minutes, redirect URIs
// that must match the authorization request, PKCE (see below), and
// single-use refresh tokens that rotate on every refresh. PKCE (RFC 7636,
// S256): GitHub verifies it whenever a challenge was sent; Slack only for
// an app with PKCE turned on ([Server.SetPKCE]); Notion documents none and
// ignores it. Issued tokens look
// like the provider's (ntn_…, ghu_…, xoxe.xoxb-1-…).
//
// The authorization endpoint consents at once, like a user clicking Allow,
// and redirects with a code; [Server.Deny] makes it redirect with
// error=access_denied instead. [Server.SetMode] simulates a provider that
// is down, slow, hung, or answering garbage.
//
// # Usage
//
//	fake := fakeoauth.New(t, "github", "client-id", "client-secret")
//	o := fake.OAuth() // a tools.OAuth pointing at the fake
//	target, err := fake.Authorize(ctx, authCodeURL) // the browser's part
//	// ... exchange target's code at o.TokenURL ...
//	fake.Valid(accessToken) // would the provider's API accept it now?
package fakeoauth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connectors-gateway/connectors/tools"
)

// Provider kinds New accepts: the names of the presets they stand in for.
const (
	Notion = "notion"
	GitHub = "github"
	Slack  = "slack"
)

// The identities the fakes answer with, which a credential's Extra should
// then hold.
const (
	NotionBotID         = "b0a7c1d2-0000-4000-8000-00000000b07a"
	NotionWorkspaceID   = "3f0e6a8b-0000-4000-8000-0000000000a1"
	NotionWorkspaceName = "Fake Workspace"
	NotionUserID        = "6e5d4c3b-0000-4000-8000-0000000000c2"

	SlackTeamID    = "T0FAKETEAM"
	SlackTeamName  = "Fake Workspace"
	SlackAppID     = "A0FAKEAPP1"
	SlackBotUserID = "U0FAKEBOT1"
	SlackUserID    = "U0FAKEUSR1"
)

// CodeLifetime is how long an authorization code can be exchanged.
const CodeLifetime = 10 * time.Minute

// githubRefreshLifetime is GitHub's refresh_token_expires_in: about six months.
const githubRefreshLifetime = 15897600 * time.Second

// Mode is how the fake provider behaves: OK, Down, Garbage or Slow(d).
type Mode struct {
	fault fault
	delay time.Duration
}

type fault int

const (
	faultNone fault = iota
	faultDown
	faultGarbage
)

var (
	// OK answers normally.
	OK = Mode{}
	// Down answers every request with 503 and an HTML error page, like a
	// provider behind a load balancer with no healthy backend.
	Down = Mode{fault: faultDown}
	// Garbage answers every request with 200 and an HTML page.
	Garbage = Mode{fault: faultGarbage}
)

// Slow answers normally after d, or not at all if the client gives up first.
func Slow(d time.Duration) Mode { return Mode{delay: d} }

// Hang accepts every request and never answers it, until the client gives
// up: a provider stuck behind a load balancer that holds the connection.
var Hang = Slow(24 * time.Hour)

// Server is a running fake provider. It is safe for concurrent use.
type Server struct {
	kind         string
	clientID     string
	clientSecret string
	ts           *httptest.Server

	mu              sync.Mutex
	mode            Mode                 // guarded by mu
	deny            bool                 // guarded by mu
	classic         bool                 // guarded by mu
	slackPKCE       bool                 // guarded by mu; Slack: the app has PKCE turned on
	expiresIn       time.Duration        // guarded by mu; 0: tokens don't expire
	now             func() time.Time     // guarded by mu
	codes           map[string]*authCode // guarded by mu
	byAccess        map[string]*issued   // guarded by mu
	byRefresh       map[string]*issued   // guarded by mu
	exchanges       int                  // guarded by mu
	refreshes       int                  // guarded by mu
	refreshAttempts int                  // guarded by mu
	revocations     int                  // guarded by mu
}

// authCode is an authorization code and what its authorization request said.
type authCode struct {
	redirectURI string
	challenge   string // PKCE S256 challenge; "" when none was sent
	scope       string // as requested: space- or comma-separated
	userScope   string // Slack: user token scopes
	expires     time.Time
	used        bool
}

// grant is one authorization (an installation, for Slack): deleting a
// GitHub grant revokes every token issued under it.
type grant struct {
	revoked bool
}

// issued is one access token and the refresh token that came with it.
type issued struct {
	access, refresh string // refresh "" for tokens without one
	grant           *grant
	user            bool   // Slack: a user token (xoxp) rather than a bot token
	scope           string // as the token endpoint reports it
	expires         time.Time
	refreshExpires  time.Time // zero: the refresh token doesn't expire
	spent           bool      // its refresh token was used: this pair is superseded
	revoked         bool
}

// New starts a fake provider of kind (Notion, GitHub or Slack) that knows
// one client, closed when tb ends.
func New(tb testing.TB, kind, clientID, clientSecret string) *Server {
	tb.Helper()
	s := &Server{
		kind:         kind,
		clientID:     clientID,
		clientSecret: clientSecret,
		now:          time.Now,
		codes:        map[string]*authCode{},
		byAccess:     map[string]*issued{},
		byRefresh:    map[string]*issued{},
	}
	mux := http.NewServeMux()
	switch kind {
	case Notion:
		mux.HandleFunc("GET /v1/oauth/authorize", s.handleAuthorize)
		mux.HandleFunc("POST /v1/oauth/token", s.handleNotionToken)
	case GitHub:
		s.expiresIn = 8 * time.Hour
		mux.HandleFunc("GET /login/oauth/authorize", s.handleAuthorize)
		mux.HandleFunc("POST /login/oauth/access_token", s.handleGitHubToken)
		mux.HandleFunc("DELETE /applications/{client_id}/grant", s.handleGitHubRevoke)
	case Slack:
		s.expiresIn = 12 * time.Hour
		mux.HandleFunc("GET /oauth/v2/authorize", s.handleAuthorize)
		mux.HandleFunc("POST /api/oauth.v2.access", s.handleSlackToken)
		mux.HandleFunc("POST /api/auth.revoke", s.handleSlackRevoke)
	default:
		tb.Fatalf("fakeoauth: unknown provider kind %q (want notion, github or slack)", kind)
	}
	s.ts = httptest.NewServer(s.faults(mux))
	tb.Cleanup(s.ts.Close)
	return s
}

// URL returns the fake's base URL, http://127.0.0.1:port.
func (s *Server) URL() string { return s.ts.URL }

// OAuth returns the preset's OAuth settings for this provider with every
// endpoint pointing at the fake.
func (s *Server) OAuth() tools.OAuth {
	for _, in := range tools.Presets() {
		if in.Name != s.kind || in.OAuth == nil {
			continue
		}
		o := *in.OAuth
		o.AuthorizeURL = s.rebase(o.AuthorizeURL)
		o.TokenURL = s.rebase(o.TokenURL)
		o.RevokeURL = s.rebase(o.RevokeURL)
		return o
	}
	panic("fakeoauth: no preset named " + s.kind)
}

// rebase replaces raw's scheme and host by the fake's. It works on the
// string so that placeholders such as {client_id} stay as they are.
func (s *Server) rebase(raw string) string {
	if raw == "" {
		return ""
	}
	_, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return raw
	}
	path := ""
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		path = rest[i:]
	}
	return s.ts.URL + path
}

// SetMode changes how the fake answers from now on.
func (s *Server) SetMode(m Mode) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mode = m
}

// Deny makes the authorization endpoint redirect with error=access_denied,
// as when the user clicks Cancel, instead of a code.
func (s *Server) Deny(deny bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deny = deny
}

// SetExpiresIn sets the lifetime of access tokens issued from now on; zero
// or less issues tokens that don't expire, without expires_in. The default
// is 8 h for GitHub, 12 h for Slack and none for Notion. Without expiry,
// GitHub (expiring user tokens turned off) and Slack (token rotation off)
// issue no refresh token; Notion always does.
func (s *Server) SetExpiresIn(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expiresIn = max(d, 0)
}

// SetClassic makes a GitHub fake issue classic OAuth-app tokens (gho_…),
// which don't expire and come without a refresh token.
func (s *Server) SetClassic(classic bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.classic = classic
}

// SetPKCE makes a Slack fake behave as an app with PKCE turned on in its
// settings (which Slack documents as making it a public client, for good):
// its authorization endpoint then takes an S256 code_challenge, and the
// code is exchanged only with the matching code_verifier. Off, Slack's fake
// ignores PKCE parameters, as Notion's always does.
func (s *Server) SetPKCE(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.slackPKCE = on
}

// SetClock replaces the fake's clock (time.Now), which decides when codes,
// access tokens and refresh tokens expire.
func (s *Server) SetClock(now func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = now
}

// Exchanges returns how many codes were exchanged for tokens.
func (s *Server) Exchanges() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.exchanges
}

// Refreshes returns how many refreshes succeeded.
func (s *Server) Refreshes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refreshes
}

// RefreshAttempts returns how many refresh requests arrived, including
// those refused and those answered by a fault mode.
func (s *Server) RefreshAttempts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refreshAttempts
}

// Revocations returns how many revocations succeeded.
func (s *Server) Revocations() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.revocations
}

// Valid reports whether the provider's API would accept accessToken now:
// the fake issued it, it has not expired, it was not revoked, and its
// refresh token has not been spent (a refresh supersedes the pair).
func (s *Server) Valid(accessToken string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.byAccess[accessToken]
	return ok && s.usableLocked(t)
}

// IssueToken issues a token pair as if a user had linked their account
// (a bot token for Slack), without the browser step and without counting
// an exchange. refresh is "" for GitHub classic tokens.
func (s *Server) IssueToken() (access, refresh string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.issueLocked(&grant{}, false, s.defaultScopeLocked())
	return t.access, t.refresh
}

// Authorize plays the browser's part: it follows authURL to the fake's
// authorization endpoint and returns where the fake redirects to (the
// redirect URI with code and state, or error), without following it.
func (s *Server) Authorize(ctx context.Context, authURL string) (*url.URL, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, authURL, nil)
	if err != nil {
		return nil, err
	}
	c := *s.ts.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode != http.StatusFound {
		return nil, fmt.Errorf("authorization endpoint: %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	return resp.Location()
}

// usableLocked reports whether t's access token is valid now.
func (s *Server) usableLocked(t *issued) bool {
	return !t.spent && !t.revoked && !t.grant.revoked &&
		(t.expires.IsZero() || s.now().Before(t.expires))
}

func (s *Server) defaultScopeLocked() string {
	for _, in := range tools.Presets() {
		if in.Name == s.kind && in.OAuth != nil {
			return strings.Join(in.OAuth.Scopes, ",")
		}
	}
	return ""
}

// issueLocked issues a new token pair under g.
func (s *Server) issueLocked(g *grant, user bool, scope string) *issued {
	now := s.now()
	t := &issued{grant: g, user: user, scope: scope}
	switch s.kind {
	case Notion:
		t.access, t.refresh = "ntn_"+random(2), "nrt_"+random(2)
	case GitHub:
		// Classic OAuth-app tokens, and GitHub App tokens with expiration
		// turned off, neither expire nor come with a refresh token.
		switch {
		case s.classic:
			t.access = "gho_" + random(2)[:36]
		case s.expiresIn == 0:
			t.access = "ghu_" + random(2)[:36]
		default:
			t.access, t.refresh = "ghu_"+random(2)[:36], "ghr_"+random(3)[:76]
			t.refreshExpires = now.Add(githubRefreshLifetime)
		}
	case Slack:
		// Without token rotation (no expiry), Slack issues long-lived
		// xoxb/xoxp tokens and no refresh token.
		prefix := "xoxb-"
		if user {
			prefix = "xoxp-"
		}
		if s.expiresIn > 0 {
			t.access, t.refresh = "xoxe."+prefix+"1-"+random(3), "xoxe-1-"+random(3)
		} else {
			t.access = prefix + random(3)
		}
	}
	if s.expiresIn > 0 && !(s.kind == GitHub && s.classic) {
		t.expires = now.Add(s.expiresIn)
	}
	s.byAccess[t.access] = t
	if t.refresh != "" {
		s.byRefresh[t.refresh] = t
	}
	return t
}

// expiresInLocked is the expires_in to answer for t, in seconds; 0 for none.
func (s *Server) expiresInLocked(t *issued) int64 {
	if t.expires.IsZero() {
		return 0
	}
	return int64(t.expires.Sub(s.now()).Round(time.Second) / time.Second)
}

// refreshLocked spends refresh for a new pair, or reports why it can't.
func (s *Server) refreshLocked(refresh string) (*issued, bool) {
	old, ok := s.byRefresh[refresh]
	if !ok || old.spent || old.revoked || old.grant.revoked ||
		(!old.refreshExpires.IsZero() && !s.now().Before(old.refreshExpires)) {
		return nil, false
	}
	old.spent = true
	s.refreshes++
	return s.issueLocked(old.grant, old.user, old.scope), true
}

// redeemLocked spends code, checking the redirect URI (when required, or
// given) and the PKCE verifier; it returns the code, or an error whose
// text is for the fake's own error description.
func (s *Server) redeemLocked(code, redirectURI string, redirectRequired bool, verifier string) (*authCode, error) {
	c, ok := s.codes[code]
	switch {
	case !ok || !s.now().Before(c.expires):
		return nil, errBadCode
	case c.used:
		return nil, errCodeUsed
	}
	c.used = true
	if redirectURI != c.redirectURI && (redirectRequired || redirectURI != "") {
		return nil, errRedirectMismatch
	}
	if c.challenge != "" {
		sum := sha256.Sum256([]byte(verifier))
		got := base64.RawURLEncoding.EncodeToString(sum[:])
		if !verifierSyntax(verifier) || subtle.ConstantTimeCompare([]byte(got), []byte(c.challenge)) != 1 {
			return nil, errBadVerifier
		}
	}
	return c, nil
}

// verifierSyntax reports whether v is a code_verifier as RFC 7636 §4.1
// defines it: 43 to 128 characters of [A-Z] [a-z] [0-9] - . _ ~.
func verifierSyntax(v string) bool {
	if len(v) < 43 || len(v) > 128 {
		return false
	}
	for _, c := range v {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '.', c == '_', c == '~':
		default:
			return false
		}
	}
	return true
}

var (
	errBadCode          = errors.New("bad code")
	errCodeUsed         = errors.New("code already used")
	errRedirectMismatch = errors.New("redirect_uri mismatch")
	errBadVerifier      = errors.New("code_verifier mismatch")
)

// handleAuthorize handles the authorization endpoint (GET): it consents at
// once and redirects back with a code, or with error=access_denied.
func (s *Server) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("client_id") != s.clientID {
		writeHTML(w, http.StatusBadRequest, "Invalid client_id parameter")
		return
	}
	redirect, err := url.Parse(q.Get("redirect_uri"))
	if q.Get("redirect_uri") == "" || err != nil || !redirect.IsAbs() {
		writeHTML(w, http.StatusBadRequest, "Missing or invalid redirect_uri parameter")
		return
	}
	c := &authCode{redirectURI: q.Get("redirect_uri"), scope: q.Get("scope")}
	switch s.kind {
	case Notion:
		// Notion's authorization URL carries response_type=code and owner=user.
		if q.Get("response_type") != "code" || q.Get("owner") != "user" {
			writeHTML(w, http.StatusBadRequest, "Invalid authorization URL: response_type=code and owner=user are required")
			return
		}
	case GitHub:
		// GitHub verifies PKCE, S256 only; Notion and Slack ignore it.
		if ch := q.Get("code_challenge"); ch != "" {
			if m := q.Get("code_challenge_method"); m != "S256" {
				redirectWith(w, r, redirect, url.Values{"error": {"invalid_request"}, "error_description": {"code_challenge_method must be S256"}, "state": {q.Get("state")}})
				return
			}
			c.challenge = ch
		}
	case Slack:
		c.userScope = q.Get("user_scope")
		if c.scope == "" && c.userScope == "" {
			writeHTML(w, http.StatusBadRequest, "Invalid permissions requested: scope or user_scope is required")
			return
		}
		s.mu.Lock()
		pkce := s.slackPKCE
		s.mu.Unlock()
		if ch := q.Get("code_challenge"); ch != "" && pkce {
			if q.Get("code_challenge_method") != "S256" {
				redirectWith(w, r, redirect, url.Values{"error": {"invalid_request"}, "state": {q.Get("state")}})
				return
			}
			c.challenge = ch
		}
	}

	params := url.Values{}
	if state, ok := q["state"]; ok {
		params.Set("state", state[0])
	}
	s.mu.Lock()
	deny := s.deny
	code := random(1)
	if !deny {
		c.expires = s.now().Add(CodeLifetime)
		s.codes[code] = c
	}
	s.mu.Unlock()
	if deny {
		params.Set("error", "access_denied")
		if s.kind == GitHub {
			params.Set("error_description", "The user has denied your application access.")
		}
	} else {
		params.Set("code", code)
	}
	redirectWith(w, r, redirect, params)
}

func redirectWith(w http.ResponseWriter, r *http.Request, target *url.URL, params url.Values) {
	u := *target
	q := u.Query()
	for k, v := range params {
		q[k] = v
	}
	u.RawQuery = q.Encode()
	http.Redirect(w, r, u.String(), http.StatusFound)
}

// faults applies the fake's mode before every request; it counts refresh
// attempts first, so that they count whatever the mode.
func (s *Server) faults(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && s.isRefresh(r) {
			s.mu.Lock()
			s.refreshAttempts++
			s.mu.Unlock()
		}
		s.mu.Lock()
		m := s.mode
		s.mu.Unlock()
		switch m.fault {
		case faultDown:
			writeHTML(w, http.StatusServiceUnavailable, "<h1>503 Service Temporarily Unavailable</h1>")
			return
		case faultGarbage:
			writeHTML(w, http.StatusOK, "<h1>We'll be right back</h1><p>Scheduled maintenance.</p>")
			return
		}
		if m.delay > 0 {
			t := time.NewTimer(m.delay)
			defer t.Stop()
			select {
			case <-t.C:
			case <-r.Context().Done():
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// isRefresh reports whether r is a token request with the refresh_token
// grant, read leniently (JSON or form) and leaving r's body as it was.
func (s *Server) isRefresh(r *http.Request) bool {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	r.Body.Close()
	r.Body = io.NopCloser(strings.NewReader(string(body)))
	if err != nil {
		return false
	}
	var j struct {
		GrantType string `json:"grant_type"`
	}
	if json.Unmarshal(body, &j) == nil && j.GrantType != "" {
		return j.GrantType == "refresh_token"
	}
	form, _ := url.ParseQuery(string(body))
	return form.Get("grant_type") == "refresh_token" || r.URL.Query().Get("grant_type") == "refresh_token"
}

// clientAuth returns the client credentials of r: HTTP Basic if present
// (RFC 6749 §2.3.1 form-encodes them first), else the form fields when
// fromForm.
func clientAuth(r *http.Request, fromForm bool) (id, secret string, ok bool) {
	if id, secret, ok := r.BasicAuth(); ok {
		uid, err1 := url.QueryUnescape(id)
		usecret, err2 := url.QueryUnescape(secret)
		if err1 != nil || err2 != nil {
			return id, secret, true
		}
		return uid, usecret, true
	}
	if fromForm && r.PostForm.Get("client_id") != "" {
		return r.PostForm.Get("client_id"), r.PostForm.Get("client_secret"), true
	}
	return "", "", false
}

func (s *Server) clientOK(id, secret string) bool {
	return subtle.ConstantTimeCompare([]byte(id), []byte(s.clientID)) == 1 &&
		subtle.ConstantTimeCompare([]byte(secret), []byte(s.clientSecret)) == 1
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeHTML(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	fmt.Fprintf(w, "<!DOCTYPE html>\n<html><head><title>%d</title></head><body>%s</body></html>\n", status, body)
}

// random returns n×26 random characters (base32, A–Z and 2–7).
func random(n int) string {
	var b strings.Builder
	for range n {
		b.WriteString(rand.Text())
	}
	return b.String()
}
