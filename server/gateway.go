// Package server is the aggregating MCP server: one tool catalogue per
// tenant, built from the integrations that tenant holds a credential for,
// and every tools/call forwarded to the tenant's own upstream connection with
// the tenant's own credential.
//
// # Overview
//
// A [Gateway] wraps an mcp-go server. The tenant of a request comes from the
// identity that transport put into the context ([tenants.FromContext]); a
// request without one is refused. The same function, [Gateway.allowed],
// decides which tools tools/list shows and whether a tools/call may run.
//
// Upstream tool catalogues are discovered lazily, per integration, through
// the first tenant that lists or calls them, and then shared: an
// integration's tool set is the same for every tenant.
package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"

	"github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"

	"github.com/connectors-gateway/connectors/tenants"
	"github.com/connectors-gateway/connectors/tools"
	"github.com/connectors-gateway/connectors/vault"
)

// CredentialStore is what the gateway needs of a credential store.
type CredentialStore interface {
	Get(ctx context.Context, tenant, integration string) (vault.Credential, int64, error)
	Integrations(ctx context.Context, tenant string) ([]string, error)
}

// Upstreams hands out live upstream connections, one per (tenant,
// integration), started with the given credential template values.
type Upstreams interface {
	Conn(ctx context.Context, tenant string, in tools.Integration, vars map[string]string) (*tools.Conn, error)
}

// Options configure a Gateway. Registry, Store and Upstreams are required.
type Options struct {
	Registry  *tools.Registry
	Store     CredentialStore
	Upstreams Upstreams
	Logger    *slog.Logger // nil: discard
	Name      string       // server name in initialize; empty: "connectors"
	Version   string       // empty: "dev"
}

// Gateway is the aggregating MCP server.
type Gateway struct {
	reg       *tools.Registry
	store     CredentialStore
	upstreams Upstreams
	log       *slog.Logger
	names     tools.Names
	mcp       *mcpserver.MCPServer

	mu         sync.Mutex
	discovered map[string]bool        // integration → catalogue registered
	discovery  map[string]*discoverer // integration → discovery in flight
	sessions   map[string]string      // session ID → tenant, for tenant-targeted notifications
}

type discoverer struct {
	done chan struct{}
	err  error
}

// New returns a Gateway.
func New(opts Options) *Gateway {
	g := &Gateway{
		reg:        opts.Registry,
		store:      opts.Store,
		upstreams:  opts.Upstreams,
		log:        opts.Logger,
		discovered: map[string]bool{},
		discovery:  map[string]*discoverer{},
		sessions:   map[string]string{},
	}
	if g.log == nil {
		g.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	name, version := opts.Name, opts.Version
	if name == "" {
		name = "connectors"
	}
	if version == "" {
		version = "dev"
	}
	hooks := &mcpserver.Hooks{}
	hooks.AddBeforeListTools(func(ctx context.Context, _ any, _ *mcp.ListToolsRequest) {
		g.discoverForTenant(ctx)
	})
	hooks.AddBeforeCallTool(func(ctx context.Context, _ any, req *mcp.CallToolRequest) {
		// A client may call a tool it listed before this process started.
		// Integration names hold no '_', so the prefix names the integration.
		if integ, _, ok := strings.Cut(req.Params.Name, "_"); ok {
			if _, known := g.reg.Get(integ); known {
				g.discoverOne(ctx, integ)
			}
		}
	})
	hooks.AddOnRegisterSession(func(ctx context.Context, s mcpserver.ClientSession) {
		if id, ok := tenants.FromContext(ctx); ok {
			g.mu.Lock()
			g.sessions[s.SessionID()] = id.Tenant
			g.mu.Unlock()
		}
	})
	hooks.AddOnUnregisterSession(func(_ context.Context, s mcpserver.ClientSession) {
		g.mu.Lock()
		delete(g.sessions, s.SessionID())
		g.mu.Unlock()
	})
	g.mcp = mcpserver.NewMCPServer(name, version,
		mcpserver.WithToolCapabilities(true),
		mcpserver.WithLogging(),
		mcpserver.WithHooks(hooks),
		mcpserver.WithToolFilter(g.filter),
		mcpserver.WithRecovery(),
		mcpserver.WithInstructions("Connectors Gateway: the tools of every integration your tenant has connected, named {integration}_{tool}."),
	)
	return g
}

// MCPServer returns the mcp-go server, for the transports to serve.
func (g *Gateway) MCPServer() *mcpserver.MCPServer { return g.mcp }

// NotifyToolsChanged tells every open session of tenant that its tool list
// changed (a credential was added or removed).
func (g *Gateway) NotifyToolsChanged(tenant string) {
	g.mu.Lock()
	var ids []string
	for id, t := range g.sessions {
		if t == tenant {
			ids = append(ids, id)
		}
	}
	g.mu.Unlock()
	for _, id := range ids {
		_ = g.mcp.SendNotificationToSpecificClient(id, mcp.MethodNotificationToolsListChanged, nil)
	}
}

// connected returns the registered integrations tenant holds a credential for.
func (g *Gateway) connected(ctx context.Context, tenant string) ([]string, error) {
	names, err := g.store.Integrations(ctx, tenant)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(names, func(n string) bool {
		_, ok := g.reg.Get(n)
		return !ok
	}), nil
}

// allowed is the one decision behind both tools/list and tools/call: a
// tenant may use an integration's tools when the integration is registered
// and the tenant holds a credential for it.
func (g *Gateway) allowed(ctx context.Context) (func(integration string) bool, error) {
	id, ok := tenants.FromContext(ctx)
	if !ok {
		return nil, errNoIdentity
	}
	names, err := g.connected(ctx, id.Tenant)
	if err != nil {
		return nil, err
	}
	return func(integration string) bool { return slices.Contains(names, integration) }, nil
}

var errNoIdentity = errors.New("no authenticated tenant on this request")

// filter is the mcp-go tool filter: it keeps the tools of the integrations
// the calling tenant may use. It runs for tools/list and for tools/call.
func (g *Gateway) filter(ctx context.Context, all []mcp.Tool) []mcp.Tool {
	ok, err := g.allowed(ctx)
	if err != nil {
		g.log.WarnContext(ctx, "tool_filter_failed", "error", err)
		return nil
	}
	return slices.DeleteFunc(all, func(t mcp.Tool) bool {
		integ, _, found := g.names.Resolve(t.Name)
		return !found || !ok(integ)
	})
}

// discoverForTenant makes sure the catalogue of every integration the
// calling tenant has connected is registered before tools/list runs.
func (g *Gateway) discoverForTenant(ctx context.Context) {
	id, ok := tenants.FromContext(ctx)
	if !ok {
		return
	}
	names, err := g.connected(ctx, id.Tenant)
	if err != nil {
		g.log.WarnContext(ctx, "tool_discovery_failed", "tenant_id", id.Tenant, "error", err)
		return
	}
	var wg sync.WaitGroup
	for _, n := range names {
		wg.Go(func() { g.discoverOne(ctx, n) })
	}
	wg.Wait()
}

// discoverOne registers integration's catalogue once, through the calling
// tenant's connection. Concurrent callers share one discovery; a failed one
// is retried by the next caller.
func (g *Gateway) discoverOne(ctx context.Context, integration string) {
	id, ok := tenants.FromContext(ctx)
	if !ok {
		return
	}
	g.mu.Lock()
	if g.discovered[integration] {
		g.mu.Unlock()
		return
	}
	d, running := g.discovery[integration]
	if !running {
		d = &discoverer{done: make(chan struct{})}
		g.discovery[integration] = d
	}
	g.mu.Unlock()
	if running {
		select {
		case <-d.done:
		case <-ctx.Done():
		}
		return
	}

	d.err = g.register(ctx, id.Tenant, integration)
	g.mu.Lock()
	delete(g.discovery, integration)
	if d.err == nil {
		g.discovered[integration] = true
	}
	g.mu.Unlock()
	close(d.done)
	if d.err != nil {
		g.log.WarnContext(ctx, "tool_discovery_failed", "tenant_id", id.Tenant, "integration", integration, "error", d.err)
	}
}

// register lists integration's tools through tenant's connection and adds
// them, under their exposed names, to the mcp-go server.
func (g *Gateway) register(ctx context.Context, tenant, integration string) error {
	in, ok := g.reg.Get(integration)
	if !ok {
		return fmt.Errorf("unknown integration %q", integration)
	}
	conn, err := g.conn(ctx, tenant, in)
	if err != nil {
		return err
	}
	upstream, err := conn.Tools(ctx)
	if err != nil {
		return fmt.Errorf("listing tools of %s: %w", integration, err)
	}
	entries := make([]mcpserver.ServerTool, 0, len(upstream))
	for _, t := range upstream {
		upstreamName := t.Name
		t.Name = g.names.Expose(integration, upstreamName)
		entries = append(entries, mcpserver.ServerTool{Tool: t, Handler: g.forward(integration, upstreamName)})
	}
	g.mcp.AddTools(entries...)
	g.log.InfoContext(ctx, "integration_tools_registered", "integration", integration, "tools", len(entries))
	return nil
}

// conn returns tenant's live connection to in, started with the tenant's
// current credential.
func (g *Gateway) conn(ctx context.Context, tenant string, in tools.Integration) (*tools.Conn, error) {
	cred, _, err := g.store.Get(ctx, tenant, in.Name)
	if err != nil {
		return nil, err
	}
	return g.upstreams.Conn(ctx, tenant, in, templateVars(cred))
}

// templateVars are the values an integration's env and header templates
// may name.
func templateVars(c vault.Credential) map[string]string {
	vars := map[string]string{
		"access_token":  c.AccessToken,
		"refresh_token": c.RefreshToken,
		"token_type":    c.TokenType,
	}
	for k, v := range c.Extra {
		vars["extra."+k] = v
	}
	return vars
}

// forward returns the handler of one upstream tool: it calls the tool on
// the calling tenant's connection and returns the upstream's result as is.
func (g *Gateway) forward(integration, upstreamTool string) mcpserver.ToolHandlerFunc {
	return func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		id, ok := tenants.FromContext(ctx)
		if !ok {
			return nil, errNoIdentity
		}
		in, ok := g.reg.Get(integration)
		if !ok {
			return nil, fmt.Errorf("unknown integration %q", integration)
		}
		conn, err := g.conn(ctx, id.Tenant, in)
		if err != nil {
			if vault.IsNotFound(err) {
				return nil, err
			}
			return mcp.NewToolResultError(fmt.Sprintf("integration %s is unavailable: %v", integration, err)), nil
		}
		req.Params.Name = upstreamTool
		res, err := conn.CallTool(ctx, req, relay{ctx: ctx, srv: g.mcp})
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			// Upstream failures (crash, timeout) are tool execution errors:
			// the model sees them and can decide what to do.
			return mcp.NewToolResultError(err.Error()), nil
		}
		return res, nil
	}
}
