package transport

import (
	"context"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	mcpserver "github.com/mark3labs/mcp-go/server"

	"github.com/connectors-gateway/connectors/internal/mcptest"
	"github.com/connectors-gateway/connectors/server"
)

// boundsServer is the gateway's HTTP handler over the MCP endpoint of real
// mcp-go servers: /mcp and two single endpoints, /mcp/solo and
// /mcp/other, each with the tools of mcptest.NewServer, and mcptest's
// keys; calls counts the calls their handlers saw, cancelled the sleeps
// their context ended.
type boundsServer struct {
	mcptest.Server
	h                *HTTP
	counts           mcptest.Counts
	calls, cancelled *atomic.Int64
}

func newBoundsServer(t *testing.T, opts HTTPOptions) *boundsServer {
	t.Helper()
	b := &boundsServer{}
	b.calls, b.cancelled = &b.counts.Calls, &b.counts.Cancelled
	opts.MCP = server.NewHandler(mcptest.NewServer("test", &b.counts), map[string]*mcpserver.MCPServer{
		"solo": mcptest.NewServer("solo", &b.counts), "other": mcptest.NewServer("other", &b.counts),
	}, server.HTTPOptions{})
	opts.Auth = mcptest.TestKeys
	b.h = NewHTTP(opts)
	b.Server = mcptest.Server{Server: httptest.NewServer(b.h)}
	t.Cleanup(func() { b.Close(); _ = b.h.Close(context.Background()) })
	return b
}
