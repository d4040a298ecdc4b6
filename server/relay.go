package server

import (
	"context"
	"sync/atomic"

	"github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"
)

// relay carries an upstream call's progress and log notifications back to
// the agent that made the call. tools.Conn has already put the agent's own
// progress token back on each progress notification.
type relay struct {
	ctx context.Context
	srv *mcpserver.MCPServer
	// sent is set once a notification went to the agent; see flush.
	sent *atomic.Bool
	// replay, set for a 2026-07-28 agent's call of an initialize-era
	// upstream, answers the upstream's requests instead (replay.go).
	replay *replay
}

func newRelay(ctx context.Context, srv *mcpserver.MCPServer) relay {
	return relay{ctx: ctx, srv: srv, sent: new(atomic.Bool)}
}

// Agent names the agent the relay asks (tools.AgentNamer): its session.
// A 2026-07-28 request has none of its own (whatever mcp-go puts in its
// context is not the agent's), and neither has a call bridged to one.
func (r relay) Agent() string {
	if r.replay != nil || mcpserver.IsModernRequest(r.ctx) {
		return ""
	}
	if s := mcpserver.ClientSessionFromContext(r.ctx); s != nil {
		return s.SessionID()
	}
	return ""
}

// Progress forwards one notifications/progress.
func (r relay) Progress(p mcp.ProgressNotificationParams) {
	params := map[string]any{"progressToken": p.ProgressToken, "progress": p.Progress}
	if p.Total != 0 {
		params["total"] = p.Total
	}
	if p.Message != "" {
		params["message"] = p.Message
	}
	if r.srv.SendNotificationToClient(r.ctx, string(mcp.MethodNotificationProgress), params) == nil {
		r.sent.Store(true)
	}
}

// Log forwards one notifications/message, subject to the agent's log level.
func (r relay) Log(level mcp.LoggingLevel, logger string, data any) {
	if r.srv.SendLogMessageToClient(r.ctx, mcp.NewLoggingMessageNotification(level, logger, data)) == nil {
		r.sent.Store(true)
	}
}

// CreateMessage puts an upstream's sampling request to the agent.
func (r relay) CreateMessage(ctx context.Context, req mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
	if r.replay != nil {
		var res mcp.CreateMessageResult
		return &res, r.replay.question(ctx, mcp.NewSamplingInputRequest(req.CreateMessageParams), &res)
	}
	ctx, cancel := r.ask(ctx)
	defer cancel()
	if err := awaitListening(ctx, r.ctx); err != nil {
		return nil, err
	}
	return r.srv.RequestSampling(ctx, req)
}

// Elicit puts an upstream's elicitation request to the agent.
func (r relay) Elicit(ctx context.Context, req mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
	if r.replay != nil {
		var res mcp.ElicitationResult
		return &res, r.replay.question(ctx, mcp.NewElicitationInputRequest(req.Params), &res)
	}
	ctx, cancel := r.ask(ctx)
	defer cancel()
	return r.srv.RequestElicitation(ctx, req)
}

// ask returns a context for a request to the agent: the agent's session
// (from the call's context), ended when the upstream gives up its request.
func (r relay) ask(upstream context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(r.ctx)
	stop := context.AfterFunc(upstream, cancel)
	return ctx, func() { stop(); cancel() }
}
