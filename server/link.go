package server

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
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
	return mcpserver.ServerTool{Tool: tool, Handler: func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		if err := takeLinkRetry(ctx, in.Name, &req.Params); err != nil {
			return nil, err
		}
		return g.linkResult(ctx, in.Name)
	}}
}

// linkedRoute is the routed header of a connect tool's call once the
// tenant has linked: no upstream tool has the name (it holds no letter).
const linkedRoute = "\x00linked"

// linked answers a call of integration's connect tool once the tenant has
// linked it: the retry of its link offer, or a call from an older list.
func (g *Gateway) linked(ctx context.Context, integration string, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	if err := takeLinkRetry(ctx, integration, &req.Params); err != nil {
		return nil, err
	}
	return mcp.NewToolResultText(fmt.Sprintf("Your %s account is connected: the %s tools are available (list the tools again to see them).", integration, integration)), nil
}

// linkResult answers a call that cannot run until the tenant links
// integration: for a 2026-07-28 client that takes URL-mode elicitation, an
// InputRequiredResult asking it to open the link, whose retry runs the call
// once the tenant has linked; for an initialize-era client that takes it
// (MCP 2025-11-25), the URLElicitationRequired error carrying the link; for
// the others a tool error whose text holds it.
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
	modern, takesURL := urlElicitation(ctx)
	if !takesURL {
		return mcp.NewToolResultError(message), nil
	}
	elicitation := mcp.ElicitationParams{
		Mode:          mcp.ElicitationModeURL,
		Message:       fmt.Sprintf("Connect your %s account to continue.", integration),
		ElicitationID: "link-" + integration + "-" + tenants.RandomToken()[:12],
		URL:           link,
	}
	if modern {
		return mcpserver.NewInputRequestBuilder(linkState(tenantOf(ctx), integration)).
			Elicit(linkInputKey, elicitation).ToolResult(), nil
	}
	return nil, mcp.URLElicitationRequiredError{Elicitations: []mcp.ElicitationParams{elicitation}}
}

// urlElicitation reports whether the calling client takes URL-mode
// elicitation, and whether it speaks 2026-07-28 (declaring its
// capabilities on the request) rather than the initialize era (declaring
// them on the session).
func urlElicitation(ctx context.Context) (modern, ok bool) {
	if mcp.IsModernProtocol(mcpserver.RequestProtocolVersion(ctx)) {
		info := mcpserver.RequestProtocolInfoFromContext(ctx)
		if info == nil || info.ClientCapabilities == nil {
			return true, false
		}
		e := info.ClientCapabilities.Elicitation
		return true, e != nil && e.URL != nil
	}
	s, ok := mcpserver.ClientSessionFromContext(ctx).(mcpserver.SessionWithClientInfo)
	if !ok {
		return false, false
	}
	e := s.GetClientCapabilities().Elicitation
	return false, e != nil && e.URL != nil
}

// linkInputKey names the link's elicitation among an InputRequiredResult's
// input requests.
const linkInputKey = "link"

// linkStatePrefix begins the requestState of the gateway's own link
// offers, which a 2026-07-28 agent's retry brings back; an upstream's
// requestState passes through untouched.
const linkStatePrefix = "connectors-link."

// linkState is the requestState of a link offer to tenant for
// integration. It is no secret and grants nothing (a retry runs only if
// the tenant has linked since, and offers the link again if not), but it
// is bound to both, so that a state made for another tenant or integration
// is refused.
func linkState(tenant, integration string) string {
	sum := sha256.Sum256([]byte(tenant + "\x00" + integration))
	return linkStatePrefix + base64.RawURLEncoding.EncodeToString(sum[:12])
}

// errForeignState refuses a retry whose requestState has the form of the
// gateway's own and was not made for the call.
var errForeignState = errors.New("the requestState was not issued by this gateway for this call")

// takeLinkRetry takes the gateway's link offer state, and the answers to
// it, out of the retry p, so that the upstream sees the call as first
// made; a state of the gateway's form not made for the call's tenant and
// integration is errForeignState.
func takeLinkRetry(ctx context.Context, integration string, p *mcp.CallToolParams) error {
	if !strings.HasPrefix(p.RequestState, linkStatePrefix) {
		return nil
	}
	if p.RequestState != linkState(tenantOf(ctx), integration) {
		return errForeignState
	}
	p.RequestState, p.InputResponses = "", nil
	return nil
}

// withDirectCapabilities gives ctx the client capabilities a 2026-07-28
// call on the direct lane declared, as mcp-go gives them to the usual
// path's handlers, for linkResult. A call on a 2025-11-25 session keeps
// ctx.
func withDirectCapabilities(ctx context.Context, c DirectCall) context.Context {
	var caps mcp.ClientCapabilities
	if c.Session != "" || json.Unmarshal(c.Capabilities, &caps) != nil {
		return ctx
	}
	return mcpserver.WithRequestProtocolInfo(ctx, &mcpserver.RequestProtocolInfo{
		Modern: true, ProtocolVersion: mcp.ProtocolVersion20260728, ClientCapabilities: &caps,
	})
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
