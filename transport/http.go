// Package transport serves the gateway's HTTP: the middleware every
// request passes, authentication and its challenges, the REST API, the
// OAuth link routes and pages, browser sign-in, metrics and health. It
// mounts the MCP endpoint (server.Handler) as a plain http.Handler, and
// knows nothing of MCP's messages but their JSON-RPC envelope.
//
// # Overview
//
// [NewHTTP] builds one http.ServeMux. Every MCP request passes, in order:
// a request ID and the drain's bookkeeping, the Host check and the Origin
// check (403), the body limit (413) and batch rejection, and
// authentication (401), before the MCP endpoint sees it (which binds
// sessions and checks messages: see server.Handler).
package transport

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/connectors-gateway/connectors/audit"
	"github.com/connectors-gateway/connectors/internal/httpwire"
	"github.com/connectors-gateway/connectors/metrics"
	"github.com/connectors-gateway/connectors/oauth"
	"github.com/connectors-gateway/connectors/telemetry"
	"github.com/connectors-gateway/connectors/tenants"
)

// Authenticator turns a request's credentials into a verified identity.
type Authenticator interface {
	Authenticate(r *http.Request) (tenants.Identity, error)
}

// MCPEndpoint is the MCP endpoint the HTTP handler serves at /mcp and
// /mcp/{integration}, behind its guards; server.Handler is one.
type MCPEndpoint interface {
	http.Handler
	// EndSessions ends every MCP session and the requests it has
	// running (the drain's end).
	EndSessions()
	// Close ends the sessions and frees what the endpoint holds.
	Close(ctx context.Context) error
}

// HTTPOptions configure the HTTP handler. MCP and Auth are required.
type HTTPOptions struct {
	MCP  MCPEndpoint
	Auth Authenticator

	// Browser, if set, serves browser sign-in at /auth/... (for the
	// gateway's own pages; MCP requests never authenticate by cookie).
	Browser *Browser

	// AllowedOrigins lists the browser origins (scheme://host[:port]) allowed
	// to call the MCP endpoint. Requests without Origin (non-browser clients)
	// are always allowed; loopback origins are allowed unless StrictOrigins.
	AllowedOrigins []string
	StrictOrigins  bool

	// AllowedHosts are Host header values (host or host:port) accepted on
	// loopback connections besides localhost and loopback addresses: the
	// public name of a reverse proxy on the same machine. Any other Host on
	// a loopback connection is refused (403), against DNS rebinding.
	AllowedHosts []string

	// Resource is the gateway's canonical resource URI (RFC 8707), for
	// example https://gateway.example.com/mcp: the audience its OAuth
	// tokens carry. With AuthorizationServers it enables the
	// protected-resource metadata (RFC 9728) at
	// /.well-known/oauth-protected-resource[/mcp], named in every 401 and
	// 403 challenge. Empty: no metadata (API keys only).
	Resource             string
	AuthorizationServers []string
	// Scopes are the scopes MCP access needs, named in challenges and the
	// metadata.
	Scopes []string
	// AdminScopes are the scopes an OAuth token needs, besides the admin
	// role, for admin routes and for acting on another tenant.
	AdminScopes []string

	// MaxBodyBytes bounds a request body; zero means DefaultMaxBodyBytes.
	MaxBodyBytes int64

	// ReadTimeout bounds the reading of a request body, from its first
	// byte to its last; WriteTimeout the time a client may take to accept
	// each part of an answer (up to 64 KiB) or flush (see exchange). A call
	// or an event stream that is quiet waits on nobody and is not cut,
	// however long. Zero means DefaultReadTimeout, DefaultWriteTimeout.
	ReadTimeout, WriteTimeout time.Duration

	// OAuth, if set, serves the link flow at /oauth/authorize/{integration},
	// the consent page /oauth/link/{id} and /oauth/callback/{integration}.
	OAuth *oauth.Flow

	// Credentials, if set, serves the credential routes under
	// /tenants/{tenantId}/... and GET /admin/tenants/health.
	Credentials *Credentials
	// Invoke, if set, serves POST /api/v1/tools/invoke.
	Invoke Invoker
	// APIKeys, if set, serves a tenant's API keys at
	// /tenants/{tenantId}/api-keys (list, create) and
	// /tenants/{tenantId}/api-keys/{keyId} (revoke).
	APIKeys APIKeyManager

	// Console, if set, is served at /console/ (behind the Host and Origin
	// checks) and bound to the gateway's own API, which it calls in
	// process for every page and action.
	Console Console

	// Ready reports whether the gateway can serve (store and registry up),
	// for GET /readyz; nil means always ready.
	Ready func(context.Context) error

	// Audit, if set, records refused cross-tenant and admin-only attempts
	// (credential operations are recorded by the store's wrapper).
	Audit *audit.Logger
	// Metrics, if set, counts HTTP requests and serves GET /metrics
	// (admins only); Usage serves the per-tenant figures at GET
	// /admin/tenants/{tenantId}/usage and /admin/usage.
	Metrics *metrics.Metrics
	Usage   *metrics.Usage
	// UsageTotals, if set, answers a tenant's usage route instead of
	// Usage: the figures every replica shares (false: none).
	UsageTotals func(ctx context.Context, tenant string) (metrics.TenantUsage, bool, error)
	// UsageDaily, if set, answers GET /tenants/{tenantId}/usage/daily
	// instead of Usage: the daily figures every replica shares, of the
	// last days days.
	UsageDaily func(ctx context.Context, tenant string, days int) (metrics.DailyUsage, error)

	Logger *slog.Logger // nil: discard
}

// Console is the tenant console (package console): a handler of
// /console/ that makes its requests of the API it is bound to.
type Console interface {
	http.Handler
	Bind(api http.Handler)
}

// DefaultMaxBodyBytes is the default of HTTPOptions.MaxBodyBytes.
const DefaultMaxBodyBytes = 4 << 20

// HTTP is the gateway's HTTP handler: one mux of the route groups (meta,
// credentialRoutes, apiKeyRoutes, adminRoutes, linkRoutes, invokeRoute,
// the browser's sign-in and the MCP endpoint), each behind the guards it
// needs, and outside them the request ID, the metrics and the drain.
type HTTP struct {
	guards  *guards
	mux     *http.ServeMux
	drain   drain
	handler http.Handler // the mux behind the gateway's outermost wrappers
}

// NewHTTP returns the gateway's HTTP handler.
func NewHTTP(opts HTTPOptions) *HTTP {
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.ReadTimeout <= 0 {
		opts.ReadTimeout = DefaultReadTimeout
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = DefaultWriteTimeout
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	g := &guards{opts: &opts, log: opts.Logger, apiAuth: opts.Auth}
	if opts.Browser != nil {
		g.apiAuth = Chain{opts.Auth, opts.Browser.Auth()}
	}
	h := &HTTP{guards: g, mux: http.NewServeMux()}
	h.routes()
	api := h.withRequestID(h.mux)
	h.handler = h.bounded(api)
	if opts.Console != nil {
		// Its calls are part of the exchange that made them (bounded
		// and drained with it); each has a request ID of its own.
		opts.Console.Bind(api)
	}
	return h
}

func (h *HTTP) routes() {
	g := h.guards
	meta{g, &h.drain}.register(h.mux)
	if b := g.opts.Browser; b != nil {
		auth := http.NewServeMux()
		b.Register(auth)
		h.mux.Handle("/auth/", g.checkHost(g.checkOrigin(auth)))
	}
	linkRoutes{g}.register(h.mux)
	if c := g.opts.Console; c != nil {
		h.mux.Handle("/console/", g.checkHost(g.checkOrigin(c)))
	}
	if g.opts.Credentials != nil {
		credentialRoutes{g}.register(h.mux)
	}
	if g.opts.APIKeys != nil {
		apiKeyRoutes{g}.register(h.mux)
	}
	adminRoutes{g}.register(h.mux)
	if g.opts.Invoke != nil {
		h.mux.Handle("POST /api/v1/tools/invoke", g.api(invokeRoute{g}.handleInvoke))
	}
	mcp := g.checkHost(g.checkOrigin(g.limitBody(h.drain.track(g.authenticate(g.opts.MCP)))))
	for _, method := range []string{"POST", "GET", "DELETE"} {
		h.mux.Handle(method+" /mcp", mcp)
		h.mux.Handle(method+" /mcp/{integration}", mcp)
	}
}

// withRequestID gives every request an ID, echoed in X-Request-Id, and
// counts it in the metrics by route pattern and status.
func (h *HTTP) withRequestID(next *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b [8]byte
		_, _ = rand.Read(b[:])
		id := hex.EncodeToString(b[:])
		w.Header().Set("X-Request-Id", id)
		ctx, span := telemetry.StartServer(r) // nil: tracing off
		r = r.WithContext(audit.WithRequestID(ctx, id))
		m := h.guards.opts.Metrics
		if m == nil && span == nil {
			next.ServeHTTP(w, r)
			return
		}
		start := time.Now()
		sw := &httpwire.StatusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r) // the mux sets r.Pattern
		telemetry.EndServer(span, r.Pattern, sw.Status)
		if m != nil {
			m.HTTP(r.Pattern, sw.Status, time.Since(start))
		}
	})
}

// ServeHTTP implements http.Handler.
func (h *HTTP) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.handler.ServeHTTP(w, r)
}

// Close ends every MCP session and the requests they have running (after
// Drain, none are left), and closes the MCP endpoint.
func (h *HTTP) Close(ctx context.Context) error {
	return h.guards.opts.MCP.Close(ctx)
}
