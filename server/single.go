package server

import (
	"context"
	"fmt"

	"github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"

	"github.com/connectors-gateway/connectors/tools"
)

// everyURI matches every resource URI: the single-integration server reads
// all resources through the tenant's connection, so it registers one
// template that forwards whatever the agent asks for.
const everyURI = "{+uri}"

// newSingle returns the MCP server of integration alone, under the
// upstream's own names.
func newSingle(g *Gateway, integration string) *view {
	v := newView(g, integration)
	hooks := &mcpserver.Hooks{}
	v.routeHooks(hooks)
	hooks.AddAfterListPrompts(func(ctx context.Context, _ any, _ *mcp.ListPromptsRequest, res *mcp.ListPromptsResult) {
		res.Prompts, res.NextCursor = v.listPrompts(ctx), ""
	})
	hooks.AddBeforeGetPrompt(func(ctx context.Context, _ any, req *mcp.GetPromptRequest) { v.routePrompt(ctx, req) })
	// Resources are the tenant's own: listed through its connection on
	// every request, replacing whatever mcp-go would list.
	hooks.AddAfterListResources(func(ctx context.Context, _ any, _ *mcp.ListResourcesRequest, res *mcp.ListResourcesResult) {
		res.Resources, res.NextCursor = []mcp.Resource{}, ""
		if conn, err := v.allowedConn(ctx); err == nil && conn.Capabilities().Resources != nil {
			if list, err := conn.Resources(ctx); err == nil {
				res.Resources = list
			}
		}
	})
	hooks.AddAfterListResourceTemplates(func(ctx context.Context, _ any, _ *mcp.ListResourceTemplatesRequest, res *mcp.ListResourceTemplatesResult) {
		res.ResourceTemplates, res.NextCursor = []mcp.ResourceTemplate{}, ""
		if conn, err := v.allowedConn(ctx); err == nil && conn.Capabilities().Resources != nil {
			if list, err := conn.ResourceTemplates(ctx); err == nil {
				res.ResourceTemplates = list
			}
		}
	})
	v.guard(hooks)
	v.trackSessions(hooks)
	hooks.AddBeforeSubscribe(func(ctx context.Context, _ any, req *mcp.SubscribeRequest) {
		v.subscribe(ctx, req.Params.URI)
	})
	hooks.AddBeforeUnsubscribe(func(ctx context.Context, _ any, req *mcp.UnsubscribeRequest) {
		v.unsubscribe(ctx, req.Params.URI)
	})

	v.mcp = mcpserver.NewMCPServer(v.serverName(), g.version,
		mcpserver.WithToolCapabilities(true),
		mcpserver.WithResourceCapabilities(true, true),
		mcpserver.WithPromptCapabilities(true),
		catalogueHints(mcp.MethodToolsList),
		catalogueHints(mcp.MethodPromptsList),
		mcpserver.WithCompletions(),
		mcpserver.WithPromptCompletionProvider(completer{v}),
		mcpserver.WithResourceCompletionProvider(completer{v}),
		mcpserver.WithLogging(),
		mcpserver.WithHooks(hooks),
		mcpserver.WithToolFilter(v.filterTools),
		mcpserver.WithPromptFilter(v.filterPrompts),
		mcpserver.WithRecovery(),
	)
	// Neither WithElicitation nor EnableSampling: in mcp-go v1.2.1 they only
	// advertise sampling and elicitation, which are client capabilities, as
	// the server's; relaying the upstream's requests needs neither.
	v.mcp.AddResourceTemplate(mcp.NewResourceTemplate(everyURI, "upstream"), v.readResource)
	v.addRoutes()
	return v
}

// allowedConn returns the calling tenant's connection to the view's
// integration, or an error when the tenant may not use it.
func (v *view) allowedConn(ctx context.Context) (*tools.Conn, error) {
	ok, err := v.g.allowed(ctx)
	if err != nil {
		return nil, err
	}
	if !ok(v.only) {
		return nil, fmt.Errorf("integration %s is not connected for this tenant", v.only)
	}
	return v.g.conn(ctx, v.only)
}

// filterPrompts keeps the prompts of an integration the tenant may use.
func (v *view) filterPrompts(ctx context.Context, all []mcp.Prompt) []mcp.Prompt {
	ok, err := v.g.allowed(ctx)
	if err != nil || !ok(v.only) {
		return nil
	}
	return all
}

// readResource forwards resources/read to the tenant's upstream.
func (v *view) readResource(ctx context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
	conn, err := v.allowedConn(ctx)
	if err != nil {
		return nil, err
	}
	req.Params.Arguments = nil // the catch-all template's, not the agent's
	res, err := conn.ReadResource(ctx, req)
	if err != nil {
		return nil, err
	}
	if res.NeedsInput() {
		// mcp-go's resource handlers return contents, which cannot say so.
		return nil, fmt.Errorf("upstream %s asks the agent for input to read %s, which the gateway does not carry for resources", v.only, req.Params.URI)
	}
	return res.Contents, nil
}

// forwardPrompt forwards prompts/get to the tenant's upstream.
func (v *view) forwardPrompt(ctx context.Context, req mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
	conn, err := v.allowedConn(ctx)
	if err != nil {
		return nil, err
	}
	ctx = withAgent(ctx) // bridge.go
	r := newRelay(ctx, v.mcp)
	rp, err := v.g.replayFor(ctx, conn.Modern(), v.only, "prompt:"+req.Params.Name, req.Params.Arguments, &req.Params.MultiRoundTripParams)
	if err != nil {
		return nil, err
	}
	r.replay = rp
	once := func(ctx context.Context, rt mcp.MultiRoundTripParams) (*mcp.GetPromptResult, error) {
		req.Params.MultiRoundTripParams = rt
		return conn.GetPrompt(ctx, req, r)
	}
	if rp != nil { // replay.go
		var res *mcp.GetPromptResult
		next, asked, err := rp.round(ctx, v.g.sealer, func(ctx context.Context) (err error) {
			res, err = once(ctx, mcp.MultiRoundTripParams{})
			return err
		})
		if asked && err == nil {
			return &mcp.GetPromptResult{Result: asksInput, MultiRoundTripResult: next}, nil
		}
		return res, err
	}
	res, err := once(ctx, req.Params.MultiRoundTripParams)
	if err != nil {
		return nil, err
	}
	return answerRounds(ctx, r, res, promptNeeds, once) // bridge.go
}

// completer forwards completion/complete to the tenant's upstream.
type completer struct{ v *view }

func (c completer) complete(ctx context.Context, ref any, arg mcp.CompleteArgument, cctx mcp.CompleteContext) (*mcp.Completion, error) {
	conn, err := c.v.allowedConn(ctx)
	if err != nil {
		return nil, err
	}
	res, err := conn.Complete(ctx, mcp.CompleteRequest{Params: mcp.CompleteParams{Ref: ref, Argument: arg, Context: cctx}})
	if err != nil {
		return nil, err
	}
	return &res.Completion, nil
}

func (c completer) CompletePromptArgument(ctx context.Context, name string, arg mcp.CompleteArgument, cctx mcp.CompleteContext) (*mcp.Completion, error) {
	return c.complete(ctx, mcp.PromptReference{Type: "ref/prompt", Name: name}, arg, cctx)
}

func (c completer) CompleteResourceArgument(ctx context.Context, uri string, arg mcp.CompleteArgument, cctx mcp.CompleteContext) (*mcp.Completion, error) {
	return c.complete(ctx, mcp.ResourceReference{Type: "ref/resource", URI: uri}, arg, cctx)
}
