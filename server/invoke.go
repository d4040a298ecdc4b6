package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"

	"github.com/connectors-gateway/connectors/tenants"
	"github.com/connectors-gateway/connectors/tools"
	"github.com/connectors-gateway/connectors/vault"
)

// Errors of Invoke, for the transport to map to HTTP statuses.
var (
	// ErrUnknownIntegration is an integration that is not registered.
	ErrUnknownIntegration = errors.New("unknown integration")
	// ErrUnknownTool is a tool the integration does not offer.
	ErrUnknownTool = errors.New("unknown tool")
	// ErrNotLinked is an integration the tenant holds no credential for.
	ErrNotLinked = errors.New("integration not connected for this tenant")
	// ErrDisabled is an integration an admin turned off for the tenant.
	ErrDisabled = errors.New("integration disabled for this tenant")
)

// Invoke calls integration's upstream tool (by its upstream name) for the
// tenant in ctx: the REST form of tools/call (POST /api/v1/tools/invoke).
// It takes the same decision as tools/list and tools/call (the tenant
// must hold a credential) and the same path to the upstream, refresh and
// link offer included. The result is the tool's result as JSON (as
// tools/call answers it); a tool error is a result with isError set, not
// an error.
func (g *Gateway) Invoke(ctx context.Context, integration, tool string, args map[string]any) (result json.RawMessage, isError bool, err error) {
	return encodeInvoked(g.invoke(ctx, integration, tool, args))
}

// encodeInvoked is the JSON of invoke's result.
func encodeInvoked(res *mcp.CallToolResult, err error) (json.RawMessage, bool, error) {
	if err != nil {
		return nil, false, err
	}
	if res == nil {
		return json.RawMessage("null"), false, nil
	}
	b, err := json.Marshal(res)
	if err != nil {
		return nil, false, err
	}
	return b, res.IsError, nil
}

// invoke is Invoke with the result decoded.
func (g *Gateway) invoke(ctx context.Context, integration, tool string, args map[string]any) (*mcp.CallToolResult, error) {
	if _, ok := g.reg.Get(integration); !ok {
		return nil, ErrUnknownIntegration
	}
	acc, err := g.access(ctx)
	if err != nil {
		return nil, err
	}
	switch acc(integration) {
	case accessDisabled:
		return nil, ErrDisabled
	case accessNone:
		if g.linker != nil && g.linker.CanLink(integration) {
			return g.linkResult(ctx, integration)
		}
		return nil, ErrNotLinked
	case accessUnreadable:
		id, _ := tenants.FromContext(ctx)
		_, _, err := g.storeGet(ctx, id.Tenant, integration)
		if err == nil { // readable again since: not worth a second decision
			err = &vault.VaultError{Err: errors.New("the credential store failed")}
		}
		return nil, credentialUnavailable(integration, err)
	}
	id, _ := tenants.FromContext(ctx)
	settings, err := g.settings(ctx, id.Tenant)
	if err != nil {
		return nil, err
	}
	if !settings.AllowsTool(integration, tool) {
		return nil, fmt.Errorf("%w: %s has no tool %q for this tenant", ErrUnknownTool, integration, tool)
	}
	v := g.aggregate
	name := v.expose(integration, tool)
	t, ok := v.tenantTool(ctx, integration, name)
	if ok && t.upstream != tool { // another tool has its plain name (prefixedFirst)
		name = tools.MarkedName(integration, tool)
		t, ok = v.tenantTool(ctx, integration, name)
	}
	if !ok || t.upstream != tool {
		return nil, fmt.Errorf("%w: %s has no tool %q", ErrUnknownTool, integration, tool)
	}
	if args == nil {
		args = map[string]any{} // upstreams validate arguments as an object
	}
	req := mcp.CallToolRequest{}
	req.Params.Name = name
	req.Params.Arguments = args
	// A REST caller has no MCP session, so a link offer comes back as a
	// tool error holding the link (linkResult), as for MCP clients without
	// URL elicitation. A call refused for a limit is an error (HTTP 429).
	return g.forward(func() *mcpserver.MCPServer { return v.mcp }, integration, tool)(withRefusalAsError(ctx), req)
}
