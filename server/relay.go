package server

import (
	"context"
	"sync/atomic"
	"time"

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
}

func newRelay(ctx context.Context, srv *mcpserver.MCPServer) relay {
	return relay{ctx: ctx, srv: srv, sent: new(atomic.Bool)}
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
	ctx, cancel := r.ask(ctx)
	defer cancel()
	if stream, _ := r.ctx.Value(listeningKey{}).(<-chan struct{}); stream != nil {
		select {
		case <-stream:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return r.srv.RequestSampling(ctx, req)
}

// Elicit puts an upstream's elicitation request to the agent.
func (r relay) Elicit(ctx context.Context, req mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
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

type listeningKey struct{}

// WithListening returns ctx saying that a sampling request to the agent of
// ctx's call can be sent only once listening is closed. mcp-go v1.2.1 sends
// one (initialize era, over HTTP) on the session's GET stream, and loses
// one sent before the agent's first GET is attached (see the transport's
// sessions); the request waits for it, as long as the upstream does.
// (Elicitation goes on the call's own stream.)
func WithListening(ctx context.Context, listening <-chan struct{}) context.Context {
	return context.WithValue(ctx, listeningKey{}, listening)
}

// flush waits, before a tool result is returned, until the notifications
// relayed for the call have left the session's queue, and then a moment
// more. mcp-go v1.2.1's streamable-HTTP server drops a 2026-07-28 request's
// last notification when its forwarding goroutine has taken it off the
// queue but not yet written it as the response is written (handlePost: the
// forwarder finds the request done and discards it; initialize-era
// requests are covered by the event store instead). Only calls that relayed
// something over HTTP in the 2026-07-28 era wait, and never long.
func (r relay) flush() {
	if !r.sent.Load() || !mcpserver.IsModernRequest(r.ctx) {
		return
	}
	session := mcpserver.ClientSessionFromContext(r.ctx)
	if session == nil {
		return
	}
	queue := session.NotificationChannel()
	for deadline := time.Now().Add(50 * time.Millisecond); len(queue) > 0 && time.Now().Before(deadline); {
		time.Sleep(100 * time.Microsecond)
	}
	// Taken off the queue is not yet written: let the forwarder finish.
	time.Sleep(time.Millisecond)
}
