package transport

import (
	"errors"
	"html/template"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/connectors-gateway/connectors/internal/httpwire"
	"github.com/connectors-gateway/connectors/oauth"
	"github.com/connectors-gateway/connectors/tenants"
)

// handleAuthorize handles the "GET /oauth/authorize/{integration}" route:
// it starts a link flow for the caller's tenant (or, for an admin, the
// tenant_id given) and answers the seed's JSON, or a redirect for a
// browser. An agent or API caller gets the gateway's consent page as
// authorizationUrl: whoever opens it sees what is linked into which tenant
// on whose behalf, and the flow is bound to the browser that confirms. A
// signed-in browser (its session cookie is the credential) linking into
// its own tenant from a page of the gateway is that person already: it
// gets the provider's URL, its state bound to this browser. Anything else
// a browser sends (a link another site made it follow, an admin's browser
// naming another tenant) gets the consent page too, which asks.
func (h linkRoutes) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	integration := r.PathValue("integration")
	if !h.linkable(w, r, integration) {
		return
	}
	flow := h.opts.OAuth
	q := r.URL.Query()
	tenant, ok := h.tenantFor(w, r, q.Get("tenant_id"))
	if !ok {
		return
	}
	caller, _ := tenants.FromContext(r.Context())
	var authURL, state string
	var err error
	if h.signedInBrowser(r, caller) && caller.Tenant == tenant && fromGatewayPage(r) {
		authURL, state, err = flow.Authorize(r.Context(), caller, tenant, integration, q.Get("redirect_uri"), h.linkBinding(w, r, integration))
	} else {
		var link oauth.Link
		link, err = flow.Begin(r.Context(), caller, tenant, integration, q.Get("redirect_uri"))
		authURL, state = link.URL, link.ID
	}
	if err != nil {
		e := h.flowFailure(r, err, "oauth_authorize_failed",
			apiError{status: http.StatusInternalServerError, name: "InternalError", message: "could not start the OAuth flow"})
		httpwire.WriteError(w, r, e.status, e.name, e.message)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	if wantsHTML(r) {
		http.Redirect(w, r, authURL, http.StatusFound)
		return
	}
	httpwire.WriteJSON(w, http.StatusOK, map[string]string{"authorizationUrl": authURL, "state": state})
}

// signedInBrowser reports whether caller was authenticated by r's browser
// session cookie alone (no API key or bearer token on the request).
func (h linkRoutes) signedInBrowser(r *http.Request, caller tenants.Identity) bool {
	if h.opts.Browser == nil || r.Header.Get("Authorization") != "" || r.Header.Get("X-API-Key") != "" {
		return false
	}
	s, err := h.opts.Browser.session(r)
	return err == nil && s.Identity.Tenant == caller.Tenant && s.Identity.Subject == caller.Subject
}

// fromGatewayPage reports whether a browser's request came from a page of
// the gateway itself: a GET is sent with the session cookie from any site
// that links to it, so only the fetch metadata that no page can forge
// (Sec-Fetch-Site: same-origin) lets the link skip the consent page.
func fromGatewayPage(r *http.Request) bool {
	return r.Header.Get("Sec-Fetch-Site") == "same-origin"
}

// handleCallback handles the "GET /oauth/callback/{integration}" route,
// where the provider sends the tenant's browser back. It needs no
// credentials: the sealed, single-use state says whose flow it is, and it
// is valid only in the browser that confirmed the flow (its link cookie).
// A browser signed in to the gateway as another tenant is refused.
func (h linkRoutes) handleCallback(w http.ResponseWriter, r *http.Request) {
	integration := r.PathValue("integration")
	if !h.linkable(w, r, integration) {
		return
	}
	flow := h.opts.OAuth
	browserTenant := ""
	if h.opts.Browser != nil {
		if s, err := h.opts.Browser.session(r); err == nil {
			// An admin too: a flow is completed only by a person of its
			// tenant (the consent page and the shortcut above see to it).
			browserTenant = s.Identity.Tenant
		}
	}
	binding := ""
	if c, err := r.Cookie(LinkCookie); err == nil {
		binding = c.Value
	}
	w.Header().Set("Cache-Control", "no-store")
	res, err := flow.Callback(r.Context(), integration, r.URL.Query(), browserTenant, binding)
	var perr *oauth.ProviderError
	switch {
	case errors.As(err, &perr):
		h.finishLink(w, r, res, perr.Code)
	case err != nil:
		e := h.flowFailure(r, err, "oauth_callback_failed",
			apiError{status: http.StatusServiceUnavailable, name: "VaultError", message: "could not complete the link: try again"})
		h.linkError(w, r, e.status, e.name, e.message)
	default:
		h.finishLink(w, r, res, "")
	}
}

// linkable answers 404 unless integration can be linked here: no such
// integration (IntegrationNotFound), or one without an OAuth client
// configured (OAuthNotConfigured).
func (h linkRoutes) linkable(w http.ResponseWriter, r *http.Request, integration string) bool {
	if h.opts.OAuth != nil {
		if _, ok := h.opts.OAuth.Provider(integration); ok {
			return true
		}
	}
	if c := h.opts.Credentials; c != nil && c.Registry != nil {
		if _, ok := c.Registry.Integration(integration); !ok {
			httpwire.WriteError(w, r, http.StatusNotFound, "IntegrationNotFound", "no integration by that name")
			return false
		}
	}
	httpwire.WriteError(w, r, http.StatusNotFound, "OAuthNotConfigured", "this integration has no OAuth client configured here ({NAME}_CLIENT_ID)")
	return false
}

// finishLink sends the tenant back to where the flow began, with
// status=success or status=error&error=CODE, or shows the gateway's own
// page when the flow named no redirect URI.
func (h linkRoutes) finishLink(w http.ResponseWriter, r *http.Request, res oauth.CallbackResult, errCode string) {
	if res.RedirectURI == "" {
		status, title := http.StatusOK, "Connected"
		if errCode != "" {
			status, title = http.StatusBadRequest, "Not connected"
		}
		renderLinkPage(w, status, linkPage{Title: title, Integration: res.Integration, Error: errCode})
		return
	}
	u, err := url.Parse(res.RedirectURI) // allowlisted when the flow began
	if err != nil {
		h.linkError(w, r, http.StatusInternalServerError, "InternalError", "the redirect URI could not be read")
		return
	}
	q := u.Query()
	q.Set("integration", res.Integration)
	if errCode != "" {
		q.Set("status", "error")
		q.Set("error", errCode)
	} else {
		q.Set("status", "success")
	}
	u.RawQuery = q.Encode()
	http.Redirect(w, r, u.String(), http.StatusFound)
}

// linkError answers a callback that cannot be trusted to redirect.
func (h linkRoutes) linkError(w http.ResponseWriter, r *http.Request, status int, name, message string) {
	if wantsHTML(r) {
		renderLinkPage(w, status, linkPage{Title: "Not connected", Integration: r.PathValue("integration"), Error: name, Message: message})
		return
	}
	httpwire.WriteError(w, r, status, name, message)
}

type linkPage struct {
	Title, Integration, Error, Message string
}

var linkTemplate = template.Must(template.New("link").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family: system-ui, sans-serif; max-width: 36rem; margin: 4rem auto;">
<h1>{{.Title}}</h1>
{{if .Error}}<p>{{.Integration}} was not connected: <code>{{.Error}}</code>.</p>{{if .Message}}<p>{{.Message}}</p>{{end}}
{{else}}<p>{{.Integration}} is connected. You can close this window; your agent's tools are updated.</p>{{end}}
</body></html>
`))

func renderLinkPage(w http.ResponseWriter, status int, p linkPage) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
	w.Header().Set("X-Frame-Options", "DENY")
	w.WriteHeader(status)
	_ = linkTemplate.Execute(w, p)
}

// wantsHTML reports whether the client prefers an HTML page (a browser)
// to JSON: its Accept names text/html before (or without) application/json.
func wantsHTML(r *http.Request) bool {
	for part := range strings.SplitSeq(r.Header.Get("Accept"), ",") {
		mt, _, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		switch mt {
		case "text/html", "application/xhtml+xml":
			return true
		case "application/json":
			return false
		}
	}
	return false
}
