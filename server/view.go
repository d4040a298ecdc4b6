package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
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

// view is one MCP server the gateway offers: the aggregate (only == "",
// tools named {integration}_{tool}) or one integration alone (only set,
// the upstream's own names).
type view struct {
	g     *Gateway
	mcp   *mcpserver.MCPServer
	only  string
	names tools.Names // the aggregate's exposed names

	mu         sync.Mutex
	discovered map[string]bool          // integration → catalogue registered
	discovery  map[string]chan struct{} // integration → discovery in flight
	registered map[string][]string      // integration → exposed tool names
	plain      map[string]bool          // exposed tool name → may take the direct path
	sessions   map[string]*viewSession  // session ID → its tenant and subscriptions
}

func newView(g *Gateway, only string) *view {
	return &view{
		g: g, only: only,
		discovered: map[string]bool{},
		discovery:  map[string]chan struct{}{},
		registered: map[string][]string{},
		plain:      map[string]bool{},
		sessions:   map[string]*viewSession{},
	}
}

func newAggregate(g *Gateway) *view {
	v := newView(g, "")
	hooks := &mcpserver.Hooks{}
	hooks.AddBeforeListTools(func(ctx context.Context, _ any, _ *mcp.ListToolsRequest) {
		v.discoverForTenant(ctx)
	})
	hooks.AddBeforeCallTool(func(ctx context.Context, _ any, req *mcp.CallToolRequest) {
		// A client may call a tool it listed before this process started.
		// Integration names hold no '_', so the prefix names the integration.
		if integ, _, ok := strings.Cut(req.Params.Name, "_"); ok {
			if _, known := g.reg.Get(integ); known {
				v.discoverOne(ctx, integ)
			}
		}
	})
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
	return v
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

// filterTools is the mcp-go tool filter: it keeps the tools of the
// integrations the calling tenant may use. It runs for tools/list and for
// tools/call.
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
		if v.offers(t.Name, acc, settings) {
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

// discoverForTenant makes sure the catalogue of every integration in this
// view that the calling tenant has connected is registered.
func (v *view) discoverForTenant(ctx context.Context) {
	id, ok := tenants.FromContext(ctx)
	if !ok {
		return
	}
	if v.only != "" {
		v.discoverOne(ctx, v.only)
		return
	}
	if v.allDiscovered() {
		return // nothing to learn: skip listing the tenant's integrations
	}
	names, err := v.g.connected(ctx, id.Tenant)
	if err != nil {
		v.g.log.WarnContext(ctx, "tool_discovery_failed", "tenant_id", id.Tenant, "error", err)
		return
	}
	var wg sync.WaitGroup
	for _, n := range names {
		wg.Go(func() { v.discoverOne(ctx, n) })
	}
	wg.Wait()
}

// allDiscovered reports whether every registered integration's catalogue
// is registered in v.
func (v *view) allDiscovered() bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, name := range v.g.reg.Names() {
		if !v.discovered[name] {
			return false
		}
	}
	return true
}

// discoverOne registers integration's catalogue once, through the calling
// tenant's connection. Concurrent callers share one discovery; a failed one
// is retried by the next caller. A tenant without a credential for the
// integration discovers nothing.
func (v *view) discoverOne(ctx context.Context, integration string) {
	v.mu.Lock()
	if v.discovered[integration] {
		v.mu.Unlock()
		return
	}
	done, running := v.discovery[integration]
	if !running {
		done = make(chan struct{})
		v.discovery[integration] = done
	}
	v.mu.Unlock()
	if running {
		select {
		case <-done:
		case <-ctx.Done():
		}
		return
	}

	err := v.register(ctx, integration)
	v.mu.Lock()
	delete(v.discovery, integration)
	if err == nil {
		v.discovered[integration] = true
	}
	v.mu.Unlock()
	close(done)
	if err != nil {
		id, _ := tenants.FromContext(ctx)
		level := slog.LevelWarn
		if vault.IsNotFound(err) || errors.Is(err, errNeedsLink) {
			level = slog.LevelDebug // a tenant naming an integration it has not connected
		}
		v.g.log.Log(ctx, level, "tool_discovery_failed", "tenant_id", id.Tenant, "integration", integration, "error", err)
	}
}

// register lists integration's tools (and, for a single-integration view,
// prompts) through the calling tenant's connection and adds them to the
// mcp-go server.
func (v *view) register(ctx context.Context, integration string) error {
	conn, err := v.g.conn(ctx, integration)
	if err != nil {
		return err
	}
	srv := func() *mcpserver.MCPServer { return v.mcp }
	caps := conn.Capabilities()
	if caps.Tools != nil || v.only == "" {
		upstream, err := conn.Tools(ctx)
		if err != nil {
			return err
		}
		entries := make([]mcpserver.ServerTool, 0, len(upstream))
		names := make([]string, 0, len(upstream))
		plain := make([]bool, 0, len(upstream))
		for _, t := range upstream {
			name := t.Name
			t.Name = v.expose(integration, name)
			names = append(names, t.Name)
			plain = append(plain, plainTool(t))
			entries = append(entries, mcpserver.ServerTool{Tool: t, Handler: v.g.forward(srv, integration, name)})
		}
		v.mu.Lock()
		gone := slices.DeleteFunc(v.registered[integration], func(n string) bool { return slices.Contains(names, n) })
		v.registered[integration] = names
		for _, n := range gone {
			delete(v.plain, n)
		}
		for i, n := range names {
			v.plain[n] = plain[i]
		}
		v.mu.Unlock()
		if len(gone) > 0 { // the upstream dropped tools since the last discovery
			v.mcp.DeleteTools(gone...)
		}
		v.mcp.AddTools(entries...)
		v.g.log.InfoContext(ctx, "integration_tools_registered", "integration", integration, "tools", len(entries), "view", v.only)
	}
	if v.only != "" && caps.Prompts != nil {
		prompts, err := conn.Prompts(ctx)
		if err != nil {
			return err
		}
		entries := make([]mcpserver.ServerPrompt, 0, len(prompts))
		for _, p := range prompts {
			entries = append(entries, mcpserver.ServerPrompt{Prompt: p, Handler: v.forwardPrompt})
		}
		v.mcp.AddPrompts(entries...)
	}
	return nil
}

// direct reports whether a call of the exposed tool name of integration
// may take the direct path: its catalogue is registered and the tool is
// plain.
func (v *view) direct(integration, name string) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.discovered[integration] && v.plain[name]
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
