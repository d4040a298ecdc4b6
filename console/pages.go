package console

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// integration is one integration of GET /tenants/{tenantId}/integrations.
type integration struct {
	Name           string     `json:"name"`
	Category       string     `json:"category"`
	HasCredentials bool       `json:"hasCredentials"`
	CreatedAt      *time.Time `json:"createdAt"`
	UpdatedAt      *time.Time `json:"updatedAt"`
	ExpiresAt      *time.Time `json:"expiresAt"`
	Scopes         []string   `json:"scopes"`
	Status         string     `json:"status"`
	Health         *struct {
		Failures    int       `json:"failures"`
		LastError   string    `json:"lastError"`
		NextAttempt time.Time `json:"nextAttempt"`
	} `json:"health"`
	Enabled bool     `json:"enabled"`
	Tools   []string `json:"tools"`
}

// State is the integration's state as the dashboard names it.
func (in integration) State() string {
	switch {
	case !in.Enabled:
		return "turned off"
	case !in.HasCredentials && in.Status == "revoked":
		return "revoked"
	case !in.HasCredentials:
		return "not connected"
	}
	switch in.Status {
	case "active":
		return "connected"
	case "expiring":
		return "expiring"
	case "refresh_failed":
		return "refresh failed"
	case "needs_reauth":
		return "needs re-auth"
	case "revoked":
		return "revoked"
	}
	return "connected"
}

// Tone is the state's kind, for its badge: ok, warn, bad or off.
func (in integration) Tone() string {
	switch in.State() {
	case "connected":
		return "ok"
	case "expiring", "refresh failed":
		return "warn"
	case "needs re-auth", "revoked":
		return "bad"
	}
	return "off"
}

// Action is the one thing the dashboard offers: Connect, Reconnect or
// nothing (an integration turned off is the admin's to turn on).
func (in integration) Action() string {
	switch {
	case !in.Enabled:
		return ""
	case !in.HasCredentials:
		return "Connect"
	case in.Tone() == "ok":
		return ""
	}
	return "Reconnect"
}

// integrations lists tenant's integrations through the API.
func (c *Console) integrations(r *http.Request, tenant string) ([]integration, error) {
	var out struct {
		Integrations []integration `json:"integrations"`
	}
	_, err := call{method: http.MethodGet, path: tenantPath(tenant, "integrations")}.into(r.Context(), c.handler(), r, &out)
	return out.Integrations, err
}

type dashboardData struct {
	Integrations []integration
	LastUsed     map[string]string // integration: the last day with calls
}

// dashboard is GET /console/: the tenant's integrations.
func (c *Console) dashboard(w http.ResponseWriter, r *http.Request, s *session) {
	ins, err := c.integrations(r, s.Tenant)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	d := dashboardData{Integrations: ins, LastUsed: map[string]string{}}
	if u, err := c.dailyUsage(r, s.Tenant, maxDays); err == nil {
		for _, day := range u.Days { // in date order
			if day.Calls > 0 {
				d.LastUsed[day.Integration] = day.Date
			}
		}
	}
	c.render(w, r, http.StatusOK, "dashboard", page{Title: "Integrations", Nav: "integrations", Session: s, Flash: flash(r), Data: d})
}

// connectData is the connection wizard's page.
type connectData struct {
	Integration integration
	OAuth       bool // false: the integration takes a pasted token
}

// connectPage is GET /console/connect/{integration}: what connecting it
// does, and the button that starts it; a pasted token's form for an
// integration without OAuth here.
func (c *Console) connectPage(w http.ResponseWriter, r *http.Request, s *session) {
	in, ok := c.oneIntegration(w, r, s)
	if !ok {
		return
	}
	d := connectData{Integration: in, OAuth: c.opts.Linkable != nil && c.opts.Linkable(in.Name)}
	c.render(w, r, http.StatusOK, "connect", page{Title: "Connect " + in.Name, Nav: "integrations", Session: s, Data: d})
}

// oneIntegration is the integration the path names, of the signed-in
// tenant; an unknown one is the API's 404.
func (c *Console) oneIntegration(w http.ResponseWriter, r *http.Request, s *session) (integration, bool) {
	var in integration
	_, err := call{method: http.MethodGet, path: tenantPath(s.Tenant, "integrations", r.PathValue("integration"))}.into(r.Context(), c.handler(), r, &in)
	if err != nil {
		c.fail(w, r, s, err)
		return integration{}, false
	}
	return in, true
}

// connect is POST /console/connect/{integration}: a link flow started for
// the tenant, the browser sent on to its consent page (which tenant, which
// scopes), then to the provider, and back to the dashboard.
func (c *Console) connect(w http.ResponseWriter, r *http.Request, s *session) {
	var out struct {
		AuthorizationURL string `json:"authorizationUrl"`
	}
	q := url.Values{"redirect_uri": {ReturnPath}}
	_, err := call{method: http.MethodGet, path: "/oauth/authorize/" + pathEscape(r.PathValue("integration")), query: q}.into(r.Context(), c.handler(), r, &out)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	u, perr := url.Parse(out.AuthorizationURL)
	if perr != nil || !strings.HasPrefix(u.Path, "/oauth/link/") {
		c.fail(w, r, s, errors.New("console: the link flow did not answer with its consent page"))
		return
	}
	http.Redirect(w, r, out.AuthorizationURL, http.StatusSeeOther)
}

// ReturnPath is where the link flow sends the browser back to after the
// provider: the gateway must allow it as a redirect URI.
const ReturnPath = "/console/"

// pasteToken is POST /console/connect/{integration}/token: a token pasted
// for an integration without OAuth, stored through the credentials route.
// The page after it never shows the token.
func (c *Console) pasteToken(w http.ResponseWriter, r *http.Request, s *session) {
	token := strings.TrimSpace(r.PostFormValue("token"))
	body := map[string]any{"accessToken": token}
	path := tenantPath(s.Tenant, "integrations", r.PathValue("integration"), "credentials")
	if _, err := (call{method: http.MethodPost, path: path, body: body, csrf: s.CSRF}).into(r.Context(), c.handler(), r, nil); err != nil {
		c.fail(w, r, s, err)
		return
	}
	back(w, r, "/console/", "connected")
}

// disconnect is POST /console/disconnect/{integration}: the credential
// deleted (and revoked at the provider where it can be).
func (c *Console) disconnect(w http.ResponseWriter, r *http.Request, s *session) {
	path := tenantPath(s.Tenant, "integrations", r.PathValue("integration"), "credentials")
	if _, err := (call{method: http.MethodDelete, path: path, csrf: s.CSRF}).into(r.Context(), c.handler(), r, nil); err != nil {
		c.fail(w, r, s, err)
		return
	}
	back(w, r, "/console/", "disconnected")
}

// health is GET /console/health: each connected integration's health,
// reloading itself every few seconds (no script: a refresh header).
func (c *Console) health(w http.ResponseWriter, r *http.Request, s *session) {
	ins, err := c.integrations(r, s.Tenant)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	ins = slices.DeleteFunc(ins, func(in integration) bool { return !in.HasCredentials && in.Status == "" })
	w.Header().Set("Refresh", "5")
	c.render(w, r, http.StatusOK, "health", page{Title: "Health", Nav: "health", Session: s, Data: ins})
}

// signinPage is GET /console/signin: the provider's sign-in, or how to get
// a one-time link without one.
func (c *Console) signinPage(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if _, err := c.sessionOf(r); err == nil {
		http.Redirect(w, r, "/console/", http.StatusSeeOther)
		return
	}
	c.render(w, r, http.StatusOK, "signin", page{Title: "Sign in", Data: c.opts.OIDC})
}

// signout is POST /console/signout: the session cookie cleared through the
// API's sign-out, whose cookie is passed on.
func (c *Console) signout(w http.ResponseWriter, r *http.Request, s *session) {
	a, err := call{method: http.MethodPost, path: "/auth/logout", csrf: s.CSRF}.do(r.Context(), c.handler(), r)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	for _, v := range a.header.Values("Set-Cookie") {
		w.Header().Add("Set-Cookie", v)
	}
	http.Redirect(w, r, "/console/signin", http.StatusSeeOther)
}
