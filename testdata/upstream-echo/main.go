// Command upstream-echo is the benchmarks' upstream MCP server: one cheap
// tool, echo, that returns its text argument. It serves stdio, or
// streamable HTTP at /mcp with --http ADDR (then it prints
// {"addr": "127.0.0.1:PORT"} on stdout once listening).
//
// For the gateway's tests it also has whoami, which returns the
// credential it was called with (the Authorization header over HTTP,
// ECHO_TOKEN over stdio), as is or wrapped in <...>; and over HTTP,
// --reject PREFIX answers a tools/call with a bearer token starting with
// PREFIX with 401; over stdio, --record FILE appends every line it reads
// to FILE.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

func main() {
	addr := flag.String("http", "", "serve streamable HTTP on `host:port` instead of stdio")
	reject := flag.String("reject", "", "over HTTP, answer 401 to bearer tokens starting with `prefix`")
	record := flag.String("record", "", "over stdio, append what it reads to `file`")
	ask := flag.Bool("ask", false, "add a tool, ask, that asks the agent to confirm (input_required) before it answers")
	also := flag.String("also", "", "add a tool of this `name` that answers \"NAME: text\"")
	slow := flag.Bool("slow", false, "add a tool, slow, that answers after ms milliseconds")
	flag.Parse()
	s := server.NewMCPServer("upstream-echo", "1.0.0", server.WithToolCapabilities(false))
	s.AddTool(mcp.NewTool("echo", mcp.WithDescription("Returns text."), mcp.WithString("text")),
		func(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return mcp.NewToolResultText(req.GetString("text", "")), nil
		})
	s.AddTool(mcp.NewTool("whoami", mcp.WithDescription("Returns the credential of the call."), mcp.WithBoolean("wrap")),
		func(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			who := os.Getenv("ECHO_TOKEN")
			if req.Header != nil {
				who = req.Header.Get("Authorization")
			}
			if req.GetBool("wrap", false) {
				who = "<" + who + ">" // encoded \u003c...\u003e
			}
			return mcp.NewToolResultText(who), nil
		})
	if *slow {
		s.AddTool(mcp.NewTool("slow", mcp.WithDescription("Answers after ms milliseconds."), mcp.WithNumber("ms")),
			func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
				select {
				case <-time.After(time.Duration(req.GetFloat("ms", 0)) * time.Millisecond):
				case <-ctx.Done():
					return nil, ctx.Err()
				}
				return mcp.NewToolResultText("slept"), nil
			})
	}
	if *also != "" {
		s.AddTool(mcp.NewTool(*also, mcp.WithDescription("Returns its name and text."), mcp.WithString("text")),
			func(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
				return mcp.NewToolResultText(*also + ": " + req.GetString("text", "")), nil
			})
	}
	if *ask {
		s.AddTool(mcp.NewTool("ask", mcp.WithDescription("Asks the agent to confirm, then returns the answer."),
			mcp.WithNumber("wait_ms", mcp.Description("how long to wait before asking"))),
			func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
				if answer := server.ElicitationResponse(req.Params.InputResponses, "confirm"); answer != nil {
					return mcp.NewToolResultText(fmt.Sprintf("confirmed: %s %v", answer.Action, answer.Content)), nil
				}
				select {
				case <-time.After(time.Duration(req.GetFloat("wait_ms", 0)) * time.Millisecond):
				case <-ctx.Done():
					return nil, ctx.Err()
				}
				return server.NewInputRequestBuilder("asked").Elicit("confirm", mcp.ElicitationParams{
					Message:         "Go ahead?",
					RequestedSchema: map[string]any{"type": "object", "properties": map[string]any{"ok": map[string]any{"type": "boolean"}}},
				}).ToolResult(), nil
			})
	}
	if *addr == "" {
		serve := func() error { return server.ServeStdio(s) }
		if *record != "" {
			f, err := os.OpenFile(*record, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			serve = func() error {
				return server.NewStdioServer(s).Listen(context.Background(), io.TeeReader(os.Stdin, f), os.Stdout)
			}
		}
		if err := serve(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	_ = json.NewEncoder(os.Stdout).Encode(map[string]string{"addr": ln.Addr().String()})
	mux := http.NewServeMux()
	mcpHandler := server.NewStreamableHTTPServer(s)
	mux.Handle("/mcp", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if *reject != "" && r.Header.Get("Mcp-Method") == "tools/call" && strings.HasPrefix(r.Header.Get("Authorization"), "Bearer "+*reject) {
			http.Error(w, "invalid token", http.StatusUnauthorized)
			return
		}
		mcpHandler.ServeHTTP(w, r)
	}))
	if err := http.Serve(ln, mux); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
