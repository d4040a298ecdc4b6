package main

import (
	"context"
	"fmt"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// The diagnostic tools of the 2026-07-28 server-stateless scenario
// (SEP-2575). Each lets the scenario observe one rule of the stateless
// protocol: a request that needs a capability its client did not declare is
// refused, a response stream carries no server-to-client request, a request
// that set no log level gets no log, and a change to the tool or prompt list
// reaches the subscriptions/listen streams.

func registerDiagnostics(s *server.MCPServer, h *toolHandlers) {
	s.AddTool(mcp.NewTool("test_missing_capability",
		mcp.WithDescription("Needs the client's sampling capability; refused with -32021 when it was not declared")), h.missingCapability)
	s.AddTool(mcp.NewTool("test_streaming_elicitation",
		mcp.WithDescription("Asks the user a question while running (elicitation)")), h.streamingElicitation)
	s.AddTool(mcp.NewTool("test_logging_tool",
		mcp.WithDescription("Logs while running, at whatever level the request asked for")), h.withLogging)
	s.AddTool(mcp.NewTool("test_trigger_tool_change",
		mcp.WithDescription("Adds and removes a tool, so that the tool list changes")), h.triggerToolChange)
	s.AddTool(mcp.NewTool("test_trigger_prompt_change",
		mcp.WithDescription("Adds and removes a prompt, so that the prompt list changes")), h.triggerPromptChange)
}

// missingCapabilityRoute refuses test_missing_capability to a 2026-07-28
// client that did not declare sampling. The refusal carries
// requiredCapabilities, which an error returned by an mcp-go handler cannot.
func missingCapabilityRoute() route {
	return route{
		claims: func(c *call) bool {
			return c.Method == string(mcp.MethodToolsCall) && c.tool == "test_missing_capability" && !declaredRaw(c.caps.Sampling)
		},
		serve: func(c *call) (any, *rpcError) {
			if err := c.standardHeaders(); err != nil {
				return nil, err
			}
			return nil, missingCapability("sampling", map[string]any{"sampling": map[string]any{}})
		},
	}
}

func (h *toolHandlers) missingCapability(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	r := server.SamplingResponse(req.Params.InputResponses, "sampling")
	if r == nil {
		return server.NewInputRequestBuilder("").Sample("sampling", sample("Say hello", 20)).ToolResult(), nil
	}
	return textResult("LLM response: " + samplingText(r.Content)), nil
}

func (h *toolHandlers) streamingElicitation(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	content, ok := accepted(req.Params.InputResponses, "user_name")
	if !ok {
		return server.NewInputRequestBuilder("").Elicit("user_name", askName()).ToolResult(), nil
	}
	return textResult(fmt.Sprintf("Hello, %v!", content["name"])), nil
}

// The dynamic tool and prompt are removed again at once, so the lists the
// other scenarios see do not depend on whether this one ran.
const (
	dynamicTool   = "test_dynamic_tool"
	dynamicPrompt = "test_dynamic_prompt"
)

func (h *toolHandlers) triggerToolChange(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	h.srv.AddTool(mcp.NewTool(dynamicTool, mcp.WithDescription("Exists only while the tool list is changing")), h.simpleText)
	h.srv.DeleteTools(dynamicTool)
	return textResult("Tool list changed"), nil
}

func (h *toolHandlers) triggerPromptChange(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	h.srv.AddPrompt(mcp.NewPrompt(dynamicPrompt, mcp.WithPromptDescription("Exists only while the prompt list is changing")),
		func(context.Context, mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
			return &mcp.GetPromptResult{}, nil
		})
	h.srv.DeletePrompts(dynamicPrompt)
	return textResult("Prompt list changed"), nil
}
