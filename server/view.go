package server

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"sync"

	"github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"

	"github.com/connectors-gateway/connectors/tools"
)

// view is one MCP server the gateway offers: the aggregate (only == "",
// tools named {integration}_{tool}) or one integration alone (only set,
// the upstream's own names).
type view struct {
	g    *Gateway
	mcp  *mcpserver.MCPServer
	only string
	cats catalogues // each tenant's own catalogues (catalogue.go)

	mu       sync.Mutex
	sessions map[string]*viewSession  // session ID → its tenant and subscriptions
	listens  map[listenSession]string // open subscriptions/listen streams → their tenant (listen.go)
}

func newView(g *Gateway, only string) *view {
	return &view{g: g, only: only, cats: newCatalogues(), sessions: map[string]*viewSession{}, listens: map[listenSession]string{}}
}

func newAggregate(g *Gateway) *view {
	v := newView(g, "")
	hooks := &mcpserver.Hooks{}
	v.routeHooks(hooks)
	v.guard(hooks)
	v.trackSessions(hooks)
	v.mcp = mcpserver.NewMCPServer(v.serverName(), g.version,
		mcpserver.WithToolCapabilities(true),
		catalogueHints(mcp.MethodToolsList),
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

// integrationOf returns the integration an exposed tool name belongs to
// in this view: the view's own, or in the aggregate the name's prefix
// (integration names hold no '_'), when that integration is registered.
// Whether the tool exists is the caller's catalogue's to say.
func (v *view) integrationOf(name string) (string, bool) {
	if v.only != "" {
		return v.only, true
	}
	integ, _, ok := strings.Cut(name, "_")
	return integ, ok && v.cats.routes[integ] != ""
}

// expose returns the name an upstream tool has in this view. It depends
// only on its arguments (tools.ExposedName), so no registry of names
// grows with what upstreams list.
func (v *view) expose(integration, name string) string {
	if v.only != "" {
		return name
	}
	return tools.ExposedName(integration, name)
}

// filterTools is the mcp-go tool filter: it keeps the connect tools the
// calling tenant is offered (for integrations it has not linked, or must
// link again), and the routes (catalogue.go), which only carry calls the
// route hook found in the tenant's catalogue and which listTools never
// lists. It runs for tools/list and for tools/call.
func (v *view) filterTools(ctx context.Context, all []mcp.Tool) []mcp.Tool {
	acc, err := v.g.access(ctx)
	if err != nil {
		v.g.log.WarnContext(ctx, "tool_filter_failed", "error", err)
		return nil
	}
	out := all[:0:0]
	for _, t := range all {
		if v.isRoute(t.Name) || v.offersConnect(t.Name, acc) {
			out = append(out, t)
		}
	}
	return out
}

// offersConnect reports whether name is the aggregate's connect tool of an
// integration the tenant (with access acc) has not linked or must link
// again.
func (v *view) offersConnect(name string, acc func(string) access) bool {
	if v.only != "" {
		return false
	}
	integ, ok := v.g.isConnectTool(name)
	if !ok {
		return false
	}
	a := acc(integ)
	return a == accessNone || a == accessRelink
}

// takesDirect reports whether calls of t need nothing of mcp-go beyond
// forwarding: no arguments bound to HTTP headers (which mcp-go checks on
// the way in and sets on the way out), no task augmentation.
func takesDirect(t mcp.Tool) bool {
	if t.Execution != nil && t.Execution.TaskSupport != "" && t.Execution.TaskSupport != mcp.TaskSupportForbidden {
		return false
	}
	raw, err := json.Marshal(t)
	return err == nil && !bytes.Contains(raw, []byte("x-mcp-header"))
}

// serverName is the name a view's mcp-go server introduces itself with.
func (v *view) serverName() string {
	if v.only != "" {
		return v.g.name + "/" + v.only
	}
	return v.g.name
}
