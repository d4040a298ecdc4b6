package transport

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"time"

	"github.com/connectors-gateway/connectors/internal/httpwire"
	"github.com/connectors-gateway/connectors/tenants"
	"github.com/connectors-gateway/connectors/vault"
)

// Sign-in links: a token that an operator's command (connectors console
// link) seals with the key the gateway's replicas share, naming a tenant,
// a subject and whether it signs in an administrator. Opening the link
// (GET) only shows what it would do; the page's one button (POST, from
// the gateway's own page) spends it once across replicas, through a claim
// in the store, and starts a browser session. So a gateway with no
// OpenID provider still has a console to sign in to.

// Limits of SignInLink's ttl.
const (
	DefaultLinkTTL = 10 * time.Minute
	MaxLinkTTL     = 24 * time.Hour
)

// purposeLink binds a sign-in link token's seal: no other sealed value
// (a session cookie, an OAuth state) opens as a link, nor a link as one.
const purposeLink = "cgw-browser-link/v1"

// linkClaimPrefix prefixes the claim key that spends a link's nonce.
const linkClaimPrefix = "signin-link/"

// Claimer takes single-use markers shared by every replica of one store:
// vault.Claims's Claim, which answers vault.ErrClaimed for a key taken
// already.
type Claimer interface {
	Claim(ctx context.Context, key string, until time.Time) error
}

// linkToken is what a sign-in link's token holds.
type linkToken struct {
	Tenant  string `json:"t"`
	Subject string `json:"s"`
	Admin   bool   `json:"a,omitempty"`
	Nonce   string `json:"n"`
	Expiry  int64  `json:"e"` // Unix seconds, as the seal's own
}

// SignInLink returns the token of a sign-in link for id (its tenant,
// subject and admin flag; scopes are not kept), valid once for ttl: zero
// means DefaultLinkTTL, and more than MaxLinkTTL is refused. The token is
// a secret: whoever holds it can sign in once as id.
func (b *Browser) SignInLink(id tenants.Identity, ttl time.Duration) (string, error) {
	if ttl == 0 {
		ttl = DefaultLinkTTL
	}
	if ttl < 0 || ttl > MaxLinkTTL {
		return "", fmt.Errorf("sign-in link: the lifetime must be positive and at most %s", MaxLinkTTL)
	}
	if err := tenants.ValidateID(id.Tenant); err != nil {
		return "", fmt.Errorf("sign-in link: %w", err)
	}
	if id.Subject == "" {
		return "", errors.New("sign-in link: no subject")
	}
	data, err := json.Marshal(linkToken{
		Tenant: id.Tenant, Subject: id.Subject, Admin: id.Admin,
		Nonce: tenants.RandomToken(), Expiry: b.cfg.Now().Add(ttl).Unix(),
	})
	if err != nil {
		return "", err
	}
	return b.cfg.Sessions.SealData(purposeLink, data, ttl)
}

// linkRefusal is why a sign-in link was refused: its reason (logged, a
// stable word), status, error name and message (shown).
type linkRefusal struct {
	reason, name, message string
	status                int
}

var (
	linkMissing  = linkRefusal{"missing", "BadRequest", "The sign-in link has no token.", http.StatusBadRequest}
	linkExpired  = linkRefusal{"expired", "SignInLinkExpired", "This sign-in link has expired. Ask for a new one (connectors console link).", http.StatusBadRequest}
	linkInvalid  = linkRefusal{"invalid", "SignInLinkInvalid", "This is not a valid sign-in link: it was altered, made with another key, or is not a sign-in link.", http.StatusBadRequest}
	linkUsed     = linkRefusal{"used", "SignInLinkUsed", "This sign-in link has been used already: each link signs in once. Ask for a new one.", http.StatusBadRequest}
	linkCrossing = linkRefusal{"cross_origin", "CSRFCheckFailed", "A sign-in link is confirmed only from the gateway's own page.", http.StatusForbidden}
	linkNoClaims = linkRefusal{"not_configured", "SignInNotConfigured", "Sign-in links are not configured on this gateway.", http.StatusNotFound}
	linkStore    = linkRefusal{"store", "VaultError", "The sign-in link could not be checked; try again.", http.StatusServiceUnavailable}
)

// openLink opens a link token: the identity it names and its expiry.
func (b *Browser) openLink(token string) (linkToken, *linkRefusal) {
	if token == "" {
		return linkToken{}, &linkMissing
	}
	data, err := b.cfg.Sessions.OpenData(purposeLink, token)
	if errors.Is(err, tenants.ErrSessionExpired) {
		return linkToken{}, &linkExpired
	}
	var lt linkToken
	if err == nil {
		err = json.Unmarshal(data, &lt)
	}
	if err != nil || lt.Nonce == "" || lt.Subject == "" || tenants.ValidateID(lt.Tenant) != nil {
		return linkToken{}, &linkInvalid
	}
	return lt, nil
}

// handleLinkPage handles "GET /auth/link?token=…": the confirmation page.
// It signs nobody in and spends nothing: link scanners and previews
// fetch GETs.
func (b *Browser) handleLinkPage(w http.ResponseWriter, r *http.Request) {
	if b.cfg.Claims == nil {
		b.refuseLink(w, r, linkNoClaims)
		return
	}
	lt, refused := b.openLink(r.URL.Query().Get("token"))
	if refused != nil {
		b.refuseLink(w, r, *refused)
		return
	}
	renderLinkSignIn(w, http.StatusOK, linkSignInPage{
		Tenant: lt.Tenant, Admin: lt.Admin, Token: r.URL.Query().Get("token"),
		Expires: time.Unix(lt.Expiry, 0).UTC().Format("15:04 MST on 2 January 2006"),
	})
}

// handleLinkSignIn handles "POST /auth/link" (form field token): from the
// gateway's own page only (a cross-site form posting an attacker's link
// would sign the victim in as the attacker), it spends the link once on
// every replica and starts the session, then goes to the console.
func (b *Browser) handleLinkSignIn(w http.ResponseWriter, r *http.Request) {
	if b.cfg.Claims == nil {
		b.refuseLink(w, r, linkNoClaims)
		return
	}
	if !b.linkFromOwnPage(r) {
		b.refuseLink(w, r, linkCrossing)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	lt, refused := b.openLink(r.PostFormValue("token"))
	if refused != nil {
		b.refuseLink(w, r, *refused)
		return
	}
	// A second of margin covers the seal's whole-second expiry.
	err := b.cfg.Claims.Claim(r.Context(), linkClaimPrefix+lt.Nonce, time.Unix(lt.Expiry+1, 0))
	if errors.Is(err, vault.ErrClaimed) {
		b.refuseLink(w, r, linkUsed)
		return
	}
	if err != nil {
		b.log.WarnContext(r.Context(), "browser_link_refused", "reason", linkStore.reason, "tenantId", lt.Tenant, "error", err,
			"request_id", RequestID(r.Context()))
		b.errorPage(w, r, linkStore.status, linkStore.name, linkStore.message)
		return
	}
	id := tenants.Identity{Tenant: lt.Tenant, Subject: lt.Subject, Admin: lt.Admin}
	sealed, err := b.cfg.Sessions.Seal(id, b.cfg.SessionTTL)
	if err != nil {
		httpwire.WriteError(w, r, http.StatusInternalServerError, "InternalError", "could not start the session")
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	http.SetCookie(w, b.cookie(r, b.cfg.CookieName, sealed, b.cfg.SessionTTL))
	b.log.InfoContext(r.Context(), "browser_link_signin", "tenantId", id.Tenant, "subject", id.Subject, "admin", id.Admin,
		"request_id", RequestID(r.Context()))
	http.Redirect(w, r, "/console/", http.StatusSeeOther)
}

// linkFromOwnPage reports whether a link's confirmation came from a page
// of the gateway: a browser that says the request is not same-origin is
// refused whatever else it says, and the Origin (or else Referer) must be
// present and the gateway's own (or BrowserConfig.Origins'): failing
// closed, as every browser sends Origin with a form's POST.
func (b *Browser) linkFromOwnPage(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" {
		return false
	}
	if r.Header.Get("Origin") == "" && r.Header.Get("Referer") == "" {
		return false
	}
	return fromOrigin(r, b.cfg.Origins)
}

// refuseLink answers a refused link (the HTML page to a browser, JSON
// otherwise) and logs why, never the token.
func (b *Browser) refuseLink(w http.ResponseWriter, r *http.Request, why linkRefusal) {
	b.log.InfoContext(r.Context(), "browser_link_refused", "reason", why.reason, "method", r.Method,
		"request_id", RequestID(r.Context()))
	b.errorPage(w, r, why.status, why.name, why.message)
}

// signInNotConfigured answers /auth/login and /auth/callback on a gateway
// with no OpenID provider for browsers.
func (b *Browser) signInNotConfigured(w http.ResponseWriter, r *http.Request) {
	b.errorPage(w, r, http.StatusNotFound, "SignInNotConfigured",
		"Sign-in through an OpenID provider is not configured on this gateway (CONNECTORS_BROWSER_CLIENT_ID). Ask its operator for a sign-in link: connectors console link.")
}

// errorPage answers an error of sign-in: an HTML page to a browser (one
// that prefers HTML, or a form's POST), the JSON error body otherwise.
func (b *Browser) errorPage(w http.ResponseWriter, r *http.Request, status int, name, message string) {
	w.Header().Set("Cache-Control", "no-store")
	if wantsHTML(r) || (r.Method == http.MethodPost && isForm(r)) {
		renderLinkSignIn(w, status, linkSignInPage{Error: name, Message: message})
		return
	}
	httpwire.WriteError(w, r, status, name, message)
}

type linkSignInPage struct {
	Tenant, Token, Expires string
	Admin                  bool
	Error, Message         string
}

var linkSignInTemplate = template.Must(template.New("link").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>{{if .Error}}Not signed in{{else}}Sign in to tenant {{.Tenant}}{{end}}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/console/static/console.css"></head>
<body><main>
{{if .Error}}<h1>Not signed in</h1>
<p id="error"><code>{{.Error}}</code>: {{.Message}}</p>
{{else}}<h1>Sign in to the console</h1>
<p id="summary">This link signs you in to the tenant <strong id="tenant">{{.Tenant}}</strong>{{if .Admin}} <strong id="admin">as an administrator</strong>{{end}}.
It works once, and expires at {{.Expires}}.</p>
<form method="post" action="/auth/link">
<input type="hidden" name="token" value="{{.Token}}">
<button type="submit" id="signin">Sign in</button>
</form>
<p>If you did not ask for this link, close this page: nobody is signed in unless you press the button.</p>{{end}}
</main></body></html>
`))

// renderLinkSignIn writes the page under a policy that lets it load
// nothing but the console's stylesheet, post only to the gateway, and be
// framed by nobody; its address (which holds the token) is never sent as
// a Referer.
func renderLinkSignIn(w http.ResponseWriter, status int, p linkSignInPage) {
	pageHeaders(w.Header(), "default-src 'none'; style-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'", "strict-origin")
	w.WriteHeader(status)
	_ = linkSignInTemplate.Execute(w, p)
}

// pageHeaders sets the headers of the gateway's own HTML pages (sign-in,
// consent): their Content-Security-Policy and Referrer-Policy, no framing,
// no sniffing, no caching.
func pageHeaders(h http.Header, csp, referrer string) {
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", referrer)
	h.Set("Cache-Control", "no-store")
}

// providerSignIn reports whether b signs in through an OpenID provider
// (a nil b does not).
func (b *Browser) providerSignIn() bool { return b != nil && b.cfg.OAuth2 != nil }

// signedIn reports whether r carries a valid session cookie of b's.
func (b *Browser) signedIn(r *http.Request) bool {
	if b == nil {
		return false
	}
	_, err := b.session(r)
	return err == nil
}
