package server

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"

	"github.com/connectors-gateway/connectors/tenants"
	"github.com/connectors-gateway/connectors/tools"
	"github.com/connectors-gateway/connectors/vault"
)

// Linker offers tenants a way to link an integration they have not linked
// (or must link again): the OAuth link flow.
type Linker interface {
	// LinkURL returns the URL at which the calling tenant's user links
	// integration, or ok false when integration cannot be linked here.
	LinkURL(ctx context.Context, integration string) (url string, ok bool, err error)
	// CanLink reports whether integration can be linked here.
	CanLink(integration string) bool
}

// errNeedsLink says the tenant must link integration (again) before its
// tools can run: no credential, or one whose refresh failed for good.
var errNeedsLink = errors.New("the integration needs to be linked")

// connectSuffix names an integration's connect tool in the aggregate:
// notion_connect_account. It is listed to tenants who can link the
// integration and have not (or must again).
const connectSuffix = "_connect_account"

func connectToolName(integration string) string { return integration + connectSuffix }

// connectTool is the aggregate's tool that offers the link for integration.
func (g *Gateway) connectTool(in tools.Integration) mcpserver.ServerTool {
	desc := fmt.Sprintf("Connect your %s account to this gateway, so that its tools become available. "+
		"Returns a link for the user to open in a browser; the %s tools appear once they have approved access.", in.Name, in.Name)
	if in.Description != "" {
		desc += " " + in.Name + ": " + in.Description
	}
	tool := mcp.NewTool(connectToolName(in.Name), mcp.WithDescription(desc), mcp.WithReadOnlyHintAnnotation(false),
		mcp.WithOpenWorldHintAnnotation(true))
	return mcpserver.ServerTool{Tool: tool, Handler: func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return g.linkResult(ctx, in.Name)
	}}
}

// linkResult answers a call that cannot run until the tenant links
// integration: for a client that takes URL-mode elicitation (MCP
// 2025-11-25), the URLElicitationRequired error carrying the link; for the
// others a tool error whose text holds it.
func (g *Gateway) linkResult(ctx context.Context, integration string) (*mcp.CallToolResult, error) {
	if g.linker == nil || !g.linker.CanLink(integration) {
		return nil, &vault.CredentialNotFoundError{Tenant: tenantOf(ctx), Integration: integration}
	}
	link, ok, err := g.linker.LinkURL(ctx, integration)
	if err != nil || !ok {
		g.log.WarnContext(ctx, "link_url_failed", "integration", integration, "error", err)
		return mcp.NewToolResultError(fmt.Sprintf("%s is not connected for your account, and a link could not be made: try again later.", integration)), nil
	}
	message := fmt.Sprintf("Connect your %s account to continue: open %s and approve access. The %s tools are available as soon as you have.", integration, link, integration)
	if urlElicitation(ctx) {
		return nil, mcp.URLElicitationRequiredError{Elicitations: []mcp.ElicitationParams{{
			Mode:          mcp.ElicitationModeURL,
			Message:       fmt.Sprintf("Connect your %s account to continue.", integration),
			ElicitationID: "link-" + integration + "-" + tenants.RandomToken()[:12],
			URL:           link,
		}}}
	}
	return mcp.NewToolResultError(message), nil
}

// urlElicitation reports whether the calling client takes URL-mode
// elicitation: an initialize-era session that declared it.
func urlElicitation(ctx context.Context) bool {
	if mcp.IsModernProtocol(mcpserver.RequestProtocolVersion(ctx)) {
		return false
	}
	s, ok := mcpserver.ClientSessionFromContext(ctx).(mcpserver.SessionWithClientInfo)
	if !ok {
		return false
	}
	e := s.GetClientCapabilities().Elicitation
	return e != nil && e.URL != nil
}

func tenantOf(ctx context.Context) string {
	id, _ := tenants.FromContext(ctx)
	return id.Tenant
}

// isConnectTool reports whether name is the aggregate's connect tool of a
// registered integration, and which.
func (g *Gateway) isConnectTool(name string) (string, bool) {
	integ, ok := strings.CutSuffix(name, connectSuffix)
	if !ok {
		return "", false
	}
	_, known := g.reg.Get(integ)
	return integ, known && g.linker != nil && g.linker.CanLink(integ)
}
