package server

import (
	"context"

	"github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"
)

// relay carries an upstream call's progress and log notifications back to
// the agent that made the call. tools.Conn has already put the agent's own
// progress token back on each progress notification.
type relay struct {
	ctx context.Context
	srv *mcpserver.MCPServer
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
	_ = r.srv.SendNotificationToClient(r.ctx, string(mcp.MethodNotificationProgress), params)
}

// Log forwards one notifications/message, subject to the agent's log level.
func (r relay) Log(level mcp.LoggingLevel, logger string, data any) {
	_ = r.srv.SendLogMessageToClient(r.ctx, mcp.NewLoggingMessageNotification(level, logger, data))
}
