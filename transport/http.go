// Package transport serves the gateway: the streamable-HTTP MCP endpoint and
// the small HTTP routes beside it, and MCP over stdio.
//
// # Overview
//
// [NewHTTP] builds one http.ServeMux. Every MCP request passes, in order:
// a request ID, the Origin check (403), the body limit (413) and batch
// rejection, authentication (401), the session binding (404 for a session
// ID that is unknown, terminated, belongs to another identity or was made
// on another endpoint; 400 for a GET or DELETE without one), the direct
// path, and the message check (JSON-RPC IDs, tools/call arguments, the
// bounds on sessions) before mcp-go's streamable-HTTP server sees it.
package transport

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	mcpserver "github.com/mark3labs/mcp-go/server"

	"github.com/connectors-gateway/connectors/audit"
	"github.com/connectors-gateway/connectors/metrics"
	"github.com/connectors-gateway/connectors/oauth"
	"github.com/connectors-gateway/connectors/server"
	"github.com/connectors-gateway/connectors/tenants"
)

// Authenticator turns a request's credentials into a verified identity.
type Authenticator interface {
	Authenticate(r *http.Request) (tenants.Identity, error)
}

// HTTPOptions configure the HTTP handler. MCP and Auth are required.
type HTTPOptions struct {
	MCP  *mcpserver.MCPServer // the aggregate, at /mcp
	Auth Authenticator

	// Integrations are served alone at /mcp/{integration}.
	Integrations map[string]*mcpserver.MCPServer

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

	// SessionIdleTTL ends MCP sessions idle this long with no request
	// running; zero means 30 minutes.
	SessionIdleTTL time.Duration
	// MaxSessions bounds the MCP sessions (initialize era; and open
	// 2026-07-28 subscriptions/listen streams) at once, MaxSessionsPerTenant
	// those of one tenant, and MaxSessionsPerIdentity those of one identity
	// (tenant and subject); an initialize past a bound is refused (503,
	// 429, 429). Zero means DefaultMaxSessions, DefaultMaxSessionsPerTenant,
	// DefaultMaxSessionsPerIdentity.
	MaxSessions, MaxSessionsPerTenant, MaxSessionsPerIdentity int
	// MaxRequestsPerSession bounds the requests one session has running at
	// once (a session's request outlives its connection); one past it is
	// refused (429). Zero means DefaultMaxRequestsPerSession.
	MaxRequestsPerSession int

	// OAuth, if set, serves the link flow at /oauth/authorize/{integration},
	// the consent page /oauth/link/{id} and /oauth/callback/{integration}.
	OAuth *oauth.Flow

	// Credentials, if set, serves the credential routes under
	// /tenants/{tenantId}/... and GET /admin/tenants/health.
	Credentials *Credentials
	// Invoke, if set, serves POST /api/v1/tools/invoke.
	Invoke Invoker
	// Direct, if set, serves the tools/call requests it can without
	// mcp-go (see server.Gateway.CallDirect).
	Direct Director

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

	Logger *slog.Logger // nil: discard
}

// Defaults of HTTPOptions.
const (
	DefaultMaxBodyBytes           = 4 << 20
	DefaultMaxSessions            = 10000
	DefaultMaxSessionsPerTenant   = 1000
	DefaultMaxSessionsPerIdentity = 100
	DefaultMaxRequestsPerSession  = 64
)

// HTTP is the gateway's HTTP handler.
type HTTP struct {
	opts     HTTPOptions
	log      *slog.Logger
	mux      *http.ServeMux
	mcp      *mcpserver.StreamableHTTPServer
	single   map[string]*mcpserver.StreamableHTTPServer // /mcp/{integration}
	apiAuth  Authenticator                              // the MCP endpoint's, and signed-in browsers
	servers  []*mcpserver.StreamableHTTPServer
	sessions *sessions
	drain    drain
	handler  http.Handler // the mux behind the gateway's outermost wrappers
	// stopSweep ends the sweeper of idle sessions.
	stopSweep context.CancelFunc
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
	if opts.SessionIdleTTL <= 0 {
		opts.SessionIdleTTL = 30 * time.Minute
	}
	if opts.MaxSessions <= 0 {
		opts.MaxSessions = DefaultMaxSessions
	}
	if opts.MaxSessionsPerTenant <= 0 {
		opts.MaxSessionsPerTenant = DefaultMaxSessionsPerTenant
	}
	if opts.MaxSessionsPerIdentity <= 0 {
		opts.MaxSessionsPerIdentity = DefaultMaxSessionsPerIdentity
	}
	if opts.MaxRequestsPerSession <= 0 {
		opts.MaxRequestsPerSession = DefaultMaxRequestsPerSession
	}
	h := &HTTP{opts: opts, log: opts.Logger, mux: http.NewServeMux(), sessions: newSessions(sessionLimits{
		all: opts.MaxSessions, perTenant: opts.MaxSessionsPerTenant, perIdentity: opts.MaxSessionsPerIdentity,
		running: opts.MaxRequestsPerSession,
	})}
	if h.log == nil {
		h.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	h.apiAuth = opts.Auth
	if opts.Browser != nil {
		h.apiAuth = Chain{opts.Auth, opts.Browser.Auth()}
	}
	h.mcp = h.streamable(opts.MCP)
	h.single = map[string]*mcpserver.StreamableHTTPServer{}
	for name, srv := range opts.Integrations {
		h.single[name] = h.streamable(srv)
	}
	h.routes()
	h.handler = h.bounded(h.withRequestID(h.mux))
	ctx, stop := context.WithCancel(context.Background())
	h.stopSweep = stop
	go h.sweep(ctx)
	return h
}

// streamable serves srv over streamable HTTP, with the gateway's sessions.
func (h *HTTP) streamable(srv *mcpserver.MCPServer) *mcpserver.StreamableHTTPServer {
	s := mcpserver.NewStreamableHTTPServer(srv,
		// The gateway sweeps idle sessions itself (HTTP.sweep), so mcp-go's
		// sweeper is left off.
		mcpserver.WithSessionIdManagerResolver(h.sessions),
		// Without an event store mcp-go can drop notifications a tool
		// handler sends while its response stream is being set up.
		mcpserver.WithEventStore(mcpserver.NewInMemoryEventStore()),
		mcpserver.WithHTTPContextFunc(func(ctx context.Context, r *http.Request) context.Context {
			// The identity was put on r's context by authenticate; keep it.
			// One request reads each credential once (server.WithRequestMemo).
			ctx = audit.WithRequestID(server.WithRequestMemo(ctx), RequestID(r.Context()))
			if id, ok := tenants.FromContext(r.Context()); ok {
				return tenants.NewContext(ctx, id)
			}
			return ctx
		}),
		mcpserver.WithStreamableHTTPLogger(h.log),
		// checkHost does mcp-go's DNS-rebinding check, with AllowedHosts.
		mcpserver.WithDisableLocalhostProtection(true),
	)
	h.servers = append(h.servers, s)
	return s
}

func (h *HTTP) routes() {
	h.mux.HandleFunc("GET /healthz", h.handleHealthz)
	h.mux.HandleFunc("GET /readyz", h.handleReadyz)
	h.mux.HandleFunc("GET /openapi.json", h.handleOpenAPI)
	if h.opts.Browser != nil {
		auth := http.NewServeMux()
		h.opts.Browser.Register(auth)
		h.mux.Handle("/auth/", h.checkHost(h.checkOrigin(auth)))
	}
	if h.opts.Resource != "" && len(h.opts.AuthorizationServers) > 0 {
		h.mux.HandleFunc("GET /.well-known/oauth-protected-resource", h.handleResourceMetadata)
		h.mux.HandleFunc("GET /.well-known/oauth-protected-resource/{path...}", h.handleResourceMetadata)
	}

	// The API routes: callers authenticate as on the MCP endpoint, or as a
	// signed-in browser (CSRF-checked).
	api := func(next http.HandlerFunc) http.Handler {
		return h.checkHost(h.checkOrigin(h.limitAPIBody(h.authenticateWith(h.apiAuth, next))))
	}
	h.mux.Handle("GET /oauth/authorize/{integration}", api(h.handleAuthorize))
	if h.opts.Credentials != nil {
		h.mux.Handle("GET /tenants/{tenantId}/integrations", api(h.handleListIntegrations))
		h.mux.Handle("GET /tenants/{tenantId}/integrations/{integration}", api(h.handleGetIntegration))
		h.mux.Handle("PUT /tenants/{tenantId}/integrations/{integration}", api(h.handleEnableIntegration))
		h.mux.Handle("DELETE /tenants/{tenantId}/integrations/{integration}", api(h.handleDisableIntegration))
		h.mux.Handle("POST /tenants/{tenantId}/integrations/{integration}/credentials", api(h.handlePutCredential))
		h.mux.Handle("DELETE /tenants/{tenantId}/integrations/{integration}/credentials", api(h.handleDeleteCredential))
		h.mux.Handle("GET /admin/tenants/health", api(h.handleTenantsHealth))
		h.mux.Handle("POST /admin/tenants/{tenantId}/rotate-key", api(h.handleRotateKey))
	}
	if h.opts.Invoke != nil {
		h.mux.Handle("POST /api/v1/tools/invoke", api(h.handleInvoke))
	}
	if h.opts.Metrics != nil {
		h.mux.Handle("GET /metrics", api(h.handleMetrics))
	}
	if h.opts.Usage != nil {
		h.mux.Handle("GET /admin/usage", api(h.handleUsageTop))
		h.mux.Handle("GET /admin/tenants/{tenantId}/usage", api(h.handleUsage))
	}
	h.mux.Handle("GET /oauth/callback/{integration}", h.checkHost(http.HandlerFunc(h.handleCallback)))
	h.consentRoutes()

	guard := func(next http.Handler) http.Handler {
		return h.checkHost(h.checkOrigin(h.limitBody(h.track(h.authenticate(h.bindSession(next))))))
	}
	mcp := guard(h.direct(h.checkMessage(h.storeRefusals(h.resumable(h.mcp)))))
	single := guard(h.direct(h.checkMessage(h.storeRefusals(h.resumable(http.HandlerFunc(h.handleSingle))))))
	for _, method := range []string{"POST", "GET", "DELETE"} {
		h.mux.Handle(method+" /mcp", mcp)
		h.mux.Handle(method+" /mcp/{integration}", single)
	}
}

// handleSingle handles the "/mcp/{integration}" routes: one integration
// alone, under the upstream's own names.
func (h *HTTP) handleSingle(w http.ResponseWriter, r *http.Request) {
	srv, ok := h.single[r.PathValue("integration")]
	if !ok {
		writeError(w, r, http.StatusNotFound, "IntegrationNotFound", "no such integration")
		return
	}
	srv.ServeHTTP(w, r)
}

// ServeHTTP implements http.Handler.
func (h *HTTP) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.handler.ServeHTTP(w, r)
}

// Close ends every MCP session and the requests they have running (after
// Drain, none are left).
func (h *HTTP) Close(ctx context.Context) error {
	if h.stopSweep != nil {
		h.stopSweep()
	}
	h.sessions.endAll()
	var errs []error
	for _, s := range h.servers {
		errs = append(errs, s.Shutdown(ctx))
	}
	return errors.Join(errs...)
}

// handleHealthz handles the "GET /healthz" route: the process is up.
func (h *HTTP) handleHealthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// handleReadyz handles the "GET /readyz" route: the gateway can serve.
func (h *HTTP) handleReadyz(w http.ResponseWriter, r *http.Request) {
	if h.drain.started() {
		writeError(w, r, http.StatusServiceUnavailable, "NotReady", "the gateway is shutting down")
		return
	}
	if h.opts.Ready != nil {
		if err := h.opts.Ready(r.Context()); err != nil {
			h.log.WarnContext(r.Context(), "not_ready", "error", err)
			writeError(w, r, http.StatusServiceUnavailable, "NotReady", "the gateway is not ready")
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// handleResourceMetadata handles the "GET /.well-known/oauth-protected-resource"
// routes: RFC 9728 metadata telling MCP clients which authorization server
// issues tokens for the gateway, and with which scopes.
func (h *HTTP) handleResourceMetadata(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "max-age=3600")
	writeJSON(w, http.StatusOK, map[string]any{
		"resource":                 h.opts.Resource,
		"authorization_servers":    h.opts.AuthorizationServers,
		"scopes_supported":         append([]string{}, h.opts.Scopes...),
		"bearer_methods_supported": []string{"header"},
		"resource_name":            "Connectors Gateway",
	})
}

// resourceMetadataURL is where RFC 9728 puts the metadata of resource:
// /.well-known/oauth-protected-resource inserted before its path.
func resourceMetadataURL(resource string) string {
	u, err := url.Parse(resource)
	if err != nil || u.Host == "" {
		return ""
	}
	path := strings.TrimSuffix(u.Path, "/")
	return u.Scheme + "://" + u.Host + "/.well-known/oauth-protected-resource" + path
}
