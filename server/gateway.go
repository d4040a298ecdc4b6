// Package server is the aggregating MCP server: one tool catalogue per
// tenant, built from the integrations that tenant holds a credential for,
// and every request forwarded to the tenant's own upstream connection with
// the tenant's own credential.
//
// # Overview
//
// A [Gateway] serves two kinds of MCP server, each an mcp-go server:
//
//   - the aggregate ([Gateway.MCPServer]), at /mcp and over stdio: the tools
//     of every integration the tenant has connected, named
//     {integration}_{tool};
//   - one per integration ([Gateway.Integration]), at /mcp/{integration}:
//     that upstream alone under its own names, with its resources, prompts,
//     completion, and the upstream's sampling and elicitation requests
//     carried to the agent.
//
// The tenant of a request comes from the identity that transport put into
// the context ([tenants.FromContext]); a request without one is refused.
// One function, [Gateway.allowed], decides what a tenant may list and call.
//
// Tool and prompt catalogues are discovered lazily, per integration,
// through the first tenant that lists or calls them, and then shared: an
// integration's tools are the same for every tenant. Resources are the
// tenant's own data, so they are listed through the tenant's connection on
// every request and never shared.
package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"

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

// Gateway is the aggregating MCP server and the per-integration ones.
type Gateway struct {
	reg       *tools.Registry
	store     CredentialStore
	upstreams Upstreams
	log       *slog.Logger
	name      string
	version   string

	aggregate *view
	single    map[string]*view // integration → its own server
}

// New returns a Gateway.
func New(opts Options) *Gateway {
	g := &Gateway{
		reg:       opts.Registry,
		store:     opts.Store,
		upstreams: opts.Upstreams,
		log:       opts.Logger,
		name:      opts.Name,
		version:   opts.Version,
		single:    map[string]*view{},
	}
	if g.log == nil {
		g.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if g.name == "" {
		g.name = "connectors"
	}
	if g.version == "" {
		g.version = "dev"
	}
	g.aggregate = newAggregate(g)
	for _, in := range g.reg.All() {
		g.single[in.Name] = newSingle(g, in.Name)
	}
	return g
}

// MCPServer returns the aggregate MCP server, for the transports to serve.
func (g *Gateway) MCPServer() *mcpserver.MCPServer { return g.aggregate.mcp }

// Integration returns the MCP server of one integration alone, or nil when
// no such integration is registered.
func (g *Gateway) Integration(name string) *mcpserver.MCPServer {
	if v, ok := g.single[name]; ok {
		return v.mcp
	}
	return nil
}

// NotifyToolsChanged tells every open session of tenant that its tool list
// changed (a credential was added or removed).
func (g *Gateway) NotifyToolsChanged(tenant string) {
	g.aggregate.notify(tenant, mcp.MethodNotificationToolsListChanged, nil)
	for _, v := range g.single {
		v.notify(tenant, mcp.MethodNotificationToolsListChanged, nil)
	}
}

var errNoIdentity = errors.New("no authenticated tenant on this request")

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

// allowed is the one decision behind every list and every call: a tenant
// may use an integration when the integration is registered and the tenant
// holds a credential for it. It asks the store for the one credential
// (which the store caches, and a call reads anyway) rather than listing
// the tenant's integrations, which Vault cannot cache; each integration is
// asked about once per request.
func (g *Gateway) allowed(ctx context.Context) (func(integration string) bool, error) {
	id, ok := tenants.FromContext(ctx)
	if !ok {
		return nil, errNoIdentity
	}
	seen := map[string]bool{}
	return func(integration string) bool {
		if ok, done := seen[integration]; done {
			return ok
		}
		_, known := g.reg.Get(integration)
		if known {
			_, _, err := g.store.Get(ctx, id.Tenant, integration)
			if err != nil && !vault.IsNotFound(err) {
				g.log.WarnContext(ctx, "credential_check_failed", "tenant_id", id.Tenant, "integration", integration, "error", err)
			}
			known = err == nil
		}
		seen[integration] = known
		return known
	}, nil
}

// conn returns the calling tenant's live connection to integration,
// started with the tenant's current credential.
func (g *Gateway) conn(ctx context.Context, integration string) (*tools.Conn, error) {
	id, ok := tenants.FromContext(ctx)
	if !ok {
		return nil, errNoIdentity
	}
	in, ok := g.reg.Get(integration)
	if !ok {
		return nil, fmt.Errorf("unknown integration %q", integration)
	}
	cred, _, err := g.store.Get(ctx, id.Tenant, integration)
	if err != nil {
		return nil, err
	}
	return g.upstreams.Conn(ctx, id.Tenant, in, templateVars(cred))
}

// templateVars are the values an integration's env and header templates
// may name.
func templateVars(c vault.Credential) map[string]string {
	vars := map[string]string{
		tools.VarAccessToken:  c.AccessToken,
		tools.VarRefreshToken: c.RefreshToken,
		tools.VarTokenType:    c.TokenType,
	}
	for k, v := range c.Extra {
		vars["extra."+k] = v
	}
	return vars
}

// forward returns the handler of one upstream tool: it calls the tool on
// the calling tenant's connection and returns the upstream's result as is.
func (g *Gateway) forward(srv func() *mcpserver.MCPServer, integration, upstreamTool string) mcpserver.ToolHandlerFunc {
	return func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		conn, err := g.conn(ctx, integration)
		if err != nil {
			if vault.IsNotFound(err) || errors.Is(err, errNoIdentity) {
				return nil, err
			}
			return mcp.NewToolResultError(fmt.Sprintf("integration %s is unavailable: %v", integration, err)), nil
		}
		req.Params.Name = upstreamTool
		r := newRelay(ctx, srv())
		res, err := conn.CallTool(ctx, req, r)
		r.flush()
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
