package server

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"time"

	mcpserver "github.com/mark3labs/mcp-go/server"

	"github.com/connectors-gateway/connectors/audit"
	"github.com/connectors-gateway/connectors/internal/httpwire"
	"github.com/connectors-gateway/connectors/tenants"
)

// HTTPOptions configure the streamable-HTTP MCP endpoint ([Gateway.Handler]).
// Every field is optional.
type HTTPOptions struct {
	// SessionIdleTTL ends MCP sessions idle this long with no request
	// running; zero means DefaultSessionIdleTTL. With a Sealer, it frees
	// this replica's copy only: the session is adopted again when used
	// again, until its DELETE or SessionMaxAge (sealedsessions.go).
	SessionIdleTTL time.Duration
	// Sealer, if set, seals the IDs of the MCP sessions (initialize era)
	// with the key every replica shares, so that any replica serves any
	// session (sealedsessions.go); nil: a session is this process's alone.
	Sealer Sealer
	// SessionMaxAge is how long a sealed session lasts at most; zero means
	// DefaultSessionMaxAge. It bounds the life of a session ended on a
	// replica that another never heard of.
	SessionMaxAge time.Duration
	// SessionEnded, if set, is told the ID of a sealed session its agent
	// ended here (DELETE), for every other replica's Handler.EndSession.
	// It is not told of sessions swept as idle, which end on this replica
	// only, nor of those ended by Close.
	SessionEnded func(id string)
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

	// Direct, if set, serves the tools/call requests it can without
	// mcp-go (see Gateway.CallDirect); nil: every request goes through
	// mcp-go.
	Direct Director

	// Tasks, if set, serves the tasks extension of 2026-07-28 on the
	// /mcp/{integration} endpoints whose upstream advertises it (see
	// Gateway.ServeTask), which mcp-go cannot; nil: mcp-go answers those
	// requests. Gateway.Handler sets the gateway when nil.
	Tasks Tasker

	// ParamTools, if set, names the tools whose arguments also travel in
	// Mcp-Param headers (SEP-2243), which a 2026-07-28 tools/call must
	// then carry as its body has them (checkMessage); mcp-go cannot check
	// them, knowing only the routes of the tenants' tools.
	// Gateway.Handler sets the gateway when nil.
	ParamTools ParamTools

	// Audit, if set, records a refused attempt on another identity's
	// session.
	Audit  *audit.Logger
	Logger *slog.Logger // nil: discard
}

// Defaults of HTTPOptions.
const (
	DefaultSessionIdleTTL         = 30 * time.Minute
	DefaultMaxSessions            = 10000
	DefaultMaxSessionsPerTenant   = 1000
	DefaultMaxSessionsPerIdentity = 100
	DefaultMaxRequestsPerSession  = 64
)

// Handler is the streamable-HTTP MCP endpoint: the aggregate at /mcp, and
// each integration alone at /mcp/{integration} (the route's
// "integration" path value). It expects the caller's verified identity on
// the request's context ([tenants.NewContext]) and the credential it
// presented removed: transport authenticates, and bounds and checks the
// request (Host, Origin, body size, batches) before it.
//
// A request passes, in order: the session binding (404 for a session ID
// that is unknown, terminated, belongs to another identity or was made on
// another endpoint; 400 for a GET or DELETE without one), the direct lane,
// the tasks extension's requests (taskshttp.go), the message check
// (JSON-RPC IDs, tools/call arguments, the bounds on sessions), the store
// refusals' status, and a session's request's resumability, before mcp-go's streamable-HTTP server sees it.
type Handler struct {
	opts     HTTPOptions
	log      *slog.Logger
	mcp      *mcpserver.StreamableHTTPServer
	single   map[string]*mcpserver.StreamableHTTPServer // /mcp/{integration}
	servers  []*mcpserver.StreamableHTTPServer
	sessions *sessions
	serve    http.Handler
	// stopSweep ends the sweeper of idle sessions.
	stopSweep context.CancelFunc
}

// Handler returns the gateway's streamable-HTTP MCP endpoint. Close it
// when done.
func (g *Gateway) Handler(opts HTTPOptions) *Handler {
	single := make(map[string]*mcpserver.MCPServer, len(g.single))
	for name, v := range g.single {
		single[name] = v.mcp
	}
	if opts.Logger == nil {
		opts.Logger = g.log
	}
	if opts.Tasks == nil {
		opts.Tasks = g
	}
	if opts.ParamTools == nil {
		opts.ParamTools = g
	}
	return NewHandler(g.aggregate.mcp, single, opts)
}

// NewHandler serves the mcp-go servers aggregate (at /mcp) and single (by
// integration, at /mcp/{integration}) as [Gateway.Handler] serves the
// gateway's: for tests that need the endpoint around servers of their own.
func NewHandler(aggregate *mcpserver.MCPServer, single map[string]*mcpserver.MCPServer, opts HTTPOptions) *Handler {
	if opts.SessionIdleTTL <= 0 {
		opts.SessionIdleTTL = DefaultSessionIdleTTL
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
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	h := &Handler{opts: opts, log: opts.Logger, sessions: newSessions(sessionLimits{
		all: opts.MaxSessions, perTenant: opts.MaxSessionsPerTenant, perIdentity: opts.MaxSessionsPerIdentity,
		running: opts.MaxRequestsPerSession,
	})}
	h.sessions.sealed = newSealedSessions(opts)
	h.mcp = h.streamable(aggregate)
	h.single = map[string]*mcpserver.StreamableHTTPServer{}
	for name, srv := range single {
		h.single[name] = h.streamable(srv)
	}
	endpoint := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("integration") == "" {
			h.mcp.ServeHTTP(w, r)
			return
		}
		h.serveSingle(w, r)
	})
	h.serve = h.bindSession(h.direct(h.tasks(h.checkMessage(storeRefusals(h.resumable(endpoint))))))
	ctx, stop := context.WithCancel(context.Background())
	h.stopSweep = stop
	go h.sweep(ctx)
	return h
}

// streamable serves srv over streamable HTTP, with the gateway's sessions.
func (h *Handler) streamable(srv *mcpserver.MCPServer) *mcpserver.StreamableHTTPServer {
	s := mcpserver.NewStreamableHTTPServer(srv, append(streamableOptions(h.sessions),
		mcpserver.WithHTTPContextFunc(func(ctx context.Context, r *http.Request) context.Context {
			// The identity was put on r's context by the authentication;
			// keep it. One request reads each credential once
			// (withRequestMemo).
			ctx = audit.WithRequestID(withRequestMemo(ctx), audit.RequestID(r.Context()))
			if id, ok := tenants.FromContext(r.Context()); ok {
				return tenants.NewContext(ctx, id)
			}
			return ctx
		}),
		mcpserver.WithStreamableHTTPLogger(h.log),
	)...)
	h.servers = append(h.servers, s)
	return s
}

// serveSingle serves the "/mcp/{integration}" routes: one integration
// alone, under the upstream's own names.
func (h *Handler) serveSingle(w http.ResponseWriter, r *http.Request) {
	srv, ok := h.single[r.PathValue("integration")]
	if !ok {
		httpwire.WriteError(w, r, http.StatusNotFound, "IntegrationNotFound", "no such integration")
		return
	}
	srv.ServeHTTP(w, r)
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.serve.ServeHTTP(w, r)
}

// EndSessions ends every MCP session and the requests it has running: the
// gateway is stopping, and a session's requests outlive their connections
// (see resumable), so nothing else would end them before the shutdown's
// deadline.
func (h *Handler) EndSessions() { h.sessions.endAll() }

// Close ends every MCP session and the requests they have running, stops
// the sweeper of idle sessions and shuts mcp-go's servers down.
func (h *Handler) Close(ctx context.Context) error {
	h.stopSweep()
	h.sessions.endAll()
	var errs []error
	for _, s := range h.servers {
		errs = append(errs, s.Shutdown(ctx))
	}
	return errors.Join(errs...)
}
