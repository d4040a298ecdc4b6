package server

import (
	"bytes"
	"context"
	"encoding/json"
	"sync"

	"github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"

	"github.com/connectors-gateway/connectors/tenants"
	"github.com/connectors-gateway/connectors/tools"
)

// view is one MCP server the gateway offers: the aggregate (only == "",
// tools named {integration}_{tool}) or one integration alone (only set,
// the upstream's own names).
type view struct {
	g     *Gateway
	mcp   *mcpserver.MCPServer
	only  string
	names tools.Names // the aggregate's exposed names
	cats  catalogues  // each tenant's own catalogues (catalogue.go)

	mu       sync.Mutex
	sessions map[string]*viewSession // session ID → its tenant and subscriptions
}

func newView(g *Gateway, only string) *view {
	return &view{g: g, only: only, cats: newCatalogues(), sessions: map[string]*viewSession{}}
}

func newAggregate(g *Gateway) *view {
	v := newView(g, "")
	hooks := &mcpserver.Hooks{}
	v.routeHooks(hooks)
	v.guard(hooks)
	v.trackSessions(hooks)
	v.mcp = mcpserver.NewMCPServer(v.serverName(), g.version,
		mcpserver.WithToolCapabilities(true),
		mcpserver.WithLogging(),
		mcpserver.WithHooks(hooks),
		mcpserver.WithToolFilter(v.filterTools),
		mcpserver.WithRecovery(),
		mcpserver.WithInstructions("Connectors Gateway: the tools of every integration your tenant has connected, named {integration}_{tool}."),
	)
	// Neither WithElicitation nor EnableSampling: in mcp-go v1.2.1 they only
	// advertise sampling and elicitation, which are client capabilities, as
	// the server's; relaying the upstream's requests needs neither.
	if g.linker != nil {
		for _, in := range g.reg.All() {
			if g.linker.CanLink(in.Name) {
				v.mcp.AddTool(g.connectTool(in).Tool, g.connectTool(in).Handler)
			}
		}
	}
	v.addRoutes()
	return v
}

// routeHooks serves tools from the calling tenant's own catalogues
// (catalogue.go): tools/list answers with them, tools/call is routed by
// them.
func (v *view) routeHooks(hooks *mcpserver.Hooks) {
	hooks.AddAfterListTools(func(ctx context.Context, _ any, _ *mcp.ListToolsRequest, res *mcp.ListToolsResult) {
		res.Tools, res.NextCursor = v.listTools(ctx, res.Tools), ""
	})
	hooks.AddBeforeCallTool(func(ctx context.Context, _ any, req *mcp.CallToolRequest) { v.routeCall(ctx, req) })
}

// integrationOf returns the integration an exposed tool or prompt name
// belongs to in this view.
func (v *view) integrationOf(name string) (string, bool) {
	integ, _, ok := v.resolve(name)
	return integ, ok
}

// resolve returns the integration and upstream name of an exposed tool or
// prompt name in this view.
func (v *view) resolve(name string) (integration, upstream string, ok bool) {
	if v.only != "" {
		return v.only, name, true
	}
	return v.names.Resolve(name)
}

// expose returns the name an upstream tool has in this view.
func (v *view) expose(integration, name string) string {
	if v.only != "" {
		return name
	}
	return v.names.Expose(integration, name)
}

// filterTools is the mcp-go tool filter: it keeps the connect tools the
// calling tenant is offered, and the routes (catalogue.go), which only
// carry calls the route hook found in the tenant's catalogue and which
// listTools never lists. It runs for tools/list and for tools/call.
//
// An integration's connect tool is kept for tenants who have not linked
// it, or must link it again.
func (v *view) filterTools(ctx context.Context, all []mcp.Tool) []mcp.Tool {
	acc, err := v.g.access(ctx)
	if err != nil {
		v.g.log.WarnContext(ctx, "tool_filter_failed", "error", err)
		return nil
	}
	id, _ := tenants.FromContext(ctx)
	settings, err := v.g.settings(ctx, id.Tenant)
	if err != nil { // access read them: unreadable since; offer nothing
		return nil
	}
	out := all[:0:0]
	for _, t := range all {
		if v.isRoute(t.Name) || v.offers(t.Name, acc, settings) {
			out = append(out, t)
		}
	}
	return out
}

// offers is the one per-tool rule of tools/list and tools/call (the usual
// path through filterTools, the direct path through CallDirect): whether
// this view offers the tool name to a tenant with access acc and settings.
// A name that is the aggregate's connect tool of an integration is that
// tool, whatever an upstream calls its own.
func (v *view) offers(name string, acc func(string) access, settings tenants.Settings) bool {
	if v.only == "" {
		if integ, ok := v.g.isConnectTool(name); ok {
			a := acc(integ)
			return a == accessNone || a == accessRelink
		}
	}
	integ, upstream, found := v.resolve(name)
	if !found || !settings.AllowsTool(integ, upstream) {
		return false
	}
	a := acc(integ)
	return a == accessLinked || a == accessRelink
}

// plainTool reports whether calls of t need nothing of mcp-go beyond
// forwarding: no arguments bound to HTTP headers (which mcp-go checks on
// the way in and sets on the way out), no task augmentation.
func plainTool(t mcp.Tool) bool {
	if t.Execution != nil && t.Execution.TaskSupport != "" && t.Execution.TaskSupport != mcp.TaskSupportForbidden {
		return false
	}
	raw, err := json.Marshal(t)
	return err == nil && !bytes.Contains(raw, []byte("x-mcp-header"))
}
