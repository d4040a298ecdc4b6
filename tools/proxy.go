package tools

import (
	"context"
	"errors"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
)

// This file is the rest of an upstream's MCP surface, for serving one
// integration alone with its own names: resources, prompts, completion, and
// the requests an upstream makes of the agent (sampling, elicitation,
// roots).

// Asker is a Relay that can also put an upstream's requests to the agent
// that made the call in flight: sampling/createMessage,
// elicitation/create and roots/list.
type Asker interface {
	Relay
	CreateMessage(ctx context.Context, req mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error)
	Elicit(ctx context.Context, req mcp.ElicitationRequest) (*mcp.ElicitationResult, error)
	ListRoots(ctx context.Context, req mcp.ListRootsRequest) (*mcp.ListRootsResult, error)
}

// ErrNoAgent is returned to an upstream that asks for sampling or
// elicitation when no call in flight can take the question to an agent.
var ErrNoAgent = errors.New("no agent request in flight to ask")

// Capabilities returns what the upstream declared at initialization.
func (c *Conn) Capabilities() mcp.ServerCapabilities {
	c.mu.Lock()
	cli := c.client
	c.mu.Unlock()
	if cli == nil {
		return mcp.ServerCapabilities{}
	}
	return cli.GetServerCapabilities()
}

// Resources lists all the upstream's resources, following every page.
func (c *Conn) Resources(ctx context.Context) ([]mcp.Resource, error) {
	var out []mcp.Resource
	err := c.do(ctx, nil, func(ctx context.Context, cli *client.Client) error {
		res, err := cli.ListResources(ctx, mcp.ListResourcesRequest{})
		if err == nil {
			out = res.Resources
		}
		return err
	})
	return out, err
}

// ResourceTemplates lists all the upstream's resource templates.
func (c *Conn) ResourceTemplates(ctx context.Context) ([]mcp.ResourceTemplate, error) {
	var out []mcp.ResourceTemplate
	err := c.do(ctx, nil, func(ctx context.Context, cli *client.Client) error {
		res, err := cli.ListResourceTemplates(ctx, mcp.ListResourceTemplatesRequest{})
		if err == nil {
			out = res.ResourceTemplates
		}
		return err
	})
	return out, err
}

// Prompts lists all the upstream's prompts.
func (c *Conn) Prompts(ctx context.Context) ([]mcp.Prompt, error) {
	var out []mcp.Prompt
	err := c.do(ctx, nil, func(ctx context.Context, cli *client.Client) error {
		res, err := cli.ListPrompts(ctx, mcp.ListPromptsRequest{})
		if err == nil {
			out = res.Prompts
		}
		return err
	})
	return out, err
}

// ReadResource reads one resource from the upstream.
func (c *Conn) ReadResource(ctx context.Context, req mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
	req.Header, req.Request = nil, mcp.Request{}
	ctx = withRoundTrip(ctx, roundTrip{params: req.Params.MultiRoundTripParams})
	req.Params.Meta = hopMeta(req.Params.Meta)
	var out *mcp.ReadResourceResult
	err := c.do(ctx, nil, func(ctx context.Context, cli *client.Client) error {
		var err error
		out, err = cli.ReadResource(ctx, req)
		if raw, ok := inputRequiredResult(err); ok {
			out, err = mcp.ParseReadResourceResult(raw)
		}
		return err
	})
	return out, err
}

// GetPrompt gets one prompt from the upstream. What the upstream asks the
// agent meanwhile (sampling, elicitation, roots) goes to asker, which may
// be nil.
func (c *Conn) GetPrompt(ctx context.Context, req mcp.GetPromptRequest, asker Asker) (*mcp.GetPromptResult, error) {
	req.Header, req.Request = nil, mcp.Request{}
	ctx = withRoundTrip(ctx, roundTrip{params: req.Params.MultiRoundTripParams})
	req.Params.Meta = hopMeta(req.Params.Meta)
	var out *mcp.GetPromptResult
	var cl *call
	if asker != nil {
		cl = &call{relay: asker, seq: c.seq.Add(1)}
	}
	err := c.do(ctx, cl, func(ctx context.Context, cli *client.Client) error {
		var err error
		out, err = cli.GetPrompt(ctx, req)
		if raw, ok := inputRequiredResult(err); ok {
			out, err = mcp.ParseGetPromptResult(raw)
		}
		return err
	})
	return out, err
}

// Complete asks the upstream to complete a prompt or resource-template
// argument.
func (c *Conn) Complete(ctx context.Context, req mcp.CompleteRequest) (*mcp.CompleteResult, error) {
	req.Header, req.Request = nil, mcp.Request{}
	var out *mcp.CompleteResult
	err := c.do(ctx, nil, func(ctx context.Context, cli *client.Client) error {
		var err error
		out, err = cli.Complete(ctx, req)
		return err
	})
	return out, err
}

// Subscribe asks the upstream for notifications/resources/updated about uri
// (initialize-era upstreams; see [PoolOptions.OnNotification]).
func (c *Conn) Subscribe(ctx context.Context, uri string) error {
	return c.do(ctx, nil, func(ctx context.Context, cli *client.Client) error {
		return cli.Subscribe(ctx, mcp.SubscribeRequest{Params: mcp.SubscribeParams{URI: uri}})
	})
}

// Unsubscribe ends a Subscribe.
func (c *Conn) Unsubscribe(ctx context.Context, uri string) error {
	return c.do(ctx, nil, func(ctx context.Context, cli *client.Client) error {
		return cli.Unsubscribe(ctx, mcp.UnsubscribeRequest{Params: mcp.UnsubscribeParams{URI: uri}})
	})
}

// asker answers an upstream's sampling and elicitation requests by putting
// them to the agent of a call in flight on the connection. A request that
// comes with a call's context (on the call's own response stream, or in
// its input_required answer) goes to that call's agent. One that does not
// (an initialize-era upstream asking on its GET stream, as mcp-go's server
// does with sampling, or over stdio) says nothing of which call it is for:
// it goes to the agent of the calls in flight only when they are all one
// agent's (the most recent call of it). When calls of several agents are
// in flight (two users of one tenant, two sessions of one user) it is
// refused, ErrAmbiguousAgent: putting one agent's question to another
// would show it what the first one's call produced and send its answer
// back as the first one's.
type asker struct{ c *Conn }

// AgentNamer is implemented by an Asker that can say which agent it asks:
// its session (an agent's calls in one session are its own). "" is an
// agent of this call alone, as a 2026-07-28 request is.
type AgentNamer interface{ Agent() string }

// ErrAmbiguousAgent is returned to an upstream that asks outside any
// call's stream while calls of several agents are in flight.
var ErrAmbiguousAgent = errors.New("the upstream's request came outside any call's stream while several agents' calls were in flight, so whose it is cannot be told; nobody was asked")

// callKey is the context key of the call a request to the upstream is for.
type callKey struct{}

func (a asker) pick(ctx context.Context, method mcp.MCPMethod) (Asker, error) {
	if cl, _ := ctx.Value(callKey{}).(*call); cl != nil {
		if to, ok := cl.relay.(Asker); ok {
			return to, nil
		}
		return nil, ErrNoAgent
	}
	a.c.mu.Lock()
	defer a.c.mu.Unlock()
	var best *call
	var agent agentKey
	for cl := range a.c.calls {
		if _, ok := cl.relay.(Asker); !ok {
			continue
		}
		if k := agentOf(cl); best == nil {
			agent = k
		} else if k != agent {
			a.c.logger.Warn("upstream_request_ambiguous", "method", string(method))
			return nil, ErrAmbiguousAgent
		}
		if best == nil || cl.seq > best.seq {
			best = cl
		}
	}
	if best == nil {
		return nil, ErrNoAgent
	}
	return best.relay.(Asker), nil
}

// agentKey tells the agents of calls apart: by their session, or, for a
// call whose agent has none, by the call.
type agentKey struct {
	session string
	call    *call
}

func agentOf(cl *call) agentKey {
	if n, ok := cl.relay.(AgentNamer); ok {
		if s := n.Agent(); s != "" {
			return agentKey{session: s}
		}
	}
	return agentKey{call: cl}
}

func (a asker) CreateMessage(ctx context.Context, req mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
	to, err := a.pick(ctx, mcp.MethodSamplingCreateMessage)
	if err != nil {
		return nil, err
	}
	return to.CreateMessage(ctx, req)
}

func (a asker) Elicit(ctx context.Context, req mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
	to, err := a.pick(ctx, mcp.MethodElicitationCreate)
	if err != nil {
		return nil, err
	}
	return to.Elicit(ctx, req)
}

func (a asker) ListRoots(ctx context.Context, req mcp.ListRootsRequest) (*mcp.ListRootsResult, error) {
	to, err := a.pick(ctx, mcp.MethodListRoots)
	if err != nil {
		return nil, err
	}
	return to.ListRoots(ctx, req)
}
