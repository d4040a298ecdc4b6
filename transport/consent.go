package transport

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/connectors-gateway/connectors/internal/httpwire"
	"github.com/connectors-gateway/connectors/oauth"
	"github.com/connectors-gateway/connectors/tenants"
)

// LinkCookie holds a browser's link binding secret: the OAuth state of a
// flow confirmed in that browser is valid only with it, so a provider
// callback arriving in any other browser (or a script without the cookie)
// is refused. It is HttpOnly, SameSite=Lax (the provider's redirect back is
// a top-level navigation that must carry it), scoped to /oauth/, and Secure
// when the callback URL is https.
const LinkCookie = "cgw_link"

// linkRoutes serve the OAuth link flow: its start (oauth.go), the
// consent page, and the provider's callback.
type linkRoutes struct{ *guards }

// register mounts the link flow's routes:
//
//	GET  /oauth/authorize/{integration}  start a link (authenticated)
//	GET  /oauth/callback/{integration}   the provider sends the browser back
//	GET  /oauth/link/{id}                what is being linked into which tenant, on whose behalf
//	POST /oauth/link/{id}                the person's confirmation: on to the provider
func (h linkRoutes) register(mux *http.ServeMux) {
	mux.Handle("GET /oauth/authorize/{integration}", h.api(h.handleAuthorize))
	mux.Handle("GET /oauth/callback/{integration}", h.checkHost(http.HandlerFunc(h.handleCallback)))
	if h.opts.OAuth == nil {
		return
	}
	mux.Handle("GET "+oauth.LinkPath+"{id}", h.checkHost(http.HandlerFunc(h.handleConsent)))
	mux.Handle("POST "+oauth.LinkPath+"{id}", h.checkHost(h.limitAPIBody(http.HandlerFunc(h.handleConfirm))))
}

// handleConsent handles the "GET /oauth/link/{id}" route: the consent page
// of a link begun by an agent or API caller.
func (h linkRoutes) handleConsent(w http.ResponseWriter, r *http.Request) {
	link, ok := h.consentLink(w, r)
	if !ok {
		return
	}
	binding := h.linkBinding(w, r, link.Integration)
	renderConsent(w, http.StatusOK, consentPage{
		Integration: link.Integration,
		Tenant:      link.Tenant,
		Subject:     link.Subject,
		Expires:     link.Expires.UTC().Format(time.RFC1123),
		Action:      oauth.LinkPath + link.ID,
		CSRF:        consentCSRF(binding, link.ID),
		SignedIn:    h.opts.Browser.signedIn(r),
		formTarget:  h.providerOrigin(link.Integration),
	})
}

// handleConfirm handles the "POST /oauth/link/{id}" route: the person
// confirmed; the browser goes on to the provider with a state only it can
// bring back.
func (h linkRoutes) handleConfirm(w http.ResponseWriter, r *http.Request) {
	if !h.consentOrigin(r) {
		h.consentError(w, r, http.StatusForbidden, "CSRFCheckFailed", "the confirmation did not come from the gateway's own consent page")
		return
	}
	link, ok := h.consentLink(w, r)
	if !ok {
		return
	}
	c, err := r.Cookie(LinkCookie)
	if err != nil || c.Value == "" || !isForm(r) ||
		subtle.ConstantTimeCompare([]byte(r.PostFormValue(CSRFField)), []byte(consentCSRF(c.Value, link.ID))) != 1 {
		h.consentError(w, r, http.StatusForbidden, "CSRFCheckFailed", "the confirmation did not come from the gateway's own consent page: open the link again")
		return
	}
	authURL, err := h.opts.OAuth.Confirm(r.Context(), link.ID, c.Value)
	if err != nil {
		e := h.flowFailure(r, err, "oauth_confirm_failed",
			apiError{status: http.StatusServiceUnavailable, name: "VaultError", message: "could not continue the link: try again"})
		h.consentError(w, r, e.status, e.name, e.message)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, authURL, http.StatusSeeOther)
}

// consentLink opens the route's link and, with browser sign-in configured,
// checks that the person is signed in as a user of its tenant: not signed
// in, they are sent to sign in and come back; signed in as another tenant,
// refused (and recorded). With sign-in links only (no provider), one not
// signed in goes on as without browser sign-in.
func (h linkRoutes) consentLink(w http.ResponseWriter, r *http.Request) (oauth.Link, bool) {
	link, err := h.opts.OAuth.Link(r.PathValue("id"))
	if err != nil {
		if !errors.Is(err, oauth.ErrLinkExpired) {
			err = oauth.ErrLinkInvalid // whatever else is wrong with it
		}
		e := errorFor(err)
		h.consentError(w, r, e.status, e.name, e.message)
		return link, false
	}
	if h.opts.Browser == nil {
		return link, true
	}
	s, err := h.opts.Browser.session(r)
	if err != nil && !h.opts.Browser.providerSignIn() {
		// Nowhere to send them to sign in (sign-in links only): the
		// link is its holder's, as without browser sign-in.
		return link, true
	}
	if err != nil {
		if r.Method != http.MethodGet {
			h.consentError(w, r, http.StatusUnauthorized, "Unauthorized", "sign in first, then open the link again")
			return link, false
		}
		http.Redirect(w, r, "/auth/login?next="+url.QueryEscape(oauth.LinkPath+link.ID), http.StatusSeeOther)
		return link, false
	}
	if s.Identity.Tenant != link.Tenant {
		// The record names the signed-in person as the caller.
		h.denied(r.WithContext(tenants.NewContext(r.Context(), s.Identity)), s.Identity, link.Tenant, reasonCrossTenant)
		h.log.WarnContext(r.Context(), "oauth_link_refused", "tenantId", link.Tenant, "integration", link.Integration,
			"callerTenantId", s.Identity.Tenant, "subject", s.Identity.Subject, "reason", oauth.ErrStateTenant.Error())
		h.consentError(w, r, http.StatusForbidden, "StateTenantMismatch",
			"this link is for another tenant than the one you are signed in as: nothing was linked")
		return link, false
	}
	return link, true
}

// linkBinding returns the browser's link binding secret, setting the
// cookie when the browser has none yet (one per browser: several consent
// pages open at once share it).
func (h linkRoutes) linkBinding(w http.ResponseWriter, r *http.Request, integration string) string {
	if c, err := r.Cookie(LinkCookie); err == nil && len(c.Value) >= 43 && len(c.Value) <= 64 {
		return c.Value
	}
	v := tenants.RandomToken()
	http.SetCookie(w, &http.Cookie{
		Name:     LinkCookie,
		Value:    v,
		Path:     "/oauth/",
		MaxAge:   int(oauth.DefaultStateTTL/time.Second) * 3,
		HttpOnly: true,
		Secure:   r.TLS != nil || strings.HasPrefix(h.opts.OAuth.CallbackURL(integration), "https://"),
		SameSite: http.SameSiteLaxMode,
	})
	return v
}

// consentCSRF is the consent form's anti-CSRF token: bound to the
// browser's HttpOnly binding secret (which no other site can read) and to
// the one link.
func consentCSRF(binding, id string) string {
	sum := sha256.Sum256([]byte("cgw-consent-csrf/v1\x00" + binding + "\x00" + id))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// consentOrigin reports whether a confirmation came from a page of the
// gateway: its Origin (or else Referer), when the browser sent one, is
// the request's own origin, the callback URLs' or an allowed one; a
// browser that says the request is cross-site is refused whatever it says.
func (h linkRoutes) consentOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return false
	}
	allowed := slices.Clone(h.opts.AllowedOrigins)
	for _, name := range h.opts.OAuth.Integrations() {
		if u, err := url.Parse(h.opts.OAuth.CallbackURL(name)); err == nil {
			allowed = append(allowed, u.Scheme+"://"+u.Host)
		}
	}
	return fromOrigin(r, allowed)
}

func (h linkRoutes) consentError(w http.ResponseWriter, r *http.Request, status int, name, message string) {
	w.Header().Set("Cache-Control", "no-store")
	if wantsHTML(r) || r.Method == http.MethodPost {
		renderConsent(w, status, consentPage{Error: name, Message: message})
		return
	}
	httpwire.WriteError(w, r, status, name, message)
}

type consentPage struct {
	Integration, Tenant, Subject, Expires string
	Action, CSRF                          string
	SignedIn                              bool
	Error, Message                        string
	formTarget                            string // the provider's origin, which the form's redirect goes to
}

// providerOrigin is the origin of integration's authorization endpoint.
func (h linkRoutes) providerOrigin(integration string) string {
	p, ok := h.opts.OAuth.Provider(integration)
	if !ok {
		return ""
	}
	u, err := url.Parse(p.AuthorizeURL)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

var consentTemplate = template.Must(template.New("consent").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>{{if .Error}}Not linked{{else}}Link {{.Integration}} to tenant {{.Tenant}}?{{end}}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="same-origin"></head>
<body style="font-family: system-ui, sans-serif; max-width: 36rem; margin: 4rem auto;">
{{if .Error}}<h1>Not linked</h1>
<p id="error"><code>{{.Error}}</code>: {{.Message}}</p>
{{else}}<h1>Link your {{.Integration}} account?</h1>
<p id="summary">Confirming sends you to <strong>{{.Integration}}</strong>. The account you approve there
will be linked into the tenant <strong id="tenant">{{.Tenant}}</strong> of this gateway, on behalf of
<strong id="subject">{{if .Subject}}{{.Subject}}{{else}}an unnamed caller{{end}}</strong>, who asked for this link.
Its agents will then act in {{.Integration}} with your account's access.</p>
{{if not .SignedIn}}<p><strong>Only confirm if you asked for this link yourself</strong> or trust who sent it to you:
whoever started it gets to use the account you approve.</p>{{end}}
<p>This request expires {{.Expires}}.</p>
<form method="post" action="{{.Action}}">
<input type="hidden" name="csrf_token" value="{{.CSRF}}">
<button type="submit" id="confirm">Link {{.Integration}} into {{.Tenant}}</button>
</form>
<p>If you did not expect this, close this page: nothing is linked unless you confirm.</p>{{end}}
</body></html>
`))

func renderConsent(w http.ResponseWriter, status int, p consentPage) {
	// The form posts here, and browsers hold the redirect that follows to
	// form-action too: the provider's origin, and nothing else.
	action := "'none'"
	if p.Error == "" {
		action = "'self' " + p.formTarget
	}
	pageHeaders(w.Header(), "default-src 'none'; style-src 'unsafe-inline'; form-action "+action+"; frame-ancestors 'none'; base-uri 'none'", "same-origin")
	w.WriteHeader(status)
	_ = consentTemplate.Execute(w, p)
}
