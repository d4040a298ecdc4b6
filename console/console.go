package console

import (
	"crypto/subtle"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
)

// Prefix is where the console is served.
const Prefix = "/console/"

// ContentSecurityPolicy is every console page's: nothing but the
// console's own stylesheet and images, no script at all, forms posted only
// to the gateway, and no framing.
const ContentSecurityPolicy = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

//go:embed templates/*.html static/*
var files embed.FS

// Options configure the console.
type Options struct {
	// PublicURL is the gateway's external base URL, for the MCP client
	// configurations shown; empty: the request's own origin.
	PublicURL string
	// OIDC says browser sign-in through the OpenID provider is configured
	// (/auth/login); without it the sign-in page explains the one-time
	// link of `connectors console link`.
	OIDC bool
	// Linkable reports whether an integration links through OAuth here
	// (an OAuth client configured); the others take a pasted token. Nil:
	// none does.
	Linkable func(integration string) bool
	// Binary is the command agents run for the stdio configuration; empty
	// means "connectors". StdioEnv is its environment there (where the
	// store is; never a secret).
	Binary   string
	StdioEnv map[string]string
	Logger   *slog.Logger // nil: discard
}

// Console is the tenant console: an http.Handler for Prefix, bound to the
// gateway's API handler (Bind) before it serves.
type Console struct {
	opts  Options
	log   *slog.Logger
	api   atomic.Pointer[http.Handler]
	mux   *http.ServeMux
	pages map[string]*template.Template
}

// New returns the console. It answers 503 until Bind gives it the API.
func New(opts Options) *Console {
	if opts.Binary == "" {
		opts.Binary = "connectors"
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Console{opts: opts, log: opts.Logger, mux: http.NewServeMux(), pages: parsePages()}
	c.routes()
	return c
}

// Bind gives the console the gateway's API handler, which every page and
// action calls in process.
func (c *Console) Bind(api http.Handler) { c.api.Store(&api) }

func (c *Console) handler() http.Handler {
	if h := c.api.Load(); h != nil {
		return *h
	}
	return nil
}

// ServeHTTP implements http.Handler.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", ContentSecurityPolicy)
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	if c.handler() == nil {
		http.Error(w, "the console is starting", http.StatusServiceUnavailable)
		return
	}
	c.mux.ServeHTTP(w, r)
}

func (c *Console) routes() {
	static, _ := fs.Sub(files, "static")
	c.mux.Handle("GET /console/static/", http.StripPrefix("/console/static/", staticFiles(http.FileServerFS(static))))
	c.mux.HandleFunc("GET /console/{$}", c.signedIn(c.dashboard))
	c.mux.HandleFunc("GET /console/signin", c.signinPage)
	c.mux.HandleFunc("POST /console/signout", c.signedIn(c.signout))
	c.mux.HandleFunc("GET /console/connect/{integration}", c.signedIn(c.connectPage))
	c.mux.HandleFunc("POST /console/connect/{integration}", c.signedIn(c.connect))
	c.mux.HandleFunc("POST /console/connect/{integration}/token", c.signedIn(c.pasteToken))
	c.mux.HandleFunc("POST /console/disconnect/{integration}", c.signedIn(c.disconnect))
	c.mux.HandleFunc("GET /console/health", c.signedIn(c.health))
	c.mux.HandleFunc("GET /console/usage", c.signedIn(c.usage))
	c.mux.HandleFunc("GET /console/keys", c.signedIn(c.keys))
	c.mux.HandleFunc("POST /console/keys", c.signedIn(c.createKey))
	c.mux.HandleFunc("POST /console/keys/{keyId}/revoke", c.signedIn(c.revokeKey))
	c.adminRoutes()
	c.mux.HandleFunc("/console/", func(w http.ResponseWriter, r *http.Request) {
		c.render(w, r, http.StatusNotFound, "error", page{Title: "Not found", Error: &apiError{Status: 404, Name: "NotFound", Message: "There is no console page here."}})
	})
}

// staticFiles serves the console's stylesheet, cached for an hour.
func staticFiles(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		next.ServeHTTP(w, r)
	})
}

// session is the browser's session as the API tells it (GET /auth/session).
type session struct {
	Tenant  string `json:"tenant"`
	Subject string `json:"subject"`
	Admin   bool   `json:"admin"`
	CSRF    string `json:"csrf_token"`
}

// sessionOf asks the API who r's browser is signed in as.
func (c *Console) sessionOf(r *http.Request) (*session, error) {
	var s session
	if _, err := (call{method: http.MethodGet, path: "/auth/session"}).into(r.Context(), c.handler(), r, &s); err != nil {
		return nil, err
	}
	if s.Tenant == "" || s.CSRF == "" {
		return nil, errors.New("console: the session names no tenant")
	}
	return &s, nil
}

// maxForm bounds a console form (a pasted token is at most 16 KiB).
const maxForm = 64 << 10

// signedIn runs next for a signed-in browser; any other is sent to the
// sign-in page. A POST must carry the session's CSRF token in its form
// (the API checks it again on the calls it is sent on with).
func (c *Console) signedIn(next func(http.ResponseWriter, *http.Request, *session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		s, err := c.sessionOf(r)
		if err != nil {
			var ae *apiError
			if errors.As(err, &ae) && (ae.Status == http.StatusUnauthorized || ae.Status == http.StatusNotFound) {
				http.Redirect(w, r, "/console/signin", http.StatusSeeOther)
				return
			}
			c.fail(w, r, nil, err)
			return
		}
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, maxForm)
			if err := r.ParseForm(); err != nil {
				c.render(w, r, http.StatusRequestEntityTooLarge, "error", page{Title: "Refused", Session: s, Error: &apiError{
					Status: http.StatusRequestEntityTooLarge, Name: "PayloadTooLarge", Message: "The form could not be read: it is larger than 64 KiB or malformed."}})
				return
			}
			token := r.PostFormValue("csrf_token")
			if token == "" || subtle.ConstantTimeCompare([]byte(token), []byte(s.CSRF)) != 1 {
				c.log.InfoContext(r.Context(), "console_csrf_refused", "tenantId", s.Tenant, "path", r.URL.Path)
				c.render(w, r, http.StatusForbidden, "error", page{Title: "Refused", Session: s, Error: &apiError{
					Status: http.StatusForbidden, Name: "CSRFCheckFailed",
					Message: "This form was not sent from your current session. Go back, reload the page and try again.",
				}})
				return
			}
		}
		next(w, r, s)
	}
}

// page is what every template is given.
type page struct {
	Title   string
	Nav     string // the section of the navigation this page is in
	Session *session
	Flash   string // a fixed message of the console, never request text
	Error   *apiError
	Data    any
}

// render writes page p with the template named.
func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, name string, p page) {
	t, ok := c.pages[name]
	if !ok {
		http.Error(w, "no such page", http.StatusInternalServerError)
		return
	}
	var b strings.Builder
	if err := t.ExecuteTemplate(&b, "layout", p); err != nil {
		c.log.ErrorContext(r.Context(), "console_render_failed", "page", name, "error", err)
		http.Error(w, "the page could not be drawn", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(b.String()))
}

// fail shows an error of the API (its status, name and message) or of the
// console itself (500, logged).
func (c *Console) fail(w http.ResponseWriter, r *http.Request, s *session, err error) {
	var ae *apiError
	if !errors.As(err, &ae) {
		c.log.ErrorContext(r.Context(), "console_failed", "path", r.URL.Path, "error", err)
		ae = &apiError{Status: http.StatusInternalServerError, Name: "InternalError", Message: "Something went wrong in the console; it has been logged."}
	}
	c.render(w, r, ae.Status, "error", page{Title: "Could not do that", Session: s, Error: ae})
}

// back sends the browser to a console page after an action, with one of
// the console's own messages (flash) named by code.
func back(w http.ResponseWriter, r *http.Request, path, code string) {
	if code != "" {
		path += "?done=" + code
	}
	http.Redirect(w, r, path, http.StatusSeeOther)
}

// flashes are the messages an action's ?done= may name.
var flashes = map[string]string{
	"disconnected": "Disconnected. The integration's tools are gone from your agents' sessions.",
	"connected":    "Connected. The integration's tools are in your agents' sessions now.",
	"revoked":      "The API key is revoked; agents using it are refused from now on.",
	"enabled":      "The integration is turned on for this tenant.",
	"disabled":     "The integration is turned off for this tenant.",
	"narrowed":     "The integration's tools are narrowed to the list given.",
	"rotated":      "The tenant's encryption key is rotated.",
	"limits":       "The tenant's limits are saved; every replica applies them at once.",
	"offboarded":   "The tenant is off-boarded: its credentials are deleted, its key destroyed and its API keys revoked.",
}

// flash is the message ?done= names, or the OAuth link's outcome
// (?status=success|error&integration=…&error=CODE), as fixed text.
func flash(r *http.Request) string {
	q := r.URL.Query()
	if m, ok := flashes[q.Get("done")]; ok {
		return m
	}
	switch q.Get("status") {
	case "success":
		return "Connected. The integration's tools are in your agents' sessions now."
	case "error":
		return "The account was not connected: the provider or the gateway refused the link (" + errorCode(q.Get("error")) + ")."
	}
	return ""
}

// errorCode keeps an error code of a redirect to its grammar (letters,
// digits, _ and -, at most 64), so that no text of the query reaches a
// page as a sentence.
func errorCode(s string) string {
	if s == "" || len(s) > 64 {
		return "unknown error"
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return "unknown error"
		}
	}
	return s
}
