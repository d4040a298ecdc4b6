package transport

import (
	"context"
	"io"

	mcpserver "github.com/mark3labs/mcp-go/server"

	"github.com/connectors-gateway/connectors/server"
	"github.com/connectors-gateway/connectors/tenants"
)

// ServeStdio serves MCP over in/out for one identity, bound for the whole
// process as the MCP specification wants for stdio, until in closes or ctx
// ends.
func ServeStdio(ctx context.Context, srv *mcpserver.MCPServer, id tenants.Identity, in io.Reader, out io.Writer) error {
	stdio := mcpserver.NewStdioServer(srv)
	stdio.SetContextFunc(func(ctx context.Context) context.Context {
		return tenants.NewContext(ctx, id)
	})
	// A 2026-07-28 agent gets no notification it did not ask for.
	in, out = server.StdioStreams(in, out)
	return stdio.Listen(tenants.NewContext(ctx, id), in, out)
}
