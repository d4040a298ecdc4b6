package main

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// echoUpstream is a minimal streamable-HTTP MCP server with one cheap tool.
func echoUpstream(b *testing.B) string {
	s := server.NewMCPServer("echo", "1")
	s.AddTool(mcp.NewTool("echo", mcp.WithString("message")),
		func(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return mcp.NewToolResultText(req.GetString("message", "")), nil
		})
	ts := httptest.NewServer(server.NewStreamableHTTPServer(s))
	b.Cleanup(ts.Close)
	return ts.URL
}

func benchCall(b *testing.B, c *client.Client, tool string) {
	req := mcp.CallToolRequest{Params: mcp.CallToolParams{Name: tool, Arguments: map[string]any{"message": "hi"}}}
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		res, err := c.CallTool(ctx, req)
		if err != nil || res.IsError {
			b.Fatalf("call: %v %v", res, err)
		}
	}
}

// BenchmarkToolCall measures one tools/call made directly to an upstream
// (direct) and through the gateway with the embedded store (gateway), in
// the same run; the ratio of their ns/op is the gateway's cost. The full
// harness (concurrency, percentiles, Vault) is `make bench`'s job.
func BenchmarkToolCall(b *testing.B) {
	upstream := echoUpstream(b)
	b.Run("direct", func(b *testing.B) {
		c, err := client.NewStreamableHttpClient(upstream)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		if err := c.Start(context.Background()); err != nil {
			b.Fatal(err)
		}
		if _, err := c.Initialize(context.Background(), mcp.InitializeRequest{}); err != nil {
			b.Fatal(err)
		}
		benchCall(b, c, "echo")
	})
	b.Run("gateway", func(b *testing.B) {
		g := newGatewayWithIntegrations(b, map[string]any{
			"name": "bench", "upstream": map[string]any{"url": upstream, "headers": map[string]string{"Authorization": "Bearer {{access_token}}"}},
		})
		g.mustRun(`{"accessToken": "bench-token"}`, "credential", "put", "--tenant", "tenant-a", "--integration", "bench")
		g.serve()
		benchCall(b, g.client("tenant-a"), "bench_echo")
	})
}
