// Command upstream-env is a stdio MCP server for the tools package's tests.
// Its tools let a test see what the gateway gave the process and how it
// treated a call:
//
//   - env: the process's environment, one "K=V" per line, sorted;
//   - block: waits until the call is cancelled (or 30s), noting the
//     cancellation under the "id" argument;
//   - cancelled: the ids of the block calls that were cancelled so far;
//   - log: sends a notifications/message with the "message" argument;
//   - deaf: answers, then never reads its stdin again (a hung process).
//
// With ACCOUNT_TOOLS set, its catalogue depends on the account, as GitHub's
// MCP server's does on a token's scopes: the account is accountOf the
// token in PROBE_TOKEN (not the token itself, which the gateway would
// redact), and the process also offers
//
//   - mine-{account}: a tool only that account has;
//   - search: a tool every account has, whose description names the
//     account's workspace;
//   - tasky: a tool that may run as a task (execution.taskSupport optional);
//   - shaped: a tool whose input and output schemas use JSON Schema 2020-12
//     keywords beyond mcp-go's struct ($schema, $anchor, allOf, if/then/else);
//     shapedInput and shapedOutput are their exact bytes.
//
// A block call can only be cancelled over stdio by notifications/cancelled,
// so an id in "cancelled" proves the notification arrived.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

func main() {
	s := server.NewMCPServer("upstream-env", "1.0.0", server.WithToolCapabilities(true))

	s.AddTool(mcp.NewTool("env",
		mcp.WithDescription("Returns the environment, one NAME=value a line; with hex, each value hex-encoded (the gateway redacts credentials it sees in results, so tests that must see them ask for hex)."),
		mcp.WithBoolean("hex")),
		func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			env := os.Environ()
			slices.Sort(env)
			if req.GetBool("hex", false) {
				for i, kv := range env {
					name, value, _ := strings.Cut(kv, "=")
					env[i] = name + "=" + hex.EncodeToString([]byte(value))
				}
			}
			return mcp.NewToolResultText(strings.Join(env, "\n")), nil
		})

	s.AddTool(mcp.NewTool("grow",
		mcp.WithDescription("Adds a tool named grown, so the server sends notifications/tools/list_changed.")),
		func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			s.AddTool(mcp.NewTool("grown", mcp.WithDescription("Added by grow.")),
				func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
					return mcp.NewToolResultText("grown"), nil
				})
			return mcp.NewToolResultText("grew"), nil
		})

	var mu sync.Mutex
	var cancelled []string
	s.AddTool(mcp.NewTool("block",
		mcp.WithDescription("Waits until cancelled."),
		mcp.WithString("id", mcp.Required())),
		func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			id := req.GetString("id", "")
			select {
			case <-ctx.Done():
				mu.Lock()
				cancelled = append(cancelled, id)
				mu.Unlock()
				return nil, ctx.Err()
			case <-time.After(30 * time.Second):
				return mcp.NewToolResultText("not cancelled"), nil
			}
		})
	s.AddTool(mcp.NewTool("cancelled", mcp.WithDescription("Lists the cancelled block calls.")),
		func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			mu.Lock()
			defer mu.Unlock()
			return mcp.NewToolResultText(strings.Join(cancelled, ",")), nil
		})

	s.AddTool(mcp.NewTool("log",
		mcp.WithDescription("Sends a log message."),
		mcp.WithString("message", mcp.Required())),
		func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			// Sent as is: the 2026-07-28 level gating of
			// SendLogMessageToClient would drop it.
			err := s.SendNotificationToClient(ctx, "notifications/message", map[string]any{
				"level": "info", "logger": "upstream-env", "data": req.GetString("message", ""),
			})
			if err != nil {
				return nil, err
			}
			// mcp-go's stdio server writes notifications from another
			// goroutine than responses: give the message time to go first.
			time.Sleep(100 * time.Millisecond)
			return mcp.NewToolResultText("logged"), nil
		})

	if os.Getenv("ACCOUNT_TOOLS") != "" {
		addAccountTools(s)
	}

	stdin := &deafening{r: os.Stdin, deaf: make(chan struct{})}
	s.AddTool(mcp.NewTool("deaf", mcp.WithDescription("Answers, then never reads its input again.")),
		func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			stdin.once.Do(func() { close(stdin.deaf) })
			return mcp.NewToolResultText("deaf"), nil
		})

	if err := server.NewStdioServer(s).Listen(context.Background(), stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// deafening reads r until deaf is closed, then blocks for ever.
type deafening struct {
	r    io.Reader
	deaf chan struct{}
	once sync.Once
}

func (d *deafening) Read(b []byte) (int, error) {
	select {
	case <-d.deaf:
		for { // not select{}: the runtime would call that a deadlock
			time.Sleep(time.Hour)
		}
	default:
		return d.r.Read(b)
	}
}

// Schemas of the shaped tool, as this server writes them.
const (
	shapedInput  = `{"$schema":"https://json-schema.org/draft/2020-12/schema","$anchor":"shaped","type":"object","properties":{"kind":{"enum":["page","db"]},"id":{"type":"string"}},"allOf":[{"required":["kind"]}],"if":{"properties":{"kind":{"const":"db"}}},"then":{"required":["id"]},"else":{"not":{"required":["id"]}},"additionalProperties":false}`
	shapedOutput = `{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","properties":{"ok":{"type":"boolean"}},"required":["ok"],"unevaluatedProperties":false}`
)

// accountOf is the account a token stands for in this server's catalogue.
func accountOf(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:4])
}

func addAccountTools(s *server.MCPServer) {
	account := accountOf(os.Getenv("PROBE_TOKEN"))
	s.AddTool(mcp.NewTool("mine-"+account, mcp.WithDescription("Only account "+account+" has this tool.")),
		func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return mcp.NewToolResultText("account " + account), nil
		})
	s.AddTool(mcp.NewTool("search", mcp.WithDescription("Searches the workspace of account "+account+".")),
		func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return mcp.NewToolResultText("searched " + account), nil
		})
	tasky := mcp.NewTool("tasky", mcp.WithDescription("May run as a task."))
	tasky.Execution = &mcp.ToolExecution{TaskSupport: mcp.TaskSupportOptional}
	s.AddTool(tasky, func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultText("ran"), nil
	})
	shaped := mcp.NewToolWithRawSchema("shaped", "A tool with a JSON Schema 2020-12 input.", json.RawMessage(shapedInput))
	shaped.RawOutputSchema = json.RawMessage(shapedOutput)
	s.AddTool(shaped, func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{mcp.NewTextContent(`{"ok":true}`)}, StructuredContent: map[string]any{"ok": true}}, nil
	})
}
